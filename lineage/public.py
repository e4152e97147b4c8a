"""What a record looks like outside this machine: no host paths, no host name, no secrets.

The database keeps where things are (a search's run folder, a checkpoint's
``file://`` URI, a data set's cache folder) because this machine needs them to resume
and serve. Everything that leaves it -- API answers, export bundles -- goes through
these functions, so the public record carries paths relative to the run folder (or
only a file name) and URLs in their :func:`~a4nn.lineage.urls.display_url` form.
"""
from __future__ import annotations

from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any, Mapping
from urllib.parse import unquote, urlparse

from a4nn.lineage.urls import display_url

#: search configuration entries that only locate files on the machine that ran the search
PRIVATE_CONFIG_KEYS = frozenset({"run_dir", "state_path"})


def _is_absolute_path(text: str) -> bool:
    return (text.startswith("/") or text.startswith("~") or bool(PureWindowsPath(text).drive)
            or text.startswith("\\\\"))


def public_value(value: Any) -> Any:
    """``value`` with absolute paths cut to their last component and URLs shown without secrets (recursively)."""
    if isinstance(value, Mapping):
        return {key: public_value(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [public_value(item) for item in value]
    if isinstance(value, str):
        if value.startswith("file:"):
            return PurePosixPath(unquote(urlparse(value).path)).name
        if _is_absolute_path(value):
            return PureWindowsPath(value).name if "\\" in value else PurePosixPath(value).name
        if "://" in value:
            return display_url(value)
    return value


def public_config(config: Mapping[str, Any] | None) -> dict[str, Any]:
    """A search configuration as it may be published: run folder and state path dropped, paths and URLs cleaned."""
    return {key: public_value(value) for key, value in (config or {}).items() if key not in PRIVATE_CONFIG_KEYS}


def public_attributes(attributes: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Data set attributes without the cache folder or molecule file location (their names stay)."""
    return None if attributes is None else public_value(dict(attributes))


def public_checkpoint_path(uri: str | None, run_dir: str | Path | None) -> str | None:
    """A checkpoint's location relative to its search's run folder, or its bare file name when outside it."""
    if not uri:
        return None
    parsed = urlparse(uri)
    if parsed.scheme not in ("file", ""):
        return display_url(uri)  # stored elsewhere (object store, web): the URL is public, its secrets are not
    path = Path(unquote(parsed.path))
    if run_dir:
        try:
            return path.relative_to(Path(run_dir)).as_posix()
        except ValueError:
            pass
    return path.name
