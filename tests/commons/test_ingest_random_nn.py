"""Ingest of 6000-NN random-network tables: hand-written fixtures in the published format.

The fixtures below are written by hand after the published tables (one space between
fields, metadata on the first data row only, 24 empty fields on the other rows), so the
reader is tested on text it did not produce itself.
"""
from __future__ import annotations

import tarfile
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from a4nn.cli.ingest import ingest
from a4nn.commons.ingest import ingest_paths
from a4nn.commons.random_nn_export import export_random_nn
from a4nn.commons.random_nn_format import COLUMNS, parse_table
from a4nn.errors import InputFormatError
from a4nn.lineage.models import Architecture, Dataset, Epoch, Search

HEADER = ("epochs trainLoss valLoss valAcc ID random_seed train_GPU torch_set_deterministic dataset batch_size "
          "loss_fn optimizer learning_rate momentum dampening weight_decay layer_types dropout_rate convKernels "
          "convStrides convPaddings poolKernels poolStrides poolPaddings convFilters FC_dropout_rate "
          "FC_dropout_layers FCFilters")
EMPTY = " " * 24  # the 24 metadata fields left empty after the first data row

# 3 conv layers (ReLU+pool, ReLU+pool, ReLU), no hidden FC layer, empty FC_dropout_layers list
TABLE_A = (
    HEADER + "\n"
    "0.5 4.25 3.9 9.68 2021_02_15_13_55_26_539263 2476382228 True False CIFAR100 25 CrossEntropyLoss SGD "
    "0.11464760689500715 4.877743709660678e-05 0 0.0005490215623792545 3-3-1 0 24-2-2 12-2-1 4-2-2 1-1 1-1 0-0 "
    "301-297-345 0.4558671863403917  100\n"
    "1.0 3.74 3.58 14.91" + EMPTY + "\n"
    "1.5 3.5 3.45 17.29" + EMPTY + "\n"
    "2.0 3.4 3.37 19.5" + EMPTY + "\n"
)
# dropout-only first layer (code 4), one pooled layer, one hidden FC layer with dropout
TABLE_B = (
    HEADER + "\n"
    "0.5 4.606311171802123 4.521019794322826 1.0245485899776832 2021_02_15_13_56_59_917381 4248779896 True False "
    "CIFAR100 186 CrossEntropyLoss SGD 0.010439798407753376 0 0 0.016374529740733647 4-1-3 0.46221952533637445 "
    "32-1-3 20-1-2 2-2-3 5 4 1 190-306-383 0.4343604085634797 1 145-100\n"
    "1.0 4.606542580163301 4.520796493247703 0.9839724081963888" + EMPTY + "\n"
    "1.5 nan 4.6 1.0" + EMPTY + "\n"
)
# another data set in the same collection
TABLE_C = (
    HEADER + "\n"
    "0.5 2.2 2.1 19.6 2021_03_01_09_00_00_000001 17 True False SVHN 64 CrossEntropyLoss SGD 0.05 0.9 0 0 1 0 "
    "3 1 1    16 0  10\n"
    "1.0 1.9 1.8 35.2" + EMPTY + "\n"
)


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text)
    return path


def counts(database) -> tuple[int, int, int, int]:
    with database.session() as session:
        return tuple(session.scalar(select(func.count()).select_from(m)) for m in (Search, Dataset, Architecture, Epoch))


@pytest.fixture
def collection(tmp_path: Path) -> Path:
    folder = tmp_path / "cnn-tables"
    write(folder, "2021_02_15_13_55_26_539263.txt", TABLE_A)
    write(folder, "2021_02_15_13_56_59_917381.txt", TABLE_B)
    write(folder, "README.md", "not a table\n")
    return folder


# ------------------------------------------------------------------------------------------ parsing
def test_fixture_tables_have_the_published_shape() -> None:
    for text in (TABLE_A, TABLE_B, TABLE_C):
        lines = text.splitlines()
        assert lines[0].split(" ") == list(COLUMNS)
        assert all(len(line.split(" ")) == 28 for line in lines)


@pytest.mark.parametrize("delimiter", [" ", "\t", ","])
def test_delimiter_is_detected(delimiter: str) -> None:
    table = parse_table(TABLE_A.replace(" ", delimiter), "a.txt")
    assert [row[0] for row in table.curve] == [0.5, 1.0, 1.5, 2.0]
    assert table.metadata["convKernels"] == [24, 2, 2] and table.metadata["FC_dropout_layers"] == []
    assert table.metadata["momentum"] == 4.877743709660678e-05 and table.metadata["dampening"] == 0
    assert table.metadata["train_GPU"] is True and table.metadata["random_seed"] == 2476382228


