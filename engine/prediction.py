"""The prediction engine: observe an epoch, decide whether training can stop.

``PredictionEngine.observe(epoch, value)`` fits the curve seen so far, predicts the
fitness at ``e_pred`` and reports whether the last ``n`` predictions agree within
``r``. Two strategies are built in and selectable by name:

``penguin``
    Faithful re-implementation of PENGUIN as used in the published A4NN runs:
    x is the 0-based index of the observation, fits start once more than ``c_min``
    points exist, curve_fit starts from the middle of the bounds with
    finite-difference Jacobians, a failed fit predicts inf, and a network has
    converged when its last ``n`` predictions are finite, inside the fitness bounds
    and within ±``r`` of their median. It reproduces the logged predictions.

``a4nn`` (the default)
    Decides on evidence that held up on the published curves instead of on a single
    extrapolation (which, on curves as noisy as A4NN's before the learning rate drops,
    converges on wrong values: PENGUIN's fitness is off by 1.6-3.4 points on average).
    Three rules, the first that fires stops the network:

    * population prior (when a shared :class:`~a4nn.engine.prior.CurvePrior` is given):
      a regression learned from the networks of the same search that trained to the
      end predicts the final value; the engine stops once the last ``prior_n`` such
      predictions agree within ±``r`` and the prior's held-out error at this epoch
      is at most ``prior_tolerance``. Until the prior has ``min_curves`` complete
      curves, the engine never stops (the first networks are its training data,
      as Optuna's startup trials are). *Support guard*: the prior is believed only
      where at least ``prior_support`` complete curves ended within
      ±max(``prior_support_width`` × held-out error, ``r``) of its estimate (see
      below for why); ``prior_leverage_slack`` (opt-in) also refuses prefixes outside
      the complete curves' prefixes in feature space.
    * plateau: the last ``plateau_n`` observations lie within ±``plateau_r`` of their
      median; the fitness is the best of them (accuracy still creeps up).
    * never learns: every observation so far sits within ±``chance_tolerance`` of
      ``chance_level`` after ``c_min + n`` epochs; the network is dropped at chance.

    *Contender rule* (with a prior; ``contender_k`` = 10 by default, 0 turns it off):
    a prior or plateau stop is refused while the network could still place in the
    search's top ``contender_k``, i.e. while its optimistic final value, the trusted
    prior estimate plus ``contender_z`` × the prior's held-out error, reaches the k-th
    best fitness of the networks the search has finished so far (stopped ones count
    with the fitness they were given). Without a trusted estimate, or before k
    networks are known, the network cannot be ruled out and keeps training. Why: a
    NAS keeps and breeds its best networks, so their fitness must be exact, while a
    clearly worse network only needs a fitness good enough to stay out. On the
    published medium beam the true top-10 lie within 0.025 points (99.969-99.994 %,
    in steps of one validation image, 0.006 points), far below the prior's held-out
    error (about 0.2-0.8 points), so a stop rule without it picked 1 of the true
    top-10 (top-10 recall 0.1); with it the top-10 train to the end. Never-learns
    stops are exempt (a network at chance cannot be a useful contender). The
    population is the ``fitness`` of the shared prior: the engine records its own
    network's fitness when it stops it (and :meth:`complete` records the last value),
    so a search that already calls :meth:`complete` needs no extra wiring.
    *Support guard, why*: once only contenders train to the end, the prior learns from
    good networks only and reports a small held-out error while extrapolating to poor
    ones (on the low beam it overestimated networks it stopped at epoch 7 by 2.4
    points); requiring complete curves that ended near the estimate keeps it out there.
    *Hopeless rule* (opt-in, ``hopeless_tolerance``): a network whose optimistic final
    value cannot reach the k-th best stops on a supported prior estimate whose held-out
    error is up to ``hopeless_tolerance`` (coarser than ``prior_tolerance``); it saves
    epochs at the price of fitness error on the stopped networks.
    *Pareto contenders* (opt-in, ``pareto_contenders``, with the network's cost given
    by ``reset(cost=MFLOPs)``): "could still place" means "fewer than ``contender_k``
    finished networks dominate its optimistic value in (fitness, cost)", the order
    NSGA-II keeps networks in, instead of a top-k by fitness alone; with ``k = 1`` the
    current Pareto front (and so the most accurate network) is protected, while an
    expensive network that a cheaper one already beats may stop. A search turns it on
    (:func:`a4nn.search.engine_factory.search_knobs`); without a cost the top-k rule applies.

    The parametric fit (recency-weighted, warm-started from the previous epoch's
    parameters with an analytic Jacobian) still runs and its prediction is reported
    while no rule has fired, so the lineage keeps a prediction per epoch.

``none``
    Never stops; the prediction is the last value (the "train everything" baseline).

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
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from a4nn.engine.families import DEFAULT_FAMILY, CurveFamily, get_family
from a4nn.engine.fitting import FitResult, fit_curve
from a4nn.engine.prior import CurvePrior

STRATEGIES = ("penguin", "a4nn", "none")
DEFAULT_STRATEGY = "a4nn"


@dataclass(frozen=True)
class Decision:
    """What the engine says after one observation.

    ``stop``: the network may stop training (equal to ``converged`` for the built-in
    strategies); ``prediction``: the fitness at ``e_pred`` (inf while none is possible),
    which is what the NAS receives for a stopped network; ``params``: the fitted family
    parameters (None when the fit failed or did not run); ``fit_seconds``: time spent in
    curve fitting; ``function``: the family (or ``"prior"`` when the population prior
    decided); ``reason``: a short human-readable why, logged with the prediction.
    """

    stop: bool
    prediction: float
    converged: bool
    params: tuple[float, ...] | None
    fit_seconds: float
    function: str
    epoch: float
    reason: str = ""


@dataclass
class _Curve:
    epochs: list[float] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    predictions: list[float] = field(default_factory=list)
    prior_predictions: list[float] = field(default_factory=list)
    last_params: tuple[float, ...] | None = None


def within(values: list[float], r: float, low: float, high: float) -> bool:
    """PENGUIN's convergence test: finite, inside [low, high], within ±r of the median."""
    if any(not math.isfinite(v) or v < low or v > high for v in values):
        return False
    median = float(np.median(values))
    return all(median - r <= v <= median + r for v in values)


