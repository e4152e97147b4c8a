"""Ingest that never lies and never blows up (issue 22 items 2-4, issue 24 items 7-8).

The same per-file rules for every way a file arrives (loose, in a folder, in a .zip,
in a .tar.gz): a bad file is rejected by name and line, the others still ingest, the
summary counts what was stored, and re-runs rewrite nothing. Archives are opened as
hostile: a corrupt one is reported, not fatal; one over its limits is refused before a
byte of it is written.
"""
from __future__ import annotations

import io
import os
import shutil
import sqlite3
import subprocess
import sys
import tarfile
import zipfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import func, select

from a4nn.commons.ingest import ArchiveLimits, ingest_paths
from a4nn.commons.ingest import archives as archives_module
from a4nn.commons.ingest import random_nn as random_nn_reader
from a4nn.errors import InputFormatError
from a4nn.lineage.models import Architecture, Epoch, Prediction, Search
from test_ingest_random_nn import EMPTY, HEADER, TABLE_A, TABLE_B, TABLE_C, counts, write

TINY_ICPP = (  # two networks, three epochs each; the second network's row order is shuffled on purpose
    "epoch,train_accs,val_accs,predictions,converged,flops,arch\n"
    "0,60.0,55.0,inf,False,120.5,0\n"
    "1,70.0,66.0,80.0,False,120.5,0\n"
    "2,75.0,71.0,80.2,True,120.5,0\n"
    "1,68.0,61.0,inf,False,300.25,13\n"
    "0,58.0,52.0,inf,False,300.25,13\n"
    "2,72.0,69.5,76.0,True,300.25,13\n"
)


def _archive(kind: str, target: Path, members: dict[str, bytes]) -> Path:
    if kind == "zip":
        with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as handle:
            for name, data in members.items():
                handle.writestr(name, data)
    else:
        with tarfile.open(target, "w:gz") as handle:
            for name, data in members.items():
                info = tarfile.TarInfo(name)
                info.size = len(data)
                handle.addfile(info, io.BytesIO(data))
    return target


def _stored_ids(database) -> list[str]:
    with database.session() as session:
        return sorted(arch["id"] for arch in session.scalars(select(Architecture.arch)))


# ------------------------------------------------------------------------------ 22.2: one ID, one network
def test_a_second_table_with_a_stored_id_is_rejected_naming_both_files(database, tmp_path: Path) -> None:
    folder = tmp_path / "coll"
    first = write(folder, "a.txt", TABLE_A)
    # same ID as TABLE_A, other values: a copy error, not a new network
    second = write(folder, "b.txt", TABLE_A.replace("19.5", "21.5"))
    summary = ingest_paths(database, [folder], progress=False)
    assert (summary.files, summary.networks, summary.rows) == (1, 1, 4)
    assert len(summary.skipped) == 1
    problem = summary.skipped[0]
    assert problem.startswith(f"{second}:2: ") and str(first) in problem and "2021_02_15_13_55_26_539263" in problem
    with database.session() as session:
        (architecture,) = session.scalars(select(Architecture)).all()
        assert architecture.final_acc == 19.5  # the first file's values, not the second's
    again = ingest_paths(database, [folder], progress=False)
    assert (again.networks, again.present, len(again.skipped)) == (0, 1, 1)
    assert counts(database) == (1, 1, 1, 4)
    with database.session() as session:
        assert session.scalars(select(Architecture.final_acc)).one() == 19.5  # a re-run rewrote nothing


def test_identical_bytes_under_another_name_are_already_present(database, tmp_path: Path) -> None:
    folder = tmp_path / "coll"
    write(folder, "a.txt", TABLE_A)
    write(folder, "copy-of-a.txt", TABLE_A)
    summary = ingest_paths(database, [folder], progress=False)
    assert summary.ok and (summary.files, summary.networks, summary.present) == (2, 1, 1)
    assert counts(database) == (1, 1, 1, 4)


