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

Two more things live here because the engines of a search already share this object:

* **support** (:meth:`CurvePrior.support`): how many complete curves ended near a
  prediction. Once the engine lets only promising networks train to the end, the
  complete curves are mostly good ones, and a regression over them reports a small
  held-out error while it is extrapolating to the poor networks it never saw finish
  (on the low beam this overestimated stopped networks by 2.4 points on average).
  The engine therefore trusts the prior only where enough complete curves support it.
* **the population's fitness** (:meth:`CurvePrior.record_fitness`,
  :meth:`CurvePrior.threshold`): the fitness every network of the search ended with,
  stopped or complete, so an engine can tell whether its network can still make the
  search's top-k (the engine's *contender* rule). Engines record their own network's
  fitness when they stop it and when :meth:`PredictionEngine.complete` is called;
  :meth:`CurvePrior.add_fitness` takes a fitness known from elsewhere (a resumed search).
  With the networks' costs (MFLOPs), :meth:`CurvePrior.dominators` counts who beats a
  network in both objectives, for the engine's Pareto-aware contender rule.
"""
from __future__ import annotations

import heapq
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
    targets: np.ndarray  # final values of the curves the model was fitted to
    centre: np.ndarray   # feature means and scales of those curves (the centring of the ridge)
    scale: np.ndarray
    gram_inv: np.ndarray
    max_leverage: float  # the largest hat value among them


@dataclass
class CurvePrior:
    """Complete curves of one search and per-epoch-count ridge regressions to their final value.

    ``length`` is the number of epochs of a complete curve (``e_pred`` of the engine); the
    target is the value at the last of them. ``min_curves`` complete curves are needed
    before the prior answers at all; ``ridge`` regularizes the (few-curve) regression.
    The regression is metric-agnostic; only :meth:`threshold` needs to know whether
    larger is better.

    ``fitness`` maps a network key (from :meth:`new_key`) to the fitness the search
    received for it, in the order the networks finished; ``costs`` maps a key to the
    network's cost (MFLOPs in a search) where the engine was told it, for
    :meth:`dominators`.
    """

    length: int = 25
    min_curves: int = 10
    ridge: float = 1e-2
    curves: list[np.ndarray] = field(default_factory=list)
    fitness: dict[int, float] = field(default_factory=dict)
    costs: dict[int, float] = field(default_factory=dict)
    _models: dict[int, _Model | None] = field(default_factory=dict, repr=False)
    _next_key: int = field(default=0, repr=False)

    def new_key(self) -> int:
        """A fresh key for one network's entry in :attr:`fitness`."""
        self._next_key += 1
        return self._next_key

    def add_curve(self, values: Sequence[float], key: int | None = None, cost: float | None = None) -> bool:
        """Learn from one finished curve; returns False (and ignores it) when it is incomplete.

        A curve counts when it has ``length`` points and its last one is finite; NaN/inf
        points before that are tolerated (the features skip them). Its last value is
        also the network's fitness (under ``key``, replacing what that key had).
        """
        y = np.asarray(list(values)[: self.length], dtype=float)
        if len(y) < self.length or not math.isfinite(y[-1]):
            return False
        self.curves.append(y)
        self._models.clear()
        self.record_fitness(self.new_key() if key is None else key, float(y[-1]), cost)
        return True

    # ------------------------------------------------------------ population
    def record_fitness(self, key: int, value: float, cost: float | None = None) -> None:
        """The search's fitness (and, if known, cost) for network ``key``; a later call replaces it."""
        if math.isfinite(value):
            self.fitness[key] = float(value)
        else:
            self.fitness.pop(key, None)
        if cost is not None and math.isfinite(cost):
            self.costs[key] = float(cost)

    def add_fitness(self, value: float, cost: float | None = None) -> int:
        """Record the fitness of a network this prior did not see (e.g. a stopped one, on resume)."""
        key = self.new_key()
        self.record_fitness(key, value, cost)
        return key

    def dominators(self, value: float, cost: float, maximize: bool = True, exclude: int | None = None) -> int:
        """How many recorded networks with a known cost dominate ``(value, cost)``.

        Dominate: at least as good a fitness at no more cost, strictly better in one of
        them (the order NSGA-II ranks by, with cost as its second objective). Networks
        whose cost was never recorded are not counted, so an unknown cost can only keep a
        network training, never stop it.
        """
        count = 0
        for key, other in self.fitness.items():
            other_cost = self.costs.get(key)
            if key == exclude or other_cost is None:
                continue
            better = other > value if maximize else other < value
            as_good = other >= value if maximize else other <= value
            if as_good and other_cost <= cost and (better or other_cost < cost):
                count += 1
        return count

    def threshold(self, k: int, maximize: bool = True, exclude: int | None = None) -> float:
        """The k-th best fitness recorded so far (-inf, or inf when minimizing, while fewer than k exist).

        A network whose final value cannot reach it is not going to be in the top ``k``
        of the networks seen so far; ``exclude`` leaves one network's own entry out.
        """
        values = [v for key, v in self.fitness.items() if key != exclude]
        if k < 1 or len(values) < k:
            return -math.inf if maximize else math.inf
        return float(heapq.nlargest(k, values)[-1] if maximize else heapq.nsmallest(k, values)[-1])

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
            model = _Model(weights, float(np.mean(np.abs(loo))), target, X[:, 1:].mean(axis=0), scale, gram_inv,
                           float(hat.max()))
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

    def inside(self, values: Sequence[float], slack: float = 1.0) -> bool:
        """Whether a prefix lies among the complete curves' prefixes (no extrapolation in feature space).

        Its leverage under the model at ``len(values)`` epochs must not exceed ``slack``
        times the largest leverage of the curves the model was fitted to. A prefix far
        outside them (say, at 80 % where every complete curve was near 95 % at that
        epoch) gets a prediction near the population mean with a small held-out error:
        exactly the case the held-out error cannot flag.
        """
        t = min(len(values), self.length)
        model = self._model(t) if self.ready and t > 0 and np.isfinite(np.asarray(values, dtype=float)).any() else None
        if model is None:
            return False
        z = np.concatenate([[1.0], (prior_features(values)[1:] - model.centre) / model.scale])
        return float(z @ model.gram_inv @ z) <= slack * model.max_leverage

    def support(self, t: int, value: float, width: float) -> int:
        """How many complete curves (of those the model at ``t`` epochs uses) ended within ±``width`` of ``value``."""
        model = self._model(min(t, self.length)) if self.ready and t > 0 else None
        if model is None or not math.isfinite(value) or not math.isfinite(width):
            return 0
        return int(np.count_nonzero(np.abs(model.targets - value) <= width))

    def settings(self) -> dict:
        return {"length": self.length, "min_curves": self.min_curves, "ridge": self.ridge}