class PredictionEngine:
    """Per-network learning-curve predictor with an early-termination decision."""

    def __init__(
        self,
        function: str | CurveFamily = DEFAULT_FAMILY,
        c_min: int = 3,
        e_pred: float = 25,
        n: int = 3,
        r: float = 0.5,
        fitness_bounds: tuple[float, float] | None = None,
        strategy: str = DEFAULT_STRATEGY,
        metric: str = "accuracy",
        chance_level: float | None = 50.0,
        chance_tolerance: float = 2.0,
        recency: float = 0.85,
        prior: CurvePrior | None = None,
        prior_n: int = 2,
        prior_tolerance: float = 0.8,
        plateau_n: int = 4,
        plateau_r: float = 0.25,
        max_nfev: int = 10,
        prior_support: int = 3,
        prior_support_width: float = 3.0,
        contender_k: int = 10,
        contender_z: float = 1.5,
        hopeless_tolerance: float | None = None,
        prior_leverage_slack: float | None = None,
        pareto_contenders: bool = False,
    ):
        if strategy not in STRATEGIES:
            raise ValueError(f"unknown strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")
        if metric not in ("accuracy", "loss"):
            raise ValueError("metric must be 'accuracy' or 'loss'")
        if n < 1 or c_min < 0 or r < 0:
            raise ValueError("need n >= 1, c_min >= 0 and r >= 0")
        self.family = get_family(function)
        self.c_min = int(c_min)
        self.e_pred = float(e_pred)
        self.n = int(n)
        self.r = float(r)
        self.metric = metric
        default_bounds = (0.0, 100.0) if metric == "accuracy" else (0.0, math.inf)
        self.fitness_bounds = tuple(float(b) for b in (fitness_bounds or default_bounds))
        self.strategy = strategy
        self.chance_level = chance_level if metric == "accuracy" else None
        self.chance_tolerance = chance_tolerance
        self.recency = recency
        self.prior = prior
        self.prior_n = int(prior_n)
        self.prior_tolerance = float(prior_tolerance)
        self.plateau_n = int(plateau_n)
        self.plateau_r = float(plateau_r)
        self.max_nfev = int(max_nfev)
        self.prior_support = int(prior_support)
        self.prior_support_width = float(prior_support_width)
        self.contender_k = int(contender_k)
        self.contender_z = float(contender_z)
        self.prior_leverage_slack = None if prior_leverage_slack is None else float(prior_leverage_slack)
        self.hopeless_tolerance = None if hopeless_tolerance is None else float(hopeless_tolerance)
        self.pareto_contenders = bool(pareto_contenders)
        self._curve = _Curve()
        self._key: int | None = None  # this network's entry in the prior's population
        self._cost: float | None = None  # this network's cost (MFLOPs), when the caller knows it

    # ----------------------------------------------------------------- settings
    def settings(self) -> dict[str, Any]:
        """The configuration as stored in ``engine_configs``: ``Recorder.register_engine_config(**settings())``.

        Everything that changes a decision is in here (``extra`` holds the strategy and its
        knobs), so two searches share an engine_configs row only when they decided alike.
        """
        extra: dict[str, Any] = {"strategy": self.strategy, "metric": self.metric}
        if self.strategy == "a4nn":
            extra.update({"chance_level": self.chance_level, "chance_tolerance": self.chance_tolerance,
                          "recency": self.recency, "plateau_n": self.plateau_n, "plateau_r": self.plateau_r,
                          "prior": None if self.prior is None else {
                              **self.prior.settings(), "n": self.prior_n, "tolerance": self.prior_tolerance,
                              "support": self.prior_support, "support_width": self.prior_support_width,
                              "leverage_slack": self.prior_leverage_slack,
                              "contender_k": self.contender_k, "contender_z": self.contender_z,
                              "pareto_contenders": self.pareto_contenders,
                              "hopeless_tolerance": self.hopeless_tolerance}})
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

        The cost is what the NAS minimises beside the error; with ``pareto_contenders`` it
        makes the contender rule ask whether the network could still join the search's
        Pareto front rather than its top-k by fitness alone.
        """
        self._curve = _Curve()
        self._key = None
        self._cost = float(cost) if cost is not None and math.isfinite(float(cost)) else None

    @property
    def values(self) -> list[float]:
        """The finite observations of the current curve, in epoch order."""
        return list(self._curve.values)

    def complete(self) -> bool:
        """Report that the current network trained to the end: its curve teaches the prior.

        Call it before :meth:`reset` for every network that was *not* stopped. Returns
        whether the prior took the curve (it needs ``prior.length`` finite points). The
        last value becomes the network's fitness in the prior's population, replacing a
        fitness the engine recorded when it said stop (a stop at the last epoch is ignored
        by the search, so the network did complete).
        """
        if self.prior is None:
            return False
        return self.prior.add_curve(self._curve.values, key=self._population_key(), cost=self._cost)

    @property
    def predictions(self) -> list[float]:
        return list(self._curve.predictions)

    # ------------------------------------------------------------------ observe
    def observe(self, epoch: float, value: float) -> Decision:
        """Add one measurement and decide whether the network may stop training."""
        curve = self._curve
        epoch = float(epoch)
        if curve.epochs and epoch <= curve.epochs[-1]:
            keep = int(np.searchsorted(np.asarray(curve.epochs), epoch, side="left"))
            del curve.epochs[keep:], curve.values[keep:], curve.predictions[keep:]
            curve.prior_predictions.clear()  # agreement must be rebuilt on the corrected curve
        value = float(value) if value is not None else math.nan
        if not math.isfinite(value):
            curve.predictions.append(math.inf)
            curve.prior_predictions.append(math.inf)
            return Decision(False, math.inf, False, None, 0.0, self.family.name, epoch, "non-finite value ignored")
        curve.epochs.append(epoch)
        curve.values.append(value)
        if self.strategy == "none":
            return Decision(False, value, False, None, 0.0, "last-value", epoch, "engine disabled")
        return self._decide(epoch)

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

    def _decide(self, epoch: float) -> Decision:
        curve = self._curve
        if len(curve.values) <= self.c_min:
            curve.predictions.append(math.inf)
            return Decision(False, math.inf, False, None, 0.0, self.family.name, epoch, "fewer than c_min+1 points")
        if self.strategy == "a4nn":
            early = self._never_learns(epoch)
            if early is not None:
                return early
        fit = self._fit()
        prediction = self._back(fit.predict(self.family, self.e_pred))
        reason = "fit" if fit.ok else "fit failed"
        params = fit.params if fit.ok else None
        curve.predictions.append(prediction)
        low, high = self.fitness_bounds
        if self.strategy == "penguin":
            recent = curve.predictions[-self.n:]
            converged = len(recent) == self.n and within(recent, self.r, low, high)
            return Decision(converged, prediction, converged, params, fit.seconds, self.family.name, epoch, reason)
        if fit.ok:
            curve.last_params = fit.params
        # a4nn: a prior that is not trained yet forbids stopping (this network becomes training data)
        if self.prior is not None and not self.prior.ready:
            return Decision(False, prediction, False, params, fit.seconds, self.family.name, epoch,
                            f"{reason}; prior warming up ({len(self.prior.curves)}/{self.prior.min_curves} curves)")
        stop: tuple[float, str, str] | None = None  # (fitness, function, reason) of the first rule that fires
        estimate, coarse, held_out = math.inf, math.inf, math.inf  # the prior's estimate: trusted / supported only
        if self.prior is not None and len(curve.values) >= self.c_min + self.n:
            # the regression is metric-agnostic: it maps raw prefixes to raw final values
            guess, held_out = self.prior.predict(curve.values)
            supported = math.isfinite(guess) and (self.prior_support < 1 or (
                self.prior.support(len(curve.values), guess, max(self.prior_support_width * held_out, self.r))
                >= self.prior_support)) and (
                self.prior_leverage_slack is None or self.prior.inside(curve.values, self.prior_leverage_slack))
            if supported:
                coarse = min(max(guess, low), high)
            guess = guess if supported and held_out <= self.prior_tolerance else math.inf
            curve.prior_predictions.append(guess)
            recent = curve.prior_predictions[-self.prior_n:]
            if math.isfinite(guess):
                guess = min(max(guess, low), high)
                recent[-1] = guess
                estimate = guess
            if len(recent) == self.prior_n and within(recent, self.r, low, high):
                stop = (guess, "prior", f"prior agrees (held-out MAE {held_out:.3f})")
        if stop is None and len(curve.values) >= self.plateau_n:
            tail = [float(v) for v in curve.values[-self.plateau_n:]]
            if within(tail, self.plateau_r, low, high):
                stop = (max(tail) if self.metric == "accuracy" else min(tail), self.family.name, "plateau")
        if stop is not None:
            contender = self._contender(estimate, held_out)
            if contender is not None:
                return Decision(False, prediction, False, params, fit.seconds, self.family.name, epoch,
                                f"{stop[2]}, but {contender}")
        elif (self.hopeless_tolerance is not None and self.contender_k >= 1 and math.isfinite(coarse)
              and held_out <= self.hopeless_tolerance and self._contender(coarse, held_out) is None):
            stop = (coarse, "prior", f"cannot reach {self._goal()} (held-out MAE {held_out:.3f})")
        if stop is not None:
            fitness, function, why = stop
            curve.predictions[-1] = fitness
            self._record(fitness)
            return Decision(True, fitness, True, params, fit.seconds, function, epoch, why)
        return Decision(False, prediction, False, params, fit.seconds, self.family.name, epoch, reason)

    def _pareto(self) -> bool:
        """Whether the contender rule ranks in (fitness, cost): asked for and the cost is known."""
        return self.pareto_contenders and self._cost is not None

    def _contender(self, estimate: float, held_out: float) -> str | None:
        """Why the network must keep training although a rule would stop it (None: it may stop).

        A network is a contender when its optimistic final value, the prior's estimate plus
        ``contender_z`` times the prior's held-out error at this epoch, reaches the k-th best
        fitness of the networks the search has finished so far. Without a trusted estimate
        the engine cannot rule the network out, so it is a contender too. Fewer than k
        finished networks make everyone a contender.

        With Pareto contenders the optimistic value is ranked in both objectives instead:
        the network is a contender while fewer than k finished networks dominate it. A NAS
        with a cost objective keeps its non-dominated networks (NSGA-II's first fronts), not
        its k most accurate, so a network that ``k`` networks already beat in accuracy *and*
        cost cannot join the front, while a cheap one needs only to beat the cheaper ones.
        ``k = 1`` protects the current Pareto front (the most accurate network is on it).
        """
        if self.prior is None or self.contender_k < 1:
            return None
        maximize = self.metric == "accuracy"
        pareto = self._pareto()
        threshold = math.nan if pareto else self.prior.threshold(self.contender_k, maximize, exclude=self._key)
        if not pareto and not math.isfinite(threshold):
            return f"top-{self.contender_k} not known yet"
        if not (math.isfinite(estimate) and math.isfinite(held_out)):
            known = f"{self._cost:.3f} MFLOPs" if pareto else f"k-th best {threshold:.3f}"
            return f"no trusted prior estimate to rule out {self._goal()} ({known})"
        margin = self.contender_z * held_out
        optimistic = estimate + margin if maximize else estimate - margin
        if pareto:
            ahead = self.prior.dominators(optimistic, self._cost, maximize, exclude=self._key)
            if ahead < self.contender_k:
                return (f"Pareto contender (prior {estimate:.3f} ± {margin:.3f} at {self._cost:.3f} MFLOPs is "
                        f"dominated by {ahead} < {self.contender_k} networks)")
        elif (optimistic >= threshold) if maximize else (optimistic <= threshold):
            return (f"contender for the top-{self.contender_k} (prior {estimate:.3f} ± {margin:.3f} "
                    f"reaches the k-th best {threshold:.3f})")
        return None

    def _goal(self) -> str:
        """What a contender could still reach, for the decisions' reasons."""
        return "the Pareto front" if self._pareto() else f"the top-{self.contender_k}"

    def _record(self, fitness: float) -> None:
        """Tell the search's population which fitness this network ends with."""
        if self.prior is not None:
            self.prior.record_fitness(self._population_key(), fitness, self._cost)

    def _population_key(self) -> int:
        """This network's key in the prior's population, taken on first use (needs a prior)."""
        if self._key is None:
            self._key = self.prior.new_key()
        return self._key

    def _fit(self) -> FitResult:
        x, y = self._x(), self._y()
        if self.strategy == "penguin":
            return fit_curve(self.family, x, y, use_jacobian=False)
        # a4nn: the decision does not hinge on the fit, so its cost is capped (latency budget)
        weights = np.power(self.recency, (len(x) - 1 - np.arange(len(x))))
        initial = self._warm_start()
        if initial is None:
            initial = self.family.guess(x, y)
        if initial is None:  # families without a data-driven guess: start inside the bounds
            lower, upper = np.asarray(self.family.lower), np.asarray(self.family.upper)
            initial = np.where(np.isfinite(upper), (lower + upper) / 2, lower + 1.0)
            if self.family.name == DEFAULT_FAMILY:
                initial = np.array([min(max(float(np.max(y[-3:])), 1.0), 199.0), 1.5, 1.0])
        return fit_curve(self.family, x, y, weights=weights, initial=initial, max_nfev=self.max_nfev)

    def _warm_start(self) -> np.ndarray | None:
        params = self._curve.last_params
        if params is None:
            return None
        lower, upper = np.asarray(self.family.lower), np.asarray(self.family.upper)
        margin = np.where(np.isfinite(upper - lower), (upper - lower) * 1e-6, 1e-6)
        return np.clip(np.asarray(params), lower + margin, upper - margin)

    def _never_learns(self, epoch: float) -> Decision | None:
        if self.chance_level is None:
            return None
        values = self._curve.values
        if len(values) < self.c_min + self.n:
            return None
        if all(abs(v - self.chance_level) <= self.chance_tolerance for v in values):
            prediction = float(np.mean(values))
            self._curve.predictions.append(prediction)
            self._record(prediction)
            return Decision(True, prediction, True, None, 0.0, self.family.name, epoch, "never learns (chance level)")
        return None
