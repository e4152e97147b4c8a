"""The stuck rule, the bound the contender vetoes judge an extrapolation stop at, and the hopeless
rule's allowance for a late learner: each decides on what the finished networks showed."""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from a4nn.engine.population import Population
from a4nn.engine.rules import (Curve, ExtrapolationAgreement, ExtrapolationSettings, Hopeless, HopelessSettings,
                               Plateau, PlateauSettings, Stuck, StuckSettings, TopContender, TopContenderSettings,
                               VerdictKind, reachable)
from a4nn.engine.strategies import a4nn

LENGTH = 20


def _curve(values: list[float]) -> Curve:
    curve = Curve(length=LENGTH)
    curve.values = list(values)
    curve.epochs = [float(i + 1) for i in range(len(values))]
    return curve


def _stuck_then(final: float, escape_at: int = 12) -> list[float]:
    """A network answering one class (50 %) that, where ``final`` differs, learns from ``escape_at`` on."""
    return [50.0] * escape_at + list(np.linspace(50.0, final, LENGTH - escape_at + 1)[1:])


def _learners(n: int, seed: int = 0) -> list[list[float]]:
    rng = np.random.default_rng(seed)
    return [list(70 + 10 * (1 - np.exp(-np.arange(1, LENGTH + 1) / 3)) + rng.normal(0, 0.05, LENGTH)) for _ in range(n)]


def test_a_stuck_network_stops_at_its_value_when_the_stuck_networks_before_it_stayed() -> None:
    population = Population(length=LENGTH)
    for curve in _learners(10) + [_stuck_then(50.0) for _ in range(30)]:
        population.add_curve(curve)
    rule = Stuck(StuckSettings(width=0.4))
    verdict = rule.decide(_curve([52.0, 50.0, 50.0, 50.0, 50.0, 50.0, 50.0, 50.0]), population)
    assert verdict is not None and verdict.kind is VerdictKind.STOP and verdict.rule == "stuck"
    assert verdict.fitness == 50.0
    # 30 alike that stayed: the pseudo-escape (to the learners' ~80 %) shrinks to about 30 / 32 points
    assert 0.5 < verdict.error < 1.5
    # a curve that moved by more than one answer in the last 4 epochs is not stuck
    assert rule.decide(_curve([50.0] * 6 + [51.0, 50.0]), population) is None


def test_a_stuck_network_whose_kind_escaped_carries_the_escape_in_its_error() -> None:
    stayed, escaped = Population(length=LENGTH), Population(length=LENGTH)
    for curve in _learners(10):
        stayed.add_curve(curve)
        escaped.add_curve(curve)
    for i in range(12):
        stayed.add_curve(_stuck_then(50.0))
        escaped.add_curve(_stuck_then(80.0 if i % 3 == 0 else 50.0))  # a third of them learned later
    probe = _curve([50.0] * 8)
    rule = Stuck(StuckSettings(width=0.4))
    calm, risky = rule.decide(probe, stayed), rule.decide(probe, escaped)
    assert calm is not None and risky is not None
    assert risky.error > 3 * calm.error and risky.error > 5.0  # 4 of 12 moved 30 points
    # too few networks were ever stuck at this epoch: no verdict
    few = Population(length=LENGTH)
    for curve in _learners(10) + [_stuck_then(50.0)] * 2:
        few.add_curve(curve)
    assert rule.decide(probe, few) is None


def _climbers(gains: list[float]) -> Population:
    """Complete curves that sat at 80 % until epoch 10 and then gained ``gains``."""
    population = Population(length=LENGTH)
    for gain in gains:
        population.add_curve([80.0] * 10 + list(np.linspace(80.0, 80.0 + gain, LENGTH - 10 + 1)[1:]))
    return population


def _below_the_top() -> Population:
    """Five complete curves that sat at 80 % until epoch 10 and ended at 83-88, and five stopped networks
    at 70-74: the top 10 % (1 of 10) is 88."""
    population = _climbers([3.0, 4.0, 5.0, 6.0, 8.0])
    for key, value in enumerate([70.0, 71.0, 72.0, 73.0, 74.0]):
        population.record_fitness(1000 + key, value)
    return population


def _kept_by_top_contender(curve: Curve, population: Population, verdict) -> bool:
    """Whether the top-10 % veto (z = 2) keeps training a network a rule proposed to stop with ``verdict``,
    its expected error set to 0.3 points (as calibrated on the finished curves)."""
    curve.proposal = replace(verdict, error=0.3)
    try:
        answer = TopContender(TopContenderSettings(z=2.0)).decide(curve, population)
    finally:
        curve.proposal = None
    return answer is not None and answer.kind is VerdictKind.KEEP


