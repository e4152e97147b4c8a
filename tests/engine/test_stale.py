"""The stale rule (no new best for ``patience`` epochs, Optuna's patience test), calibrated on the
search's finished curves, and the upper error estimate its calibration reports."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from a4nn.engine.population import Population
from a4nn.engine.rules import Stale, StaleSettings, VerdictKind, _calibration, _stale_stops
from a4nn.engine.strategies import a4nn
from tests.engine.test_stuck_and_bounds import LENGTH, _curve


def _resting(n: int, seed: int = 0, late_gains: tuple[float, ...] = (0.0,)) -> Population:
    """Networks that climb to about 80 by epoch 6 and then wobble around it (±1 point); the i-th climbs
    again by ``late_gains[i % len(late_gains)]`` points over the last five epochs."""
    rng = np.random.default_rng(seed)
    population = Population(length=LENGTH)
    for i in range(n):
        rise = list(np.linspace(60.0, 80.0, 6))
        rest = list(80.0 + rng.uniform(-1.0, 1.0, LENGTH - 6))
        curve = np.asarray(rise + rest)
        gain = late_gains[i % len(late_gains)]
        curve[-5:] += np.linspace(gain / 5, gain, 5)
        population.add_curve(curve)
    return population


def test_stale_stops_are_the_first_count_whose_best_is_patience_epochs_old() -> None:
    scores = np.array([[1.0, 2.0, 3.0, 3.0, 3.0, 3.0, 2.0, 5.0, 4.0, 4.0],   # best 3 at the 3rd; a tie is no new best
                       [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0],  # always climbing
                       [5.0, np.nan, 4.0, 4.0, 4.0, 1.0, 1.0, 1.0, 1.0, 1.0]])  # NaN counts as no new best
    stops, best = _stale_stops(scores, patience=3, start=4)
    assert stops.tolist() == [6, 0, 4]
    assert best[0].tolist() == [1.0, 2.0, 3.0, 3.0, 3.0, 3.0, 3.0, 5.0, 5.0, 5.0]
    # a later start waits for it: the first row set a new best at the 8th, so it never stalls again
    assert _stale_stops(scores, patience=3, start=8)[0].tolist() == [0, 0, 8]


def test_the_upper_error_adds_the_standard_error_and_is_unknown_from_one_curve() -> None:
    handed, finals = [80.0, 80.0, 80.0, 80.0], [81.0, 79.0, 80.0, 84.0]
    plain = _calibration((4,), handed, finals, saved=10.0)
    upper = _calibration((4,), handed, finals, saved=10.0, upper=True)
    deviation = np.abs(np.asarray(finals) - 80.0 - plain.bias)
    assert plain.bias == 0.5 and plain.error == pytest.approx(deviation.mean())
    assert upper.error == pytest.approx(deviation.mean() + deviation.std(ddof=1) / 2.0)
    assert math.isinf(_calibration((4,), [80.0], [81.0], saved=1.0, upper=True).error)


def test_a_calibrated_stale_network_stops_at_its_best_corrected_by_the_finished_curves() -> None:
    population = _resting(20)
    rule = Stale(StaleSettings(patience=(4, 6), budget=1.5, min_curves=10))
    calibrated = rule.calibration(population, maximize=True)
    assert calibrated is not None and calibrated.setting in {(4,), (6,)}
    patience = calibrated.setting[0]
    stalled = [60.0, 64.0, 68.0, 72.0, 76.0, 80.9] + [80.0] * patience  # best 80.9, then no new best
    verdict = rule.decide(_curve(stalled), population)
    assert verdict is not None and verdict.kind is VerdictKind.STOP
    assert verdict.fitness == pytest.approx(80.9 + calibrated.bias)
    assert verdict.error == calibrated.error < 1.5
    # one epoch short of the patience: no stop
    assert rule.decide(_curve(stalled[:-1]), population) is None
    # too few finished networks to calibrate on: no stop
    assert rule.decide(_curve(stalled), _resting(5)) is None


def test_no_patience_is_trusted_where_the_finished_networks_climbed_again_after_resting() -> None:
    """Half the finished networks rested and then gained 8 points at the end: whatever the median
    correction, a stale stop misses by about 4 points, so no patience stays within the budget."""
    population = _resting(20, late_gains=(0.0, 8.0))
    rule = Stale(StaleSettings(patience=(4, 6), budget=0.5, min_curves=10))
    assert rule.calibration(population, maximize=True) is None
    assert rule.decide(_curve([60.0, 64.0, 68.0, 72.0, 76.0, 80.9] + [80.0] * 6), population) is None


def test_an_uncalibrated_stale_rule_stops_a_lone_engine_at_its_first_patience() -> None:
    rule = Stale(StaleSettings(patience=(3,), calibrate=False))
    verdict = rule.decide(_curve([60.0, 70.0, 75.0, 74.0, 75.0, 73.0]), None)
    assert verdict is not None and verdict.fitness == 75.0 and math.isinf(verdict.error)
    assert rule.decide(_curve([60.0, 70.0, 75.0, 74.0, 76.0, 73.0]), None) is None  # a new best 2 epochs ago


def test_a_stale_network_at_chance_is_left_to_the_never_learns_rule() -> None:
    rule = Stale(StaleSettings(patience=(3,), calibrate=False, floor=52.0))
    assert rule.decide(_curve([50.0, 51.0, 50.0, 50.0, 49.0, 50.0]), None) is None
    assert rule.decide(_curve([50.0, 60.0, 58.0, 59.0, 57.0, 58.0]), None) is not None


def test_the_default_ends_with_a_calibrated_stale_rule_above_chance_judged_at_its_reach() -> None:
    strategy = a4nn(n_classes=5, n_val=200, min_curves=7)
    stale, plateau = strategy.stops[-1], strategy.stops[-2]
    assert stale.name == "stale" and plateau.name == "plateau"
    assert stale.settings.calibrate and stale.settings.bound_rank > 0 and stale.settings.min_curves == 7
    assert stale.settings.floor == plateau.settings.floor > 20.0
    assert stale.settings.budget == 4 * plateau.settings.budget  # twice the per-stop budget


def test_the_default_settings_read_back_from_json_equal_a_fresh_engines() -> None:
    """engine_configs stores JSON: a tuple of patiences must not make stored and rebuilt settings differ
    (search_ab_seeds.py replays only where they are equal)."""
    settings = a4nn(n_classes=2, n_val=120).settings()
    assert json.loads(json.dumps(settings)) == settings
    stale = next(rule for rule in settings["stops"] if rule["rule"] == "stale")
    assert stale["patience"] == [4, 6, 9]