def test_ingest_maps_tables_to_search_datasets_architectures_epochs(database, collection: Path) -> None:
    summary = ingest_paths(database, [collection], progress=False)
    assert (summary.files, summary.networks, summary.rows, summary.ignored) == (2, 2, 7, 1) and summary.ok
    with database.session() as session:
        search = session.scalars(select(Search)).one()
        assert search.name == "random-nn:cnn-tables" and search.nas == "random-nn" and search.engine_config_id is None
        assert search.dataset.name == "CIFAR100" and search.dataset.kind == "cifar100"
        a, b = session.scalars(select(Architecture).order_by(Architecture.index)).all()
        assert (a.index, b.index) == (0, 1) and a.arch["id"] == "2021_02_15_13_55_26_539263"
        blocks = a.arch["conv_blocks"]
        assert [(blk["relu"], blk["pool"] is not None, blk["dropout"]) for blk in blocks] == [
            (True, True, None), (True, True, None), (True, False, None)]
        assert blocks[0]["conv"] == {"filters": 301, "kernel": 24, "stride": 12, "padding": 4}
        assert a.arch["fc_layers"] == [] and a.arch["n_classes"] == 100
        first = b.arch["conv_blocks"][0]
        assert (first["relu"], first["pool"], first["dropout"]) == (False, None, 0.46221952533637445)
        assert b.arch["conv_blocks"][2]["pool"] == {"type": "max", "kernel": 5, "stride": 4, "padding": 1}
        assert b.arch["fc_layers"] == [{"units": 145, "relu": True, "dropout": 0.4343604085634797}]
        assert a.train_params["batch_size"] == 25 and a.train_params["optimizer"] == "SGD"
        assert a.train_params["learning_rate"] == 0.11464760689500715 and a.train_params["dataset"] == "CIFAR100"
        assert (a.status, a.epochs_trained, a.final_acc, a.fitness) == ("completed", 2.0, 19.5, 19.5)
        epochs = session.scalars(select(Epoch).where(Epoch.architecture_id == b.id).order_by(Epoch.epoch)).all()
        assert [e.epoch for e in epochs] == [0.5, 1.0, 1.5]
        assert epochs[2].train_loss is None and epochs[2].nonfinite == {"train_loss": "nan"}


def test_ingest_twice_adds_nothing(database, collection: Path) -> None:
    ingest_paths(database, [collection], progress=False)
    first = counts(database)
    again = ingest_paths(database, [collection], progress=False)
    assert again.ok and counts(database) == first == (1, 1, 2, 7)
    assert (again.files, again.networks, again.rows) == (2, 0, 0)  # unchanged tables are skipped by their hash


def test_reingest_of_a_corrected_table_replaces_its_curve(database, tmp_path: Path) -> None:
    folder = tmp_path / "c"
    path = write(folder, "a.txt", TABLE_A)
    ingest_paths(database, [folder], progress=False)
    path.write_text("\n".join(TABLE_A.splitlines()[:3]) + "\n")  # header + 2 rows
    ingest_paths(database, [folder], progress=False)
    assert counts(database) == (1, 1, 1, 2)


def test_mixed_data_sets_keep_one_search_and_unlink_its_dataset(database, collection: Path) -> None:
    write(collection, "svhn.txt", TABLE_C)
    ingest_paths(database, [collection], progress=False)
    with database.session() as session:
        assert sorted(session.scalars(select(Dataset.name))) == ["CIFAR100", "SVHN"]
        search = session.scalars(select(Search)).one()
        assert search.dataset_id is None
        assert session.scalar(select(func.count()).select_from(Architecture)) == 3


# ------------------------------------------------------------------------------------ malformation
def _missing_column(text: str) -> str:
    return text.replace(" valLoss ", " validationLoss ", 1)


def _non_numeric(text: str) -> str:
    lines = text.splitlines()
    lines[3] = lines[3].replace("3.45", "3.4x5")
    return "\n".join(lines) + "\n"


def _truncated(text: str) -> str:
    lines = text.splitlines()
    lines[4] = lines[4].rstrip()  # the empty metadata fields are gone: 4 fields instead of 28
    return "\n".join(lines) + "\n"


def _bad_list(text: str) -> str:
    return text.replace(" 24-2-2 ", " 24-2--2 ", 1)


def _late_metadata(text: str) -> str:
    lines = text.splitlines()
    fields = lines[2].split(" ")
    fields[9] = "25"  # batch_size repeated on the second data row
    lines[2] = " ".join(fields)
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("breakage, line, message", [
    (_missing_column, 1, "missing column(s) valLoss"),
    (_non_numeric, 4, "non-numeric valLoss '3.4x5'"),
    (_truncated, 5, "expected 28 fields, found 4"),
    (_bad_list, 2, "bad convKernels '24-2--2'"),
    (_late_metadata, 3, "first data row only"),
])
def test_malformed_table_is_rejected_whole_and_others_still_ingest(database, tmp_path: Path, breakage, line,
                                                                   message) -> None:
    folder = tmp_path / "coll"
    good = write(folder, "good.txt", TABLE_B)
    bad = write(folder, "bad.txt", breakage(TABLE_A))
    summary = ingest_paths(database, [folder], progress=False)
    assert summary.files == 1 and len(summary.skipped) == 1
    assert summary.skipped[0].startswith(f"{bad}:{line}: ") and message in summary.skipped[0]
    with database.session() as session:
        ids = [arch["id"] for arch in session.scalars(select(Architecture.arch))]
        assert ids == ["2021_02_15_13_56_59_917381"]  # nothing of bad.txt
        assert session.scalar(select(func.count()).select_from(Epoch)) == 3
    assert good.exists()
    with pytest.raises(InputFormatError, match=f"{bad.name}:{line}"):
        ingest_paths(database, [bad], progress=False, strict=True)


