"""NaN/inf handling for numeric columns.

SQL has no portable NaN/inf (SQLite stores NaN as NULL anyway, PostgreSQL needs
special literals, JSON has neither), so the lineage schema stores a non-finite
number as NULL and remembers what it was in the row's ``nonfinite`` JSON column.
These two functions are the only place that translation happens.
"""
from __future__ import annotations

import math
from typing import Any, Mapping


def _state(value: float) -> str:
    if math.isnan(value):
        return "nan"
    return "inf" if value > 0 else "-inf"


def split_nonfinite(values: Mapping[str, Any], fields: tuple[str, ...]) -> tuple[dict[str, Any], dict[str, str] | None]:
    """Return ``values`` with NaN/inf in ``fields`` replaced by None, plus the flag dict (or None)."""
    clean = dict(values)
    flags: dict[str, str] = {}
    for field in fields:
        value = clean.get(field)
        if value is None:
            continue
        value = float(value)
        if math.isfinite(value):
            clean[field] = value
        else:
            flags[field] = _state(value)
            clean[field] = None
    return clean, (flags or None)


def restore_nonfinite(value: float | None, field: str, flags: Mapping[str, str] | None) -> float | None:
    """Inverse of :func:`split_nonfinite` for one field."""
    if value is None and flags and field in flags:
        return float(flags[field])
    return value
