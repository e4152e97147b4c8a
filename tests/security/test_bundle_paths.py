"""Crafted bundles cannot make an import read, hash or record a file outside the bundle (issue 23, item 1).

Every place a bundle carries a path is attacked with ``../``, an absolute path, a
Windows ``..\\`` and a symlink: the checkpoints table's ``file`` and ``source_uri``
columns, the manifest's file entries, and the search configuration's ``run_dir`` /
``state_path`` (which ``search --resume`` would write to).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import func, select

from a4nn.commons.bundle import MANIFEST, export_bundle, import_bundle, verify_bundle, write_manifest
from a4nn.errors import InputFormatError
from a4nn.lineage.database import Database
from a4nn.lineage.models import Checkpoint, Search
from a4nn.lineage.recorder import file_sha256
from security_trail import SEARCH, fill_secure_trail

ATTACKS = {
    "dotdot": "../outside/secret.txt",
    "deep-dotdot": "checkpoints/../../outside/secret.txt",
    "absolute": None,  # filled with the absolute path of the outside file
    "windows": "..\\outside\\secret.txt",
    "windows-drive": "C:\\outside\\secret.txt",
    "file-uri": None,  # file:// URI of the outside file
}


@pytest.fixture
def exported(recorder, tmp_path: Path) -> Path:
    fill_secure_trail(recorder, tmp_path / "source")
    return export_bundle(recorder.database, SEARCH, tmp_path / "bundle", "per-epoch").folder


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    secret = tmp_path / "outside" / "secret.txt"
    secret.parent.mkdir()
    secret.write_text("the log file beside the database\n")
    return secret


def attack_value(name: str, outside: Path) -> str:
    if name == "absolute":
        return str(outside)
    if name == "file-uri":
        return outside.as_uri()
    return ATTACKS[name]


def rewrite_checkpoints(bundle: Path, column: str, value: str, row: int = 1, sha256: str | None = None) -> None:
    """Change one cell of the checkpoints table (Parquet and CSV) and rehash the manifest, as an attacker would."""
    frame = pd.read_parquet(bundle / "checkpoints.parquet")
    frame.loc[row, column] = value
    if sha256 is not None:
        frame.loc[row, "sha256"] = sha256
    frame.to_parquet(bundle / "checkpoints.parquet", index=False)
    frame.to_csv(bundle / "checkpoints.csv", index=False)
    write_manifest(bundle)


def checkpoint_count(database: Database) -> int:
    with database.engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(Checkpoint)).scalar_one()


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_checkpoint_file_outside_the_bundle_fails_the_import(exported: Path, outside: Path, target: Database,
                                                           attack: str) -> None:
    rewrite_checkpoints(exported, "file", attack_value(attack, outside), sha256=file_sha256(outside))
    assert verify_bundle(exported).ok  # the manifest was rehashed: only the path check can catch it
    with pytest.raises(InputFormatError) as caught:
        import_bundle(target, exported)
    message = str(caught.value)
    assert "checkpoints.parquet row 2" in message and "column file" in message, message
    assert checkpoint_count(target) == 0
    with target.engine.connect() as connection:  # one transaction: nothing of the bundle was written
        assert connection.execute(select(func.count()).select_from(Search)).scalar_one() == 0


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_checkpoint_source_uri_must_be_relative(exported: Path, outside: Path, target: Database, attack: str) -> None:
    rewrite_checkpoints(exported, "source_uri", attack_value(attack, outside))
    with pytest.raises(InputFormatError, match=r"checkpoints.parquet row 2 .*column source_uri"):
        import_bundle(target, exported)


def test_checkpoint_file_that_is_a_symlink_is_refused(exported: Path, outside: Path, target: Database) -> None:
    table = pd.read_parquet(exported / "checkpoints.parquet")
    victim = exported / table.loc[0, "file"]
    victim.unlink()
    victim.symlink_to(outside)
    report = verify_bundle(exported)
    assert not report.ok and report.symlinks == [table.loc[0, "file"]]
    with pytest.raises(InputFormatError, match="symlink"):
        import_bundle(target, exported)
    # even with a manifest listing the link with the outside file's digest
    manifest = json.loads((exported / MANIFEST).read_text())
    manifest["files"][table.loc[0, "file"]] = {"sha256": file_sha256(outside), "size": outside.stat().st_size}
    (exported / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(InputFormatError, match="symlink"):
        import_bundle(target, exported)
    assert checkpoint_count(target) == 0


def test_symlinked_checkpoint_folder_is_refused(exported: Path, outside: Path, target: Database) -> None:
    folder = exported / "checkpoints"
    moved = exported.parent / "moved-checkpoints"
    folder.rename(moved)
    folder.symlink_to(moved, target_is_directory=True)
    assert "checkpoints" in verify_bundle(exported).symlinks
    with pytest.raises(InputFormatError, match="symlink"):
        import_bundle(target, exported)


def test_write_manifest_refuses_symlinks(exported: Path, outside: Path) -> None:
    (exported / "extra.txt").symlink_to(outside)
    with pytest.raises(Exception, match="symlink"):
        write_manifest(exported)


@pytest.mark.parametrize("entry", ["../outside/secret.txt", "/etc/passwd", "..\\outside\\secret.txt",
                                   "C:/outside/secret.txt", "checkpoints/../../outside/secret.txt"])
def test_manifest_entries_outside_the_bundle_are_refused(exported: Path, outside: Path, entry: str) -> None:
    manifest = json.loads((exported / MANIFEST).read_text())
    manifest["files"][entry] = {"sha256": file_sha256(outside), "size": outside.stat().st_size}
    (exported / MANIFEST).write_text(json.dumps(manifest))
    report = verify_bundle(exported)
    assert not report.ok and repr(entry) in (report.error or ""), report.problems()
    result = subprocess.run([sys.executable, "-m", "a4nn.cli.main", "verify", str(exported)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1 and repr(entry) in result.stderr and "Traceback" not in result.stderr


def test_run_folder_in_a_bundle_is_not_imported(exported: Path, target: Database, tmp_path: Path) -> None:
    doc = json.loads((exported / "search.json").read_text())
    assert "run_dir" not in doc["searches"][0]["config"]  # the export never carries it
    doc["searches"][0]["config"].update(run_dir=str(tmp_path / "victim"), state_path=str(tmp_path / "victim" / "x"))
    (exported / "search.json").write_text(json.dumps(doc))
    write_manifest(exported)
    import_bundle(target, exported)
    with target.engine.connect() as connection:
        config = connection.execute(select(Search.config)).scalar_one()
    assert "run_dir" not in config and "state_path" not in config


def test_a_clean_bundle_still_imports_its_checkpoints(exported: Path, target: Database) -> None:
    imported = import_bundle(target, exported)
    assert imported.checkpoints == 4 == checkpoint_count(target)
    with target.engine.connect() as connection:
        uris = connection.execute(select(Checkpoint.uri)).scalars().all()
    root = exported.resolve().as_uri()
    assert all(uri.startswith(root + "/checkpoints/") for uri in uris)


def test_checkpoint_with_other_bytes_than_its_row_is_refused(exported: Path, target: Database) -> None:
    table = pd.read_parquet(exported / "checkpoints.parquet")
    (exported / table.loc[0, "file"]).write_bytes(b"tampered")
    write_manifest(exported)
    with pytest.raises(InputFormatError, match=r"row 1 .*sha256"):
        import_bundle(target, exported)


def test_bundle_file_rejects_symlinks_without_following_them(tmp_path: Path, outside: Path) -> None:
    from a4nn.lineage.paths import UnsafePathError, bundle_file

    bundle = tmp_path / "b"
    (bundle / "sub").mkdir(parents=True)
    (bundle / "sub" / "ok.pt").write_bytes(b"x")
    os.symlink(outside, bundle / "sub" / "link.pt")
    assert bundle_file(bundle, "sub/ok.pt") == (bundle / "sub" / "ok.pt").resolve()
    for bad in ("sub/link.pt", "sub/../sub/ok.pt", "sub\\ok.pt", str(bundle / "sub" / "ok.pt"), "", "~/x",
                "sub/missing.pt"):
        with pytest.raises(UnsafePathError):
            bundle_file(bundle, bad)
