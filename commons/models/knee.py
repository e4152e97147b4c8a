"""The elbow of an accuracy-vs-MFLOPs Pareto front: where more compute stops buying accuracy.

Method: the maximum distance to the chord on the normalized front (the core of
"Kneedle", Satopää et al., ICDCS-W 2011, without its smoothing and threshold, which are
meant for dense noisy curves). Both axes are scaled to [0, 1] so the answer does not
depend on units; the chord joins the cheapest and the most accurate network; the knee is
the front point farthest above it. Why this one: a NAS front has a handful of points,
so methods that fit curves or need a sensitivity parameter (Kneedle's S, L-method
segment fits) have nothing to fit, while the chord distance is parameter-free,
deterministic and defined for any front of three or more points.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

METHOD = "max-distance-to-chord on the min-max normalized front (Kneedle without smoothing)"


def knee_point(front: Sequence[Mapping[str, Any]], accuracy: str = "acc", cost: str = "flops") -> int | None:
    """Index (in ``front``, ordered by cost) of the knee; None when fewer than three distinct points."""
    if len(front) < 3:
        return None
    costs = [float(p[cost]) for p in front]
    accs = [float(p[accuracy]) for p in front]
    c_span, a_span = max(costs) - min(costs), max(accs) - min(accs)
    if c_span <= 0 or a_span <= 0:
        return None
    xs = [(c - min(costs)) / c_span for c in costs]
    ys = [(a - min(accs)) / a_span for a in accs]
    # chord from the first (cheapest) to the last (most accurate) point: y = x after normalization,
    # so the distance above it is proportional to y - x (Kneedle's difference curve)
    gaps = [y - x for x, y in zip(xs, ys)]
    best = max(range(len(front)), key=lambda i: (gaps[i], -i))
    return best if gaps[best] > 0 else None
