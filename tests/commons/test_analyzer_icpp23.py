"""Reproducing the published A4NN figures from the ICPP'23 logs after ingest (skips without ../shared)."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from a4nn.commons import analyzer
from a4nn.commons.analyzer.icpp23 import published_run_times
from a4nn.commons.ingest import ingest_paths
from a4nn.errors import InputFormatError

RUNS = {"1e14": "low", "1e15": "medium", "1e16": "high"}


def _expected_saved(csv: Path) -> float:
    """Computed from the raw log, independently of ingest: 1 − Σ epochs trained / (100 × 25)."""
    log = pd.read_csv(csv, usecols=["epoch", "arch"])
    trained = (log.groupby("arch")["epoch"].max() + 1).sum()
    return 100.0 * (1.0 - trained / (log["arch"].nunique() * 25))


def test_epochs_saved_reproduces_the_paper(database, icpp23_dir: Path, tmp_path: Path) -> None:
    summary = ingest_paths(database, [icpp23_dir / "1gpu"], progress=False)
    assert summary.files == 6 and not summary.skipped
    data = analyzer.load(database)
    saved = analyzer.epochs_saved(data).set_index("search")
    for intensity, beam in RUNS.items():
        engine = f"icpp23:1gpu/early_termination/{intensity}"
        csv = icpp23_dir / "1gpu" / "early_termination" / f"1gpu_{intensity}_stopping_training_data.csv"
        assert saved.loc[engine, "epochs_saved_pct"] == pytest.approx(_expected_saved(csv), abs=1e-9)
        assert saved.loc[engine, "beam"] == beam and saved.loc[engine, "networks"] == 100
        assert saved.loc[f"icpp23:1gpu/no_early_termination/{intensity}", "epochs_saved_pct"] == 0
    # the paper's rounded numbers (Figure 7, 1 GPU)
    assert [round(saved.loc[f"icpp23:1gpu/early_termination/{i}", "epochs_saved_pct"], 1) for i in RUNS] == \
        [13.3, 34.1, 30.5]
    stops = analyzer.stop_epochs(data).set_index("search")
    assert stops.loc["icpp23:1gpu/early_termination/1e15", "share_converged"] > 0.5
    published = published_run_times(icpp23_dir / "time_to_run.csv")
    walls = analyzer.wall_times(data, published).set_index("search")
    assert walls.loc["icpp23:1gpu/early_termination/1e14", "seconds"] == 167584.0
    # the published figures render from the ingested data
    analyzer.save_figure(analyzer.epochs_saved_figure(data), tmp_path / "fig7.png")
    analyzer.save_figure(analyzer.stop_epoch_figure(data), tmp_path / "fig8.png")
    analyzer.save_figure(analyzer.wall_time_figure(data, published), tmp_path / "fig9.png")
    analyzer.save_figure(analyzer.pareto_figure(data), tmp_path / "pareto.png")


def test_published_run_times_rejects_bad_rows(tmp_path: Path) -> None:
    bad = tmp_path / "time_to_run.csv"
    bad.write_text("gpu,dataset,stopping,total_seconds\n1,14,True,12.5\n1,x,True,3\n")
    with pytest.raises(InputFormatError, match=r"time_to_run.csv:3"):
        published_run_times(bad)
    bad.write_text("gpu,dataset\n1,14\n")
    with pytest.raises(InputFormatError, match="missing column"):
        published_run_times(bad)
