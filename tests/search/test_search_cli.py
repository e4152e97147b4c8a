"""``a4nn-commons search`` end to end on a tiny simulated data set, plus its error paths."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from a4nn.cli.main import cli, main
from a4nn.lineage.queries import front_rows
from a4nn.lineage.database import Database
from a4nn.lineage.models import (Architecture, Checkpoint, Dataset, EngineConfig, Epoch, GenomeParent, Prediction,
                                 Search)
from a4nn.lineage.pareto import pareto_front

TINY = ["--pop", "3", "--offspring", "3", "--generations", "2", "--epochs", "4", "--image-size", "16",
        "--n-images", "60", "--channels", "4", "--batch-size", "16", "--quiet"]


@pytest.fixture(autouse=True)
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("A4NN_DATA_DIR", str(tmp_path / "data"))


@pytest.mark.slow
def test_quick_search_records_the_whole_trail(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    result = CliRunner().invoke(cli, ["search", *TINY, "--db", url, "--run-dir", str(tmp_path / "runs"),
                                      "--beam", "high", "--name", "tiny"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "Pareto front of search" in result.output and "epochs saved" in result.output
    summary = json.loads(result.output.strip().splitlines()[-1])
    database = Database.open(url)
    with database.session() as session:
        search = session.scalars(select(Search)).one()
        assert search.status == "completed" and search.engine_config_id is not None
        # the prior's tolerance is one validation image of this data set (see engine.strategies.a4nn)
        n_val = session.get(Dataset, search.dataset_id).attributes["n_val"]
        config = session.get(EngineConfig, search.engine_config_id)
        prior = next(rule for rule in config.extra["stops"] if rule["rule"] == "prior")
        assert prior["tolerance"] == pytest.approx(100 / n_val) and config.n == 3  # 4 epochs: n stays 3
        assert config.extra["vetoes"][-1] == {"rule": "error-budget", "target": 0.5, "safety": 3.0, "unknown": None,
                                               "calibrate": True, "weight": 2.0, "floor": 1.0, "price": 8.0,
                                               "width": 2.0}
        assert search.config["state_path"].endswith("nsga_state.pkl") and Path(search.config["state_path"]).exists()
        architectures = session.scalars(select(Architecture)).all()
        assert len(architectures) == summary["networks"] <= 6
        assert all(a.status in ("completed", "stopped") and a.flops > 0 and a.fitness is not None
                   and a.train_params["lr"] == 0.025 for a in architectures)
        epochs = session.scalar(select(func.count()).select_from(Epoch))
        assert epochs == sum(a.epochs_trained for a in architectures) == summary["epochs_trained"]
        assert session.scalar(select(func.count()).select_from(Checkpoint)) == epochs  # one per epoch
        assert session.scalar(select(func.count()).select_from(Prediction)) > 0
        assert session.scalar(select(func.count()).select_from(GenomeParent)) > 0

    again = CliRunner().invoke(cli, ["search", "--resume", str(search.id), "--db", url], catch_exceptions=False)
    assert again.exit_code == 0 and "already complete" in again.output


@pytest.mark.slow
def test_standalone_search_has_no_engine(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'n.db'}"
    result = CliRunner().invoke(cli, ["search", *TINY, "--generations", "1", "--engine", "none", "--checkpoints",
                                      "none", "--db", url, "--run-dir", str(tmp_path / "runs")],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    with Database.open(url).session() as session:
        assert session.scalars(select(Search.engine_config_id)).one() is None
        assert session.scalar(select(func.count()).select_from(Prediction)) == 0
        assert set(session.scalars(select(Architecture.epochs_trained)).all()) == {4}
    assert "0.0% epochs saved" in result.output


def test_help_names_the_main_options() -> None:
    result = CliRunner().invoke(cli, ["search", "--help"])
    assert result.exit_code == 0
    for option in ("--preset", "--engine", "--workers", "--ray-address", "--resume", "--beam", "--dataset"):
        assert option in result.output


def test_unknown_resume_id_is_one_clear_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    url = f"sqlite:///{tmp_path / 'e.db'}"
    assert main(["db", "upgrade", "--db", url]) == 0  # an existing, empty database: the id is what is missing
    capsys.readouterr()
    code = main(["search", "--resume", "42", "--db", url])
    # exit 2: the command could not run (a4nn.cli.main's exit-status table)
    assert code == 2 and "no search with id 42" in capsys.readouterr().err


def test_bad_dataset_path_is_one_clear_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    code = main(["search", *TINY, "--dataset", str(tmp_path / "nothing.csv"), "--db",
                 f"sqlite:///{tmp_path / 'e.db'}", "--run-dir", str(tmp_path / "runs")])
    err = capsys.readouterr().err
    assert code == 2 and "nothing.csv" in err and "Traceback" not in err


def test_bad_sizes_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    code = main(["search", "--pop", "1", "--db", f"sqlite:///{tmp_path / 'e.db'}"])
    assert code == 2 and "--pop" in capsys.readouterr().err


def test_pareto_front_keeps_only_non_dominated_rows() -> None:
    rows = [{"acc": 90, "flops": 5}, {"acc": 80, "flops": 6}, {"acc": 95, "flops": 9}, {"acc": 70, "flops": 1}]
    assert [(r["acc"], r["flops"]) for r in pareto_front(rows)] == [(70, 1), (90, 5), (95, 9)]


def test_the_final_table_ranks_by_the_fitness_the_search_saw() -> None:
    """A network stopped at epoch 6 on a lucky 82.5 % (predicted 76.3) is not on the front that a
    network trained to the end at 81.7 % and cheaper holds; the front is the NAS's, not last values'."""
    import pandas as pd

    frame = pd.DataFrame({"id": [1, 2, 3], "generation": [0, 1, 1], "final_acc": [81.7, 82.5, 78.3],
                          "fitness": [81.7, 76.3, None], "flops": [2.3, 2.6, 2.2], "epochs_trained": [20, 6, 20],
                          "terminated_early": [False, True, False]})
    front = front_rows(frame)
    assert [r["id"] for r in front] == [3, 1]  # 3 has no fitness recorded: its accuracy stands in
    assert front[1]["fitness"] == 81.7 and front[0]["acc"] == 78.3
