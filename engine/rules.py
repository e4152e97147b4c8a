"""Stop rules and vetoes: the pieces an engine strategy is composed of (in the spirit of Optuna's pruners).

Every piece is a small class with its own frozen settings dataclass and one method,
``decide(curve, population) -> Verdict | None``:

* a **stop rule** answers with a :class:`Verdict` of kind ``STOP`` (a fitness meant as
  the network's final value, which a veto may overrule) or ``DROP`` (the network is out
  of the race, e.g. it never learns; no veto applies), or None when it has nothing to say;
* a **veto** is asked about the stop a rule proposed (``curve.proposal``) and answers
  ``KEEP`` (keep training) or None (no objection).

The engine asks the stop rules in order; the first verdict that no veto overrules
stops the network. A verdict carries the fitness handed to the NAS, the error the rule
expects of it (calibrated on the population's finished curves where the rule can be
calibrated, inf when unknown), optionally the best final value it thinks still possible,
and a reason for people (logs, the lineage's predictions); code never reads the reason.

Self-calibration: rules that decide on a curve's own shape (plateau, extrapolation
agreement) do not carry fixed tolerances in a search. Once ``min_curves`` networks of
the population trained to the end, they replay a small grid of settings over those
complete curves and keep the one that saves the most epochs while the fitness it would
have handed back stays within ``budget`` points of the final value on average; that
mean error is what the verdict reports. Without a population (a lone engine) they run
with their stated settings.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Any, Protocol, Sequence

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from a4nn.engine.population import Population
from a4nn.engine.prior import CurvePrior


class VerdictKind(Enum):
    STOP = "stop"   # stop with a fitness meant as the final value; vetoes may overrule it
    DROP = "drop"   # stop: the network is out of the race whatever its final value; no veto
    KEEP = "keep"   # a veto: keep training


@dataclass(frozen=True)
class Verdict:
    """One rule's answer. ``reason`` is for people only."""

    kind: VerdictKind
    rule: str
    fitness: float = math.nan
    error: float = math.inf          # expected |fitness - final value|; inf when unknown
    optimistic: float | None = None  # the best final value still possible, when the rule knows it
    function: str | None = None      # what produced the fitness (a family, "prior"), for the lineage
    reason: str = ""
    contends: bool = True            # False: the contender vetoes do not ask (a network at chance contends for nothing)


@dataclass
class Curve:
    """What a rule sees of the network being trained.

    ``values``/``epochs``: the finite observations so far; ``predictions``: the engine's
    extrapolation to ``length`` epochs after each observation (inf where none);
    ``maximize``: whether larger is better (accuracy) or smaller (loss); ``bounds``: the
    fitness range; ``cost``: the network's cost (MFLOPs) when known; ``key``: its entry
    in the population; ``memory``: per-rule history across observations (cleared when a
    retried epoch rewinds the curve); ``proposal``: the stop a veto is asked about.
    """

    length: int
    maximize: bool = True
    bounds: tuple[float, float] = (0.0, 100.0)
    cost: float | None = None
    key: int | None = None
    epochs: list[float] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    predictions: list[float] = field(default_factory=list)
    memory: dict[str, list[float]] = field(default_factory=dict)
    proposal: Verdict | None = None

    @property
    def t(self) -> int:
        return len(self.values)

    @property
    def sign(self) -> float:
        return 1.0 if self.maximize else -1.0

    def clip(self, value: float) -> float:
        low, high = self.bounds
        return min(max(value, low), high)

    @property
    def selected(self) -> bool:
        """Whether a contender veto kept this network training for its promise."""
        return bool(self.memory.get("selected"))

    def history(self, name: str) -> list[float]:
        return self.memory.setdefault(name, [])


class Rule(Protocol):
    name: str
    settings: Any

    def decide(self, curve: Curve, population: Population | None) -> Verdict | None: ...


def within(values: Sequence[float], r: float, low: float, high: float) -> bool:
    """PENGUIN's convergence test: finite, inside [low, high], within ±r of the median."""
    if any(not math.isfinite(v) or v < low or v > high for v in values):
        return False
    median = float(np.median(values))
    return all(median - r <= v <= median + r for v in values)


def _first_agreements(series: np.ndarray, n: int, r: float, start: int, observed: np.ndarray | None = None,
                      floor: float | None = None, maximize: bool = True) -> np.ndarray:
    """Per row of ``series`` (curves x points): the first observation count t >= ``start`` whose last
    ``n`` entries are finite and within ±r of their median, and (with a ``floor``, for an accuracy) whose
    last ``n`` ``observed`` values (default: the series) all lie above it; 0 where there is none.

    Vectorised over every curve at once: the rules calibrate on all complete curves whenever one
    more arrives, and a loop over curves, windows and retries cost most of an engine's time.
    """
    series = np.atleast_2d(np.asarray(series, dtype=float))
    rows, length = series.shape
    if length < n:
        return np.zeros(rows, dtype=int)
    windows = sliding_window_view(series, n, axis=1)  # window i covers observations i+1 .. i+n
    with np.errstate(invalid="ignore"):
        median = np.median(windows, axis=2, keepdims=True)
        ok = np.all(np.isfinite(windows), axis=2) & np.all(np.abs(windows - median) <= r + 1e-12, axis=2)
    if floor is not None and maximize:
        seen = series if observed is None else np.atleast_2d(np.asarray(observed, dtype=float))
        ok &= sliding_window_view(seen, n, axis=1).min(axis=2) > floor
    counts = np.arange(n, length + 1)
    ok &= counts[None, :] >= start
    return np.where(ok.any(axis=1), counts[np.argmax(ok, axis=1)], 0)


@dataclass(frozen=True)
class Calibration:
    """What replaying a rule over the population's complete curves showed for one setting."""

    setting: tuple
    error: float      # mean |fitness handed - final| where it fired, after the bias correction
    fired: int        # on how many curves it fired before the end
    saved: float      # epochs it would have saved, summed over the curves
    bias: float = 0.0  # median (final - value the rule saw): added to the fitness it hands back


