"""Ingest of the published A4NN logs: counts, idempotency, per-file transactions, the paper's savings."""
from __future__ import annotations

import shutil
import tarfile
from pathlib import Path

import pytest
from sqlalchemy import func, select

from a4nn.commons.ingest import ingest_paths
from a4nn.errors import InputFormatError
from a4nn.lineage.frames import architectures_frame
from a4nn.lineage.models import Architecture, Epoch, Prediction, Search


def counts(database) -> tuple[int, int, int, int]:
    with database.session() as session:
        return tuple(session.scalar(select(func.count()).select_from(m)) for m in (Search, Architecture, Epoch, Prediction))


def test_published_savings_are_reproduced_from_the_logs(database, icpp23_dir) -> None:
    summary = ingest_paths(database, [icpp23_dir / "1gpu"], progress=False)
    assert summary.ok and summary.files == 6 and summary.networks == 600
    frame = architectures_frame(database)
    early = frame[frame["search_name"].str.contains("/early_termination/")]
    saved = {name: 1 - group["epochs_trained"].sum() / (25 * len(group)) for name, group in early.groupby("search_name")}
    assert saved["icpp23:1gpu/early_termination/1e14"] == pytest.approx(0.133, abs=0.0005)
    assert saved["icpp23:1gpu/early_termination/1e15"] == pytest.approx(0.341, abs=0.0005)
    assert saved["icpp23:1gpu/early_termination/1e16"] == pytest.approx(0.305, abs=0.0005)
    assert set(early["beam"]) == {"low", "medium", "high"}
    assert early["genome_bits"].str.len().eq(21).all() and early["flops"].gt(0).all()
    stopped = early[early["terminated_early"]]
    assert len(stopped) > 0 and stopped["fitness"].notna().all()


def test_ingest_twice_adds_nothing(database, icpp23_dir, tmp_path: Path) -> None:
    source = icpp23_dir / "1gpu" / "early_termination" / "1gpu_1e14_stopping_training_data.csv"
    ingest_paths(database, [source], progress=False)
    first = counts(database)
    ingest_paths(database, [source], progress=False)
    assert counts(database) == first
    assert first[2] == 2167  # one epoch row per logged row


def test_malformed_file_is_rejected_whole_and_others_still_ingest(database, icpp23_dir, tmp_path: Path) -> None:
    good = tmp_path / "1gpu_1e16_training_data.csv"
    shutil.copy(icpp23_dir / "1gpu" / "no_early_termination" / "1gpu_1e16_training_data.csv", good)
    bad = tmp_path / "sub" / "1gpu_1e15_training_data.csv"
    bad.parent.mkdir()
    lines = (icpp23_dir / "1gpu" / "no_early_termination" / "1gpu_1e15_training_data.csv").read_text().splitlines()
    lines[700] = lines[700].replace(",", ",x", 1)  # non-numeric value deep inside the file
    bad.write_text("\n".join(lines) + "\n")
    summary = ingest_paths(database, [tmp_path], progress=False)
    assert summary.files == 1 and len(summary.skipped) == 1
    assert f"{bad}:701" in summary.skipped[0]
    with database.session() as session:
        assert session.scalars(select(Search.name)).all() == ["icpp23:1gpu/no_early_termination/1e16"]
    with pytest.raises(InputFormatError):
        ingest_paths(database, [bad], progress=False, strict=True)


@pytest.mark.parametrize("breakage, message", [
    (lambda text: text.replace("val_accs", "accuracy", 1), "missing column"),
    (lambda text: "\n".join(text.splitlines()[:40] + [text.splitlines()[40].rsplit(",", 3)[0]]), "truncated"),
])
def test_missing_column_and_truncated_row(database, icpp23_dir, tmp_path: Path, breakage, message) -> None:
    path = tmp_path / "1gpu_1e14_training_data.csv"
    path.write_text(breakage((icpp23_dir / "1gpu" / "no_early_termination" / path.name).read_text()))
    summary = ingest_paths(database, [path], progress=False)
    assert summary.files == 0 and message in summary.skipped[0] and path.name in summary.skipped[0]
    assert counts(database) == (0, 0, 0, 0)


def test_archives_are_unpacked(database, icpp23_dir, tmp_path: Path) -> None:
    archive = tmp_path / "logs.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(icpp23_dir / "4gpu" / "early_termination", arcname="et")
    summary = ingest_paths(database, [archive], progress=False)
    assert summary.ok and summary.files >= 2


def test_generations_fitness_and_times_follow_the_runs(database, icpp23_dir) -> None:
    no_et = icpp23_dir / "1gpu" / "no_early_termination" / "1gpu_1e16_training_data.csv"
    et = icpp23_dir / "1gpu" / "early_termination" / "1gpu_1e16_stopping_training_data.csv"
    summary = ingest_paths(database, [no_et, et], progress=False)
    assert summary.ok and summary.networks == 200
    frame = architectures_frame(database)
    for _, search in frame.groupby("search_name"):
        assert search.groupby("generation").size().to_dict() == {g: 10 for g in range(10)}
    with database.session() as session:
        rows = session.execute(select(Search.name, Search.config, Architecture.generation, Architecture.index,
                                      Architecture.train_params, Architecture.status, Architecture.final_acc,
                                      Architecture.predicted_acc, Architecture.fitness)
                               .join(Search, Search.id == Architecture.search_id)).all()
    assert all(config["started_at"] is None and config["ingested_at"] for _, config, *_ in rows)
    with database.session() as session:
        assert session.scalars(select(Search.started_at)).all() == [None, None]  # the logs carry no dates
    assert all(params["icpp23_arch"] == 10 * generation + index for _, _, generation, index, params, *_ in rows)
    standalone = [row for row in rows if "/no_early_termination/" in row[0]]
    # every network of a run without early termination trained 25 epochs: the NAS ranked it by its accuracy
    assert all(fitness == final for *_, final, _, fitness in standalone)
    assert any(predicted is not None and predicted != final for *_, final, predicted, _ in standalone)
    stopped = [row for row in rows if row[5] == "stopped"]
    assert stopped and all(fitness == predicted for *_, predicted, fitness in stopped)
