"""The engines of one search share a population: full curves teach it, resume refills it."""
from __future__ import annotations

from pathlib import Path

import pytest
from test_supervision import make_candidate, metrics

from a4nn.engine import PredictionEngine, VerdictKind
from a4nn.engine.population import Population
from a4nn.engine.rules import Curve, NeverLearns, NeverLearnsSettings, PriorAgreement
from a4nn.engine.strategies import a4nn
from a4nn.search.engine_factory import EngineFactory, chance_band, population_from_database
from a4nn.search.evaluation import TrainSettings
from a4nn.search.supervision import EpochSupervisor
from _tiny import tiny_split

RISING = [50.0, 60.0, 66.0, 70.0, 72.0, 73.0]


def _train(recorder, factory: EngineFactory, index: int, curve: list[float], tmp_path: Path, epochs: int,
           search: str = "prior", flops: float | None = None):
    candidate = make_candidate(recorder, index=index, bits=(index % 2, 1, 0, 1, 1, 0, 1) * 3, search=search,
                               flops=flops)
    supervisor = EpochSupervisor(recorder, factory(), candidate, tmp_path, TrainSettings(epochs=epochs,
                                                                                        checkpoints="none"))
    for epoch, acc in enumerate(curve, start=1):
        if supervisor.on_metrics(metrics(epoch, acc)):
            break
    return candidate, supervisor.finish(1.0)


def test_engines_share_one_prior_and_only_full_curves_teach_it(recorder, tmp_path: Path) -> None:
    factory = EngineFactory("a4nn", epochs=6, r=0.5, prior_curves=2)
    first, second = factory(), factory()
    assert first.population is second.population is factory.population
    stops = {rule["rule"]: rule for rule in first.settings()["extra"]["stops"]}  # recorded in engine_configs
    assert stops["prior"]["min_curves"] == 2 and stops["hopeless"]["min_curves"] == 2

    _train(recorder, factory, 0, RISING, tmp_path, epochs=6)
    assert len(factory.population.curves) == 1 and list(factory.population.curves[0]) == RISING
    assert factory.population.traces[0] is not None  # the extrapolations it made, for calibration
    _train(recorder, factory, 1, RISING[:4], tmp_path, epochs=6)  # ran out of data: not complete
    assert len(factory.population.curves) == 1
    _train(recorder, factory, 2, [v + 5 for v in RISING], tmp_path, epochs=6)
    assert len(factory.population.curves) == 2


def test_a_warming_prior_forbids_stopping_a_plateau(recorder, tmp_path: Path) -> None:
    flat = [80.0, 85.0, 86.0, 86.1, 86.0, 86.1, 86.0, 86.1, 86.0, 86.1]
    cold = EngineFactory("a4nn", epochs=10, r=0.5, prior_curves=5)
    _, result = _train(recorder, cold, 0, flat, tmp_path, epochs=10)
    assert not result.terminated_early and result.epochs_trained == 10

    no_prior = EngineFactory("penguin", epochs=10, r=0.5)
    assert no_prior.population is None and no_prior().population is None
    assert EngineFactory("none", epochs=10, r=0.5)() is None


def test_resume_refills_the_prior_from_the_database(recorder, tmp_path: Path) -> None:
    factory = EngineFactory("a4nn", epochs=6, r=0.5, prior_curves=10)
    candidate, _ = _train(recorder, factory, 0, RISING, tmp_path, epochs=6, search="resumed")
    _train(recorder, factory, 1, RISING[:3], tmp_path, epochs=6, search="resumed")  # incomplete
    population = population_from_database(recorder.database, candidate.search_id, 6)
    assert population.curves == [RISING]

    fresh = EngineFactory("a4nn", epochs=6, r=0.5, prior_curves=10)
    assert fresh.teach(population) == 1 and len(fresh.population.curves) == 1
    assert EngineFactory("none", epochs=6, r=0.5).teach(population) == 0


