"""Least-squares fitting of one curve family; a failed fit is a result, never an exception.

PENGUIN treats "curve_fit could not find parameters" as a normal event (the
prediction becomes inf); :func:`fit_curve` keeps that contract for every family and
also turns non-finite parameters, scipy's ValueErrors and overflow into failures.
"""
from __future__ import annotations

import time
import warnings
from dataclasses import dataclass

import numpy as np
from scipy.optimize import OptimizeWarning, curve_fit, least_squares

from a4nn.engine.families import DEFAULT_FAMILY, CurveFamily


@dataclass(frozen=True)
class FitResult:
    """Fitted parameters (inf-filled when ``ok`` is False) and how long the fit took."""

    family: str
    params: tuple[float, ...]
    ok: bool
    seconds: float
    residual: float = float("inf")

    def predict(self, family: CurveFamily, x: float) -> float:
        if not self.ok:
            return float("inf")
        with np.errstate(all="ignore"):
            value = float(family(np.array([float(x)]), *self.params)[0])
        return value if np.isfinite(value) else float("inf")


def fit_curve(family: CurveFamily, x: np.ndarray, y: np.ndarray, *, weights: np.ndarray | None = None,
              initial: np.ndarray | None = None, use_jacobian: bool = True, max_nfev: int | None = None) -> FitResult:
    """Fit ``family`` to the points (x, y).

    ``weights`` (larger = trusted more) become curve_fit's ``sigma = 1/weight``;
    ``initial`` overrides the family's guess (warm start from the previous epoch).
    ``use_jacobian=False`` reproduces PENGUIN's finite-difference fits exactly.
    ``max_nfev`` bounds the work (the engine's latency budget): the fit then runs
    ``scipy.optimize.least_squares`` directly and keeps its best point when the budget
    runs out, where curve_fit would throw that point away and raise.
    """
    start = time.perf_counter()
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    failed = FitResult(family.name, (float("inf"),) * family.n_params, False, 0.0)
    if len(x) < family.n_params or not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        return FitResult(failed.family, failed.params, False, time.perf_counter() - start)
    p0 = initial if initial is not None else family.guess(x, y)
    sigma = None if weights is None else 1.0 / np.maximum(np.asarray(weights, dtype=float), 1e-9)
    jacobian = family.jacobian if use_jacobian else None
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore", OptimizeWarning)
            warnings.simplefilter("ignore", RuntimeWarning)
            if max_nfev is not None and p0 is not None:
                params = _bounded_least_squares(family, x, y, np.asarray(p0, dtype=float), sigma, jacobian, max_nfev)
            else:
                kwargs = {"jac": jacobian} if jacobian is not None else {}
                params, _ = curve_fit(family.function, x, y, p0=p0, sigma=sigma,
                                      bounds=(family.lower, family.upper), **kwargs)
    except (RuntimeError, ValueError, FloatingPointError, OverflowError, ZeroDivisionError, np.linalg.LinAlgError):
        return FitResult(failed.family, failed.params, False, time.perf_counter() - start)
    if not np.all(np.isfinite(params)):
        return FitResult(failed.family, failed.params, False, time.perf_counter() - start)
    with np.errstate(all="ignore"):
        residual = float(np.sqrt(np.mean((family.function(x, *params) - y) ** 2)))
    return FitResult(family.name, tuple(float(p) for p in params), True, time.perf_counter() - start,
                     residual if np.isfinite(residual) else float("inf"))


def _bounded_least_squares(family: CurveFamily, x: np.ndarray, y: np.ndarray, p0: np.ndarray,
                           sigma: np.ndarray | None, jacobian, max_nfev: int) -> np.ndarray:
    """Weighted bounded least squares with an evaluation budget; returns the best point found."""
    inverse = 1.0 if sigma is None else 1.0 / sigma

    def residual(p: np.ndarray) -> np.ndarray:
        return (family.function(x, *p) - y) * inverse

    kwargs = {}
    if jacobian is not None:
        kwargs["jac"] = lambda p: jacobian(x, *p) * (inverse if np.ndim(inverse) == 0 else inverse[:, None])
    result = least_squares(residual, p0, bounds=(family.lower, family.upper), method="trf",
                           max_nfev=max_nfev, **kwargs)
    if result.status < 0 or not np.isfinite(result.cost):
        raise RuntimeError(result.message)
    return result.x


# q = 1/b, the per-epoch decay of the gap to the asymptote: from almost linear growth (q near 1) to a curve
# that saturates within an epoch (q = 0.1); denser near 1, where late-learning curves sit
_DECAY_GRID = 1.0 - np.geomspace(2e-3, 0.9, 64)


def fit_saturating_exponential(x: np.ndarray, y: np.ndarray, weights: np.ndarray | None = None,
                               lower: tuple[float, float, float] = (0.5, 1.0, 0.0),
                               upper: tuple[float, float, float] = (200.0, np.inf, np.inf)) -> FitResult:
    """PENGUIN's ``a - b^(c - x)`` fitted by variable projection: exact for every decay on a grid, in microseconds.

    Why: the engine fits every network after every epoch, and an iterative solver with a
    handful of evaluations costs milliseconds and may stop anywhere. Written as
    ``a - k q^x`` (``q = 1/b``, ``k = b^c``) the curve is linear in ``(a, k)`` once ``q`` is
    fixed, so the weighted least-squares ``(a, k)`` has a closed form for each ``q`` of a
    fixed grid (vectorised), and the best ``q`` wins. Bounds are kept: ``a`` is clipped to
    its range and ``k >= 1`` (``c >= 0``), re-solving the other parameter where one binds.
    """
    start = time.perf_counter()
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if len(x) < 3 or not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        return FitResult(DEFAULT_FAMILY, (float("inf"),) * 3, False, time.perf_counter() - start)
    w = np.ones_like(y) if weights is None else np.asarray(weights, dtype=float)
    with np.errstate(all="ignore"):
        u = np.power(_DECAY_GRID[:, None], x[None, :])            # (grid, points)
        s, su, suu = w.sum(), u @ w, (u * u) @ w
        sy, suy = float(w @ y), (u * y) @ w
        det = s * suu - su * su
        a = (suu * sy - su * suy) / det
        k = -(s * suy - su * sy) / det
        # k >= 1: at the bound, a is the weighted mean of y + u
        bound = ~(k >= 1.0)
        k = np.where(bound, 1.0, k)
        a = np.where(bound, (sy + su) / s, a)
        # a inside its range; k re-solved for the clipped a (and held at its bound)
        clipped = (a < lower[0]) | (a > upper[0])
        a = np.clip(a, lower[0], upper[0])
        k = np.where(clipped, np.maximum((a * su - suy) / suu, 1.0), k)
        residual = ((y[None, :] - a[:, None] + k[:, None] * u) ** 2) @ w
        residual = np.where(np.isfinite(residual) & (det > 1e-12 * s * s), residual, np.inf)
    best = int(np.argmin(residual))
    if not np.isfinite(residual[best]):
        return FitResult(DEFAULT_FAMILY, (float("inf"),) * 3, False, time.perf_counter() - start)
    b = 1.0 / _DECAY_GRID[best]
    c = float(np.log(k[best]) / np.log(b))
    rms = float(np.sqrt(residual[best] / s))
    return FitResult(DEFAULT_FAMILY, (float(a[best]), float(b), c), True, time.perf_counter() - start, rms)