def _calibration(setting: tuple, handed: list[float], finals: list[float], saved: float,
                 upper: bool = False) -> Calibration:
    """``upper``: the error is the mean plus its standard error (an upper estimate: the mean over the
    few complete curves a setting fired on, picked as the best of several, is optimistic)."""
    if not handed:
        return Calibration(setting, math.inf, 0, saved)
    miss = np.asarray(finals) - np.asarray(handed)
    bias = float(np.median(miss))
    deviation = np.abs(miss - bias)
    error = float(np.mean(deviation))
    if upper:
        error += float(np.std(deviation, ddof=1) / math.sqrt(deviation.size)) if deviation.size > 1 else math.inf
    return Calibration(setting, error, len(handed), saved, bias)


def above(values: Sequence[float], floor: float | None, maximize: bool) -> bool:
    """Whether every value lies above ``floor`` (the top of the chance band); no floor, or a loss: True."""
    return floor is None or not maximize or min(values) > floor


def _pick(calibrations: list[Calibration], budget: float, curves: int) -> Calibration | None:
    """The setting saving the most epochs whose error stays within the budget (None: no setting qualifies).

    A setting must have fired on at least a quarter of the complete curves (and 5): an error
    measured on two or three curves says little about the next network.
    """
    min_fired = max(5, math.ceil(0.25 * curves))
    good = [c for c in calibrations if c.fired >= min_fired and c.error <= budget]
    return max(good, key=lambda c: (c.saved, -c.error)) if good else None


# ------------------------------------------------------------------ never learns
@dataclass(frozen=True)
class NeverLearnsSettings:
    """``level``: accuracy of always answering one class (default 100 / ``n_classes``); ``tolerance``:
    the band around it; ``min_epochs``: observations before the rule may fire. With a population
    (``calibrate``) it waits for ``min_curves`` complete curves (networks that sit at chance for a
    while and then learn are common on small data sets, and dropping them early would keep them
    out of the calibration for good), then past the latest epoch at which a network that did learn
    was still in the band, and only while the complete curves that were also in the band up to
    this epoch ended, on average, within ``budget`` of the fitness the rule hands back (the mean
    of the values, plus their median drift). ``overrulable``: the verdict is a ``STOP`` that the
    vetoes may overrule (the audit lets some such networks finish, so the population keeps seeing
    late learners, and the error budget counts the rule's error) rather than a ``DROP``."""

    n_classes: int = 2
    level: float | None = None
    tolerance: float = 2.0
    min_epochs: int = 6
    calibrate: bool = True
    min_curves: int = 10
    budget: float = math.inf
    overrulable: bool = False


class NeverLearns:
    """A network whose every observation sits at chance level is dropped there."""

    name = "never-learns"

    @property
    def uses_population(self) -> bool:
        return self.settings.calibrate

    def __init__(self, settings: NeverLearnsSettings = NeverLearnsSettings()):
        self.settings = settings

    @property
    def level(self) -> float:
        s = self.settings
        return s.level if s.level is not None else 100.0 / max(s.n_classes, 1)

    def _guard(self, curve: Curve, population: Population | None) -> int:
        guard = self.settings.min_epochs
        if self.settings.calibrate and population is not None and population.curves:
            guard = max(guard, population.memo(("never-learns", self.level, self.settings.tolerance),
                                               lambda: self._latest_escape(population)))
        return min(guard, max(curve.length - 1, 1))

    def _latest_escape(self, population: Population) -> int:
        latest = 0
        for c in population.curves:  # every late learner counts, contenders above all
            outside = np.abs(c - self.level) > self.settings.tolerance
            if outside[-1] and outside.any():
                latest = max(latest, int(np.argmax(outside)) + 1)
        return latest

    def decide(self, curve: Curve, population: Population | None) -> Verdict | None:
        if not curve.maximize or curve.t < self._guard(curve, population):
            return None
        if self.settings.calibrate and population is not None and len(population.sampled) < self.settings.min_curves:
            return None
        if not all(abs(v - self.level) <= self.settings.tolerance for v in curve.values):
            return None
        fitness, error = float(np.mean(curve.values)), math.inf
        if self.settings.calibrate and population is not None:
            drift = population.memo(("never-learns-drift", self.level, self.settings.tolerance, curve.t),
                                    lambda: self._drift(population, curve.t))
            if drift is not None:
                fitness, error = curve.clip(fitness + drift[0]), drift[1]
            if error > self.settings.budget:
                return None
        kind = VerdictKind.STOP if self.settings.overrulable else VerdictKind.DROP
        # a network at chance is no contender, even where it is the cheapest (a Pareto point at 50 %
        # error is of no use to anyone): only the audit and the error budget may keep it training
        return Verdict(kind, self.name, fitness, error, reason="never learns (chance level)", contends=False)

    def _drift(self, population: Population, t: int) -> tuple[float, float] | None:
        """Median and expected deviation of (final - mean of the first t values) over complete curves at chance until t.

        The expected deviation is at least the rule of succession's share of a late learner's
        gain: after ``m`` such curves of which ``j`` learned later, the next one learns with
        probability about ``(j + 1) / (m + 2)``, and then misses by what a network that learned
        gained (the median over the complete curves that left the band). Without that floor a
        handful of curves that all stayed at chance promise an error of 0, and the late learners
        that are common on small data sets (a third of the random CNNs of the generated
        collections sit at chance for 5 epochs, and about half of those learn) are dropped.
        """
        band = self.settings.tolerance
        misses = [float(c[-1] - np.mean(c[:t])) for c in population.sampled
                  if np.all(np.abs(c[:t] - self.level) <= band)]
        if len(misses) < 3:
            return None
        misses_array = np.asarray(misses)
        median = float(np.median(misses_array))
        learned = [abs(float(c[-1]) - self.level) for c in population.curves if abs(float(c[-1]) - self.level) > band]
        gain = float(np.median(learned)) if learned else 0.0
        late = int(np.count_nonzero(np.abs(misses_array - median) > band))
        floor = gain * (late + 1) / (len(misses) + 2)
        return median, max(float(np.mean(np.abs(misses_array - median))), floor)


