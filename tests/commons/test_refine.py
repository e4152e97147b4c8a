"""Refine (generate -> select -> refine): selection, continuation from the checkpoint, the refine edge,
Table I through the console script, resume after kill -9, and Ray workers training the same networks."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from models_fixture import Recorded, record_search

from a4nn.commons.models.knee import knee_point
from a4nn.commons.models.refine import RefineError, refine, search_front, select_parents
from a4nn.lineage.database import Database
from a4nn.lineage.models import Architecture, ArchitectureParent, Checkpoint, Epoch, Prediction, Search

SCRIPT = shutil.which("a4nn-commons")


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Recorded:
    return record_search(tmp_path_factory.mktemp("refine"))


def test_knee_is_the_point_farthest_above_the_normalized_chord() -> None:
    front = [{"flops": 1.0, "acc": 60.0}, {"flops": 2.0, "acc": 90.0}, {"flops": 4.0, "acc": 93.0},
             {"flops": 8.0, "acc": 95.0}]
    assert knee_point(front) == 1
    # units do not matter: the same front in FLOPs instead of MFLOPs has the same knee
    assert knee_point([{**p, "flops": p["flops"] * 1e6} for p in front]) == 1
    assert knee_point(front[:2]) is None  # two points have no elbow
    assert knee_point([{"flops": 1.0, "acc": 60.0}, {"flops": 2.0, "acc": 70.0}, {"flops": 3.0, "acc": 80.0}]) is None


def test_selection_by_cut_off(recorded: Recorded) -> None:
    front = search_front(recorded.database, recorded.search_id)
    assert len(front) >= 2 and [p["flops"] for p in front] == sorted(p["flops"] for p in front)
    cheapest = select_parents(recorded.database, recorded.search_id, flops_max=front[0]["flops"])
    assert [p["id"] for p in cheapest.parents] == [front[0]["id"]]
    with pytest.raises(RefineError, match="no Pareto network .* at or below 0.001 MFLOPs"):
        select_parents(recorded.database, recorded.search_id, flops_max=0.001)
    with pytest.raises(RefineError, match="exactly one of"):
        select_parents(recorded.database, recorded.search_id)


def test_refined_networks_continue_from_the_parent_checkpoint(recorded: Recorded, tmp_path: Path) -> None:
    """With a vanishing learning rate the refined network's first epoch measures the parent's weights."""
    result = refine(recorded.database, recorded.search_id, flops_max=1e9, epochs=2, lr=1e-9, run_dir=tmp_path,
                    name="frozen")
    front = search_front(recorded.database, recorded.search_id)
    assert [row.parent_id for row in result.rows] == [p["id"] for p in front]
    with recorded.database.session() as session:
        for row in result.rows:
            child, parent = session.get(Architecture, row.refined_id), session.get(Architecture, row.parent_id)
            assert child.genome_id == parent.genome_id and child.search.nas == "refine"
            assert child.train_params["refine"] == {"parent": parent.id, "start_epoch": 3.0, "init": "checkpoint",
                                                    "checkpoint_sha256": child.train_params["refine"]
                                                    ["checkpoint_sha256"]}
            first = session.scalar(select(Epoch.val_acc).where(Epoch.architecture_id == child.id, Epoch.epoch == 1))
            assert first == pytest.approx(parent.final_acc)  # same weights, same precise-BN statistics
            edge = session.scalars(select(ArchitectureParent).where(ArchitectureParent.child_id == child.id)).one()
            assert (edge.parent_id, edge.operator, edge.epoch) == (parent.id, "refine", 3.0)


@pytest.mark.slow
@pytest.mark.skipif(SCRIPT is None, reason="the a4nn-commons console script is not installed")
def test_refine_cli_prints_table_one_and_records_every_epoch(recorded: Recorded, tmp_path: Path) -> None:
    result = subprocess.run([SCRIPT, "refine", str(recorded.search_id), "--knee", "--epochs", "3", "--db",
                             recorded.url, "--run-dir", str(tmp_path), "--name", "cli", "--quiet"],
                            capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr
    assert "Table I" in result.stdout and "acc before %" in result.stdout and "inference ms" in result.stdout
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    ids = [row["refined_id"] for row in summary["rows"]]
    assert ids and all(row["acc_after"] is not None and row["inference_ms"] > 0 for row in summary["rows"])
    with recorded.database.session() as session:
        search = session.get(Search, summary["search_id"])
        assert search.nas == "refine" and search.status == "completed" and search.engine_config_id is None
        assert "knee" in search.config["selection"]["method"]
        for model_id in ids:
            epochs = session.scalars(select(Epoch.epoch).where(Epoch.architecture_id == model_id)).all()
            assert sorted(epochs) == [1.0, 2.0, 3.0]
            assert session.scalar(select(func.count()).select_from(Checkpoint)
                                  .where(Checkpoint.architecture_id == model_id)) == 3
            assert session.scalar(select(func.count()).select_from(Prediction)
                                  .where(Prediction.architecture_id == model_id)) == 0
            assert not session.get(Architecture, model_id).terminated_early
    again = subprocess.run([SCRIPT, "refine", "--db", recorded.url], capture_output=True, text=True, timeout=120)
    assert again.returncode != 0 and "give a SEARCH" in again.stderr and "Traceback" not in again.stderr


def _finished(database: Database, search_id: int) -> dict[int, object]:
    with database.session() as session:
        rows = session.execute(select(Architecture.id, Architecture.finished_at)
                               .where(Architecture.search_id == search_id,
                                      Architecture.status.in_(("completed", "stopped", "failed"))))
        return {row.id: row.finished_at for row in rows}


@pytest.mark.slow
@pytest.mark.skipif(SCRIPT is None, reason="the a4nn-commons console script is not installed")
def test_kill_9_then_resume_loses_and_duplicates_nothing(recorded: Recorded, tmp_path: Path) -> None:
    epochs = 12
    args = [SCRIPT, "refine", str(recorded.search_id), "--flops-max", "1e9", "--epochs", str(epochs), "--db",
            recorded.url, "--run-dir", str(tmp_path), "--name", "killed", "--quiet"]
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env={**os.environ, "OMP_NUM_THREADS": "1"})
    database = recorded.database
    deadline = time.time() + 180
    search_id = None
    try:
        while time.time() < deadline and process.poll() is None:
            with database.session() as session:
                search_id = session.scalar(select(Search.id).where(Search.name == "killed"))
                rows = session.scalar(select(func.count()).select_from(Epoch).join(
                    Architecture, Architecture.id == Epoch.architecture_id).where(Architecture.search_id == search_id)) \
                    if search_id else 0
            if rows and rows % epochs:  # mid-network: some epochs of a network recorded, not all
                break
            time.sleep(0.05)
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    assert search_id is not None and process.returncode == -signal.SIGKILL
    before = _finished(database, search_id)
    resumed = subprocess.run([SCRIPT, "refine", "--resume", str(search_id), "--db", recorded.url, "--quiet"],
                             capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert resumed.returncode == 0, resumed.stderr + resumed.stdout
    after = _finished(database, search_id)
    assert all(after[i] == before[i] for i in before)  # finished networks were not trained again
    with database.session() as session:
        children = session.scalars(select(Architecture.id).where(Architecture.search_id == search_id)).all()
        assert len(children) == len(search_front(database, recorded.search_id)) == len(after)
        for child in children:
            rows = session.scalars(select(Epoch.epoch).where(Epoch.architecture_id == child)).all()
            assert sorted(rows) == [float(e) for e in range(1, epochs + 1)]
            assert session.scalar(select(func.count()).select_from(ArchitectureParent)
                                  .where(ArchitectureParent.child_id == child)) == 1
        assert session.get(Search, search_id).status == "completed"


@pytest.mark.slow
def test_ray_workers_train_the_same_networks_as_in_process(recorded: Recorded, tmp_path: Path) -> None:
    pytest.importorskip("ray")
    serial = refine(recorded.database, recorded.search_id, flops_max=1e9, epochs=2, run_dir=tmp_path, name="serial")
    parallel = refine(recorded.database, recorded.search_id, flops_max=1e9, epochs=2, run_dir=tmp_path,
                      name="ray", workers=2)
    with recorded.database.session() as session:
        def curves(rows: list) -> list[list[float]]:
            return [session.scalars(select(Epoch.val_loss).where(Epoch.architecture_id == row.refined_id)
                                    .order_by(Epoch.epoch)).all() for row in rows]

        got, expected = curves(parallel.rows), curves(serial.rows)
        assert len(got) == len(expected) >= 2
        for mine, theirs in zip(got, expected):
            assert mine == pytest.approx(theirs, abs=1e-6)
        for row in parallel.rows:
            assert session.scalar(select(func.count()).select_from(Checkpoint)
                                  .where(Checkpoint.architecture_id == row.refined_id)) == 2


@pytest.mark.slow
@pytest.mark.skipif(SCRIPT is None, reason="the a4nn-commons console script is not installed")
def test_ctrl_c_marks_the_refine_search_interrupted_and_prints_the_resume_command(recorded: Recorded,
                                                                                 tmp_path: Path) -> None:
    process = subprocess.Popen([SCRIPT, "refine", str(recorded.search_id), "--flops-max", "1e9", "--epochs", "40",
                                "--db", recorded.url, "--run-dir", str(tmp_path), "--name", "ctrl-c", "--quiet"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "OMP_NUM_THREADS": "1"})
    deadline = time.time() + 120
    while time.time() < deadline and process.poll() is None:
        with recorded.database.session() as session:
            search_id = session.scalar(select(Search.id).where(Search.name == "ctrl-c"))
            epochs = session.scalar(select(func.count()).select_from(Epoch).join(
                Architecture, Architecture.id == Epoch.architecture_id).where(Architecture.search_id == search_id)) \
                if search_id else 0
        if epochs:
            break
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert f"a4nn-commons refine --resume {search_id}" in err and "Traceback" not in err
    with recorded.database.session() as session:
        assert session.get(Search, search_id).status == "interrupted"
