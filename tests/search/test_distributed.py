"""The Ray evaluator: GPU slots on a CPU machine, streamed decisions, faults, Ctrl-C, direct writes.

All tests share one Ray instance (``ray_cluster`` in conftest, module-scoped: 2 CPUs, 2 logical
GPUs) and train 16-pixel images with C=4 for a couple of epochs.
"""
from __future__ import annotations

import _thread
import math
import threading
import time
from pathlib import Path

import pytest
import ray
from sqlalchemy import func, select

from a4nn.engine.prediction import Decision
from a4nn.lineage.database import Database
from a4nn.lineage.models import Architecture, Checkpoint, Epoch, Prediction, Search
from a4nn.lineage.recorder import Recorder
from a4nn.search.distributed import DistributedError, RayEvaluator, plan_slots
from a4nn.search.evaluation import Candidate, TrainSettings
from a4nn.search.ray_worker import DataSpec, FaultInjection

GENOMES = [
    (1, 0, 1, 0, 0, 1, 0) * 3,
    (0, 1, 1, 0, 1, 0, 1) * 3,
    (1, 1, 0, 1, 0, 0, 1) * 3,
    (0, 0, 0, 1, 1, 1, 0) * 3,
]


def tiny_settings(epochs: int = 2, checkpoints: str = "epoch") -> TrainSettings:
    return TrainSettings(epochs=epochs, batch_size=16, channels=4, n_nodes=4, seed=0, num_threads=1, device="auto",
                         checkpoints=checkpoints)


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> DataSpec:
    """40 simulated 16-pixel images, simulated once; workers load them by spec from the disk cache."""
    spec = DataSpec("xfel-sim", beam="high", n_images=40, image_size=16, seed=0,
                    cache_dir=str(tmp_path_factory.mktemp("xfel")))
    spec.load()
    return spec


class StopAtEpoch:
    """An engine stand-in with a known verdict: stop (converged on the last accuracy) at ``epoch``."""

    e_pred = 25.0

    def __init__(self, epoch: int):
        self.epoch = epoch

    def observe(self, epoch: float, value: float) -> Decision:
        stop = epoch >= self.epoch
        return Decision(stop=stop, prediction=value, converged=stop, params=None, fit_seconds=0.0,
                        function="test-stop", epoch=epoch)


def make_candidates(recorder: Recorder, n: int, generation: int = 0, search: str = "ray") -> list[Candidate]:
    dataset_id = recorder.register_dataset("tiny", "xfel-sim", {})
    search_id = recorder.start_search(search, "nsga-net-macro", dataset_id, None, {}, seed=0)
    candidates = []
    for index in range(n):
        bits = GENOMES[index % len(GENOMES)]
        genome_id = recorder.register_genome(list(bits))
        architecture_id = recorder.start_architecture(search_id, index=index, generation=generation,
                                                      genome_id=genome_id, train_params=tiny_settings().to_dict())
        candidates.append(Candidate(search_id, generation, index, bits, genome_id, architecture_id))
    return candidates


def epochs_of(database: Database, architecture_id: int) -> list[float]:
    with database.session() as session:
        return sorted(session.scalars(select(Epoch.epoch).where(Epoch.architecture_id == architecture_id)))


def architecture(database: Database, architecture_id: int) -> Architecture:
    with database.session() as session:
        return session.get(Architecture, architecture_id)


def test_slot_plan() -> None:
    assert plan_slots(2, {"CPU": 2.0, "GPU": 2.0}).resources == {"num_gpus": 1.0}
    assert plan_slots(None, {"CPU": 8.0}).kind == "cpu" and plan_slots(None, {"CPU": 8.0}).slots == 8
    assert plan_slots(2, {"CPU": 2.0, "GPU": 2.0}, slot="cpu").resources == {"num_cpus": 1.0}
    with pytest.raises(DistributedError, match="no GPUs"):
        plan_slots(2, {"CPU": 2.0}, slot="gpu")
    with pytest.raises(DistributedError, match="at least 1"):
        plan_slots(0, {"CPU": 2.0})


