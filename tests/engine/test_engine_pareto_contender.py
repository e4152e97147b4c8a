"""The Pareto-aware contender rule: with costs, a network keeps training while it could join the front.

A NAS with a FLOPs objective keeps non-dominated networks, so with ``pareto_contenders``
and a cost given through ``reset(cost=...)`` the rule counts the finished networks that
beat the network's optimistic accuracy at no more cost, instead of ranking accuracy alone.
"""
from __future__ import annotations

import pytest

from a4nn.engine import CurvePrior, PredictionEngine, replay_curves

from tests.engine.test_engine_contender import noisy_curve, run


def priced_population(n: int = 20) -> CurvePrior:
    """Finals 85.0 ... 86.8 (twice each); the better a network, the more it costs (10 + final - 85)."""
    prior = CurvePrior(length=25, min_curves=10)
    for seed in range(n):
        final = 85.0 + 0.2 * (seed % 10)
        assert prior.add_curve(noisy_curve(final, seed), cost=10.0 + (final - 85.0))
    return prior


def test_dominators_counts_networks_better_in_both_objectives() -> None:
    prior = CurvePrior(length=3, min_curves=1)
    prior.record_fitness(prior.new_key(), 90.0, cost=5.0)
    prior.record_fitness(prior.new_key(), 80.0, cost=1.0)
    prior.record_fitness(prior.new_key(), 95.0)  # no cost known: never counted
    assert prior.dominators(85.0, cost=6.0) == 1      # 90 @ 5 beats it; 80 @ 1 is less accurate
    assert prior.dominators(75.0, cost=6.0) == 2
    assert prior.dominators(90.0, cost=5.0) == 0      # equal in both: not dominated
    assert prior.dominators(90.0, cost=5.5) == 1      # as accurate but cheaper
    assert prior.dominators(75.0, cost=0.5) == 0      # cheapest of all: always on the front
    assert prior.dominators(0.5, cost=6.0, maximize=False) == 0  # a loss of 0.5 beats both "losses"


def test_a_cheap_network_is_a_contender_an_expensive_dominated_one_stops() -> None:
    curve = noisy_curve(85.0, 4321)  # the worst accuracy of the population
    # cheaper than every finished network: it would join the front at any accuracy
    cheap = PredictionEngine(prior=priced_population(), plateau_n=99, pareto_contenders=True, contender_k=1)
    cheap.reset(cost=1.0)
    decisions = run(cheap, curve)
    assert not any(d.stop for d in decisions)
    assert any("Pareto contender" in d.reason for d in decisions)

    # the same curve at the highest cost is dominated by the whole population: it stops
    prior = priced_population()
    costly = PredictionEngine(prior=prior, plateau_n=99, pareto_contenders=True, contender_k=1)
    costly.reset(cost=50.0)
    decisions = run(costly, curve)
    assert decisions[-1].stop and len(decisions) < 20
    assert prior.costs[costly._key] == 50.0 and prior.fitness[costly._key] == pytest.approx(decisions[-1].prediction)


def test_without_a_cost_or_the_flag_the_rule_ranks_accuracy_alone() -> None:
    curve = noisy_curve(86.8, 1234)  # the best accuracy so far: a top-10 contender
    for engine in (PredictionEngine(prior=priced_population(), plateau_n=99, pareto_contenders=True),
                   PredictionEngine(prior=priced_population(), plateau_n=99)):
        engine.reset(cost=1e6 if not engine.pareto_contenders else None)
        decisions = run(engine, curve)
        assert not any(d.stop for d in decisions)
        assert any("contender for the top-10" in d.reason for d in decisions)


def test_settings_and_replay_carry_the_rule() -> None:
    assert PredictionEngine(pareto_contenders=True, prior=CurvePrior()).settings()["extra"]["prior"][
        "pareto_contenders"] is True
    curves = [noisy_curve(85.0 + 0.2 * (i % 10), i) for i in range(30)]
    costs = [10.0 + 0.2 * (i % 10) for i in range(30)]
    settings = {"strategy": "a4nn", "pareto_contenders": True, "contender_k": 1}
    prior = CurvePrior(length=25, min_curves=10)
    outcomes = replay_curves(curves, settings, prior=prior, costs=costs)
    assert len(outcomes) == 30 and set(prior.costs.values()) == set(costs)
    assert any(o.stopped for o in outcomes)
    with pytest.raises(ValueError, match="2 costs for 30 curves"):
        replay_curves(curves, settings, prior=CurvePrior(length=25), costs=costs[:2])


@pytest.mark.parametrize("z, is_contender", [(1.5, True), (1.0, False)])
def test_the_margin_is_contender_z_held_out_errors(z: float, is_contender: bool) -> None:
    """Estimate 89 with held-out error 0.8 against a finished 90 % network that is cheaper:
    at 1.5 errors the optimistic 90.2 is not dominated (keep training), at 1.0 the 89.8 is."""
    prior = CurvePrior(length=3, min_curves=1)
    prior.record_fitness(prior.new_key(), 90.0, cost=5.0)
    engine = PredictionEngine(prior=prior, pareto_contenders=True, contender_k=1, contender_z=z)
    engine.reset(cost=6.0)
    why = engine._contender(89.0, 0.8)
    assert (why is not None) == is_contender
    if is_contender:
        assert "Pareto contender" in why and "± 1.200" in why
