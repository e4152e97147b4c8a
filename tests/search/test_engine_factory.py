"""The engines of one search share a population prior: full curves teach it, resume refills it."""
from __future__ import annotations

from pathlib import Path

from test_supervision import make_candidate, metrics

from a4nn.search.engine_factory import EngineFactory, chance_band, prior_curves_from_database
from a4nn.search.evaluation import TrainSettings
from a4nn.search.supervision import EpochSupervisor
from _tiny import tiny_split

RISING = [50.0, 60.0, 66.0, 70.0, 72.0, 73.0]


def _train(recorder, factory: EngineFactory, index: int, curve: list[float], tmp_path: Path, epochs: int,
           search: str = "prior"):
    candidate = make_candidate(recorder, index=index, bits=(index % 2, 1, 0, 1, 1, 0, 1) * 3, search=search)
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
    curves = prior_curves_from_database(recorder.database, candidate.search_id, 6)
    assert curves == [RISING]

    fresh = EngineFactory("a4nn", epochs=6, r=0.5, prior_curves=10)
    assert fresh.teach(curves) == 1 and len(fresh.prior.curves) == 1
    assert EngineFactory("none", epochs=6, r=0.5).teach(curves) == 0


def test_chance_band_of_an_unbalanced_split() -> None:
    data = tiny_split(n_val=16)
    data.val_y[:2] = 0  # 9 of class 0, 7 of class 1 -> always-0 scores 56.25 %, always-1 43.75 %
    assert chance_band(data) == (43.75, 56.25)
    engine = EngineFactory("a4nn", epochs=6, r=0.5, chance_band=chance_band(data))()
    assert engine.chance_level == 50.0 and engine.chance_tolerance == 8.25