# ------------------------------------------------------------------------------ 22.3: per-file rules
def test_a_corrupt_archive_is_reported_and_the_good_tables_still_ingest(database, tmp_path: Path) -> None:
    folder = tmp_path / "coll"
    write(folder, "a.txt", TABLE_A)
    write(folder, "b.txt", TABLE_B)
    good = _archive("tar.gz", tmp_path / "good.tar.gz", {"c.txt": TABLE_C.encode()})
    corrupt = folder / "broken.tar.gz"
    corrupt.write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])  # truncated gzip stream
    summary = ingest_paths(database, [folder], progress=False)
    assert summary.networks == 2 and len(summary.skipped) == 1
    assert summary.skipped[0].startswith(f"{corrupt}: ") and "cannot unpack archive" in summary.skipped[0]
    assert _stored_ids(database) == ["2021_02_15_13_55_26_539263", "2021_02_15_13_56_59_917381"]
    with pytest.raises(InputFormatError, match="broken.tar.gz"):
        ingest_paths(database, [corrupt], progress=False, strict=True)


def _bad_table(text: str) -> str:
    return text.replace(" 24-2-2 ", " 24-2--2 ", 1)


@pytest.mark.parametrize("arrival", ["loose", "folder", "zip", "tar.gz"])
def test_the_same_rules_for_every_way_a_file_arrives(database, tmp_path: Path, arrival: str) -> None:
    members = {"good.txt": TABLE_B.encode(), "bad.txt": _bad_table(TABLE_A).encode(),
               "bom.txt": ("\ufeff" + TABLE_C).encode(), "notes.md": b"not a table\n"}
    if arrival in ("zip", "tar.gz"):
        paths = [_archive(arrival, tmp_path / f"coll.{arrival}", members)]
        bad_name = f"{paths[0]}!bad.txt"
    else:
        folder = tmp_path / "coll"
        for name, data in members.items():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).write_bytes(data)
        paths = [folder / name for name in members] if arrival == "loose" else [folder]
        bad_name = str(folder / "bad.txt")
    summary = ingest_paths(database, paths, progress=False)
    assert (summary.files, summary.networks, summary.rows) == (2, 2, 5)  # good.txt: 3 rows, bom.txt: 2 rows
    assert summary.skipped == [f"{bad_name}:2: bad convKernels '24-2--2': expected a hyphen-separated list of "
                               f"non-negative integers (e.g. 3-1-2)"]
    assert [Path(name.split("!")[-1]).name for name in summary.unrecognised] == ["notes.md"]
    assert _stored_ids(database) == ["2021_02_15_13_56_59_917381", "2021_03_01_09_00_00_000001"]


def test_a_table_with_a_byte_order_mark_parses(database, tmp_path: Path) -> None:
    path = write(tmp_path / "coll", "bom.txt", "\ufeff" + TABLE_A)
    summary = ingest_paths(database, [path], progress=False, format="random-nn")
    assert summary.ok and (summary.networks, summary.rows) == (1, 4)


def test_a_long_table_streams_in_chunks_and_a_late_error_leaves_nothing(database, tmp_path: Path) -> None:
    n = random_nn_reader.CHUNK * 2 + 7
    first, *_ = TABLE_A.splitlines()[1:2]
    rows = [first] + [f"{0.5 * (i + 1)} 1.0 1.0 {i % 100}.5" + EMPTY for i in range(1, n)]
    folder = tmp_path / "long"
    write(folder, "long.txt", HEADER + "\n" + "\n".join(rows) + "\n")
    summary = ingest_paths(database, [folder], progress=False)
    assert summary.ok and summary.rows == n
    with database.session() as session:
        architecture = session.scalars(select(Architecture)).one()
        assert architecture.epochs_trained == 0.5 * n and architecture.final_acc == (n - 1) % 100 + 0.5
        assert architecture.train_params["epochs"] == 0.5 * n
        assert session.scalar(select(func.count()).select_from(Epoch)) == n
    rows[-3] = rows[-3].replace(" 1.0 1.0 ", " 1.0 x ")
    broken = write(tmp_path / "broken", "long.txt", HEADER + "\n" + "\n".join(rows) + "\n")
    summary = ingest_paths(database, [broken], progress=False)
    assert summary.skipped == [f"{broken}:{n - 1}: non-numeric valLoss 'x'"]
    with database.session() as session:
        assert session.scalars(select(Search.name)).all() == ["random-nn:long"]  # nothing of the broken one


def test_a_binary_file_with_a_table_name_is_rejected_not_read_whole(database, tmp_path: Path) -> None:
    path = write(tmp_path / "coll", "blob.txt", "")
    path.write_bytes(b"epochs valAcc " + b"\xff\xfe" * 100)
    summary = ingest_paths(database, [path], progress=False, format="random-nn")
    assert summary.skipped == [f"{path}: not a UTF-8 text table"]