# ------------------------------------------------------------------ stuck
@dataclass(frozen=True)
class StuckSettings:
    """``run``: trailing observations within ``width`` of each other (half a validation image: the
    same count of right answers) that make a curve stuck; from ``min_epochs`` on, once ``min_curves``
    complete curves are a fair sample, and only while at least ``matches`` of them were also stuck at
    this epoch (their moves from there say what this one will do)."""

    run: int = 4
    width: float = 0.01
    min_epochs: int = 6
    min_curves: int = 10
    matches: int = 3


class Stuck:
    """A network whose accuracy has not changed by one answer for ``run`` epochs stops at that value.

    Such a network answers the same way epoch after epoch (most often one class for every
    input: the chance level of an imbalanced split, 7 or 11 % of ten classes, 50 % of two). It
    is the one curve whose final value is known without a model, as long as it stays stuck: the
    finished networks that were stuck at the same epoch say how often one escapes and by how
    much. The fitness is the stuck value plus their median move; the expected error is their
    mean deviation from it, shrunk toward one pseudo-network that escaped (as far as any fair
    complete curve moved from this epoch, or to where the networks that did not end at this
    value typically ended), so a handful of networks that happened to stay put do not promise
    an error of 0. Not in the ``a4nn`` default (see :mod:`a4nn.engine.strategies` for why).
    """

    name = "stuck"

    @property
    def uses_population(self) -> bool:
        return True

    def __init__(self, settings: StuckSettings = StuckSettings()):
        self.settings = settings

    def decide(self, curve: Curve, population: Population | None) -> Verdict | None:
        s, t = self.settings, curve.t
        if population is None or t < max(s.min_epochs, s.run) or t >= curve.length:
            return None
        recent = curve.values[-s.run:]
        if max(recent) - min(recent) > s.width:
            return None
        moves = population.memo(("stuck", s.run, s.width, s.min_curves, t), lambda: self._moves(population, t))
        if moves is None or len(moves[0]) < s.matches:
            return None
        matched, every, finals = moves
        median = float(np.median(matched))
        deviation = np.abs(matched - median)
        escapes = int(np.count_nonzero(deviation > 2 * s.width))
        # shrunk toward one pseudo-network that escaped: as far as any fair complete curve moved from here,
        # or to where the networks that did not end at this value typically ended
        value = float(recent[-1])
        elsewhere = np.abs(finals - value)
        elsewhere = elsewhere[elsewhere > 2 * s.width]
        pessimistic = max(float(np.abs(every - median).max()), float(np.median(elsewhere)) if elsewhere.size else 0.0)
        error = max(float(deviation.mean()), (float(deviation.sum()) + pessimistic) / (matched.size + 2))
        fitness = curve.clip(value + median)
        return Verdict(VerdictKind.STOP, self.name, fitness, error,
                       reason=f"stuck for {s.run} epochs ({escapes} of {matched.size} alike escaped)")

    def _moves(self, population: Population, t: int) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """(final - value at t) of the fair complete curves stuck at t and of all of them; their finals."""
        s = self.settings
        sampled = population.sampled
        if len(sampled) < s.min_curves:
            return None
        curves = np.stack(sampled)
        window = curves[:, t - s.run:t]
        stuck = np.ptp(window, axis=1) <= s.width
        moves = curves[:, -1] - curves[:, t - 1]
        return moves[stuck], moves, curves[:, -1]


# ------------------------------------------------------------------ population prior
@dataclass(frozen=True)
class PriorSettings:
    """The regression (``min_curves``, ``ridge``); ``n`` successive trusted estimates within ±``r``
    stop the network; trusted: held-out error at most ``tolerance`` and ``support`` complete curves
    ended within ±max(``support_width`` x held-out error, ``r``) of the estimate (``leverage_slack``,
    opt-in: the prefix must also lie among the complete curves' prefixes)."""

    min_curves: int = 10
    ridge: float = 1e-2
    n: int = 2
    r: float = 0.5
    tolerance: float = 0.5
    support: int = 3
    support_width: float = 3.0
    leverage_slack: float | None = None
    min_epochs: int = 6


@dataclass(frozen=True)
class Estimate:
    value: float      # clipped to the bounds; inf when the prior has none
    held_out: float
    supported: bool


class PriorAgreement:
    """Stop on the population prior's estimate once it is trusted and agrees with itself."""

    name = "prior"

    @property
    def uses_population(self) -> bool:
        return True

    def __init__(self, settings: PriorSettings = PriorSettings()):
        self.settings = settings
        self.prior = CurvePrior(settings.min_curves, settings.ridge)

    def estimate(self, curve: Curve, population: Population | None) -> Estimate:
        """The prior's estimate of this curve's final value (cached per observation count)."""
        cached = curve.memory.get("prior-estimate")
        if cached is not None and cached[0] == curve.t:
            return cached[1]  # type: ignore[return-value]
        s = self.settings
        guess, held_out = self.prior.predict(population, curve.values)
        supported = math.isfinite(guess) and (s.support < 1 or self.prior.support(
            population, curve.t, guess, max(s.support_width * held_out, s.r)) >= s.support) and (
            s.leverage_slack is None or self.prior.inside(population, curve.values, s.leverage_slack))
        result = Estimate(curve.clip(guess) if math.isfinite(guess) else math.inf, held_out, supported)
        curve.memory["prior-estimate"] = [curve.t, result]  # type: ignore[list-item]
        return result

    def decide(self, curve: Curve, population: Population | None) -> Verdict | None:
        s = self.settings
        if population is None or curve.t < s.min_epochs:
            return None
        estimate = self.estimate(curve, population)
        trusted = estimate.supported and estimate.held_out <= s.tolerance
        recent = curve.history(self.name)
        recent.append(estimate.value if trusted else math.inf)
        low, high = curve.bounds
        if len(recent) >= s.n and within(recent[-s.n:], s.r, low, high):
            return Verdict(VerdictKind.STOP, self.name, estimate.value, estimate.held_out, function="prior",
                           reason=f"prior agrees (held-out MAE {estimate.held_out:.3f})")
        return None


