"""The Pareto-aware contender rule: with costs, a network keeps training while it could join the front.

A NAS with a FLOPs objective keeps non-dominated networks, so with the Pareto veto and a
cost given through ``reset(cost=...)`` it counts the finished networks that beat the
network's optimistic accuracy at no more cost, instead of ranking accuracy alone.
"""
from __future__ import annotations

import pytest

import math

from a4nn.engine import Curve, Population, PredictionEngine, Strategy, Verdict, VerdictKind, replay_curves
from a4nn.engine.rules import (ParetoContender, ParetoContenderSettings, PriorAgreement, PriorSettings, TopContender,
                               TopContenderSettings)

from tests.engine.test_engine_contender import noisy_curve, run


def pareto_strategy(k: int = 1, z: float = 1.5) -> Strategy:
    """The prior's stops under the Pareto veto, and the top-10 veto where the cost is unknown."""
    return Strategy("prior-pareto", stops=(PriorAgreement(PriorSettings(tolerance=0.8)),),
                    vetoes=(ParetoContender(ParetoContenderSettings(k=k, z=z)),
                            TopContender(TopContenderSettings(k=10, z=z))))


def priced_population(n: int = 20) -> Population:
    """Finals 85.0 ... 86.8 (twice each); the better a network, the more it costs (10 + final - 85)."""
    prior = Population(length=25)
    for seed in range(n):
        final = 85.0 + 0.2 * (seed % 10)
        assert prior.add_curve(noisy_curve(final, seed), cost=10.0 + (final - 85.0))
    return prior


def test_dominators_counts_networks_better_in_both_objectives() -> None:
    prior = Population(length=3)
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
    cheap = PredictionEngine(strategy=pareto_strategy(), population=priced_population())
    cheap.reset(cost=1.0)
    decisions = run(cheap, curve)
    assert not any(d.stop for d in decisions)
    assert any(d.kind is VerdictKind.KEEP and d.rule == "pareto-contender" for d in decisions)

    # the same curve at the highest cost is dominated by the whole population: it stops
    prior = priced_population()
    costly = PredictionEngine(strategy=pareto_strategy(), population=prior)
    costly.reset(cost=50.0)
    decisions = run(costly, curve)
    assert decisions[-1].stop and len(decisions) < 20
    assert prior.costs[costly._key] == 50.0 and prior.fitness[costly._key] == pytest.approx(decisions[-1].prediction)


def test_without_a_cost_or_the_pareto_veto_the_rule_ranks_accuracy_alone() -> None:
    curve = noisy_curve(86.8, 1234)  # the best accuracy so far: a top-10 contender
    top_only = Strategy("prior-top", stops=pareto_strategy().stops,
                        vetoes=(TopContender(TopContenderSettings(k=10, z=1.5, with_cost=True)),))
    for engine, cost in ((PredictionEngine(strategy=pareto_strategy(), population=priced_population()), None),
                         (PredictionEngine(strategy=top_only, population=priced_population()), 1e6)):
        engine.reset(cost=cost)
        decisions = run(engine, curve)
        assert not any(d.stop for d in decisions)
        assert any(d.rule == "top-contender" and "top-10" in d.reason for d in decisions)


def test_settings_and_replay_carry_the_rule() -> None:
    vetoes = PredictionEngine(strategy=pareto_strategy()).settings()["extra"]["vetoes"]
    assert vetoes[0] == {"rule": "pareto-contender", "k": 1, "z": 1.5}
    curves = [noisy_curve(85.0 + 0.2 * (i % 10), i) for i in range(30)]
    costs = [10.0 + 0.2 * (i % 10) for i in range(30)]
    settings = {"strategy": pareto_strategy()}
    prior = Population(length=25)
    outcomes = replay_curves(curves, settings, population=prior, costs=costs)
    assert len(outcomes) == 30 and set(prior.costs.values()) == set(costs)
    assert any(o.stopped for o in outcomes)
    with pytest.raises(ValueError, match="2 costs for 30 curves"):
        replay_curves(curves, settings, population=Population(length=25), costs=costs[:2])


@pytest.mark.parametrize("z, is_contender", [(1.5, True), (1.0, False)])
def test_the_margin_is_z_expected_errors(z: float, is_contender: bool) -> None:
    """A stop at 89 with expected error 0.8 against a finished 90 % network that is cheaper:
    at 1.5 errors the optimistic 90.2 is not dominated (keep training), at 1.0 the 89.8 is."""
    prior = Population(length=3)
    prior.record_fitness(prior.new_key(), 90.0, cost=5.0)
    curve = Curve(length=3, cost=6.0, proposal=Verdict(VerdictKind.STOP, "prior", 89.0, 0.8))
    answer = ParetoContender(ParetoContenderSettings(k=1, z=z)).decide(curve, prior)
    assert (answer is not None) == is_contender
    if is_contender:
        assert answer.kind is VerdictKind.KEEP and "90.200" in answer.reason


def test_an_unknown_error_is_always_a_contender_and_a_bound_replaces_the_margin() -> None:
    prior = Population(length=3)
    prior.record_fitness(prior.new_key(), 90.0, cost=5.0)
    veto = ParetoContender(ParetoContenderSettings(k=1, z=1.0))
    unknown = Curve(length=3, cost=6.0, proposal=Verdict(VerdictKind.STOP, "plateau", 70.0, math.inf))
    assert veto.decide(unknown, prior).kind is VerdictKind.KEEP
    bounded = Curve(length=3, cost=6.0, proposal=Verdict(VerdictKind.STOP, "hopeless", 70.0, math.inf, optimistic=85.0))
    assert veto.decide(bounded, prior) is None
