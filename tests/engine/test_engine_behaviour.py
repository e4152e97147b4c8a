"""Engine behaviour on synthetic curves and bad input."""
from __future__ import annotations

import math

import numpy as np
import pytest

from a4nn.engine import FAMILIES, PredictionEngine, custom_family, fit_curve, get_family, replay_curves
from a4nn.engine import VerdictKind
from a4nn.engine.replay import epochs_saved
from a4nn.engine.strategies import a4nn

EXPECTED_FAMILIES = {"a-b^(c-x)", "pow2", "pow3", "log2", "exp2", "exp3", "exp4", "expp3", "expd3", "vap3",
                     "mmf4", "wbl4", "ilog2", "janoschek"}


def saturating(n: int = 25, top: float = 95.0) -> list[float]:
    return [top - 40 * 0.7 ** x for x in range(n)]


def test_all_families_registered_and_fit_a_saturating_curve() -> None:
    assert EXPECTED_FAMILIES <= set(FAMILIES)
    x = np.arange(15, dtype=float)
    y = np.array(saturating(15))
    for name in EXPECTED_FAMILIES:
        family = get_family(name)
        result = fit_curve(family, x, y)
        if result.ok:  # a failed fit is allowed, but a successful one must describe the data
            assert result.residual < 10, (name, result)
    ok = fit_curve(get_family("a-b^(c-x)"), x, y)
    assert ok.ok and abs(ok.predict(get_family("a-b^(c-x)"), 25) - 95.0) < 0.5


def test_failed_fit_is_a_result_not_an_exception() -> None:
    family = get_family("a-b^(c-x)")
    result = fit_curve(family, np.arange(3.0), np.array([1.0, math.nan, 2.0]))
    assert not result.ok and math.isinf(result.predict(family, 25))


@pytest.mark.parametrize("strategy", ["penguin", "a4nn"])
def test_converges_and_stops_on_a_clean_curve(strategy: str) -> None:
    engine = PredictionEngine(strategy=strategy)
    decisions = [engine.observe(epoch + 1, value) for epoch, value in enumerate(saturating())]
    stops = [d for d in decisions if d.stop]
    assert stops, "a clean saturating curve must converge"
    assert stops[0].epoch < 25
    assert abs(stops[0].prediction - saturating()[-1]) < 1.5


def test_fewer_points_than_c_min_predict_inf() -> None:
    engine = PredictionEngine(strategy="penguin", c_min=3)
    for epoch in range(1, 4):
        decision = engine.observe(epoch, 50 + epoch)
        assert math.isinf(decision.prediction) and not decision.stop


def test_nan_and_inf_values_are_ignored_without_crashing() -> None:
    engine = PredictionEngine()
    for epoch, value in enumerate([50, math.nan, 60, math.inf, 70, 75, 78], start=1):
        decision = engine.observe(epoch, value)
    assert decision.reason != "non-finite value ignored"
    assert engine.observe(8, math.nan).reason == "non-finite value ignored"


def test_repeated_epoch_replaces_points() -> None:
    engine = PredictionEngine(strategy="penguin")
    for epoch in range(1, 6):
        engine.observe(epoch, 60 + epoch)
    engine.observe(3, 10.0)  # a retried worker re-reports epoch 3
    assert len(engine.predictions) == 3


def test_values_outside_bounds_never_converge() -> None:
    engine = PredictionEngine(strategy="penguin")
    decisions = [engine.observe(e, 150.0 + 0.001 * e) for e in range(1, 12)]
    assert not any(d.converged for d in decisions)


def test_never_learns_detector_stops_chance_level_networks() -> None:
    engine = PredictionEngine(strategy="a4nn")  # two classes: chance is 50 %
    decisions = [engine.observe(e, 50.0 + (-1) ** e * 0.5) for e in range(1, 10)]
    # in the default the rule's verdict is a STOP the vetoes may overrule (audits, the error budget)
    assert any(d.stop and d.rule == "never-learns" and d.kind is VerdictKind.STOP for d in decisions)
    from a4nn.engine.rules import NeverLearns, NeverLearnsSettings
    from a4nn.engine.strategies import Strategy

    strict = PredictionEngine(strategy=Strategy("never", stops=(NeverLearns(NeverLearnsSettings(overrulable=False)),)))
    decisions = [strict.observe(e, 50.0 + (-1) ** e * 0.5) for e in range(1, 10)]
    assert any(d.stop and d.kind is VerdictKind.DROP for d in decisions)  # out of the race: no veto asked
    ten = PredictionEngine(strategy=a4nn(n_classes=10))  # ten classes: 50 % is learning, 10 % is chance
    assert not any(ten.observe(e, 50.0 + (-1) ** e * 0.5).stop for e in range(1, 10))
    ten = PredictionEngine(strategy=a4nn(n_classes=10))
    assert [ten.observe(e, 10.0 + (-1) ** e).stop for e in range(1, 7)] == [False] * 5 + [True]
    penguin = PredictionEngine(strategy="penguin")
    assert not any(penguin.observe(e, 50.0 + (-1) ** e * 0.5).stop for e in range(1, 7))


def test_loss_curves_are_supported() -> None:
    engine = PredictionEngine(metric="loss", strategy="penguin", r=0.05)
    losses = [0.1 + 2.0 * 0.6 ** x for x in range(25)]
    decisions = [engine.observe(e + 1, v) for e, v in enumerate(losses)]
    finite = [d.prediction for d in decisions if math.isfinite(d.prediction)]
    assert finite and all(p >= 0 for p in finite[-3:])
    assert abs(finite[-1] - 0.1) < 0.05


def test_user_callable_family() -> None:
    custom_family("linear-sat", lambda x, a, b: np.minimum(a, b * (x + 1)), ("a", "b"), (0, 0), (100, 100), (90, 10))
    engine = PredictionEngine(function="linear-sat", strategy="penguin")
    for epoch in range(1, 10):
        decision = engine.observe(epoch, min(90.0, 10.0 * epoch))
    assert decision.function == "linear-sat"


def test_unknown_strategy_and_family_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="strategy"):
        PredictionEngine(strategy="magic")
    with pytest.raises(KeyError, match="known"):
        PredictionEngine(function="nope")


def test_batch_replay_matches_serial() -> None:
    curves = [saturating(25, top) for top in (80.0, 90.0, 95.0, 99.0, 70.0)]
    serial = replay_curves(curves, {"strategy": "penguin"}, processes=1)
    parallel = replay_curves(curves, {"strategy": "penguin"}, processes=2)
    assert [o.fitness for o in serial] == pytest.approx([o.fitness for o in parallel])
    assert 0 < epochs_saved(serial, 25) < 1


def test_settings_round_trip_for_the_recorder(recorder) -> None:
    settings = PredictionEngine(strategy="penguin").settings()
    assert recorder.register_engine_config(**settings) == recorder.register_engine_config(**settings)
