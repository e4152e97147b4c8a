"""The population prior: a regression from an early curve to its final value, learned from finished curves.

Inside one NAS run every network shares the data, the optimizer and the learning-rate
schedule, so the way an early, noisy curve turns into its final value is much the same
from network to network. A per-curve extrapolation cannot see this (on the published
A4NN curves the noise only collapses when the learning rate drops, around epoch 13-17);
a regression over the curves that did finish can. :class:`CurvePrior` fits, for every
epoch count ``t``, a small ridge regression over the complete curves of a
:class:`~a4nn.engine.population.Population`

    final ≈ w · [1, last, mean(last 3), max(last 3), max(all), min(last 3)]

plus its *leave-one-out* mean absolute error at ``t``, computed in closed form from the
hat matrix. That held-out error is the error the engine expects when it hands the
estimate to the NAS, so rules trust the prior only where it is small.

The regression holds settings only; the curves live in the population, which the
engines of a search share, and the fitted models are cached there until the next
curve completes. :meth:`CurvePrior.support` counts complete curves that ended near an
estimate: once the engine lets mostly promising networks finish, a regression over them
reports a small held-out error while extrapolating to poor networks it never saw finish
(on the low beam this overestimated stopped networks by 2.4 points on average), so the
engine believes it only where enough complete curves support it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from a4nn.engine.population import Population


def prior_features(values: Sequence[float]) -> np.ndarray:
    """Feature vector of a curve prefix (needs at least one finite point)."""
    y = np.asarray(values, dtype=float)
    y = y[np.isfinite(y)]
    tail = y[-3:]
    return np.array([1.0, y[-1], tail.mean(), tail.max(), y.max(), tail.min()])


@dataclass
class _Model:
    weights: np.ndarray
    loo_mae: float
    targets: np.ndarray  # final values of the curves the model was fitted to
    centre: np.ndarray   # feature means and scales of those curves (the centring of the ridge)
    scale: np.ndarray
    gram_inv: np.ndarray
    max_leverage: float  # the largest hat value among them


@dataclass(frozen=True)
class CurvePrior:
    """Per-epoch-count ridge regressions from a curve prefix to the final value of a population's curves.

    ``min_curves`` complete curves are needed before it answers at all; ``ridge``
    regularizes the (few-curve) regression. Metric-agnostic: it maps raw prefixes to raw
    final values.
    """

    min_curves: int = 10
    ridge: float = 1e-2

    def ready(self, population: Population | None) -> bool:
        return population is not None and len(population.curves) >= self.min_curves

    def _model(self, population: Population, t: int) -> _Model | None:
        return population.memo(("prior-model", self.min_curves, self.ridge, t), lambda: self._fit(population, t))

    def _fit(self, population: Population, t: int) -> _Model | None:
        rows = [(prior_features(c[:t]), c[-1]) for c in population.curves if np.isfinite(c[:t]).any()]
        if len(rows) < self.min_curves:
            return None
        X = np.stack([r[0] for r in rows])
        target = np.array([r[1] for r in rows])
        # centre features so the ridge penalty does not shrink the level of the curve
        scale = np.maximum(X[:, 1:].std(axis=0), 1e-6)
        Z = np.column_stack([np.ones(len(X)), (X[:, 1:] - X[:, 1:].mean(axis=0)) / scale])
        penalty = self.ridge * len(X) * np.diag([0.0] + [1.0] * (Z.shape[1] - 1))
        gram_inv = np.linalg.pinv(Z.T @ Z + penalty)
        beta = gram_inv @ Z.T @ target
        hat = np.einsum("ij,jk,ik->i", Z, gram_inv, Z)
        residual = target - Z @ beta
        loo = residual / np.maximum(1.0 - hat, 1e-3)
        # fold the centring back into plain weights on the raw features
        weights = np.empty(X.shape[1])
        weights[1:] = beta[1:] / scale
        weights[0] = beta[0] - float(weights[1:] @ X[:, 1:].mean(axis=0))
        return _Model(weights, float(np.mean(np.abs(loo))), target, X[:, 1:].mean(axis=0), scale, gram_inv,
                      float(hat.max()))

    def _usable(self, population: Population | None, values: Sequence[float]) -> _Model | None:
        t = min(len(values), population.length) if population is not None else 0
        if t == 0 or not self.ready(population) or not np.isfinite(np.asarray(values, dtype=float)).any():
            return None
        return self._model(population, t)

    def predict(self, population: Population | None, values: Sequence[float]) -> tuple[float, float]:
        """(predicted final value, held-out MAE at this epoch count); (inf, inf) when not ready."""
        model = self._usable(population, values)
        if model is None:
            return math.inf, math.inf
        return float(prior_features(values) @ model.weights), model.loo_mae

    def inside(self, population: Population | None, values: Sequence[float], slack: float = 1.0) -> bool:
        """Whether a prefix lies among the complete curves' prefixes (no extrapolation in feature space).

        Its leverage under the model at ``len(values)`` epochs must not exceed ``slack``
        times the largest leverage of the curves the model was fitted to: a prefix far
        outside them gets a prediction near the population mean with a small held-out
        error, exactly the case the held-out error cannot flag.
        """
        model = self._usable(population, values)
        if model is None:
            return False
        z = np.concatenate([[1.0], (prior_features(values)[1:] - model.centre) / model.scale])
        return float(z @ model.gram_inv @ z) <= slack * model.max_leverage

    def support(self, population: Population | None, t: int, value: float, width: float) -> int:
        """How many complete curves (of those the model at ``t`` epochs uses) ended within ±``width`` of ``value``."""
        if population is None or t < 1 or not math.isfinite(value) or not math.isfinite(width):
            return 0
        model = self._model(population, min(t, population.length)) if self.ready(population) else None
        if model is None:
            return 0
        return int(np.count_nonzero(np.abs(model.targets - value) <= width))

    def settings(self) -> dict:
        return {"min_curves": self.min_curves, "ridge": self.ridge}
