"""Evaluating the engine's fitted curves from the parameters stored with each prediction.

The engine fits on ``x = epoch − first epoch`` (0 at the first measurement, PENGUIN's
convention) and stores ``params``; to draw the fitted curve over the recorded epochs we
evaluate the family at the same ``x``. Families come from :mod:`a4nn.engine.families`;
``a-b^(c-x)`` is also evaluated locally so the analyzer works on a bundle even where
the engine (scipy) is unavailable.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np


def _abc(x: np.ndarray, a: float, b: float, c: float) -> np.ndarray:
    with np.errstate(over="ignore", invalid="ignore"):
        return a - np.power(b, c - x)


def curve_function(name: str) -> Callable[..., np.ndarray] | None:
    """The callable ``f(x, *params)`` of a family, or None when neither the engine nor we know it."""
    try:
        from a4nn.engine.families import get_family

        family = get_family(name)
        return family.function
    except (ImportError, KeyError):
        return _abc if name == "a-b^(c-x)" else None


def fitted_values(function: str, params: Sequence[float] | None, epochs: np.ndarray,
                  first_epoch: float) -> np.ndarray | None:
    """The fitted curve at ``epochs``, or None when the params are missing, non-finite or of unknown family."""
    if params is None or len(params) == 0 or any(p is None or not np.isfinite(p) for p in params):
        return None
    f = curve_function(function)
    if f is None:
        return None
    with np.errstate(all="ignore"):
        values = np.asarray(f(np.asarray(epochs, dtype=float) - float(first_epoch), *[float(p) for p in params]),
                            dtype=float)
    return values if values.shape == np.shape(epochs) else None