# ------------------------------------------------------------------------------ ICPP'23 per-file rules
def _icpp(folder: Path, text: str, name: str = "1gpu_1e14_training_data.csv") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text)
    return path


def test_a_header_only_log_is_rejected(database, tmp_path: Path) -> None:
    path = _icpp(tmp_path, TINY_ICPP.splitlines()[0] + "\n")
    summary = ingest_paths(database, [path], progress=False)
    assert summary.skipped == [f"{path}:2: no data rows after the header (an empty log is not a completed search)"]
    assert counts(database) == (0, 0, 0, 0)


def test_a_duplicated_arch_epoch_row_is_rejected_naming_file_and_line(database, tmp_path: Path) -> None:
    lines = TINY_ICPP.splitlines()
    path = _icpp(tmp_path, "\n".join(lines[:3] + [lines[2].replace("66.0", "67.0")] + lines[3:]) + "\n")
    summary = ingest_paths(database, [path], progress=False)
    assert summary.skipped == [f"{path}:4: a second row for arch 0 epoch 1 (one row per network and epoch)"]
    assert counts(database) == (0, 0, 0, 0)


def test_a_log_with_a_byte_order_mark_parses_and_counts_equal_what_is_stored(database, tmp_path: Path) -> None:
    path = _icpp(tmp_path, "\ufeff" + TINY_ICPP)
    summary = ingest_paths(database, [path], progress=False)
    assert summary.ok and (summary.networks, summary.rows) == (2, 6)
    with database.session() as session:
        assert session.scalar(select(func.count()).select_from(Architecture)) == summary.networks
        assert session.scalar(select(func.count()).select_from(Epoch)) == summary.rows
        assert session.scalar(select(func.count()).select_from(Prediction)) == 6  # inf ones as NULL + flag


def test_a_changed_log_never_rewrites_its_search(database, tmp_path: Path) -> None:
    path = _icpp(tmp_path / "a", TINY_ICPP)
    assert ingest_paths(database, [path], progress=False).networks == 2
    again = ingest_paths(database, [path], progress=False)
    assert again.ok and (again.networks, again.rows, again.present) == (0, 0, 2)
    changed = _icpp(tmp_path / "b", TINY_ICPP.replace("71.0", "72.0"))
    summary = ingest_paths(database, [changed], progress=False)
    assert len(summary.skipped) == 1 and summary.skipped[0].startswith(f"{changed}: ")
    assert str(path) in summary.skipped[0] and "another version" in summary.skipped[0]
    with database.session() as session:
        assert 71.0 in session.scalars(select(Architecture.final_acc)).all()


def test_tiny_log_generation_fitness_and_times(database, tmp_path: Path) -> None:
    ingest_paths(database, [_icpp(tmp_path, TINY_ICPP)], progress=False)
    with database.session() as session:
        search = session.scalars(select(Search)).one()
        # the log has no dates: no start time in the column, the ingest time (a real one) only in the config
        assert search.started_at is None and search.config["started_at"] is None
        ingested = datetime.fromisoformat(search.config["ingested_at"])
        assert ingested.tzinfo is not None and abs(datetime.now(timezone.utc) - ingested) < timedelta(minutes=10)
        rows = session.execute(select(Architecture.generation, Architecture.index, Architecture.final_acc,
                                      Architecture.predicted_acc, Architecture.fitness, Architecture.train_params)
                               .order_by(Architecture.generation, Architecture.index)).all()
    assert [(g, i, p["icpp23_arch"]) for g, i, *_, p in rows] == [(0, 0, 0), (1, 3, 13)]
    # no early termination: the NAS saw the accuracy after the last epoch, never PENGUIN's prediction
    assert [(final, predicted, fitness) for _, _, final, predicted, fitness, _ in rows] == [
        (71.0, 80.2, 71.0), (69.5, 76.0, 69.5)]


