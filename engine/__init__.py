"""Learning-curve prediction and early termination (pure numpy/scipy, no torch)."""
from a4nn.engine.families import FAMILIES, CurveFamily, custom_family, get_family, register_family
from a4nn.engine.fitting import FitResult, fit_curve
from a4nn.engine.prediction import DEFAULT_STRATEGY, STRATEGIES, Decision, PredictionEngine
from a4nn.engine.prior import CurvePrior
from a4nn.engine.replay import ReplayOutcome, epochs_saved, replay_curve, replay_curves

__all__ = [
    "FAMILIES", "CurveFamily", "custom_family", "get_family", "register_family", "FitResult", "fit_curve",
    "CurvePrior", "DEFAULT_STRATEGY", "STRATEGIES", "Decision", "PredictionEngine", "ReplayOutcome", "epochs_saved",
    "replay_curve", "replay_curves",
]
