"""A population prior: what the networks already trained to the end say about the next one.

Inside one NAS run every network shares the data, the optimizer and the learning-rate
schedule, so the way an early, noisy curve turns into its final value is much the same
from network to network. A per-curve extrapolation cannot see this (on the published
A4NN curves the noise only collapses when the learning rate drops, around epoch 13-17);
a regression over the curves that did finish can. :class:`CurvePrior` keeps those
complete curves and, for every epoch count ``t``, a small ridge regression

    final ≈ w · [1, last, mean(last 3), max(last 3), max(all), min(last 3)]

plus its *leave-one-out* mean absolute error at ``t``, computed in closed form from the
hat matrix. The engine trusts the prior at ``t`` only when that held-out error is below
its tolerance, so the prior decides early where it is accurate (clean, high-signal runs)
and keeps out where it is not.

The prior is shared by the engines of one search (one per network) and fed by the
trainer with :meth:`CurvePrior.add_curve` whenever a network trains to the end. It is
pure numpy and cheap: one solve per epoch count, cached until a curve is added.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np


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


@dataclass
class CurvePrior:
    """Complete curves of one search and per-epoch-count ridge regressions to their final value.

    ``length`` is the number of epochs of a complete curve (``e_pred`` of the engine); the
    target is the value at the last of them. ``min_curves`` complete curves are needed
    before the prior answers at all; ``ridge`` regularizes the (few-curve) regression.
    ``metric`` only matters for naming; the regression is metric-agnostic.
    """

    length: int = 25
    min_curves: int = 10
    ridge: float = 1e-2
    curves: list[np.ndarray] = field(default_factory=list)
    _models: dict[int, _Model | None] = field(default_factory=dict, repr=False)

    def add_curve(self, values: Sequence[float]) -> bool:
        """Learn from one finished curve; returns False (and ignores it) when it is incomplete.

        A curve counts when it has ``length`` points and its last one is finite; NaN/inf
        points before that are tolerated (the features skip them).
        """
        y = np.asarray(list(values)[: self.length], dtype=float)
        if len(y) < self.length or not math.isfinite(y[-1]):
            return False
        self.curves.append(y)
        self._models.clear()
        return True

    @property
    def ready(self) -> bool:
        return len(self.curves) >= self.min_curves

    def _model(self, t: int) -> _Model | None:
        if t in self._models:
            return self._models[t]
        model = None
        rows = [(prior_features(c[:t]), c[-1]) for c in self.curves if np.isfinite(c[:t]).any()]
        if len(rows) >= self.min_curves:
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
            model = _Model(weights, float(np.mean(np.abs(loo))))
        self._models[t] = model
        return model

    def predict(self, values: Sequence[float]) -> tuple[float, float]:
        """(predicted final value, held-out MAE of the prior at this epoch count); (inf, inf) when unready."""
        t = min(len(values), self.length)
        if t == 0 or not self.ready or not np.isfinite(np.asarray(values, dtype=float)).any():
            return math.inf, math.inf
        model = self._model(t)
        if model is None:
            return math.inf, math.inf
        return float(prior_features(values) @ model.weights), model.loo_mae

    def settings(self) -> dict:
        return {"length": self.length, "min_curves": self.min_curves, "ridge": self.ridge}