CHANCE = [50.0] * 12
LEARNER = [50.0 + 3 * e for e in range(12)]


def _three_at_chance(recorder, factory: EngineFactory, tmp_path: Path, search: str, flops: float | None = None) -> None:
    """The warm-up: three networks at chance train to the end (the never-learns rule calibrates on them)."""
    for index in range(3):
        _, result = _train(recorder, factory, 10 + index, CHANCE, tmp_path, epochs=12, search=search, flops=flops)
        assert not result.terminated_early


def test_resume_restores_the_fitness_of_stopped_networks(recorder, tmp_path: Path) -> None:
    """The contender rule ranks a network among every finished one, stopped ones included, after a resume too."""
    live = EngineFactory("a4nn", epochs=12, r=0.5, chance_band=(50.0, 50.0), prior_curves=3)
    _three_at_chance(recorder, live, tmp_path, "resumed-stop")
    candidate, result = _train(recorder, live, 0, CHANCE, tmp_path, epochs=12, search="resumed-stop")
    assert result.terminated_early  # dropped at chance by the never-learns rule
    _train(recorder, live, 1, LEARNER, tmp_path, epochs=12, search="resumed-stop")
    assert sorted(live.population.fitness.values()) == [50.0] * 4 + [83.0]

    population = population_from_database(recorder.database, candidate.search_id, 12)
    assert population.stopped_fitness == [50.0]
    fresh = EngineFactory("a4nn", epochs=12, r=0.5, chance_band=(50.0, 50.0), prior_curves=3)
    assert fresh.teach(population) == 4
    assert sorted(fresh.population.fitness.values()) == sorted(live.population.fitness.values())
    assert fresh.population.threshold(2) == live.population.threshold(2) == 50.0


def test_the_engine_learns_each_networks_mflops_and_resume_restores_them(recorder, tmp_path: Path) -> None:
    """The Pareto contender rule needs every finished network's cost, also after a resume."""
    live = EngineFactory("a4nn", epochs=12, r=0.5, chance_band=(50.0, 50.0), prior_curves=3)
    _three_at_chance(recorder, live, tmp_path, "costs", flops=9.0)
    candidate, result = _train(recorder, live, 0, CHANCE, tmp_path, epochs=12, search="costs", flops=2.5)
    assert result.terminated_early
    _train(recorder, live, 1, LEARNER, tmp_path, epochs=12, search="costs", flops=4.0)
    assert sorted(live.population.costs.values()) == [2.5, 4.0, 9.0, 9.0, 9.0]

    population = population_from_database(recorder.database, candidate.search_id, 12)
    assert population.curve_costs == [9.0, 9.0, 9.0, 4.0] and population.stopped_costs == [2.5]
    fresh = EngineFactory("a4nn", epochs=12, r=0.5, chance_band=(50.0, 50.0), prior_curves=3)
    assert fresh.teach(population) == 4
    assert sorted(zip(fresh.population.fitness.values(), fresh.population.costs.values())) == sorted(
        zip(live.population.fitness.values(), live.population.costs.values()))
    assert fresh.population.dominators(60.0, cost=5.0) == live.population.dominators(60.0, cost=5.0) == 1


def _rule(engine: PredictionEngine, kind: type):
    return next(rule for rule in engine.strategy.stops if isinstance(rule, kind))


def test_chance_band_of_an_unbalanced_split() -> None:
    data = tiny_split(n_val=16)
    data.val_y[:2] = 0  # 9 of class 0, 7 of class 1 -> always-0 scores 56.25 %, always-1 43.75 %
    assert chance_band(data) == (43.75, 56.25)
    never = _rule(EngineFactory("a4nn", epochs=6, r=0.5, chance_band=chance_band(data))(), NeverLearns)
    assert never.level == 50.0 and never.settings.tolerance == 8.25


