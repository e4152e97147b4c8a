"""Parametric learning-curve families: the shapes the engine extrapolates with.

Each family is a function ``f(x, *params)`` with parameter bounds and an initial
guess. ``x`` is the 0-based epoch index, as in the published PENGUIN logs, so the
families that need ``x > 0`` (logarithms, negative powers) use ``x + 1`` inside.
The default, ``a-b^(c-x)``, and its bounds are PENGUIN's; the others follow the
learning-curve literature (Domhan et al., IJCAI 2015) and are written for
increasing accuracy curves. Loss curves are fitted by the engine on ``-loss``
mirrored into the same shapes (see :mod:`a4nn.engine.prediction`).

Users add their own with :func:`register_family`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

INF = np.inf
CurveFunction = Callable[..., np.ndarray]


@dataclass(frozen=True)
class CurveFamily:
    """A named parametric curve with bounds and an initial guess.

    ``initial`` is either a fixed vector, a callable ``(x, y) -> vector`` (data-driven
    guess), or None, which lets scipy start from the middle of the bounds (PENGUIN's
    behaviour, kept for the faithful mode).
    """

    name: str
    function: CurveFunction
    param_names: tuple[str, ...]
    lower: tuple[float, ...]
    upper: tuple[float, ...]
    initial: Sequence[float] | Callable[[np.ndarray, np.ndarray], Sequence[float]] | None = None
    jacobian: Callable[..., np.ndarray] | None = field(default=None, compare=False)

    @property
    def n_params(self) -> int:
        return len(self.param_names)

    def guess(self, x: np.ndarray, y: np.ndarray) -> np.ndarray | None:
        if self.initial is None:
            return None
        values = self.initial(x, y) if callable(self.initial) else self.initial
        guess = np.asarray(values, dtype=float)
        # keep the guess strictly inside the bounds or scipy refuses it
        lower, upper = np.asarray(self.lower), np.asarray(self.upper)
        span = np.where(np.isfinite(upper - lower), (upper - lower) * 1e-6, 1e-6)
        return np.clip(guess, lower + span, upper - span)

    def __call__(self, x: np.ndarray | float, *params: float) -> np.ndarray:
        return self.function(np.asarray(x, dtype=float), *params)


FAMILIES: dict[str, CurveFamily] = {}


def register_family(family: CurveFamily) -> CurveFamily:
    """Make ``family`` available by name to engines, replay and the CLI."""
    if len(family.lower) != family.n_params or len(family.upper) != family.n_params:
        raise ValueError(f"family {family.name!r}: bounds must have {family.n_params} entries")
    FAMILIES[family.name] = family
    return family


def get_family(name: str | CurveFamily) -> CurveFamily:
    """Look a family up by name (a :class:`CurveFamily` passes through)."""
    if isinstance(name, CurveFamily):
        return name
    try:
        return FAMILIES[name]
    except KeyError:
        raise KeyError(f"unknown curve family {name!r}; known: {', '.join(sorted(FAMILIES))}") from None


def custom_family(name: str, function: CurveFunction, param_names: Sequence[str], lower: Sequence[float],
                  upper: Sequence[float], initial: Sequence[float] | None = None) -> CurveFamily:
    """A user-defined family (any callable ``f(x, *params)``), registered under ``name``."""
    return register_family(CurveFamily(name, function, tuple(param_names), tuple(lower), tuple(upper), initial))


def _tail(y: np.ndarray) -> float:
    return float(np.max(y[-3:])) if len(y) else 50.0


def _abc(x, a, b, c):
    with np.errstate(over="ignore", invalid="ignore"):
        return a - np.power(b, c - x)


def _abc_jacobian(x, a, b, c):
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        power = np.power(b, c - x)
        return np.stack([np.ones_like(x), -(c - x) * power / b, -power * np.log(b)], axis=1)


def _with_log(fn):
    def wrapped(x, *p):
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            return fn(np.asarray(x, dtype=float) + 1.0, *p)
    return wrapped


register_family(CurveFamily("a-b^(c-x)", _abc, ("a", "b", "c"), (0.5, 1.0, 0.0), (200.0, INF, INF), None, _abc_jacobian))
register_family(CurveFamily("pow2", _with_log(lambda x, a, b: a * np.power(x, b)), ("a", "b"), (0.0, 0.0), (200.0, 2.0),
                            lambda x, y: (max(y[0], 1.0), 0.1)))
register_family(CurveFamily("pow3", _with_log(lambda x, c, a, alpha: c - a * np.power(x, -alpha)), ("c", "a", "alpha"),
                            (0.0, -200.0, 0.0), (200.0, 200.0, 10.0), lambda x, y: (_tail(y), _tail(y) - y[0], 0.5)))
register_family(CurveFamily("log2", _with_log(lambda x, a, b: a * np.log(x) + b), ("a", "b"), (-200.0, -200.0),
                            (200.0, 200.0), lambda x, y: (1.0, y[0])))
register_family(CurveFamily("exp2", lambda x, a, b: a * (1.0 - np.exp(-b * (x + 1.0))), ("a", "b"), (0.0, 0.0),
                            (200.0, 10.0), lambda x, y: (_tail(y), 1.0)))
register_family(CurveFamily("exp3", lambda x, a, b, c: c - np.exp(np.clip(-a * x + b, -50, 50)), ("a", "b", "c"),
                            (0.0, -50.0, 0.0), (10.0, 50.0, 200.0), lambda x, y: (0.5, np.log(max(_tail(y) - y[0], 1e-3) + 1), _tail(y))))
register_family(CurveFamily("exp4", lambda x, a, b, c, alpha: c - np.exp(np.clip(-a * np.power(x + 1.0, alpha) + b, -50, 50)),
                            ("a", "b", "c", "alpha"), (0.0, -50.0, 0.0, 0.0), (10.0, 50.0, 200.0, 5.0),
                            lambda x, y: (0.5, np.log(max(_tail(y) - y[0], 1e-3) + 1), _tail(y), 1.0)))
register_family(CurveFamily("expp3", lambda x, a, b, c: c - np.exp(np.clip((x - b) * -a, -50, 50)), ("a", "b", "c"),
                            (0.0, -50.0, 0.0), (10.0, 50.0, 200.0), lambda x, y: (0.5, -np.log(max(_tail(y) - y[0], 1e-3) + 1) / 0.5, _tail(y))))
register_family(CurveFamily("expd3", lambda x, a, b, c: c - (c - a) * np.exp(-b * x), ("a", "b", "c"),
                            (-200.0, 0.0, 0.0), (200.0, 10.0, 200.0), lambda x, y: (y[0], 0.5, _tail(y))))
register_family(CurveFamily("vap3", _with_log(lambda x, a, b, c: np.exp(np.clip(a + b / x + c * np.log(x), -50, 50))),
                            ("a", "b", "c"), (-50.0, -50.0, -5.0), (50.0, 50.0, 5.0),
                            lambda x, y: (np.log(max(_tail(y), 1e-3)), -0.1, 0.0)))
register_family(CurveFamily("mmf4", _with_log(lambda x, alpha, beta, kappa, delta:
                                              alpha - (alpha - beta) / (1.0 + np.power(kappa * x, delta))),
                            ("alpha", "beta", "kappa", "delta"), (0.0, -200.0, 1e-6, 0.01), (200.0, 200.0, 100.0, 10.0),
                            lambda x, y: (_tail(y), y[0], 1.0, 1.0)))
register_family(CurveFamily("wbl4", _with_log(lambda x, alpha, beta, kappa, delta:
                                              alpha - (alpha - beta) * np.exp(-np.power(kappa * x, delta))),
                            ("alpha", "beta", "kappa", "delta"), (0.0, -200.0, 1e-6, 0.01), (200.0, 200.0, 100.0, 10.0),
                            lambda x, y: (_tail(y), y[0], 0.5, 1.0)))
register_family(CurveFamily("ilog2", _with_log(lambda x, c, a: c - a / np.log(x + 1.0)), ("c", "a"),
                            (0.0, -200.0), (200.0, 200.0), lambda x, y: (_tail(y), 1.0)))
register_family(CurveFamily("janoschek", _with_log(lambda x, alpha, beta, kappa, delta:
                                                   alpha - (alpha - beta) * np.exp(-kappa * np.power(x, delta))),
                            ("alpha", "beta", "kappa", "delta"), (0.0, -200.0, 1e-6, 0.01), (200.0, 200.0, 100.0, 10.0),
                            lambda x, y: (_tail(y), y[0], 0.5, 1.0)))

DEFAULT_FAMILY = "a-b^(c-x)"
