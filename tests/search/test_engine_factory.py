"""The engines of one search share a population prior: full curves teach it, resume refills it."""
from __future__ import annotations

from pathlib import Path

import pytest
from test_supervision import make_candidate, metrics

from a4nn.engine import PredictionEngine
from a4nn.engine.prior import CurvePrior
from a4nn.search.engine_factory import EngineFactory, chance_band, population_from_database, search_knobs
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
    assert first.prior is second.prior is factory.prior and factory.prior.min_curves == 2
    assert first.settings()["extra"]["prior"]["min_curves"] == 2  # recorded in engine_configs

    _train(recorder, factory, 0, RISING, tmp_path, epochs=6)
    assert len(factory.prior.curves) == 1 and list(factory.prior.curves[0]) == RISING
    _train(recorder, factory, 1, RISING[:4], tmp_path, epochs=6)  # ran out of data: not complete
    assert len(factory.prior.curves) == 1
    _train(recorder, factory, 2, [v + 5 for v in RISING], tmp_path, epochs=6)
    assert factory.prior.ready


def test_a_warming_prior_forbids_stopping_a_plateau(recorder, tmp_path: Path) -> None:
    flat = [80.0, 85.0, 86.0, 86.1, 86.0, 86.1, 86.0, 86.1, 86.0, 86.1]
    cold = EngineFactory("a4nn", epochs=10, r=0.5, prior_curves=5)
    _, result = _train(recorder, cold, 0, flat, tmp_path, epochs=10)
    assert not result.terminated_early and result.epochs_trained == 10

    no_prior = EngineFactory("penguin", epochs=10, r=0.5)
    assert no_prior.prior is None and no_prior().prior is None
    assert EngineFactory("none", epochs=10, r=0.5)() is None


def test_resume_refills_the_prior_from_the_database(recorder, tmp_path: Path) -> None:
    factory = EngineFactory("a4nn", epochs=6, r=0.5, prior_curves=10)
    candidate, _ = _train(recorder, factory, 0, RISING, tmp_path, epochs=6, search="resumed")
    _train(recorder, factory, 1, RISING[:3], tmp_path, epochs=6, search="resumed")  # incomplete
    population = population_from_database(recorder.database, candidate.search_id, 6)
    assert population.curves == [RISING]

    fresh = EngineFactory("a4nn", epochs=6, r=0.5, prior_curves=10)
    assert fresh.teach(population) == 1 and len(fresh.prior.curves) == 1
    assert EngineFactory("none", epochs=6, r=0.5).teach(population) == 0


def test_resume_restores_the_fitness_of_stopped_networks(recorder, tmp_path: Path) -> None:
    """The contender rule ranks a network among every finished one, stopped ones included, after a resume too."""
    live = EngineFactory("a4nn", epochs=12, r=0.5, chance_band=(50.0, 50.0), prior_curves=10)
    candidate, result = _train(recorder, live, 0, [50.0] * 12, tmp_path, epochs=12, search="resumed-stop")
    assert result.terminated_early  # dropped at chance by the never-learns rule
    _train(recorder, live, 1, [50.0 + 3 * e for e in range(12)], tmp_path, epochs=12, search="resumed-stop")
    assert sorted(live.prior.fitness.values()) == [50.0, 83.0]

    population = population_from_database(recorder.database, candidate.search_id, 12)
    assert population.stopped_fitness == [50.0]
    fresh = EngineFactory("a4nn", epochs=12, r=0.5, chance_band=(50.0, 50.0), prior_curves=10)
    assert fresh.teach(population) == 1
    assert sorted(fresh.prior.fitness.values()) == sorted(live.prior.fitness.values())
    assert fresh.prior.threshold(2) == live.prior.threshold(2) == 50.0


