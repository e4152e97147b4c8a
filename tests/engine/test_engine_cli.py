"""`a4nn-commons engine replay` on long-format curves and on bad files."""
from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
from click.testing import CliRunner

from a4nn.cli.main import cli, main


def test_replay_long_format(tmp_path: Path) -> None:
    rows = [{"architecture_id": a, "epoch": e, "val_acc": 90 - 30 * 0.7 ** e + a} for a in range(5) for e in range(1, 21)]
    path = tmp_path / "curves.parquet"
    pd.DataFrame(rows).to_parquet(path)
    result = CliRunner().invoke(cli, ["engine", "replay", str(path), "--strategy", "penguin", "--processes", "1"])
    assert result.exit_code == 0, result.output
    match = re.search(r"curves\.parquet\s+penguin\s+(\d+)\s+([\d.]+)", result.output)
    assert match, result.output
    assert int(match.group(1)) == 5
    saved = float(match.group(2))
    assert 0 < saved < 100


def test_replay_reports_bad_value_with_line(tmp_path: Path, capsys) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("arch,epoch,val_accs\n1,0,50\n1,1,sixty\n")
    assert main(["engine", "replay", str(path)]) == 2
    assert "bad.csv:3" in capsys.readouterr().err