def test_gpu_slots_stream_epochs_and_stop_decisions(ray_cluster, database: Database, recorder: Recorder,
                                                    tiny_data: DataSpec, tmp_path: Path) -> None:
    candidates = make_candidates(recorder, 3)
    evaluator = RayEvaluator(recorder, lambda: StopAtEpoch(2), tiny_data, tiny_settings(epochs=3), workers=2,
                             run_dir=tmp_path)
    try:
        assert evaluator.plan.kind == "gpu" and not evaluator.owns_ray
        results = evaluator.evaluate(candidates)
    finally:
        evaluator.close()
    assert [r.candidate for r in results] == candidates  # results in the candidates' order
    assert evaluator.dispatched == [c.architecture_id for c in candidates]  # FIFO
    assert evaluator.max_inflight == 2
    for candidate, result in zip(candidates, results):
        info = evaluator.attempt_info[candidate.architecture_id]
        assert info["gpu_ids"] and info["device"] == "cpu"  # a logical GPU slot, trained on the CPU
        assert info["torch_threads"] == 1  # pinned in the worker (settings.num_threads)
        # the driver's stop verdict at epoch 2 reached the worker before its third epoch
        assert result.status == "stopped" and result.terminated_early and result.epochs_trained == 2
        assert epochs_of(database, candidate.architecture_id) == [1.0, 2.0]
        row = architecture(database, candidate.architecture_id)
        assert row.status == "stopped" and row.stop_epoch == 2 and math.isclose(row.fitness, result.fitness)
    with database.session() as session:
        assert session.scalar(select(func.count()).select_from(Prediction)) == 6
        assert session.scalar(select(func.count()).select_from(Checkpoint)) == 6  # every epoch, sha256 by driver
    stats = evaluator.stats[0]
    assert stats.candidates == 3 and stats.busy_seconds > 0 and stats.tail_idle_seconds > 0


def test_killed_worker_is_retried_and_failures_are_recorded(ray_cluster, database: Database, recorder: Recorder,
                                                            tiny_data: DataSpec, tmp_path: Path) -> None:
    candidates = make_candidates(recorder, 3)
    faults = [FaultInjection(generation=0, index=1, epoch=2, action="exit"),
              FaultInjection(generation=0, index=2, epoch=1, action="raise")]
    evaluator = RayEvaluator(recorder, lambda: None, tiny_data, tiny_settings(epochs=3, checkpoints="final"),
                             workers=2, run_dir=tmp_path, slot="cpu", faults=faults)
    try:
        results = evaluator.evaluate(candidates)
    finally:
        evaluator.close()
    healthy, killed, broken = results
    assert healthy.status == "completed" and epochs_of(database, candidates[0].architecture_id) == [1.0, 2.0, 3.0]
    # the process died after epoch 2 had been recorded; Ray retried it and the retry reported 1..3 again
    assert evaluator.retries == 1 and killed.status == "completed" and killed.epochs_trained == 3
    assert epochs_of(database, candidates[1].architecture_id) == [1.0, 2.0, 3.0]  # no duplicate rows
    assert evaluator.reports == 3 + 2 + 3 + 1  # duplicates did arrive
    assert broken.status == "failed" and "injected training failure at epoch 1" in broken.error
    row = architecture(database, candidates[2].architecture_id)
    assert row.status == "failed" and "injected" in row.error
    with database.session() as session:  # checkpoints="final": one per finished network
        assert session.scalar(select(func.count()).select_from(Checkpoint)) == 2


def test_results_are_collected_in_completion_order(ray_cluster, database: Database, recorder: Recorder,
                                                  tiny_data: DataSpec, tmp_path: Path) -> None:
    candidates = make_candidates(recorder, 2)
    # the first one dispatched is held after its first epoch; the second fails at its first: it must come back
    # first, and the held one only after it is released
    evaluator = RayEvaluator(recorder, lambda: None, tiny_data, tiny_settings(epochs=2, checkpoints="none"),
                             workers=2, run_dir=tmp_path, slot="cpu",
                             faults=[FaultInjection(0, 0, 1, action="hold"), FaultInjection(0, 1, 1, action="raise")])
    try:
        evaluator.submit(candidates)
        assert evaluator.busy == 2 and evaluator.queued == 0
        first: list = []
        deadline = time.time() + 90
        while not first and time.time() < deadline:
            first = evaluator.collect(timeout=1.0)
        assert [r.candidate.index for r in first] == [1] and first[0].status == "failed"
        assert evaluator.busy == 1 and evaluator.pending == 1
        FaultInjection.release_path(tmp_path, candidates[0].architecture_id).touch()
        (second,) = evaluator.collect()
    finally:
        evaluator.close()
    assert second.candidate.index == 0 and second.status == "completed" and second.epochs_trained == 2
    assert [entry["index"] for entry in evaluator.timeline] == [1, 0]


