"""Named compositions of stop rules and vetoes: ``penguin``, ``a4nn`` (the default), ``none``.

A :class:`Strategy` says how the engine extrapolates (``fit``: PENGUIN's faithful
finite-difference fit, the a4nn recency-weighted warm-started fit, or none) and which
rules decide, in order, and which vetoes may overrule them. Users compose their own
from Python::

    from a4nn.engine import PredictionEngine, Strategy
    from a4nn.engine.rules import Plateau, PlateauSettings, TopContender
    mine = Strategy("plateau-top5", fit="a4nn", stops=(Plateau(PlateauSettings(n=5, radius=0.1)),),
                    vetoes=(TopContender(),))
    engine = PredictionEngine(strategy=mine, population=Population(length=25))

The ``a4nn`` default is meant for curve families nobody tuned it on. Its rules, first
that fires wins:

1. never learns (``DROP``): every observation within the chance band, the level from
   the number of classes (or the validation split's class shares), after the engine's
   own guard and past the latest epoch at which a network that did learn still sat there;
2. population prior (``STOP``): the regression from the finished curves, trusted where
   its held-out error is within the error budget and complete curves support it;
3. plateau and 4. extrapolation agreement (``STOP``): per-curve rules whose tolerances
   are calibrated on the finished curves (the setting that saves the most there with a
   mean error within the budget; none qualifies: the rule stays silent);
5. hopeless (``STOP`` with an optimistic bound): the most a finished curve gained after
   this epoch cannot lift the network into the contenders.

Vetoes: a network that could still join the Pareto front (when its cost is known, as in
a search) or place in the top 10 % of the finished networks (replay without costs)
trains to the end, judged at the stop's fitness plus one expected error (or at the
hopeless rule's bound). A stop whose error is not known yet (fewer than ``min_curves``
finished networks) is always overruled: the first networks are the population's
training data, as Optuna's startup trials are.

The error budget is ``max(0.5, 100 / n_val)`` points: half a point, or one validation
image where a single image weighs more.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from a4nn.engine.rules import (Audit, AuditSettings, ExtrapolationAgreement, ExtrapolationSettings, Hopeless, HopelessSettings, NeverLearns,
                               NeverLearnsSettings, ParetoContender, ParetoContenderSettings, Plateau, PlateauSettings,
                               PriorAgreement, PriorSettings, TopContender, TopContenderSettings, describe)

FITS = ("penguin", "a4nn", None)


@dataclass(frozen=True)
class Strategy:
    """A named composition: how to extrapolate, which stop rules (in order), which vetoes."""

    name: str
    fit: str | None = "a4nn"
    stops: tuple[Any, ...] = ()
    vetoes: tuple[Any, ...] = ()

    def __post_init__(self) -> None:
        if self.fit not in FITS:
            raise ValueError(f"fit must be one of {FITS}")

    @property
    def uses_population(self) -> bool:
        """Whether any rule or veto reads the search's population (the engines then share one)."""
        return any(getattr(piece, "uses_population", False) for piece in (*self.stops, *self.vetoes))

    def settings(self) -> dict[str, Any]:
        return {"strategy": self.name, "fit": self.fit, "stops": [describe(r) for r in self.stops],
                "vetoes": [describe(v) for v in self.vetoes]}


def penguin(n: int = 3, r: float = 0.5) -> Strategy:
    """PENGUIN as used in the published A4NN runs: stop when ``n`` extrapolations agree within ±``r``."""
    return Strategy("penguin", fit="penguin", stops=(ExtrapolationAgreement(ExtrapolationSettings(n=n, r=r)),))


def none() -> Strategy:
    """Never stop (the train-everything baseline)."""
    return Strategy("none", fit=None)


def error_budget(n_val: int | None = None) -> float:
    """Half a point, or one validation image where one image weighs more."""
    return max(0.5, 100.0 / n_val) if n_val else 0.5


def a4nn(*, n: int = 3, r: float = 0.5, c_min: int = 3, n_classes: int = 2,
         chance_band: tuple[float, float] | None = None, n_val: int | None = None, min_curves: int = 10) -> Strategy:
    """The self-calibrating default (see the module docstring); the same in a replay and in a search.

    ``n_classes`` or ``chance_band`` (accuracy of always answering the rarest / commonest
    class) place the never-learns level; ``n_val`` sets the error budget and the plateau's
    base radius (one validation image); ``min_curves`` finished networks are needed before
    the calibrated rules may stop anything.
    """
    budget = error_budget(n_val)
    step = 100.0 / n_val if n_val else 0.25
    if chance_band is not None:
        low, high = chance_band
        never = NeverLearnsSettings(n_classes=n_classes, level=(low + high) / 2, tolerance=(high - low) / 2 + 2.0,
                                    min_epochs=c_min + n, min_curves=min_curves, budget=budget)
    else:
        never = NeverLearnsSettings(n_classes=n_classes, tolerance=max(2.0, step), min_epochs=c_min + n,
                                    min_curves=min_curves, budget=budget)
    prior = PriorAgreement(PriorSettings(min_curves=min_curves, r=r, tolerance=budget, min_epochs=c_min + n))
    chance_top = NeverLearns(never).level + never.tolerance
    return Strategy("a4nn", fit="a4nn", stops=(
        NeverLearns(never),
        prior,
        Plateau(PlateauSettings(radius=max(0.25, step * (1 + 1e-9)), budget=budget, min_curves=min_curves,
                                floor=chance_top)),
        ExtrapolationAgreement(ExtrapolationSettings(n=n, r=r, budget=budget, calibrate=True, min_curves=min_curves,
                                                     floor=chance_top)),
        Hopeless(HopelessSettings(min_curves=min_curves, min_epochs=c_min + n, max_error=budget), prior),
    ), vetoes=(ParetoContender(ParetoContenderSettings(z=1.0)), TopContender(TopContenderSettings(z=2.0)),
               Audit(AuditSettings())))


BUILDERS = {"penguin": penguin, "a4nn": a4nn, "none": none}
STRATEGIES = tuple(BUILDERS)
DEFAULT_STRATEGY = "a4nn"


def build(name: str, **context: Any) -> Strategy:
    """The named strategy; ``context`` (n, r, c_min, n_classes, chance_band, n_val, min_curves) where it applies."""
    if name not in BUILDERS:
        raise ValueError(f"unknown strategy {name!r}; choose one of {', '.join(STRATEGIES)}")
    if name == "penguin":
        return penguin(**{k: context[k] for k in ("n", "r") if k in context})
    if name == "none":
        return none()
    return a4nn(**context)
