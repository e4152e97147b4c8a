"""The search end to end through the CLI: everything recorded (kill -9 and resume: test_resume.py)."""
from __future__ import annotations

import os
import subprocess
import sys
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