def test_worker_killed_from_outside_is_retried(ray_cluster, database: Database, recorder: Recorder,
                                               tiny_data: DataSpec, tmp_path: Path) -> None:
    """SIGKILL of the worker process mid-training (not the task's own os._exit): Ray retries, no duplicates."""
    import os
    import signal

    (candidate,) = make_candidates(recorder, 1)
    evaluator = RayEvaluator(recorder, lambda: None, tiny_data, tiny_settings(epochs=6, checkpoints="none"),
                             workers=1, run_dir=tmp_path, slot="cpu")
    killed: list[int] = []

    def kill_after_first_epoch() -> None:
        deadline = time.time() + 120
        while time.time() < deadline:
            info = evaluator.attempt_info.get(candidate.architecture_id)
            if info and epochs_of(database, candidate.architecture_id):
                os.kill(info["pid"], signal.SIGKILL)
                killed.append(info["pid"])
                return
            time.sleep(0.05)

    threading.Thread(target=kill_after_first_epoch, daemon=True).start()
    try:
        (result,) = evaluator.evaluate([candidate])
    finally:
        evaluator.close()
    assert killed and evaluator.retries == 1
    assert evaluator.attempt_info[candidate.architecture_id]["pid"] != killed[0]  # the retry ran elsewhere
    assert result.status == "completed" and result.epochs_trained == 6
    assert epochs_of(database, candidate.architecture_id) == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]


def test_retries_exhausted_is_a_failed_network(ray_cluster, database: Database, recorder: Recorder,
                                               tiny_data: DataSpec, tmp_path: Path) -> None:
    candidates = make_candidates(recorder, 1)
    evaluator = RayEvaluator(recorder, lambda: None, tiny_data, tiny_settings(epochs=1, checkpoints="none"),
                             workers=1, run_dir=tmp_path, slot="cpu", max_retries=0,
                             faults=[FaultInjection(0, 0, 1, action="exit")])
    try:
        (result,) = evaluator.evaluate(candidates)
    finally:
        evaluator.close()
    assert result.status == "failed" and "Worker" in result.error
    assert architecture(database, candidates[0].architecture_id).status == "failed"


def test_direct_writes_need_postgresql(ray_cluster, recorder: Recorder, tiny_data: DataSpec) -> None:
    if recorder.database.dialect == "postgresql":
        pytest.skip("checks the SQLite refusal")
    with pytest.raises(DistributedError, match="PostgreSQL"):
        RayEvaluator(recorder, lambda: None, tiny_data, tiny_settings(), workers=2, direct_writes=True)


def test_direct_writes_to_postgresql(ray_cluster, postgres_schema_url: str, tiny_data: DataSpec,
                                     tmp_path: Path) -> None:
    from a4nn.migrations.runner import upgrade_database

    upgrade_database(postgres_schema_url)
    database = Database.open(postgres_schema_url)
    try:
        recorder = Recorder(database)
        candidates = make_candidates(recorder, 3)
        evaluator = RayEvaluator(recorder, lambda: None, tiny_data, tiny_settings(epochs=2), workers=2,
                                 run_dir=tmp_path, slot="cpu", direct_writes=True,
                                 faults=[FaultInjection(0, 0, 2, action="exit")])
        try:
            results = evaluator.evaluate(candidates)
        finally:
            evaluator.close()
        assert evaluator.controller is None and evaluator.reports == 0  # nothing streamed through the driver
        for candidate, result in zip(candidates, results):
            assert result.status == "completed" and result.candidate == candidate
            assert epochs_of(database, candidate.architecture_id) == [1.0, 2.0]  # retried attempt: no duplicates
            assert architecture(database, candidate.architecture_id).status == "completed"
        with database.session() as session:
            assert session.scalar(select(func.count()).select_from(Checkpoint)) == 6
    finally:
        database.dispose()


