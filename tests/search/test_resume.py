"""Resume after a real ``kill -9`` of the search CLI: nothing retrained, no epoch row lost or duplicated."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from a4nn.lineage.database import Database
from a4nn.lineage.models import Architecture, Checkpoint, Epoch, Prediction, Search

TINY = ["--pop", "4", "--offspring", "4", "--generations", "2", "--epochs", "4", "--image-size", "16",
        "--n-images", "60", "--channels", "4", "--batch-size", "16", "--checkpoints", "epoch", "--quiet"]
TOTAL = 8


def start(args: list[str], tmp_path: Path) -> subprocess.Popen:
    env = {**os.environ, "A4NN_DATA_DIR": str(tmp_path / "data"), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "a4nn.cli.main", "search", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finished(database: Database) -> dict[int, tuple]:
    with database.session() as session:
        rows = session.execute(select(Architecture.id, Architecture.finished_at, Architecture.genome_id)
                               .where(Architecture.status.in_(["completed", "stopped", "failed"])))
        return {row.id: (row.finished_at, row.genome_id) for row in rows}


@pytest.mark.slow
def test_kill_9_then_resume(tmp_path: Path) -> None:
    from a4nn.migrations.runner import upgrade_database

    url = f"sqlite:///{tmp_path / 'k.db'}"
    upgrade_database(url)
    database = Database.open(url)
    process = start([*TINY, "--db", url, "--run-dir", str(tmp_path / "runs")], tmp_path)
    deadline = time.time() + 240
    try:
        while time.time() < deadline and len(finished(database)) < 3 and process.poll() is None:
            time.sleep(0.1)
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    before = finished(database)
    assert 3 <= len(before) < TOTAL, "the kill must land mid-search"
    with database.session() as session:
        search_id, status = session.execute(select(Search.id, Search.status)).one()
        assert status == "running"  # nobody got to mark it: it really died

    resumed = start(["--resume", str(search_id), "--db", url], tmp_path)
    output, _ = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, output
    assert f"resuming search {search_id}" in output

    after = finished(database)
    assert len(after) == TOTAL
    for architecture_id, stamp in before.items():
        assert after[architecture_id] == stamp, f"architecture {architecture_id} was trained again"
    with database.session() as session:
        assert session.get(Search, search_id).status == "completed"
        slots = session.execute(select(Architecture.generation, Architecture.index)).all()
        assert len(slots) == len(set(slots)) == TOTAL
        for arch in session.scalars(select(Architecture)).all():
            epochs = session.scalars(select(Epoch.epoch).where(Epoch.architecture_id == arch.id)).all()
            assert sorted(epochs) == [float(e) for e in range(1, int(arch.epochs_trained) + 1)], arch.id
            saved = session.scalars(select(Checkpoint.epoch).where(Checkpoint.architecture_id == arch.id)).all()
            assert sorted(saved) == sorted(epochs)
            predicted = session.scalars(select(Prediction.epoch).where(Prediction.architecture_id == arch.id)).all()
            assert len(predicted) == len(set(predicted)) and max(predicted, default=0) <= arch.epochs_trained
        assert session.scalar(select(func.count()).select_from(Epoch)) == sum(
            a.epochs_trained for a in session.scalars(select(Architecture)).all())