def test_the_search_runs_the_same_a4nn_default_as_a_replay() -> None:
    """One default: the factory builds the strategy engine replay builds, from what it knows of the data."""
    engine = EngineFactory("a4nn", epochs=20, r=1.0, n_val=120, prior_curves=6)()
    assert engine.strategy.settings() == a4nn(r=1.0, n_val=120, min_curves=6).settings()
    assert engine.n == 3 and _rule(engine, PriorAgreement).settings.tolerance == pytest.approx(100 / 120)  # one image
    assert _rule(engine, NeverLearns).settings.min_curves == 6 and _rule(engine, NeverLearns).settings.overrulable
    assert [v["rule"] for v in engine.settings()["extra"]["vetoes"]] == [
        "pareto-contender", "top-contender", "audit", "error-budget"]
    assert engine.settings()["extra"]["vetoes"][-1]["target"] == 0.5  # the default error budget
    budget = EngineFactory("a4nn", epochs=20, r=1.0, n_val=120, prior_curves=6, error_target=2.0)()
    assert budget.settings()["extra"]["vetoes"][-1]["target"] == 2.0
    assert a4nn(n_val=400).settings() == a4nn().settings()  # a large validation set keeps the half-point budget
    penguin = EngineFactory("penguin", epochs=20, r=1.0, n_val=120)()
    assert penguin.n == 3 and [r["rule"] for r in penguin.settings()["extra"]["stops"]] == ["extrapolation"]


def _teach(factory: EngineFactory, curves: list[list[float]]) -> None:
    for curve in curves:
        engine = factory()
        for t, v in enumerate(curve, 1):
            engine.observe(t, v)
        assert engine.complete()


def test_a_network_at_chance_is_dropped_after_the_engines_own_guard() -> None:
    """Once finished networks at chance show where chance ends, the guard is the engine's c_min + n = 6 epochs."""
    factory = EngineFactory("a4nn", epochs=20, r=1.0, chance_band=(50.0, 50.0), n_val=120, prior_curves=3)
    cold = factory()
    assert not any(cold.observe(t, 50.0).stop for t in range(1, 11))  # no finished network yet: nothing to go by
    _teach(factory, [[50.0] * 20] * 3)
    engine = factory()
    decisions = [engine.observe(t, 50.0) for t in range(1, 11)]
    assert [d.stop for d in decisions[:6]] == [False] * 5 + [True]
    assert decisions[5].rule == "never-learns" and decisions[5].kind is VerdictKind.STOP
    learner = factory()
    assert not any(learner.observe(t, v).stop for t, v in enumerate([50.0] * 5 + [62.0, 70.0, 76.0], 1))


def test_the_never_learns_guard_waits_past_the_latest_late_learner() -> None:
    """A finished network that sat at chance for 8 epochs and then learned moves the guard to epoch 9."""
    rule = NeverLearns(NeverLearnsSettings(level=50.0, tolerance=2.0, min_epochs=6, min_curves=3, budget=1.0))
    population = Population(length=20)
    late = [50.0] * 8 + [60.0 + t for t in range(12)]
    for curve in [[50.0] * 20] * 40 + [late]:
        population.add_curve(curve)
    fired = [rule.decide(Curve(length=20, values=[50.0] * t), population) is not None for t in range(1, 12)]
    assert fired.index(True) == 8  # the 9th observation, past the late learner's 8


def test_a_late_learner_among_few_networks_at_chance_keeps_the_rule_silent() -> None:
    """The rule of succession: after 3 networks at chance and one that learned late, the next may learn too."""
    rule = NeverLearns(NeverLearnsSettings(level=50.0, tolerance=2.0, min_epochs=6, min_curves=3, budget=1.0))
    population = Population(length=20)
    for curve in [[50.0] * 20] * 3 + [[50.0] * 8 + [60.0 + t for t in range(12)]]:
        population.add_curve(curve)
    # expected error >= 21 points (the late learner's gain) x 1 / (3 + 2) = 4.2 > the 1-point budget
    assert all(rule.decide(Curve(length=20, values=[50.0] * t), population) is None for t in range(1, 20))