# ------------------------------------------------------------------------------ 22.4: archive limits
@pytest.mark.parametrize("kind", ["zip", "tar.gz"])
def test_a_zip_bomb_is_refused_before_anything_is_written(database, tmp_path: Path, kind: str, monkeypatch) -> None:
    bomb = _archive(kind, tmp_path / f"bomb.{kind}", {"a.txt": TABLE_A.encode(), "zeros.txt": bytes(40 << 20)})
    assert bomb.stat().st_size < 200_000  # 40 MB of zeros compress about a thousandfold
    writes: list[Path] = []
    original = archives_module._copy
    monkeypatch.setattr(archives_module, "_copy", lambda source, target, *args: (writes.append(target),
                                                                                  original(source, target, *args)))
    summary = ingest_paths(database, [bomb], progress=False)
    assert len(summary.skipped) == 1 and summary.skipped[0].startswith(f"{bomb}: refused archive: ")
    assert "--max-ratio" in summary.skipped[0]
    assert counts(database) == (0, 0, 0, 0)
    if kind == "zip":
        assert writes == []  # declared sizes are checked before the first member is written
    else:
        assert [p.name for p in writes] == ["a.txt"]  # a tar header is checked before its member's data


@pytest.mark.parametrize("kind", ["zip", "tar.gz"])
def test_member_size_and_count_limits(database, tmp_path: Path, kind: str) -> None:
    archive = _archive(kind, tmp_path / f"three.{kind}", {"a.txt": TABLE_A.encode(), "b.txt": TABLE_B.encode(),
                                                           "c.txt": TABLE_C.encode()})
    summary = ingest_paths(database, [archive], progress=False, limits=ArchiveLimits(max_members=2))
    assert "more than 2 files (--max-members)" in summary.skipped[0]
    summary = ingest_paths(database, [archive], progress=False, limits=ArchiveLimits(max_member_bytes=300))
    assert "(--max-member-mb)" in summary.skipped[0]
    assert counts(database) == (0, 0, 0, 0)
    assert ingest_paths(database, [archive], progress=False).networks == 3


def test_an_archive_member_outside_its_folder_is_refused(database, tmp_path: Path) -> None:
    archive = _archive("tar.gz", tmp_path / "evil.tar.gz", {"../evil.txt": TABLE_A.encode()})
    summary = ingest_paths(database, [archive], progress=False)
    assert "would unpack outside" in summary.skipped[0] and not (tmp_path / "evil.txt").exists()


# ------------------------------------------------------------------------------ the console script
def run_console(args: list[str]) -> subprocess.CompletedProcess:
    """The installed ``a4nn-commons`` console script, output piped as in a script (tests/cli has the full helper)."""
    script = Path(sys.executable).with_name("a4nn-commons")
    found = str(script) if script.is_file() else shutil.which("a4nn-commons")
    if found is None:
        pytest.skip("the a4nn-commons console script is not installed")
    environment = {key: value for key, value in os.environ.items() if key != "A4NN_DB_URL"}
    return subprocess.run([found, *args], capture_output=True, text=True, timeout=180, env=environment,
                          stdin=subprocess.DEVNULL)


def assert_clean_failure(result: subprocess.CompletedProcess, code: int, *needles: str) -> None:
    detail = f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert result.returncode == code and "Traceback" not in result.stderr, detail
    for needle in needles:
        assert needle in result.stderr, detail


def test_console_script_reports_archive_limits_and_added_versus_present(tmp_path: Path) -> None:
    folder = tmp_path / "coll"
    write(folder, "a.txt", TABLE_A)
    write(folder, "b.txt", TABLE_B)
    write(folder, "README.md", "not a table\n")
    corrupt = tmp_path / "corrupt.tar.gz"
    corrupt.write_bytes(b"\x1f\x8b\x08\x00 definitely not gzip")
    db = tmp_path / "a.db"
    result = run_console(["ingest", str(folder), str(corrupt), "--db", f"sqlite:///{db}"])
    assert_clean_failure(result, 1, f"skipped: {corrupt}: cannot unpack archive", f"not recognised: {folder / 'README.md'}")
    assert "networks added 2, already present 0" in result.stdout
    with sqlite3.connect(db) as connection:
        assert connection.execute("SELECT count(*) FROM architectures").fetchone()[0] == 2
    result = run_console(["ingest", str(folder), "--db", f"sqlite:///{db}"])
    assert result.returncode == 0, result.stderr
    assert "0 networks, 0 epoch rows" in result.stdout and "networks added 0, already present 2" in result.stdout
    archive = _archive("zip", tmp_path / "three.zip", {"a.txt": TABLE_A.encode(), "b.txt": TABLE_B.encode(),
                                                       "c.txt": TABLE_C.encode()})
    result = run_console(["ingest", str(archive), "--max-members", "2", "--db", f"sqlite:///{db}"])
    assert_clean_failure(result, 1, f"{archive}: refused archive: more than 2 files (--max-members)")