# ------------------------------------------------------------------ plateau
@dataclass(frozen=True)
class PlateauSettings:
    """The last ``n`` observations within ±``radius`` of their median; the fitness is the best of them.
    Calibrated (with a population): radius in ``radius`` x (1, 2, 4) and n in (``n``, 2``n``), the
    setting that saves most while its mean error stays within ``budget``. ``floor``: a plateau must
    lie above it (the a4nn default puts the top of the chance band there: a network resting at
    chance is the never-learns rule's case, and many such networks learn later). ``bound_rank``: with
    a population, a contender veto judges the stop at what the network could still reach
    (:func:`reachable`, as for the extrapolation rule; 0: at the plateau's best value plus ``z``
    expected errors). Why: a network resting just below the top 10 % is the one a plateau stop
    costs, and the plateau's error, measured on the complete curves that rested and stayed, says
    nothing of those that climbed again; in the a4nn default without the bound the published
    low beam's top-10 % recall fell to 0.8 in the recorded order (a one-off replay of the
    ``benchmarks/engine_replay.py`` collections, not kept in the repo)."""

    n: int = 4
    radius: float = 0.25
    budget: float = 0.5
    calibrate: bool = True
    min_curves: int = 10
    min_epochs: int = 4
    floor: float | None = None
    bound_rank: int = 3


class Plateau:
    name = "plateau"

    @property
    def uses_population(self) -> bool:
        return self.settings.calibrate

    def __init__(self, settings: PlateauSettings = PlateauSettings()):
        self.settings = settings

    def _grid(self) -> list[tuple[int, float]]:
        s = self.settings
        return [(n, s.radius * m) for n in (s.n, 2 * s.n) for m in (1.0, 2.0, 4.0)]

    def calibration(self, population: Population, maximize: bool) -> Calibration | None:
        def compute() -> Calibration | None:
            curves = np.stack(population.sampled)
            finals = curves[:, -1]
            results = []
            for n, radius in self._grid():
                stops = _first_agreements(curves, n, radius, max(n, self.settings.min_epochs),
                                          floor=self.settings.floor, maximize=maximize)
                fired = np.nonzero((stops > 0) & (stops < curves.shape[1]))[0]
                handed = [float(np.max(curves[i, stops[i] - n:stops[i]]) if maximize
                                else np.min(curves[i, stops[i] - n:stops[i]])) for i in fired]
                saved = float(np.sum(curves.shape[1] - stops[fired]))
                results.append(_calibration((n, radius), handed, [float(finals[i]) for i in fired], saved))
            return _pick(results, self.settings.budget, len(curves))
        return population.memo(("plateau", self.settings, maximize), compute)

    def decide(self, curve: Curve, population: Population | None) -> Verdict | None:
        s = self.settings
        n, radius, error, bias = s.n, s.radius, math.inf, 0.0
        if s.calibrate and population is not None and len(population.sampled) >= s.min_curves:
            calibrated = self.calibration(population, curve.maximize)
            if calibrated is None:
                return None  # no setting keeps its fitness within the budget on these curves
            (n, radius), error, bias = calibrated.setting, calibrated.error, calibrated.bias
        if curve.t < max(n, s.min_epochs):
            return None
        tail = [float(v) for v in curve.values[-n:]]
        low, high = curve.bounds
        if within(tail, radius, low, high) and above(tail, s.floor, curve.maximize):
            best = max(tail) if curve.maximize else min(tail)
            fitness = curve.clip(best + bias)
            return Verdict(VerdictKind.STOP, self.name, fitness, error,
                           optimistic=bounded(curve, population, fitness, s.bound_rank),
                           reason=f"plateau ({n} values within ±{radius:.3f})")
        return None


# ------------------------------------------------------------------ stale (Optuna's patience)
@dataclass(frozen=True)
class StaleSettings:
    """No new best value in the last ``patience`` epochs (the test of Optuna's ``PatientPruner``); the
    fitness is the best value so far. Calibrated (with a population): each patience in ``patience``
    replayed over the fair complete curves, the one that saves most while its mean error plus its
    standard error stays within ``budget``, the fitness corrected by their median (final - best so
    far). Calibrated, it says nothing before ``min_curves`` fair complete curves exist (nor without a
    population); with ``calibrate`` off it stops at the first patience, its error unknown.
    ``floor`` and ``bound_rank`` as for the plateau: the best value must lie above the chance band,
    and a contender veto judges the stop at what the network could still reach."""

    patience: tuple[int, ...] = (4, 6, 9)
    budget: float = 1.0
    calibrate: bool = True
    min_curves: int = 10
    min_epochs: int = 6
    floor: float | None = None
    bound_rank: int = 3


