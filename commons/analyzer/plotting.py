"""Matplotlib plumbing shared by the figure modules: Agg figures, saving, embedding.

Figures are built on :class:`matplotlib.figure.Figure` with an explicit Agg canvas (never
pyplot's global state or ``matplotlib.use``), so the CLI, the report and tests run
headless without leaking open figures, and a notebook keeps its own inline backend.
"""
from __future__ import annotations

import base64
import io
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from a4nn.errors import A4nnError

FORMATS = ("png", "svg")
BEAM_ORDER = ("low", "medium", "high")


def new_figure(width: float = 7.0, height: float = 4.5, **kwargs) -> Figure:
    """A constrained-layout Agg figure."""
    figure = Figure(figsize=(width, height), layout="constrained", **kwargs)
    FigureCanvasAgg(figure)
    return figure


def save_figure(figure: Figure, path: Path | str, dpi: int = 120) -> Path:
    """Write ``figure`` as PNG or SVG, chosen by the file suffix."""
    path = Path(path)
    suffix = path.suffix.lower().lstrip(".")
    if suffix not in FORMATS:
        raise A4nnError(f"cannot write {path}: the file name must end in .png or .svg")
    if not path.parent.is_dir():
        raise A4nnError(f"cannot write {path}: folder {path.parent} does not exist")
    figure.savefig(path, format=suffix, dpi=dpi)
    return path


def png_base64(figure: Figure, dpi: int = 100) -> str:
    """The figure as base64 PNG text, for ``<img src="data:image/png;base64,...">``."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def empty(figure: Figure, message: str) -> Figure:
    """Say why a figure has nothing to show instead of drawing empty axes."""
    axes = figure.add_subplot()
    axes.axis("off")
    axes.text(0.5, 0.5, message, ha="center", va="center", fontsize=12, wrap=True)
    return figure


def beam_key(beam: object) -> tuple[int, str]:
    """Sort beams low, medium, high, then anything else alphabetically."""
    text = str(beam) if beam is not None else "—"
    return (BEAM_ORDER.index(text) if text in BEAM_ORDER else len(BEAM_ORDER), text)


def short_name(search: str, width: int = 28) -> str:
    """A search name short enough for a tick label (ICPP'23 names lose their common prefix)."""
    text = search.split(":", 1)[1] if search.startswith("icpp23:") else search
    text = text.replace("no_early_termination", "standalone").replace("early_termination", "engine")
    return text if len(text) <= width else text[: width - 1] + "…"
