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
    PENGUIN's rule with three changes that save epochs without losing accuracy:
    recency-weighted fits (late epochs, measured on a network that has settled,
    count more), warm starts from the previous epoch's parameters with an analytic
    Jacobian (faster, fewer spurious failures), and a plateau rule: when the last
    ``n`` observations themselves lie within ±``r`` of their median, the tail mean is
    a better predictor than an extrapolation, so the engine converges on it. A
    never-learns detector stops networks stuck at chance level.

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

STRATEGIES = ("penguin", "a4nn", "none")
DEFAULT_STRATEGY = "a4nn"


@dataclass(frozen=True)
class Decision:
    """What the engine says after one observation."""

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
        self._curve = _Curve()

    # ----------------------------------------------------------------- settings
    def settings(self) -> dict[str, Any]:
        """The configuration as stored in ``engine_configs`` (Recorder.register_engine_config kwargs)."""
        return {
            "function": self.family.name, "c_min": self.c_min, "e_pred": self.e_pred, "n": self.n, "r": self.r,
            "bounds": list(self.fitness_bounds),
            "extra": {"strategy": self.strategy, "metric": self.metric, "chance_level": self.chance_level,
                      "chance_tolerance": self.chance_tolerance, "recency": self.recency},
        }

    def reset(self) -> None:
        """Forget the current curve (start the next network)."""
        self._curve = _Curve()

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
        value = float(value) if value is not None else math.nan
        if not math.isfinite(value):
            curve.predictions.append(math.inf)
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
            early = self._never_learns(epoch) or None
            if early:
                return early
        fit = self._fit()
        prediction = self._back(fit.predict(self.family, self.e_pred))
        reason = "fit" if fit.ok else "fit failed"
        if self.strategy == "a4nn" and fit.ok:
            curve.last_params = fit.params
        curve.predictions.append(prediction)
        low, high = self.fitness_bounds
        recent = curve.predictions[-self.n:]
        converged = len(recent) == self.n and within(recent, self.r, low, high)
        if not converged and self.strategy == "a4nn":
            tail = [float(v) for v in curve.values[-self.n:]]
            if len(curve.values) >= self.n + self.c_min and within(tail, self.r, low, high):
                prediction = float(np.mean(tail))
                curve.predictions[-1] = prediction
                converged, reason = True, "plateau"
        return Decision(converged, prediction, converged, fit.params if fit.ok else None, fit.seconds,
                        self.family.name, epoch, reason)

    def _fit(self) -> FitResult:
        x, y = self._x(), self._y()
        if self.strategy == "penguin":
            return fit_curve(self.family, x, y, use_jacobian=False)
        weights = np.power(self.recency, (len(x) - 1 - np.arange(len(x))))
        fit = fit_curve(self.family, x, y, weights=weights, initial=self._warm_start())
        if not fit.ok and self._curve.last_params is not None:
            fit = fit_curve(self.family, x, y, weights=weights)
        return fit

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
            return Decision(True, prediction, True, None, 0.0, self.family.name, epoch, "never learns (chance level)")
        return None
