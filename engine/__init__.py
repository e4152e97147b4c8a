"""Learning-curve prediction and early termination (pure numpy/scipy, no torch)."""
from a4nn.engine.families import FAMILIES, CurveFamily, custom_family, get_family, register_family
from a4nn.engine.fitting import FitResult, fit_curve
from a4nn.engine.population import Population
from a4nn.engine.prediction import DEFAULT_STRATEGY, STRATEGIES, Decision, PredictionEngine
from a4nn.engine.prior import CurvePrior
from a4nn.engine.replay import ReplayOutcome, epochs_saved, replay_curve, replay_curves
from a4nn.engine.rules import Curve, Verdict, VerdictKind
from a4nn.engine.strategies import Strategy

__all__ = [
    "FAMILIES", "CurveFamily", "custom_family", "get_family", "register_family", "FitResult", "fit_curve",
    "CurvePrior", "Curve", "DEFAULT_STRATEGY", "STRATEGIES", "Decision", "Population", "PredictionEngine",
    "ReplayOutcome", "Strategy", "Verdict", "VerdictKind", "epochs_saved", "replay_curve", "replay_curves",
]