def test_the_engine_learns_each_networks_mflops_and_resume_restores_them(recorder, tmp_path: Path) -> None:
    """The Pareto contender rule needs every finished network's cost, also after a resume."""
    live = EngineFactory("a4nn", epochs=12, r=0.5, chance_band=(50.0, 50.0), prior_curves=10)
    candidate, result = _train(recorder, live, 0, [50.0] * 12, tmp_path, epochs=12, search="costs", flops=2.5)
    assert result.terminated_early
    _train(recorder, live, 1, [50.0 + 3 * e for e in range(12)], tmp_path, epochs=12, search="costs", flops=4.0)
    assert sorted(live.prior.costs.values()) == [2.5, 4.0]

    population = population_from_database(recorder.database, candidate.search_id, 12)
    assert population.curve_costs == [4.0] and population.stopped_costs == [2.5]
    fresh = EngineFactory("a4nn", epochs=12, r=0.5, chance_band=(50.0, 50.0), prior_curves=10)
    assert fresh.teach(population) == 1
    assert sorted(zip(fresh.prior.fitness.values(), fresh.prior.costs.values())) == [(50.0, 2.5), (83.0, 4.0)]
    assert fresh.prior.dominators(60.0, cost=5.0) == live.prior.dominators(60.0, cost=5.0) == 1


def test_chance_band_of_an_unbalanced_split() -> None:
    data = tiny_split(n_val=16)
    data.val_y[:2] = 0  # 9 of class 0, 7 of class 1 -> always-0 scores 56.25 %, always-1 43.75 %
    assert chance_band(data) == (43.75, 56.25)
    engine = EngineFactory("a4nn", epochs=6, r=0.5, chance_band=chance_band(data))()
    assert engine.chance_level == 50.0 and engine.chance_tolerance == 8.25


def test_search_knobs_follow_the_validation_set() -> None:
    quick = search_knobs(n_val=120)
    assert quick["plateau_r"] == pytest.approx(100 / 120) and quick["prior_tolerance"] == pytest.approx(200 / 120)
    assert quick["hopeless_tolerance"] == pytest.approx(400 / 120)
    assert quick["pareto_contenders"] is True and quick["contender_k"] == 1  # the front, not a top-10
    assert quick["contender_z"] == 1.0  # one held-out MAE of optimism, not the top-10 rule's 1.5
    paper = search_knobs(n_val=400)  # a large validation set keeps the engine's own radii
    assert paper == {"pareto_contenders": True, "contender_k": 1, "contender_z": 1.0, "plateau_r": pytest.approx(0.25),
                     "prior_tolerance": 0.8, "hopeless_tolerance": 1.6}
    assert search_knobs() == {"pareto_contenders": True, "contender_k": 1, "contender_z": 1.0,
                              "hopeless_tolerance": 1.6}


def test_factory_engines_carry_the_search_knobs_and_record_them() -> None:
    engine = EngineFactory("a4nn", epochs=20, r=1.0, n_val=120)()
    assert engine.n == 3 and engine.plateau_r == pytest.approx(100 / 120) and engine.pareto_contenders
    extra = engine.settings()["extra"]
    assert extra["plateau_r"] == pytest.approx(100 / 120) and extra["prior"]["pareto_contenders"] is True
    assert extra["prior"]["hopeless_tolerance"] == pytest.approx(400 / 120)
    assert engine.contender_z == 1.0 and extra["prior"]["contender_z"] == 1.0
    penguin = EngineFactory("penguin", epochs=20, r=1.0, n_val=120)()
    assert penguin.n == 3 and penguin.plateau_r == 0.25  # the faithful PENGUIN rule is left alone


def test_a_network_at_chance_is_dropped_after_the_engines_own_guard() -> None:
    """With precise BatchNorm the search keeps the engine's c_min + n = 6 epochs at chance (no half-budget guard)."""
    engine = EngineFactory("a4nn", epochs=20, r=1.0, chance_band=(50.0, 50.0), n_val=120)()
    decisions = [engine.observe(t, 50.0) for t in range(1, 11)]
    assert [d.stop for d in decisions[:6]] == [False] * 5 + [True]
    assert decisions[5].reason == "never learns (chance level)"
    learner = EngineFactory("a4nn", epochs=20, r=1.0, chance_band=(50.0, 50.0), n_val=120)()
    assert not any(learner.observe(t, v).stop for t, v in enumerate([50.0] * 5 + [62.0, 70.0, 76.0], 1))
