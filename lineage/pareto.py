"""The non-dominated front of a search: maximal accuracy at minimal MFLOPs.

NSGA-Net optimizes exactly these two objectives, so this front is what a reader of a
search wants first. Kept free of SQL and HTTP so the API, the analyzer plots and the
exporter compute the same front.
"""
from __future__ import annotations

import math
from typing import Any, Iterable, Mapping, Sequence, TypeVar

T = TypeVar("T", bound=Mapping[str, Any])


def pareto_front(points: Iterable[T], accuracy: str = "acc", cost: str = "flops") -> list[T]:
    """The points no other point dominates, ordered by increasing cost.

    A point dominates another when its accuracy is at least as high and its cost at
    most as high, one of them strictly. Identical points do not dominate each other,
    so duplicates of a front point are all kept. Points with a missing or non-finite
    accuracy or cost are ignored (a failed network is on no front).
    """
    usable = [p for p in points if _finite(p.get(accuracy)) and _finite(p.get(cost))]
    usable.sort(key=lambda p: (p[cost], -p[accuracy]))
    front: list[T] = []
    best = -math.inf
    for point in usable:
        if point[accuracy] > best:
            front.append(point)
            best = point[accuracy]
        elif front and point[accuracy] == front[-1][accuracy] and point[cost] == front[-1][cost]:
            front.append(point)  # an exact duplicate of the last front point
    return front


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def pareto_mask(accuracy: Sequence[Any], cost: Sequence[Any]) -> list[bool]:
    """:func:`pareto_front` over two parallel sequences: True where a point is on the front.

    For array callers (the engine's replay metrics, the analyzer's figures), so they
    share this one definition of dominance, ties and unusable points.
    """
    points = [{"i": i, "acc": _plain(a), "flops": _plain(c)} for i, (a, c) in enumerate(zip(accuracy, cost))]
    mask = [False] * len(points)
    for point in pareto_front(points):
        mask[point["i"]] = True
    return mask


def _plain(value: Any) -> Any:
    """numpy scalars as Python floats (``np.float32`` is not a ``float``); other values unchanged."""
    try:
        return float(value) if value is not None and not isinstance(value, (bool, str)) else value
    except (TypeError, ValueError):
        return value