def test_failed_first_file_leaves_no_search_behind(database, tmp_path: Path) -> None:
    bad = write(tmp_path / "only", "bad.txt", _bad_list(TABLE_A))
    summary = ingest_paths(database, [bad], progress=False)
    assert not summary.ok and counts(database) == (0, 0, 0, 0)


# ---------------------------------------------------------------------------------- archives, CLI
@pytest.mark.parametrize("kind", ["zip", "tar.gz"])
def test_archives_are_one_collection_each(database, collection: Path, tmp_path: Path, kind: str) -> None:
    archive = tmp_path / f"dataverse-cifar.{kind}"
    if kind == "zip":
        with zipfile.ZipFile(archive, "w") as handle:
            for path in collection.iterdir():
                handle.write(path, f"CIFAR100/{path.name}")
    else:
        with tarfile.open(archive, "w:gz") as handle:
            handle.add(collection, arcname="CIFAR100")
    summary = ingest_paths(database, [archive], progress=False)
    assert summary.ok and summary.networks == 2
    with database.session() as session:
        assert session.scalars(select(Search.name)).all() == ["random-nn:dataverse-cifar"]


def test_cli_summary_and_exit_codes(database_url: str, collection: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(ingest, ["--db", database_url, "--quiet", str(collection)])
    assert result.exit_code == 0, result.output
    assert "2 networks, 7 epoch rows, 0 skipped" in result.output
    bad = write(tmp_path / "broken", "bad.txt", _truncated(TABLE_A))
    result = runner.invoke(ingest, ["--db", database_url, "--quiet", "--format", "random-nn", str(bad.parent)])
    assert result.exit_code == 1 and f"{bad}:5" in result.output and "1 skipped" in result.output
    result = runner.invoke(ingest, ["--db", database_url, "--quiet", "--strict", str(bad.parent)])
    assert result.exit_code == 1 and "error:" in result.output and "Traceback" not in result.output


# ------------------------------------------------------------------------------------------ export
def test_export_writes_the_tables_back_byte_for_byte(database, collection: Path, tmp_path: Path) -> None:
    write(collection, "svhn.txt", TABLE_C)
    ingest_paths(database, [collection], progress=False)
    with database.session() as session:
        search_id = session.scalars(select(Search.id)).one()
    paths = export_random_nn(database, search_id, tmp_path / "out")
    exported = {p.name: p.read_text() for p in paths}
    assert exported == {"2021_02_15_13_55_26_539263.txt": TABLE_A, "2021_02_15_13_56_59_917381.txt": TABLE_B,
                        "2021_03_01_09_00_00_000001.txt": TABLE_C}


def test_export_of_a_search_not_imported_from_tables(database, recorder, tmp_path: Path) -> None:
    dataset = recorder.register_dataset("xfel-ef2-1e14", "xfel-tiff", {"beam": "low"})
    search = recorder.start_search("nsga", "nsga-net-macro", dataset)
    arch = recorder.start_architecture(search, index=3, generation=1, train_params={"batch_size": 64, "lr": 0.025})
    recorder.log_epoch(arch, 1, train_loss=0.7, val_loss=0.6, val_acc=55.5)
    recorder.log_epoch(arch, 2, train_loss=float("inf"), val_loss=0.5, val_acc=60.0)
    (path,) = export_random_nn(database, search, tmp_path)
    table = parse_table(path.read_text(), str(path))
    assert path.name == "nsga_g1_i3.txt"
    assert table.metadata["batch_size"] == 64 and table.metadata["learning_rate"] == 0.025
    assert table.metadata["dataset"] == "xfel-ef2-1e14" and table.metadata["convKernels"] == []
    assert table.curve == [(1.0, 0.7, 0.6, 55.5), (2.0, float("inf"), 0.5, 60.0)]


def test_export_cli_random_nn_format(database_url: str, collection: Path, tmp_path: Path) -> None:
    from a4nn.cli.main import main

    assert main(["ingest", str(collection), "--db", database_url]) == 0
    out = tmp_path / "tables"
    assert main(["export", "1", "--format", "random-nn", "--out", str(out), "--db", database_url]) == 0
    exported = {p.name: p.read_text() for p in out.iterdir()}
    assert exported["2021_02_15_13_55_26_539263.txt"] == TABLE_A
    assert exported["2021_02_15_13_56_59_917381.txt"] == TABLE_B