def _direct_writes_run(url: str, tiny_data: DataSpec, tmp_path: Path, strategy, search: str):
    """Three networks of 5 epochs on one direct-writing worker (PostgreSQL); (database, evaluator, factory, results)."""
    from a4nn.migrations.runner import upgrade_database
    from a4nn.search.engine_factory import EngineFactory

    upgrade_database(url)
    database = Database.open(url)
    recorder = Recorder(database)
    candidates = make_candidates(recorder, 3, search=search)
    factory = EngineFactory(strategy, epochs=5, r=0.5)
    evaluator = RayEvaluator(recorder, factory, tiny_data, tiny_settings(epochs=5, checkpoints="none"), workers=1,
                             run_dir=tmp_path, slot="cpu", direct_writes=True)
    try:
        results = evaluator.evaluate(candidates)
    finally:
        evaluator.close()
    return database, evaluator, factory, results


def test_direct_writes_stop_early_on_the_drivers_population(ray_cluster, postgres_schema_url: str,
                                                            tiny_data: DataSpec, tmp_path: Path) -> None:
    """Workers that write their own records decide on the population the driver learned from the database.

    Before, the factory (population included) was pickled into every task and the driver's copy
    never learned a finished curve, so no network stopped early.
    """
    from a4nn.engine import Strategy
    from a4nn.engine.rules import Hopeless, HopelessSettings

    # with no veto, the hopeless rule stops every network at epoch 4 once one network finished
    once_one_finished = Strategy("hopeless", stops=(Hopeless(HopelessSettings(min_curves=1, min_epochs=4)),))
    database, evaluator, factory, results = _direct_writes_run(postgres_schema_url, tiny_data, tmp_path,
                                                               once_one_finished, "direct-engine")
    try:
        assert evaluator.reports == 0  # every decision was made in the workers
        assert results[0].status == "completed" and results[0].epochs_trained == 5
        for result in results[1:]:  # dispatched after the first finished: its curve reached the worker
            assert result.status == "stopped" and result.terminated_early and result.epochs_trained == 4
            assert architecture(database, result.candidate.architecture_id).stop_epoch == 4
        assert len(factory.population.curves) == 1 and factory.population.finished == 3
    finally:
        database.dispose()


def test_direct_writes_bring_the_workers_error_checks_to_the_driver(ray_cluster, postgres_schema_url: str,
                                                                   tiny_data: DataSpec, tmp_path: Path) -> None:
    """An audit that keeps every proposed stop training makes each worker check its stop against the final
    value; the lineage does not keep those checks, so the driver's population must get them from the task."""
    from a4nn.engine import Strategy
    from a4nn.engine.rules import Audit, AuditSettings, Hopeless, HopelessSettings

    audited = Strategy("hopeless-audited", stops=(Hopeless(HopelessSettings(min_curves=1, min_epochs=4)),),
                       vetoes=(Audit(AuditSettings(every=1)),))
    database, _, factory, results = _direct_writes_run(postgres_schema_url, tiny_data, tmp_path, audited,
                                                       "direct-checks")
    try:
        assert [r.epochs_trained for r in results] == [5, 5, 5]  # the audit let every proposed stop train on
        checks = factory.population.checks
        assert len(checks) == 2  # the 2nd and 3rd network: the 1st had no finished curve to be judged on
        for realized, expected in checks:
            assert realized >= 0 and math.isfinite(expected)
        assert len(factory.population.curves) == 3
    finally:
        database.dispose()


def test_ctrl_c_cancels_tasks_and_leaves_search_resumable(ray_cluster, database: Database, recorder: Recorder,
                                                          tiny_data: DataSpec, tmp_path: Path) -> None:
    candidates = make_candidates(recorder, 3)
    evaluator = RayEvaluator(recorder, lambda: None, tiny_data, tiny_settings(epochs=50, checkpoints="none"),
                             workers=2, run_dir=tmp_path, slot="cpu")

    def interrupt_after_first_epoch() -> None:
        deadline = time.time() + 120
        while time.time() < deadline and not any(epochs_of(database, c.architecture_id) for c in candidates):
            time.sleep(0.2)
        _thread.interrupt_main()

    threading.Thread(target=interrupt_after_first_epoch, daemon=True).start()
    with pytest.raises(KeyboardInterrupt):
        evaluator.evaluate(candidates)
    assert evaluator.closed and not evaluator._inflight
    with database.session() as session:
        assert session.scalars(select(Search.status)).one() == "interrupted"
    deadline = time.time() + 30  # cancelled tasks hand their CPU slots back
    while time.time() < deadline and ray.available_resources().get("CPU", 0) < 2:
        time.sleep(0.2)
    assert ray.available_resources().get("CPU", 0) == 2

    resumed = RayEvaluator(recorder, lambda: None, tiny_data, tiny_settings(epochs=2, checkpoints="none"),
                           workers=2, run_dir=tmp_path, slot="cpu")
    try:
        results = resumed.evaluate(candidates)
    finally:
        resumed.close()
    for candidate, result in zip(candidates, results):
        assert result.status == "completed"
        assert epochs_of(database, candidate.architecture_id) == [1.0, 2.0]  # stale trail of the interrupted run gone


