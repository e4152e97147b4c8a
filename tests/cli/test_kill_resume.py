"""kill -9 of `a4nn-commons ingest` mid-run, then the same command again: the same rows as one clean run.

Each file is one transaction, so a SIGKILL can only lose the file in flight, and
ingesting the same paths again adds exactly what is missing. (kill -9 of a search
and its resume: tests/search/test_resume.py.)
"""
from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
from sqlalchemy import DateTime

from cli_helpers import console_script, run_console

FILES = 600
ROWS = 120  # rows a table holds after its first: enough work per file that the kill lands mid-run
HEADER = ("epochs trainLoss valLoss valAcc ID random_seed train_GPU torch_set_deterministic dataset batch_size "
          "loss_fn optimizer learning_rate momentum dampening weight_decay layer_types dropout_rate convKernels "
          "convStrides convPaddings poolKernels poolStrides poolPaddings convFilters FC_dropout_rate "
          "FC_dropout_layers FCFilters")
EMPTY = " " * 24  # the metadata fields left empty after the first data row, as in the published tables


def _table(number: int) -> str:
    """One 6000-NN table (the published layout), its ID and values distinct per number."""
    first = (f"0.5 4.25 3.9 {9 + number / 100:.2f} 2021_02_15_13_{number // 60:02d}_{number % 60:02d}_{number:06d} "
             f"{1000 + number} True False CIFAR100 25 CrossEntropyLoss SGD 0.1 0.0 0 0.0005 3-3-1 0 24-2-2 12-2-1 "
             "4-2-2 1-1 1-1 0-0 301-297-345 0.45  100")
    rows = [f"{epoch / 2:.1f} {4 - epoch / 10:.2f} {3.9 - epoch / 10:.2f} {10 + epoch + number / 100:.2f}" + EMPTY
            for epoch in range(2, ROWS + 2)]
    return "\n".join([HEADER, first, *rows]) + "\n"


def _logs(root: Path) -> Path:
    """FILES tables in one collection (one search, one network and one transaction per table)."""
    root.mkdir(parents=True)
    for number in range(FILES):
        (root / f"net{number:03d}.txt").write_text(_table(number))
    return root


def _count(database: Path, table: str) -> int:
    try:
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5) as connection:
            return connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    except sqlite3.OperationalError:  # not created yet
        return 0


def _without_times(value: object) -> object:
    """JSON documents compared without the wall-clock stamps an ingest records (ingested_at, ...)."""
    if isinstance(value, dict):
        return {k: _without_times(v) for k, v in value.items() if not k.endswith("_at")}
    if isinstance(value, list):
        return [_without_times(v) for v in value]
    return value


def snapshot(database: Path) -> dict[str, list[tuple]]:
    """Every row of every lineage table, ids included, minus timestamps (when it ran, not what it stored)."""
    from a4nn.lineage.models import Base

    rows: dict[str, list[tuple]] = {}
    with sqlite3.connect(database) as connection:
        for table in Base.metadata.sorted_tables:
            columns = [c.name for c in table.columns if not isinstance(c.type, DateTime)]
            json_columns = {i for i, c in enumerate(columns) if table.columns[c].type.__class__.__name__ == "JSON"}
            quoted = ", ".join(f'"{name}"' for name in columns)
            found = connection.execute(f'SELECT {quoted} FROM "{table.name}" ORDER BY 1').fetchall()
            rows[table.name] = [tuple(_without_times(json.loads(v)) if i in json_columns and v else v
                                      for i, v in enumerate(row)) for row in found]
    return rows


@pytest.mark.slow
def test_kill_9_of_ingest_then_again_gives_the_rows_of_one_clean_run(tmp_path: Path) -> None:
    logs = _logs(tmp_path / "logs")
    clean = tmp_path / "clean.db"
    assert run_console(["ingest", str(logs), "--db", f"sqlite:///{clean}", "--quiet"], timeout=600).returncode == 0

    killed = tmp_path / "killed.db"
    env = {k: v for k, v in os.environ.items() if k != "A4NN_DB_URL"}
    process = subprocess.Popen([console_script(), "ingest", str(logs), "--db", f"sqlite:///{killed}", "--quiet"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    deadline = time.time() + 300
    try:
        while time.time() < deadline and process.poll() is None and _count(killed, "architectures") < FILES // 4:
            time.sleep(0.05)
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    stored = _count(killed, "architectures")
    assert 0 < stored < FILES, f"the kill must land mid-ingest ({stored} of {FILES} tables stored)"
    # what a kill leaves is whole files only: every stored network has all of its epoch rows
    assert _count(killed, "epochs") == (ROWS + 1) * stored

    again = run_console(["ingest", str(logs), "--db", f"sqlite:///{killed}", "--quiet"], timeout=600)
    assert again.returncode == 0, again.stderr
    assert snapshot(killed) == snapshot(clean)
