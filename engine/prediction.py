"""The prediction engine: observe an epoch, decide whether training can stop.

``PredictionEngine.observe(epoch, value)`` extrapolates the curve seen so far to
``e_pred`` epochs and asks its strategy's rules whether the network may stop
(:mod:`a4nn.engine.strategies` composes them, :mod:`a4nn.engine.rules` defines them).
Built-in strategies, selectable by name:

``penguin``
    Faithful re-implementation of PENGUIN as used in the published A4NN runs:
    x is the 0-based index of the observation, fits start once more than ``c_min``
    points exist, curve_fit starts from the middle of the bounds with
    finite-difference Jacobians, a failed fit predicts inf, and a network has
    converged when its last ``n`` predictions are finite, inside the fitness bounds
    and within ±``r`` of their median. It reproduces the logged predictions.

``a4nn`` (the default)
    The self-calibrating composition described in :mod:`a4nn.engine.strategies`:
    never-learns, population prior, hopeless, calibrated extrapolation agreement, plateau, stale;
    contender vetoes keep the networks a NAS keeps training to the end and an error
    budget with a safety factor learned on the search limits the fitness error. The
    population (:class:`~a4nn.engine.population.Population`) is shared by the engines
    of one search; without one the per-curve rules run with their stated settings.

``none``
    Never stops; the prediction is the last value (the "train everything" baseline).

The parametric fit of ``a4nn`` (recency-weighted; for the default family a closed-form
variable-projection fit over a grid of decays, :func:`~a4nn.engine.fitting.fit_saturating_exponential`;
for other families warm-started from the previous epoch's parameters with an analytic
Jacobian and a capped number of evaluations) runs at every observation, so the
lineage keeps a prediction per epoch and the finished curves carry the extrapolations
the extrapolation rule calibrates on.

Bad input is handled, not raised: a NaN/inf value is ignored for fitting (the
decision says so in ``reason``); an epoch that repeats or goes back replaces the
points from that epoch on (a retried report); fewer than ``c_min + 1`` points
give prediction inf; values outside the fitness bounds are fitted as measured but a
prediction outside the bounds never counts as converged. Loss curves
(``metric="loss"``) are mirrored into increasing curves, fitted, and mirrored back;
their bounds default to [0, inf).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from a4nn.engine.families import DEFAULT_FAMILY, CurveFamily, get_family
from a4nn.engine.fitting import FitResult, fit_curve, fit_saturating_exponential
from a4nn.engine.population import Population
from a4nn.engine.rules import Curve, Verdict, VerdictKind, within
from a4nn.engine.strategies import DEFAULT_STRATEGY, STRATEGIES, Strategy, build

__all__ = ["DEFAULT_STRATEGY", "STRATEGIES", "Decision", "PredictionEngine", "within"]


@dataclass(frozen=True)
class Decision:
    """What the engine says after one observation.

    ``stop``: the network may stop training; ``prediction``: the fitness at ``e_pred``
    (inf while none is possible), which is what the NAS receives for a stopped network;
    ``params``: the fitted family parameters (None when the fit failed or did not run);
    ``fit_seconds``: time spent in curve fitting; ``function``: the family (or ``"prior"``
    when the population prior decided); ``reason``: a short why for people, logged with the
    prediction; ``kind`` and ``rule``: the verdict that stopped the network (or, when it
    keeps training, the veto that overruled a stop); ``predicted``: whether this
    observation produced a prediction worth recording (False before ``c_min`` points, for an
    ignored value and with the ``none`` strategy).
    """

    stop: bool
    prediction: float
    converged: bool
    params: tuple[float, ...] | None
    fit_seconds: float
    function: str
    epoch: float
    reason: str = ""
    kind: VerdictKind | None = None
    rule: str | None = None
    predicted: bool = True


class PredictionEngine:
    """Per-network learning-curve predictor with an early-termination decision.

    ``strategy``: a name (``penguin``, ``a4nn``, ``none``; built with this engine's ``n``,
    ``r`` and ``c_min``) or a :class:`~a4nn.engine.strategies.Strategy`; ``population``: the
    search's shared :class:`~a4nn.engine.population.Population` (rules that learn from
    finished networks and the contender vetoes need it); ``recency`` and ``max_nfev``: the
    a4nn fit's weighting and work cap.
    """

    def __init__(self, function: str | CurveFamily = DEFAULT_FAMILY, c_min: int = 3, e_pred: float = 25, n: int = 3,
                 r: float = 0.5, fitness_bounds: tuple[float, float] | None = None,
                 strategy: str | Strategy = DEFAULT_STRATEGY, metric: str = "accuracy",
                 population: Population | None = None, recency: float = 0.85, max_nfev: int = 10):
        if metric not in ("accuracy", "loss"):
            raise ValueError("metric must be 'accuracy' or 'loss'")
        if n < 1 or c_min < 0 or r < 0:
            raise ValueError("need n >= 1, c_min >= 0 and r >= 0")
        self.strategy = strategy if isinstance(strategy, Strategy) else build(strategy, n=n, r=r, c_min=c_min)
        self.family = get_family(function)
        self.c_min, self.e_pred, self.n, self.r = int(c_min), float(e_pred), int(n), float(r)
        self.metric = metric
        default_bounds = (0.0, 100.0) if metric == "accuracy" else (0.0, math.inf)
        self.fitness_bounds = tuple(float(b) for b in (fitness_bounds or default_bounds))
        self.population = population
        self.recency = recency
        self.max_nfev = int(max_nfev)
        self._cost: float | None = None
        self._curve = self._new_curve()
        self._last_params: tuple[float, ...] | None = None

    def _new_curve(self) -> Curve:
        return Curve(length=int(round(self.e_pred)), maximize=self.metric == "accuracy",
                     bounds=self.fitness_bounds, cost=self._cost)  # type: ignore[arg-type]

    # ----------------------------------------------------------------- settings
    def settings(self) -> dict[str, Any]:
        """The configuration as stored in ``engine_configs``: ``Recorder.register_engine_config(**settings())``.

        Everything that changes a decision is in here (``extra`` holds the strategy's
        composition and every rule's settings), so two searches share an engine_configs row
        only when they decided alike.
        """
        extra: dict[str, Any] = {**self.strategy.settings(), "metric": self.metric}
        if self.strategy.fit == "a4nn":
            extra.update({"recency": self.recency, "max_nfev": self.max_nfev})
        return {
            "function": self.family.name, "c_min": self.c_min, "e_pred": self.e_pred, "n": self.n, "r": self.r,
            "bounds": [b if math.isfinite(b) else None for b in self.fitness_bounds],
            "extra": extra,
        }

    @property
    def config(self) -> dict[str, Any]:
        """Alias of :meth:`settings` for callers that expect a property."""
        return self.settings()

    def reset(self, cost: float | None = None) -> None:
        """Forget the current curve (start the next network); ``cost``: its MFLOPs, if known.

        The cost is what the NAS minimises beside the error; a Pareto contender veto asks
        whether the network could still join the search's front rather than its top-k.
        """
        self._cost = float(cost) if cost is not None and math.isfinite(float(cost)) else None
        self._curve = self._new_curve()
        self._last_params = None

    @property
    def _key(self) -> int | None:
        """This network's key in the population (taken when its fitness is first recorded)."""
        return self._curve.key

    @property
    def values(self) -> list[float]:
        """The finite observations of the current curve, in epoch order."""
        return list(self._curve.values)

    @property
    def predictions(self) -> list[float]:
        """The extrapolation to ``e_pred`` after each finite observation (inf where none)."""
        return list(self._curve.predictions)

    def complete(self) -> bool:
        """Report that the current network trained to the end: its curve joins the population.

        Call it before :meth:`reset` for every network that was *not* stopped. Returns
        whether the population took the curve (it needs ``e_pred`` finite points). The last
        value becomes the network's fitness, replacing a fitness the engine recorded when it
        said stop (a stop at the last epoch is ignored by the search, so the network did
        complete).
        """
        if self.population is None:
            return False
        curve = self._curve
        taken = self.population.add_curve(curve.values, key=self._population_key(), cost=self._cost,
                                          trace=curve.predictions, sample=not curve.selected)
        would_stop = curve.memory.get("would-stop")
        if taken and would_stop:
            fitness, expected = would_stop
            self.population.add_check(abs(self.population.curves[-1][-1] - fitness), expected)
        return taken

    # ------------------------------------------------------------------ observe
    def observe(self, epoch: float, value: float) -> Decision:
        """Add one measurement and decide whether the network may stop training."""
        curve = self._curve
        epoch = float(epoch)
        if curve.epochs and epoch <= curve.epochs[-1]:
            keep = int(np.searchsorted(np.asarray(curve.epochs), epoch, side="left"))
            del curve.epochs[keep:], curve.values[keep:], curve.predictions[keep:]
            selected = curve.memory.get("selected")
            curve.memory.clear()  # agreement must be rebuilt on the corrected curve
            if selected:
                curve.memory["selected"] = selected
        value = float(value) if value is not None else math.nan
        if not math.isfinite(value):
            return Decision(False, math.inf, False, None, 0.0, self.family.name, epoch, "non-finite value ignored",
                            predicted=False)
        curve.epochs.append(epoch)
        curve.values.append(value)
        if self.strategy.fit is None:
            curve.predictions.append(value)
            return Decision(False, value, False, None, 0.0, "last-value", epoch, "engine disabled", predicted=False)
        if len(curve.values) <= self.c_min:
            curve.predictions.append(math.inf)
            return Decision(False, math.inf, False, None, 0.0, self.family.name, epoch, "fewer than c_min+1 points",
                            predicted=False)
        fit = self._fit()
        prediction = self._back(fit.predict(self.family, self.e_pred))
        params = fit.params if fit.ok else None
        if fit.ok and self.strategy.fit == "a4nn":
            self._last_params = fit.params
        curve.predictions.append(prediction)
        reason = "fit" if fit.ok else "fit failed"
        overruled: Verdict | None = None
        for rule in self.strategy.stops:
            verdict = rule.decide(curve, self.population)
            if verdict is None:
                continue
            if verdict.kind is VerdictKind.STOP:
                veto = self._veto(verdict)
                if veto is not None:
                    overruled = overruled or veto
                    reason = f"{verdict.reason}, but {veto.reason}"
                    continue
            fitness = verdict.fitness
            self._record(fitness, verdict.error)
            return Decision(True, fitness, True, params, fit.seconds, verdict.function or self.family.name, epoch,
                            verdict.reason, verdict.kind, verdict.rule)
        return Decision(False, prediction, False, params, fit.seconds, self.family.name, epoch, reason,
                        overruled.kind if overruled else None, overruled.rule if overruled else None)

    def _veto(self, verdict: Verdict) -> Verdict | None:
        curve = self._curve
        curve.proposal = verdict
        try:
            for veto in self.strategy.vetoes:
                answer = veto.decide(curve, self.population)
                if answer is not None and answer.kind is VerdictKind.KEEP:
                    if getattr(veto, "fair", False) and "would-stop" not in curve.memory:
                        # the first stop a fair veto overruled: checked against the final value on complete()
                        curve.memory["would-stop"] = [verdict.fitness, verdict.error]
                    return answer
            return None
        finally:
            curve.proposal = None

    def _x(self) -> np.ndarray:
        epochs = np.asarray(self._curve.epochs)
        return epochs - epochs[0]

    def _loss_offset(self) -> float:
        # a fixed mirror point (from the first loss) turns a decreasing loss into an
        # increasing curve inside the families' bounds; fixed so predictions stay comparable
        return 2.0 * abs(self._curve.values[0]) + 1.0

    def _y(self) -> np.ndarray:
        values = np.asarray(self._curve.values)
        return values if self.metric == "accuracy" else self._loss_offset() - values

    def _back(self, prediction: float) -> float:
        if self.metric == "accuracy" or not math.isfinite(prediction):
            return prediction
        return self._loss_offset() - prediction

    def _record(self, fitness: float, error: float = 0.0) -> None:
        """Tell the search's population which fitness this network ends with (and the error expected of it)."""
        if self.population is not None:
            self.population.record_fitness(self._population_key(), fitness, self._cost, error)

    def _population_key(self) -> int:
        """This network's key in the population, taken on first use (needs a population)."""
        if self._curve.key is None:
            self._curve.key = self.population.new_key()
        return self._curve.key

    def _fit(self) -> FitResult:
        x, y = self._x(), self._y()
        if self.strategy.fit == "penguin":
            return fit_curve(self.family, x, y, use_jacobian=False)
        # a4nn: the decision does not hinge on the fit, so its cost is capped (latency budget)
        weights = np.power(self.recency, (len(x) - 1 - np.arange(len(x))))
        if self.family.name == DEFAULT_FAMILY:  # closed form per decay: exact on its grid, ~0.3 ms
            return fit_saturating_exponential(x, y, weights, self.family.lower, self.family.upper)
        initial = self._warm_start()
        if initial is None:
            initial = self.family.guess(x, y)
        if initial is None:  # families without a data-driven guess: start inside the bounds
            lower, upper = np.asarray(self.family.lower), np.asarray(self.family.upper)
            initial = np.where(np.isfinite(upper), (lower + upper) / 2, lower + 1.0)
        return fit_curve(self.family, x, y, weights=weights, initial=initial, max_nfev=self.max_nfev)

    def _warm_start(self) -> np.ndarray | None:
        params = self._last_params
        if params is None:
            return None
        lower, upper = np.asarray(self.family.lower), np.asarray(self.family.upper)
        margin = np.where(np.isfinite(upper - lower), (upper - lower) * 1e-6, 1e-6)
        return np.clip(np.asarray(params), lower + margin, upper - margin)
