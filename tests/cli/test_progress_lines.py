"""Progress bars off a terminal: piped output stays a handful of lines, not one per redraw.

tqdm redraws with a carriage return; a log file or a CI console shows every redraw as
a line. The console script runs here with stdout and stderr piped, as in a script,
and the lines are counted the way a log viewer would (``\\r`` and ``\\n`` both break).
"""
from __future__ import annotations

import math
import os
import re
import subprocess
from pathlib import Path

import pytest

from cli_helpers import TINY_ICPP, console_script, run_console

BAR = re.compile(r"\d+%\|")  # what every tqdm bar line holds: "37%|███▋"


def log_lines(text: str) -> list[str]:
    return [line for line in re.split(r"[\r\n]+", text) if line.strip()]


def _logs(root: Path, folders: int) -> Path:
    """``folders`` copies of the tiny log, one per folder (one search and one transaction each)."""
    for number in range(folders):
        folder = root / f"run{number:02d}"
        folder.mkdir(parents=True)
        (folder / "1gpu_1e14_stopping_training_data.csv").write_text(TINY_ICPP)
    return root


def test_ingest_piped_draws_no_bar(tmp_path: Path) -> None:
    result = run_console(["ingest", str(_logs(tmp_path / "logs", 24)), "--db", f"sqlite:///{tmp_path / 'a.db'}"])
    assert result.returncode == 0, result.stderr
    assert not BAR.search(result.stderr), result.stderr[:2000]
    assert len(log_lines(result.stdout + result.stderr)) <= 5, result.stdout + result.stderr


def test_engine_replay_piped_draws_no_bar(tmp_path: Path) -> None:
    rows = ["model,epoch,val_acc,flops"]
    for network in range(30):
        ceiling = 60 + network
        rows += [f"{network},{epoch},{ceiling - 30 * math.exp(-epoch / 3):.3f},{10 + network}" for epoch in range(1, 13)]
    curves = tmp_path / "curves.csv"
    curves.write_text("\n".join(rows) + "\n")
    result = run_console(["engine", "replay", str(curves), "--strategy", "a4nn", "--strategy", "penguin",
                          "--processes", "1"])
    assert result.returncode == 0, result.stderr
    assert not BAR.search(result.stderr), result.stderr[:2000]
    assert len(log_lines(result.stderr)) == 0, result.stderr
    assert len(log_lines(result.stdout)) == 3  # the header and one row per strategy


@pytest.mark.slow
def test_search_piped_draws_no_bar(tmp_path: Path) -> None:
    """A tiny search (2 generations) prints its start line and its summary, no bar redraws."""
    env = {**os.environ, "A4NN_DATA_DIR": str(tmp_path / "data"), "OMP_NUM_THREADS": "1"}
    env.pop("A4NN_DB_URL", None)
    result = subprocess.run(
        [console_script(), "search", "--pop", "3", "--offspring", "2", "--generations", "2", "--epochs", "3",
         "--image-size", "8", "--n-images", "40", "--channels", "2", "--checkpoints", "none",
         "--db", f"sqlite:///{tmp_path / 's.db'}", "--run-dir", str(tmp_path / "runs")],
        capture_output=True, text=True, env=env, timeout=600, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr[-3000:]
    assert not BAR.search(result.stderr), result.stderr[:2000]
    assert "Pareto front" in result.stdout
    # stdout: the start line and the summary table; stderr: nothing a bar drew (warnings of third parties aside)
    assert len(log_lines(result.stderr)) <= 5, result.stderr
