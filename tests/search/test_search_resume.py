"""The search end to end through the CLI, and resume after a real kill -9."""
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
from a4nn.lineage.models import Architecture, Epoch, GenomeParent, Prediction, Search

TINY = ["--preset", "quick", "--pop", "4", "--offspring", "4", "--generations", "2", "--epochs", "4",
        "--image-size", "16", "--n-images", "80", "--channels", "4", "--checkpoints", "epoch"]


def cli(args: list[str], env: dict[str, str], **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "a4nn.cli.main", "search", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kwargs)


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "A4NN_DATA_DIR": str(tmp_path / "data"), "OMP_NUM_THREADS": "1"}


def finished(database: Database) -> dict[int, object]:
    with database.session() as session:
        rows = session.execute(select(Architecture.id, Architecture.finished_at)
                               .where(Architecture.status.in_(["completed", "stopped", "failed"])))
        return {row.id: row.finished_at for row in rows}


@pytest.mark.slow
def test_search_records_everything(tmp_path: Path, env: dict[str, str]) -> None:
    url = f"sqlite:///{tmp_path / 'a.db'}"
    process = cli([*TINY, "--db", url, "--run-dir", str(tmp_path / "runs")], env)
    output, _ = process.communicate(timeout=600)
    assert process.returncode == 0, output
    assert "Pareto front" in output and "epochs saved" in output
    database = Database.open(url)
    with database.session() as session:
        search = session.scalars(select(Search)).one()
        assert search.status == "completed" and search.engine_config_id is not None
        architectures = session.scalars(select(Architecture)).all()
        assert len(architectures) == 8
        assert all(a.status in ("completed", "stopped") and a.flops > 0 and a.fitness is not None for a in architectures)
        assert session.scalar(select(func.count()).select_from(Epoch)) == sum(a.epochs_trained for a in architectures)
        assert session.scalar(select(func.count()).select_from(Prediction)) > 0
        assert session.scalar(select(func.count()).select_from(GenomeParent)) > 0
    assert list((tmp_path / "runs").rglob("*.pt"))


@pytest.mark.slow
def test_resume_after_kill_retrains_nothing_finished(tmp_path: Path, env: dict[str, str]) -> None:
    url = f"sqlite:///{tmp_path / 'k.db'}"
    from a4nn.migrations.runner import upgrade_database

    upgrade_database(url)
    database = Database.open(url)
    process = cli([*TINY, "--db", url, "--run-dir", str(tmp_path / "runs")], env)
    deadline = time.time() + 300
    while time.time() < deadline and len(finished(database)) < 3:
        time.sleep(0.2)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    before = finished(database)
    assert 3 <= len(before) < 8, "the kill must land mid-search"

    with database.session() as session:
        search_id = session.scalars(select(Search.id)).one()
    resumed = cli(["--resume", str(search_id), "--db", url], env)
    output, _ = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, output

    after = finished(database)
    assert len(after) == 8
    for architecture_id, stamp in before.items():
        assert after[architecture_id] == stamp, f"architecture {architecture_id} was trained again"
    with database.session() as session:
        architectures = session.scalars(select(Architecture)).all()
        for arch in architectures:
            epochs = session.scalars(select(Epoch.epoch).where(Epoch.architecture_id == arch.id)).all()
            assert sorted(epochs) == [float(e) for e in range(1, int(arch.epochs_trained) + 1)]
        assert session.get(Search, search_id).status == "completed"