def test_reachable_adds_the_rank_th_largest_gain_seen_from_this_epoch() -> None:
    population = _climbers([1.0, 2.0, 3.0, 4.0, 15.0])
    curve = _curve([75.0, 78.0, 79.0, 80.0, 80.0, 80.0, 80.0, 80.0, 80.0, 80.0])
    assert reachable(curve, population, rank=1) == 95.0  # the one late learner
    assert reachable(curve, population, rank=3) == 83.0  # all but two of the five
    assert reachable(curve, None) is None
    # a finished curve with no finite value by this epoch (NaN points are tolerated) could have gained anything
    population.add_curve([float("nan")] * 10 + [80.0] * 10)
    assert reachable(curve, population, rank=1) == 100.0


def test_an_extrapolation_stop_of_a_climbing_network_near_the_top_is_vetoed() -> None:
    """A settled run of extrapolations below the top, on a network that could still climb past it."""
    population = _below_the_top()
    curve = _curve([80.0] * 10)
    curve.predictions = [80.5] * 10  # the fit has settled at 80.5; the top 10 % (1 of 10) is 88
    bounded = ExtrapolationAgreement(ExtrapolationSettings(n=3, r=0.5, bound_rank=1)).decide(curve, population)
    bare = ExtrapolationAgreement(ExtrapolationSettings(n=3, r=0.5, bound_rank=0)).decide(curve, population)
    assert bounded is not None and bare is not None and bounded.fitness == bare.fitness == 80.5
    assert bounded.optimistic == 88.0 and bare.optimistic is None
    assert _kept_by_top_contender(curve, population, bounded)  # 80 + the 8 points a finished network gained reach 88
    assert not _kept_by_top_contender(curve, population, bare)  # 80.5 + 2 x 0.3 does not


def test_a_plateau_stop_of_a_network_resting_below_the_top_is_judged_at_what_it_could_reach() -> None:
    """A network resting at 80 for four epochs, where finished networks gained up to 8 points from here."""
    population = _below_the_top()
    curve = _curve([70.0, 75.0, 78.0, 80.0, 80.0, 80.0, 80.0, 80.0, 80.0, 80.0])
    settings = PlateauSettings(n=4, radius=0.25, calibrate=False)
    bounded = Plateau(replace(settings, bound_rank=1)).decide(curve, population)
    bare = Plateau(replace(settings, bound_rank=0)).decide(curve, population)
    assert bounded is not None and bare is not None and bounded.fitness == bare.fitness == 80.0
    assert bounded.optimistic == 88.0 and bare.optimistic is None
    assert _kept_by_top_contender(curve, population, bounded) and not _kept_by_top_contender(curve, population, bare)
    # a lone engine has no finished curves to bound it with: the veto falls back to z expected errors
    assert Plateau(settings).decide(curve, None).optimistic is None


def test_the_default_has_a_calibrated_plateau_above_chance_judged_at_its_reach() -> None:
    strategy = a4nn(n_classes=5, n_val=200, min_curves=7)
    names = [rule.name for rule in strategy.stops]
    assert names == ["never-learns", "prior", "hopeless", "extrapolation", "plateau", "stale"]
    plateau, extrapolation = strategy.stops[-2], strategy.stops[-3]
    assert plateau.settings.calibrate and plateau.settings.bound_rank > 0 and plateau.settings.min_curves == 7
    assert plateau.settings.floor == extrapolation.settings.floor > 20.0  # above the five-class chance band
    assert plateau.settings.budget == extrapolation.settings.budget


def test_the_hopeless_error_allows_for_a_late_learner_the_first_networks_never_showed() -> None:
    """Ten fast learners ended at 90-99 %; a network at 53 % looks hopeless, but it may learn late."""
    population = Population(length=LENGTH)
    rng = np.random.default_rng(3)
    for i in range(10):
        final = 90.0 + i
        population.add_curve(list(final - (final - 60) * np.exp(-np.arange(1, LENGTH + 1) / 1.5)
                                  + rng.normal(0, 0.2, LENGTH)))
    rule = Hopeless(HopelessSettings(min_curves=10, min_epochs=6))
    low = rule.decide(_curve([50.0, 51.0, 52.0, 53.0, 53.0, 53.0]), population)
    assert low is not None and low.kind is VerdictKind.STOP
    # where the networks above it ended (~94.5 %) less its best, shared over n + 2 = 12 networks
    assert low.error > (94.0 - 53.0) / 12