def test_overlapping_generations_train_every_asked_network(ray_cluster, database: Database, recorder: Recorder,
                                                           tiny_data: DataSpec, tmp_path: Path) -> None:
    from a4nn.search.nsga import SearchConfig
    from a4nn.search.ray_overlap import OverlappingNSGANetSearch, make_search

    split = tiny_data.load()
    search_id = recorder.start_search("overlap", "nsga-net-macro", recorder.register_dataset("tiny", "xfel-sim", {}))
    evaluator = RayEvaluator(recorder, lambda: None, tiny_data, tiny_settings(epochs=1, checkpoints="none"),
                             workers=2, run_dir=tmp_path, slot="cpu", overlap=True)
    config = SearchConfig(3, 3, 2, 4, 4, (1, split.in_channels, *split.image_size), split.n_classes, 0)
    try:
        search = make_search(recorder, search_id, config, evaluator, tmp_path)
        assert isinstance(search, OverlappingNSGANetSearch)
        results = search.run()
    finally:
        evaluator.close()
    assert len(results) == 6 and all(r.status == "completed" for r in results)
    with database.session() as session:
        rows = session.scalars(select(Architecture).where(Architecture.search_id == search_id)).all()
        assert sorted((a.generation, a.index) for a in rows) == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)]
        assert all(a.status == "completed" for a in rows)
    assert (tmp_path / "nsga_state.pkl").exists()


