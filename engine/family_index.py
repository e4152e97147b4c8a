"""Which parametric family predicts which kind of learning curve: an index, kept as a result folder.

:func:`index_families` fits every registered family on the first k epochs of every curve
(k a fraction of the budget: 3, 5, 10, 25 and 50 % by default, at least one point more
than the family has parameters) and extrapolates to the last epoch. Per family, curve
class and k it reports the error of the predicted final value (mean and median absolute
error over the fits that succeeded), the fit failures (no parameters, a non-finite
prediction, or one outside the accuracy range) and the fit time.

Curve classes (:func:`classify`, first that applies; ``gain`` = max - first value):

``never-learns``
    every value within the chance band (100 / classes ± max(2, 5 % of the range)).
``diverges``
    the last value is more than a quarter of the gain (and 2 points) below the curve's best.
``learns-late``
    the curve first reaches 90 % of its gain after half the budget.
``plateaus``
    it reached 90 % of its gain within the first quarter and its second half stays within
    ±1 point of its median.
``learns-fast``
    everything else: 90 % of the gain within the first half.

:func:`write_index` keeps the rows (``fits.parquet``, one row per family, curve and k),
the summary (``summary.json``), a plot and a ``MANIFEST.json`` (sha256 and size of every
file), so the folder can be published like a bundle.
"""
from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from a4nn.engine.families import FAMILIES, get_family
from a4nn.engine.fitting import fit_curve

CLASSES = ("never-learns", "diverges", "learns-late", "plateaus", "learns-fast")
FRACTIONS = (0.03, 0.05, 0.10, 0.25, 0.50)


def classify(curve: Sequence[float], n_classes: int = 2) -> str:
    """The curve's class (see the module docstring for the rules)."""
    y = np.asarray(curve, dtype=float)
    y = y[np.isfinite(y)]
    if len(y) < 2:
        return "never-learns"
    chance = 100.0 / max(n_classes, 1)
    if np.all(np.abs(y - chance) <= max(2.0, 0.05 * (100.0 - chance))):
        return "never-learns"
    best, first, last = float(np.max(y)), float(y[0]), float(y[-1])
    gain = best - first
    if best - last > max(2.0, 0.25 * gain):
        return "diverges"
    reached = int(np.argmax(y >= first + 0.9 * gain)) + 1 if gain > 0 else 1
    length = len(y)
    if reached > length / 2:
        return "learns-late"
    second = y[length // 2:]
    if reached <= length / 4 and np.all(np.abs(second - np.median(second)) <= 1.0):
        return "plateaus"
    return "learns-fast"


@dataclass(frozen=True)
class FitRow:
    family: str
    curve: int
    curve_class: str
    fraction: float
    points: int
    predicted: float
    final: float
    error: float      # |predicted - final|; nan when the fit failed
    failed: bool
    seconds: float


def index_families(curves: Sequence[Sequence[float]], families: Sequence[str] | None = None,
                   fractions: Sequence[float] = FRACTIONS, n_classes: int = 2) -> list[FitRow]:
    """Fit every family on the first k epochs of every curve and extrapolate to its last epoch."""
    rows = []
    names = list(families or FAMILIES)
    for index, curve in enumerate(curves):
        y = np.asarray(curve, dtype=float)
        if len(y) < 3 or not np.isfinite(y[-1]):
            continue
        kind = classify(y, n_classes)
        for name in names:
            family = get_family(name)
            for fraction in fractions:
                points = min(len(y) - 1, max(family.n_params + 1, round(fraction * len(y))))
                x = np.arange(points, dtype=float)
                start = time.perf_counter()
                fit = fit_curve(family, x, y[:points])
                seconds = time.perf_counter() - start
                predicted = fit.predict(family, len(y) - 1)
                failed = not fit.ok or not math.isfinite(predicted) or not 0.0 <= predicted <= 100.0
                rows.append(FitRow(name, index, kind, float(fraction), points, predicted, float(y[-1]),
                                   math.nan if failed else abs(predicted - float(y[-1])), failed, seconds))
    return rows


def summarize(rows: Sequence[FitRow]) -> pd.DataFrame:
    """Per family, curve class and fraction: fits, failures, mean/median error, mean fit time (ms)."""
    frame = pd.DataFrame([r.__dict__ for r in rows])
    if frame.empty:
        return frame
    grouped = frame.groupby(["family", "curve_class", "fraction"])
    return grouped.agg(curves=("curve", "nunique"), failures=("failed", "sum"), mae=("error", "mean"),
                       median_error=("error", "median"), fit_ms=("seconds", lambda s: 1000 * s.mean())).reset_index()


def best_family(summary: pd.DataFrame) -> dict[str, dict[str, str]]:
    """Per curve class and fraction, the family with the smallest mean error (failures count as missing)."""
    out: dict[str, dict[str, str]] = {}
    for (kind, fraction), group in summary.dropna(subset=["mae"]).groupby(["curve_class", "fraction"]):
        out.setdefault(kind, {})[f"{fraction:g}"] = str(group.sort_values("mae").iloc[0]["family"])
    return out


def write_index(rows: Sequence[FitRow], out: Path | str, source: str) -> Path:
    """The result folder: fits.parquet, summary.csv, summary.json, families.png and MANIFEST.json."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame([r.__dict__ for r in rows])
    frame.to_parquet(out / "fits.parquet", index=False)
    summary = summarize(rows)
    summary.to_csv(out / "summary.csv", index=False)
    classes = frame.drop_duplicates("curve")["curve_class"].value_counts().to_dict() if len(frame) else {}
    (out / "summary.json").write_text(json.dumps({
        "source": source, "curves": int(frame["curve"].nunique()) if len(frame) else 0, "classes": classes,
        "class_rules": classify.__module__ + ".classify (see its module docstring)",
        "best_family": best_family(summary) if len(summary) else {}}, indent=2) + "\n")
    _plot(summary, out / "families.png")
    manifest = {p.name: {"sha256": hashlib.sha256(p.read_bytes()).hexdigest(), "size": p.stat().st_size}
                for p in sorted(out.iterdir()) if p.name != "MANIFEST.json" and p.is_file()}
    (out / "MANIFEST.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return out


def _plot(summary: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kinds = [k for k in CLASSES if len(summary) and k in set(summary["curve_class"])]
    fig, axes = plt.subplots(1, max(len(kinds), 1), figsize=(3.6 * max(len(kinds), 1), 3.4), squeeze=False)
    for ax, kind in zip(axes[0], kinds):
        part = summary[summary["curve_class"] == kind]
        for family, group in part.groupby("family"):
            ax.plot(100 * group["fraction"], group["mae"], "o-", ms=3, lw=0.8, label=family)
        ax.set_yscale("log")
        ax.set_title(kind, fontsize=9)
        ax.set_xlabel("epochs fitted (% of budget)")
    axes[0][0].set_ylabel("MAE of the predicted final value (points)")
    if kinds:
        axes[0][-1].legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