def _stale_stops(scores: np.ndarray, patience: int, start: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row of ``scores`` (curves x points, larger is better): the first observation count t >= ``start``
    whose best value came ``patience`` or more observations before the t-th (0 where none), and the
    running best. A value equal to the best so far is no new best, as in Optuna."""
    filled = np.nan_to_num(np.atleast_2d(scores), nan=-np.inf)
    rows, length = filled.shape
    best = np.fmax.accumulate(filled, axis=1)
    new = np.concatenate([np.ones((rows, 1), dtype=bool), filled[:, 1:] > best[:, :-1]], axis=1)
    latest = np.maximum.accumulate(np.where(new, np.arange(length)[None, :], 0), axis=1)
    counts = np.arange(1, length + 1)
    ok = (counts[None, :] - 1 - latest >= patience) & (counts[None, :] >= start)
    return np.where(ok.any(axis=1), counts[np.argmax(ok, axis=1)], 0), best


class Stale:
    """A network that has not bettered its best value for ``patience`` epochs stops at that best.

    Why beside the plateau: a noisy curve that has stopped climbing rarely holds its last ``n``
    values within a small radius, but it stops setting new bests. The patience is calibrated on
    the search's own fair complete curves, and the error it reports is an upper estimate (mean
    plus standard error), since it is measured on the few curves the chosen setting fired on.
    On the classical learners' curves of ``tabular-5class`` (``benchmarks/engine_replay.py``) it is
    what the default saves with: before it, nothing.
    """

    name = "stale"

    @property
    def uses_population(self) -> bool:
        return self.settings.calibrate

    def __init__(self, settings: StaleSettings = StaleSettings()):
        self.settings = settings

    def calibration(self, population: Population, maximize: bool) -> Calibration | None:
        def compute() -> Calibration | None:
            s, sign = self.settings, 1.0 if maximize else -1.0
            curves = np.stack(population.sampled)
            results = []
            for patience in s.patience:
                stops, best = _stale_stops(sign * curves, patience, max(patience + 1, s.min_epochs))
                fired = np.nonzero((stops > 0) & (stops < curves.shape[1]))[0]
                handed = sign * best[fired, stops[fired] - 1]
                if s.floor is not None and maximize:
                    keep = handed > s.floor
                    fired, handed = fired[keep], handed[keep]
                saved = float(np.sum(curves.shape[1] - stops[fired]))
                results.append(_calibration((patience,), handed.tolist(), curves[fired, -1].tolist(), saved,
                                            upper=True))
            return _pick(results, s.budget, len(curves))
        return population.memo(("stale", self.settings, maximize), compute)

    def decide(self, curve: Curve, population: Population | None) -> Verdict | None:
        s = self.settings
        if curve.t >= curve.length:
            return None
        patience, error, bias = s.patience[0], math.inf, 0.0
        if s.calibrate:
            if population is None or len(population.sampled) < s.min_curves:
                return None
            calibrated = self.calibration(population, curve.maximize)
            if calibrated is None:
                return None  # no patience keeps its fitness within the budget on these curves
            (patience,), error, bias = calibrated.setting, calibrated.error, calibrated.bias
        if curve.t < max(patience + 1, s.min_epochs):
            return None
        scores = [curve.sign * v for v in curve.values]
        best = max(scores)
        if curve.t - 1 - scores.index(best) < patience:
            return None
        value = curve.sign * best
        if not above([value], s.floor, curve.maximize):
            return None
        fitness = curve.clip(value + bias)
        return Verdict(VerdictKind.STOP, self.name, fitness, error,
                       optimistic=bounded(curve, population, fitness, s.bound_rank),
                       reason=f"no new best in {patience} epochs")


# ------------------------------------------------------------------ extrapolation agreement (PENGUIN)
@dataclass(frozen=True)
class ExtrapolationSettings:
    """PENGUIN's rule: the last ``n`` extrapolations finite, inside the bounds and within ±``r`` of
    their median. Calibrated (with a population whose complete curves carry their extrapolations):
    n in (``n``, ``n`` + 2) and r in ``r`` x (0.25, 0.5, 1, 2), within ``budget``. ``floor``: the last
    ``n`` observations must lie above it (as for the plateau). ``only_alone``: the rule speaks only
    for an engine without a population (the a4nn default's fallback for a lone engine). ``bound_rank``:
    with a population, a contender veto judges the stop at what the network could still reach
    (:func:`reachable`: its best plus the ``bound_rank``-th largest gain of a complete curve from this
    epoch; 0: at the extrapolation plus ``z`` expected errors). Why: a saturating fit under-predicts a
    network that is still climbing, and its mean error on the finished curves (0.1-0.4 points) is no
    measure of that one: in ten orders of each replay collection, the default without the bound lost
    top-10 % recall (0.75-0.88) in three replays to extrapolation stops 0.7-1.9 points short of a top
    network; with it, in none to that rule."""

    n: int = 3
    r: float = 0.5
    budget: float = 0.5
    calibrate: bool = False
    min_curves: int = 10
    floor: float | None = None
    only_alone: bool = False
    bound_rank: int = 3


class ExtrapolationAgreement:
    name = "extrapolation"

    @property
    def uses_population(self) -> bool:
        return self.settings.calibrate

    def __init__(self, settings: ExtrapolationSettings = ExtrapolationSettings()):
        self.settings = settings

    def calibration(self, population: Population, bounds: tuple[float, float],
                    maximize: bool = True) -> Calibration | None:
        def compute() -> Calibration | None:
            traced = population.sampled_traces()
            if len(traced) < self.settings.min_curves:
                return None
            low, high = bounds
            curves = np.stack([c for c, _ in traced])
            traces = np.stack([trace for _, trace in traced])
            inside = np.where((traces >= low) & (traces <= high), traces, np.nan)
            results = []
            for n in (self.settings.n, self.settings.n + 2):
                for r in (self.settings.r * m for m in (0.25, 0.5, 1.0, 2.0)):
                    stops = _first_agreements(inside, n, r, n, observed=curves, floor=self.settings.floor,
                                              maximize=maximize)
                    fired = np.nonzero((stops > 0) & (stops < curves.shape[1]))[0]
                    handed = [float(traces[i, stops[i] - 1]) for i in fired]
                    saved = float(np.sum(curves.shape[1] - stops[fired]))
                    results.append(_calibration((n, r), handed, [float(curves[i, -1]) for i in fired], saved))
            return _pick(results, self.settings.budget, len(traced))
        return population.memo(("extrapolation", self.settings, bounds, maximize), compute)

    def decide(self, curve: Curve, population: Population | None) -> Verdict | None:
        s = self.settings
        if s.only_alone and population is not None:
            return None
        n, r, error, bias = s.n, s.r, math.inf, 0.0
        if s.calibrate and population is not None:
            calibrated = self.calibration(population, curve.bounds, curve.maximize)
            if calibrated is None:
                return None
            (n, r), error, bias = calibrated.setting, calibrated.error, calibrated.bias
        recent = curve.predictions[-n:]
        low, high = curve.bounds
        if len(recent) == n and within(recent, r, low, high) and above(curve.values[-n:], s.floor, curve.maximize):
            fitness = curve.clip(float(recent[-1]) + bias)
            return Verdict(VerdictKind.STOP, self.name, fitness, error,
                           optimistic=bounded(curve, population, fitness, s.bound_rank),
                           reason=f"{n} extrapolations within ±{r:.3f}")
        return None


def bounded(curve: Curve, population: Population | None, fitness: float, rank: int) -> float | None:
    """The optimistic fitness a contender veto judges a shape rule's stop at: what the network could
    still reach (:func:`reachable` at ``rank``), never less than the fitness handed back; None (the
    veto then adds its ``z`` expected errors) with ``rank`` 0 or without complete curves."""
    bound = reachable(curve, population, rank) if rank else None
    if bound is None:
        return None
    return max(bound, fitness) if curve.maximize else min(bound, fitness)


def reachable(curve: Curve, population: Population | None, rank: int = 1) -> float | None:
    """The best final value this network could still reach: its best value so far plus the ``rank``-th
    largest gain any complete curve made from this epoch on (None without complete curves).

    ``rank`` 1 is the most any network gained; a larger rank accepts that a network may outdo all
    but ``rank - 1`` of the finished ones (the rule of succession's risk, about ``rank / (n + 1)``
    after ``n`` complete curves), which one late learner among the first networks otherwise turns
    into a veto on every stop near the top.
    """
    if population is None or not population.curves or curve.t >= curve.length:
        return None
    t, sign = curve.t, curve.sign

    def gains() -> np.ndarray:
        scores = sign * np.stack(population.curves)
        # a finished curve with no finite value yet at this epoch gained without limit (as Hopeless reads it)
        best = np.max(np.nan_to_num(scores[:, :t], nan=-np.inf), axis=1)
        return np.sort(scores[:, -1] - best)
    ordered = population.memo(("gains-from", t, sign), gains)
    gain = float(ordered[-min(max(rank, 1), len(ordered))])
    return curve.clip(sign * (max(sign * v for v in curve.values) + gain))


# ------------------------------------------------------------------ hopeless
@dataclass(frozen=True)
class HopelessSettings:
    """Once ``min_curves`` networks completed: the most any complete curve gained after ``t``
    epochs over its best value so far bounds what this one can still reach; a network whose bound
    cannot make the contenders (the vetoes decide) stops. Its fitness is the lower-error estimate
    of best-so-far + median gain and the prior's (``max_error``: no stop while both errors exceed it)."""

    min_curves: int = 10
    min_epochs: int = 6
    max_error: float = math.inf


@dataclass(frozen=True)
class _Gains:
    best: np.ndarray        # running best of the sampled complete curves (score space: sign x value)
    gain: np.ndarray        # their final - running best, per curve and observation count
    every_best: np.ndarray  # the same over every complete curve, contenders included (for the bound)
    every_gain: np.ndarray


class Hopeless:
    """A network whose best value so far plus the largest gain any finished network made from the
    same epoch on cannot make the contenders stops; its fitness comes from the finished networks
    whose best value at this epoch was closest to its own (their median gain, and the mean
    deviation from it as the expected error), or from the prior where that is more accurate."""

    name = "hopeless"
    neighbours = 7

    @property
    def uses_population(self) -> bool:
        return True

    def __init__(self, settings: HopelessSettings = HopelessSettings(), prior: PriorAgreement | None = None):
        self.settings = settings
        self.prior = prior

    def gains(self, population: Population, sign: float) -> _Gains | None:
        def compute() -> _Gains | None:
            if len(population.sampled) < self.settings.min_curves:
                return None

            def running(curves: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
                scores = sign * np.stack(curves)
                best = np.fmax.accumulate(np.nan_to_num(scores, nan=-np.inf), axis=1)
                return best, scores[:, -1:] - best

            best, gain = running(population.sampled)  # estimates: a fair sample
            every_best, every_gain = running(population.curves)  # the bound: every network, contenders included
            return _Gains(best, gain, every_best, every_gain)
        return population.memo(("gains", self.settings.min_curves, sign), compute)

    def decide(self, curve: Curve, population: Population | None) -> Verdict | None:
        if population is None or curve.t < self.settings.min_epochs or curve.t >= curve.length:
            return None
        gains = self.gains(population, curve.sign)
        if gains is None:
            return None
        i = curve.t - 1
        best = max(curve.sign * v for v in curve.values)
        # the bound: the most any complete network gained from this epoch on (contenders included)
        optimistic = reachable(curve, population)
        near = np.argsort(np.abs(gains.best[:, i] - best), kind="stable")[: self.neighbours]
        their = gains.gain[near, i]
        median = float(np.median(their))
        # the neighbours' spread alone is overconfident where they happen to agree (a handful of
        # networks that never learned): the spread over all sampled networks is the floor
        spread = float(np.mean(np.abs(gains.gain[:, i] - np.median(gains.gain[:, i]))))
        # and the rule of succession's share of the largest gain any complete network made from here
        # (a late learner among networks that look alike so far: see NeverLearns._drift); how far such a
        # learner goes is not the largest gain seen, which a few early networks understate (a tabular
        # learner that sat at 53 % until epoch 13 and ended at 92 %), but where the networks that ended
        # above this one's best typically ended
        finals = gains.every_best[:, -1]
        above = finals[finals > best]
        escape = float(np.median(above)) - best if above.size else 0.0
        rare = max(float(gains.every_gain[:, i].max()), escape) / (len(gains.gain) + 2)
        error = max(float(np.mean(np.abs(their - median))), spread, rare)
        fitness, source = curve.clip(curve.sign * (best + median)), "gain"
        if self.prior is not None:
            estimate = self.prior.estimate(curve, population)
            if estimate.supported and math.isfinite(estimate.value) and estimate.held_out < error:
                fitness, error, source = estimate.value, estimate.held_out, "prior"
        if error > self.settings.max_error:
            return None
        return Verdict(VerdictKind.STOP, self.name, fitness, error, optimistic=optimistic,
                       function="prior" if source == "prior" else None,
                       reason=f"at most {optimistic:.3f} reachable ({source} estimate {fitness:.3f})")


# ------------------------------------------------------------------ vetoes
def _optimistic(proposal: Verdict, z: float, maximize: bool) -> float:
    if proposal.optimistic is not None:
        return proposal.optimistic
    return proposal.fitness + z * proposal.error if maximize else proposal.fitness - z * proposal.error


@dataclass(frozen=True)
class TopContenderSettings:
    """A network that could still place in the top ``k`` (default: ``fraction`` of the finished
    networks, at least one) trains to the end; "could": the stop's fitness plus ``z`` times its
    expected error reaches the k-th best. ``with_cost``: also rank by fitness alone when the
    network's cost is known (off: a Pareto veto judges those)."""

    k: int | None = None
    fraction: float = 0.1
    z: float = 1.0
    with_cost: bool = True


class TopContender:
    name = "top-contender"

    @property
    def uses_population(self) -> bool:
        return True

    def __init__(self, settings: TopContenderSettings = TopContenderSettings()):
        self.settings = settings

    def k(self, population: Population) -> int:
        s = self.settings
        return s.k if s.k is not None else max(1, math.ceil(s.fraction * population.finished))

    def decide(self, curve: Curve, population: Population | None) -> Verdict | None:
        s, proposal = self.settings, curve.proposal
        if population is None or proposal is None or not proposal.contends or (
                curve.cost is not None and not s.with_cost):
            return None
        k = self.k(population)
        if k < 1:
            return None
        threshold = population.threshold(k, curve.maximize, exclude=curve.key)
        if not math.isfinite(threshold):
            return Verdict(VerdictKind.KEEP, self.name, reason=f"top-{k} not known yet")
        optimistic = _optimistic(proposal, s.z, curve.maximize)
        if not math.isfinite(optimistic):
            return Verdict(VerdictKind.KEEP, self.name, reason=f"{proposal.rule}'s error unknown: cannot rule out the top-{k}")
        if (optimistic >= threshold) if curve.maximize else (optimistic <= threshold):
            curve.memory["selected"] = [1.0]  # kept for its promise: not a fair sample any more
            return Verdict(VerdictKind.KEEP, self.name,
                           reason=f"contender for the top-{k} ({optimistic:.3f} reaches {threshold:.3f})")
        return None


@dataclass(frozen=True)
class ParetoContenderSettings:
    """With the network's cost known: it trains to the end while fewer than ``k`` finished networks
    dominate (fitness, cost) at its optimistic fitness (``k = 1``: it could join the Pareto front)."""

    k: int = 1
    z: float = 1.0


class ParetoContender:
    name = "pareto-contender"

    @property
    def uses_population(self) -> bool:
        return True

    def __init__(self, settings: ParetoContenderSettings = ParetoContenderSettings()):
        self.settings = settings

    def decide(self, curve: Curve, population: Population | None) -> Verdict | None:
        s, proposal = self.settings, curve.proposal
        if population is None or proposal is None or not proposal.contends or curve.cost is None or s.k < 1:
            return None
        optimistic = _optimistic(proposal, s.z, curve.maximize)
        if not math.isfinite(optimistic):
            return Verdict(VerdictKind.KEEP, self.name, reason=f"{proposal.rule}'s error unknown: cannot rule out the front")
        ahead = population.dominators(optimistic, curve.cost, curve.maximize, exclude=curve.key)
        if ahead < s.k:
            curve.memory["selected"] = [1.0]  # kept for its promise: not a fair sample any more
            return Verdict(VerdictKind.KEEP, self.name, reason=(
                f"Pareto contender ({optimistic:.3f} at {curve.cost:.3f} MFLOPs is dominated by {ahead} < {s.k})"))
        return None


@dataclass(frozen=True)
class AuditSettings:
    """Every ``every``-th network a rule would stop trains to the end anyway."""

    every: int = 10


class Audit:
    """Keeps the calibration honest: without it, only networks no rule stopped finish.

    The rules calibrate on complete curves, and once they stop networks the complete curves
    are the ones that did not look stoppable: a network that sat on a low plateau and then
    learned is stopped and never seen again, so its kind never shows in the calibration.
    Letting every ``every``-th candidate for a stop finish shows the population such curves.
    Which networks: decided once per network, from the number of networks finished when it
    was first proposed for a stop.
    """

    name = "audit"
    fair = True  # which networks it keeps does not depend on their promise

    @property
    def uses_population(self) -> bool:
        return True

    def __init__(self, settings: AuditSettings = AuditSettings()):
        self.settings = settings

    def decide(self, curve: Curve, population: Population | None) -> Verdict | None:
        if population is None or self.settings.every < 1:
            return None
        chosen = curve.memory.get(self.name)
        if chosen is None:
            chosen = curve.memory[self.name] = [float(population.finished % self.settings.every
                                                      == self.settings.every - 1)]
        if chosen[0]:
            return Verdict(VerdictKind.KEEP, self.name, reason="audited: trains to the end to calibrate the rules")
        return None


@dataclass(frozen=True)
class ErrorBudgetSettings:
    """The mean expected error of the fitness of the finished networks stays within ``target`` points,
    each stop's expected error counted ``safety`` times. The errors rules expect are measured on
    the complete curves, which after the first networks are those no rule stopped: on curves nobody
    tuned the engine for they came out up to 3.7 times too small (benchmarks/engine_replay.py). With
    ``calibrate`` the factor is learned on the search itself (:meth:`Population.error_ratio`:
    stops that were proposed, overruled by the audit or this budget, and checked against the
    final value), ``safety`` being its start and ``weight`` how many checks that start is worth;
    it never goes below ``floor``. ``price``: a stop is also refused when its charge (expected error
    times the safety factor) exceeds ``price`` x ``target`` times the share of the network's epochs it
    saves: the budget is spent where it buys epochs. Why: over ten orders of each replay collection
    the hopeless rule's stops in the last third of a curve made 27 % of all the error the stops made
    (1.2 times what they expected) for 9 % of the epochs saved, and with the budget spent
    there the mean error of the fitness exceeded 0.5 points in 30 of 120 replays; with ``price`` 8,
    in 6 (``benchmarks/engine_replay.py``). ``width``: a stop is charged at the factor learned on
    the checks that expected about as much error as it does (within that factor), since how far off
    the rules are depends on how sure they claim to be; over the recorded and ten other orders of
    each collection the mean error and recall stayed within the goal in 117 of 132 replays instead
    of 115, the worst mean error 0.85 points instead of 0.97, and the savings 47.6 % of half the
    oracle's on average per collection instead of 47.0 % (``benchmarks/engine_replay.py``)."""

    target: float = 0.5
    safety: float = 3.0
    unknown: float | None = None  # what a stopped network read back without its expected error counts
    calibrate: bool = True
    weight: float = 2.0
    floor: float = 1.0
    price: float | None = None
    # a stop's charge uses the factor learned on the checks whose expected error is within this factor of
    # its own (None: on all checks); see Population.error_ratio
    width: float | None = 2.0


class ErrorBudget:
    """Spends an error budget where it buys epochs: a stop goes through while the search's mean
    expected fitness error, over every finished network (complete ones count 0), stays within the
    target; an unknown error is never accepted.

    Why a budget over the population instead of a per-stop tolerance: a per-stop tolerance forbids
    every stop of a rule whose error is a little above it (a hopeless network whose fitness is
    known to ±1 point) however many exact complete networks pay for it, and allows any number of
    stops just under it. The target is the quantity the issue's goal measures: the mean absolute
    error of the fitness the NAS saw.

    Why a learned safety factor: a fixed one is either too timid where the rules' errors are
    honest (the quick preset's own curves: the checked stops missed by about what was expected)
    or too bold where they are not (small noisy validation sets: 2-3 times more). The networks
    this budget (or the audit) kept training after a rule proposed to stop them are a fair
    sample of would-be stops, and their final values say how far off those stops would have been.
    """

    name = "error-budget"
    fair = True  # it overrules stops without looking at their promise: what it keeps checks the rules

    @property
    def uses_population(self) -> bool:
        return True

    def __init__(self, settings: ErrorBudgetSettings = ErrorBudgetSettings()):
        self.settings = settings

    def safety(self, population: Population | None, near: float | None = None) -> float:
        """The factor an expected error is counted with (learned when ``calibrate``); with ``near``, the
        factor for a stop expecting that error (learned on the checks that expected about as much)."""
        s = self.settings
        if not s.calibrate or population is None:
            return s.safety
        if near is None or s.width is None:
            return population.error_ratio(s.safety, s.weight, s.floor)
        return population.error_ratio(s.safety, s.weight, s.floor, near=near, width=s.width)

    def decide(self, curve: Curve, population: Population | None) -> Verdict | None:
        s, proposal = self.settings, curve.proposal
        if population is None or proposal is None:
            return None
        # the stop is charged at the factor of stops as sure as it; the ledger of earlier stops at the factor
        # over all checks (each earlier stop at its own factor let the mean error reach 2.1 points on a
        # tabular order, against 0.6)
        safety = self.safety(population, near=proposal.error)
        charge = safety * proposal.error
        if not math.isfinite(charge):
            return Verdict(VerdictKind.KEEP, self.name, reason=f"{proposal.rule}'s error unknown")
        if s.price is not None:
            share = 1.0 - curve.t / curve.length  # of this network's budget the stop saves
            if charge > s.price * s.target * share:
                return Verdict(VerdictKind.KEEP, self.name, reason=(
                    f"error budget: {charge:.3f} points for {share:.0%} of the epochs is too dear"))
        spent = population.expected_error(exclude=curve.key, unknown=s.target if s.unknown is None else s.unknown,
                                          scale=self.safety(population))
        finished = population.finished - (1 if curve.key in population.fitness else 0) + 1
        mean = (spent + charge) / finished
        if mean > s.target:
            return Verdict(VerdictKind.KEEP, self.name, reason=(
                f"error budget: mean expected error would be {mean:.3f} > {s.target:.3f} (safety {safety:.2f})"))
        return None


def describe(rule: Any) -> dict[str, Any]:
    """A rule's name and settings, as recorded in ``engine_configs``: JSON values (inf as None, a tuple
    such as the stale rule's patiences as a list), so settings read back from the lineage compare
    equal to a freshly built engine's."""
    def plain(value: Any) -> Any:
        if isinstance(value, float) and math.isinf(value):
            return None
        return [plain(v) for v in value] if isinstance(value, (tuple, list)) else value
    return {"rule": rule.name, **{k: plain(v) for k, v in asdict(rule.settings).items()}}