def test_cli_search_on_ray_trains_the_same_networks_as_in_process(ray_cluster, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """``search --workers 2`` goes through the RayEvaluator and, seeded alike, finds what ``--workers 1`` finds."""
    from click.testing import CliRunner

    from a4nn.cli.main import cli

    monkeypatch.setenv("A4NN_DATA_DIR", str(tmp_path / "data"))
    tiny = ["--pop", "3", "--offspring", "2", "--generations", "2", "--epochs", "2", "--image-size", "16",
            "--n-images", "40", "--channels", "4", "--batch-size", "16", "--engine", "none", "--checkpoints", "none",
            "--beam", "high", "--quiet"]
    found = {}
    for workers in (1, 2):
        url = f"sqlite:///{tmp_path / f'w{workers}.db'}"
        result = CliRunner().invoke(cli, ["search", *tiny, "--workers", str(workers), "--db", url, "--run-dir",
                                          str(tmp_path / f"runs{workers}"), "--name", "same"], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        database = Database.open(url)
        try:
            with database.session() as session:
                assert session.scalars(select(Search.status)).one() == "completed"
                # the validation losses per epoch pin down the weight initialisation, not just the genomes
                losses = {}
                for epoch in session.scalars(select(Epoch).order_by(Epoch.architecture_id, Epoch.epoch)):
                    losses.setdefault(epoch.architecture_id, []).append(round(epoch.val_loss, 6))
                found[workers] = sorted((a.generation, a.index, a.genome_id, a.status, a.final_acc, a.epochs_trained,
                                         tuple(losses[a.id])) for a in session.scalars(select(Architecture)))
        finally:
            database.dispose()
    assert ray.is_initialized()  # the CLI did not shut down a Ray instance it did not start
    assert len(found[2]) >= 4 and all(row[3] == "completed" for row in found[2])
    assert found[2] == found[1]


def test_cli_search_joins_an_existing_ray_cluster(ray_cluster, tmp_path: Path) -> None:
    """``search --ray-address`` from another process: the search runs on that cluster, which outlives it."""
    import os
    import subprocess
    import sys

    address = ray.get_runtime_context().gcs_address  # the session's cluster, as any other driver would see it
    url = f"sqlite:///{tmp_path / 'cluster.db'}"
    env = {**os.environ, "A4NN_DATA_DIR": str(tmp_path / "data"), "RAY_USAGE_STATS_ENABLED": "0"}
    command = [sys.executable, "-m", "a4nn.cli.main", "search", "--pop", "2", "--offspring", "1", "--generations",
               "2", "--epochs", "2", "--image-size", "16", "--n-images", "40", "--channels", "4", "--batch-size",
               "16", "--engine", "none", "--checkpoints", "final", "--beam", "high", "--quiet",
               "--ray-address", address, "--workers", "2", "--db", url, "--run-dir", str(tmp_path / "runs")]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    database = Database.open(url)
    try:
        with database.session() as session:
            search = session.scalars(select(Search)).one()
            assert search.status == "completed" and search.config["ray_address"] == address
            rows = session.scalars(select(Architecture)).all()
            assert len(rows) >= 2 and all(a.status == "completed" and a.epochs_trained == 2 for a in rows)
            assert session.scalar(select(func.count()).select_from(Checkpoint)) == len(rows)  # recorded by the driver
    finally:
        database.dispose()
    assert ray.is_initialized() and ray.cluster_resources().get("GPU") == 2  # the cluster is still up


def _ray_processes_of(driver_pid: int) -> list[int]:
    """Processes of the Ray instance a driver started (its session folder name ends with the driver's pid)."""
    import os
    import re

    pattern = re.compile(rf"session_[0-9_-]+_{driver_pid}(?![0-9])")
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as handle:
                    if pattern.search(handle.read().decode(errors="replace")):
                        found.append(int(entry))
            except OSError:
                continue
    return found


def test_ctrl_c_on_the_cli_shuts_its_ray_down_and_the_search_resumes(ray_cluster, tmp_path: Path) -> None:
    """SIGINT to ``search --workers 2`` (a Ray instance of its own): exit 130, no Ray process left, resumable."""
    import os
    import signal
    import subprocess
    import sys

    url = f"sqlite:///{tmp_path / 'int.db'}"
    env = {**os.environ, "A4NN_DATA_DIR": str(tmp_path / "data"), "RAY_USAGE_STATS_ENABLED": "0"}
    env.pop("RAY_ADDRESS", None)
    tiny = ["--pop", "3", "--offspring", "2", "--generations", "2", "--epochs", "100", "--image-size", "16",
            "--n-images", "40", "--channels", "4", "--batch-size", "16", "--engine", "none", "--checkpoints", "none",
            "--beam", "high", "--quiet", "--db", url]
    child = subprocess.Popen([sys.executable, "-m", "a4nn.cli.main", "search", *tiny, "--workers", "2",
                              "--run-dir", str(tmp_path / "runs")], env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 240
        trained_some = False
        while time.time() < deadline and child.poll() is None and not trained_some:
            time.sleep(0.2)
            if (tmp_path / "int.db").exists():
                try:
                    database = Database.open(url)
                    with database.session() as session:
                        trained_some = bool(session.scalar(select(func.count()).select_from(Epoch)))
                    database.dispose()
                except Exception:  # schema not created yet
                    pass
        assert trained_some and child.poll() is None, "the search ended before it could be interrupted"
        assert _ray_processes_of(child.pid)  # it started a Ray instance of its own
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=120)
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()
    assert child.returncode == 130, out[-2000:] + err[-4000:]
    assert "--resume" in err
    deadline = time.time() + 30  # ray.shutdown stops its daemons and workers
    while time.time() < deadline and _ray_processes_of(child.pid):
        time.sleep(0.5)
    assert not _ray_processes_of(child.pid)
    database = Database.open(url)
    try:
        with database.session() as session:
            search = session.scalars(select(Search)).one()
            assert search.status == "interrupted"
            unfinished = session.scalar(select(func.count()).select_from(Architecture)
                                        .where(Architecture.status.not_in(("completed", "stopped", "failed"))))
            assert unfinished >= 1
        again = subprocess.run([sys.executable, "-m", "a4nn.cli.main", "search", "--resume", str(search.id), "--db",
                                url, "--workers", "2"], env=env, capture_output=True, text=True, timeout=300)
        assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-4000:]
        with database.session() as session:
            assert session.scalars(select(Search.status)).one() == "completed"
            rows = session.scalars(select(Architecture)).all()
            assert len(rows) >= 4 and all(a.status == "completed" and a.epochs_trained == 100 for a in rows)
            assert session.scalar(select(func.count()).select_from(Epoch)) == 100 * len(rows)  # no duplicates
    finally:
        database.dispose()
