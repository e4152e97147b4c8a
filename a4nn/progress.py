"""Progress bars that draw on a terminal only.

tqdm redraws its line with a carriage return several times a second. On a terminal
that is one line; in a pipe, a log file or a CI console every redraw becomes a line
of its own, so a search or an ingest leaves hundreds of them. Every progress bar in
the package is made here, with tqdm's ``disable=None`` (draw only when the stream is
a TTY); ``enabled=False`` (the commands' ``--quiet``) turns it off on a terminal too.
What a log needs is the commands' own summary lines, which they print either way.
"""
from __future__ import annotations

from typing import Any, Iterable


def progress_bar(iterable: Iterable[Any] | None = None, *, enabled: bool = True, **kwargs: Any):
    """A ``tqdm`` bar over ``iterable`` (or a manual one with ``total=``) that is silent off a terminal."""
    from tqdm import tqdm

    kwargs.setdefault("disable", None if enabled else True)
    return tqdm(iterable, **kwargs)
