"""Every way of tampering with an exported bundle is caught (issue 22, item 7: "24 bundle tampers caught").

Each tamper changes an intact bundle in one way (a byte of each kind of data file,
a deleted, added, truncated or renamed file, an edited MANIFEST.json, a symlink in
place of a file). For each, ``verify_bundle`` must report the problem naming the
file, and ``import_bundle`` must refuse it without writing a single row into a
fresh target database. A few also go through the installed ``a4nn-commons verify``
console script, which must exit 1 with the file named and no traceback.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import func, inspect, select, table

from a4nn.commons.bundle import MANIFEST, export_bundle, import_bundle, verify_bundle
from a4nn.errors import InputFormatError
from a4nn.lineage.database import Database
from security_trail import SEARCH, fill_secure_trail
from installed import console_script

CHECKPOINT = "checkpoints/secure-search/g000_i0000_e1.pt"
OTHER_CHECKPOINT = "checkpoints/secure-search/g000_i0001_e2.pt"


def flip_byte(bundle: Path, name: str) -> None:
    """Change one byte in the middle of the file, keeping its size."""
    path = bundle / name
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle] = (data[middle] + 1) % 256
    path.write_bytes(bytes(data))


def edit_manifest(bundle: Path, change: Callable[[dict], None]) -> None:
    manifest = json.loads((bundle / MANIFEST).read_text())
    change(manifest)
    (bundle / MANIFEST).write_text(json.dumps(manifest, indent=2))


def symlink_to_a_copy(bundle: Path, name: str) -> None:
    """Replace a file by a symlink to an outside copy with the very same bytes (the digest still matches)."""
    path = bundle / name
    copy = bundle.parent / f"outside-{path.name}"
    shutil.copyfile(path, copy)
    path.unlink()
    path.symlink_to(copy)


def swap(bundle: Path, first: str, second: str) -> None:
    a, b = bundle / first, bundle / second
    data = a.read_bytes()
    a.write_bytes(b.read_bytes())
    b.write_bytes(data)


def manifest_sha(name: str, value: str) -> Callable[[dict], None]:
    return lambda manifest: manifest["files"][name].update(sha256=value)


def manifest_size(name: str, value: object) -> Callable[[dict], None]:
    return lambda manifest: manifest["files"][name].update(size=value)


# name -> (tamper, the text the verify report must hold: it names the file)
TAMPERS: dict[str, tuple[Callable[[Path], None], str]] = {
    "byte-architectures.parquet": (lambda b: flip_byte(b, "architectures.parquet"), "changed: architectures.parquet"),
    "byte-genomes.parquet": (lambda b: flip_byte(b, "genomes.parquet"), "changed: genomes.parquet"),
    "byte-epochs.csv": (lambda b: flip_byte(b, "epochs.csv"), "changed: epochs.csv"),
    "byte-search.json": (lambda b: flip_byte(b, "search.json"), "changed: search.json"),
    "byte-engine_config.json": (lambda b: flip_byte(b, "engine_config.json"), "changed: engine_config.json"),
    "byte-README.md": (lambda b: flip_byte(b, "README.md"), "changed: README.md"),
    "byte-checkpoint": (lambda b: flip_byte(b, CHECKPOINT), f"changed: {CHECKPOINT}"),
    "append-predictions.csv": (lambda b: (b / "predictions.csv").open("a").write("\n"), "changed: predictions.csv"),
    "truncate-checkpoints.parquet": (lambda b: os.truncate(b / "checkpoints.parquet", 100),
                                     "changed: checkpoints.parquet"),
    "empty-epochs.csv": (lambda b: os.truncate(b / "epochs.csv", 0), "changed: epochs.csv"),
    "swap-two-checkpoints": (lambda b: swap(b, CHECKPOINT, OTHER_CHECKPOINT), f"changed: {CHECKPOINT}"),
    "delete-architectures.parquet": (lambda b: (b / "architectures.parquet").unlink(),
                                     "missing: architectures.parquet"),
    "delete-epochs.csv": (lambda b: (b / "epochs.csv").unlink(), "missing: epochs.csv"),
    "delete-search.json": (lambda b: (b / "search.json").unlink(), "missing: search.json"),
    "delete-README.md": (lambda b: (b / "README.md").unlink(), "missing: README.md"),
    "delete-checkpoint": (lambda b: (b / CHECKPOINT).unlink(), f"missing: {CHECKPOINT}"),
    "delete-MANIFEST.json": (lambda b: (b / MANIFEST).unlink(), "MANIFEST.json is missing"),
    "extra-file": (lambda b: (b / "notes.txt").write_text("added"), "not in manifest: notes.txt"),
    "extra-checkpoint": (lambda b: shutil.copyfile(b / CHECKPOINT, b / "checkpoints/secure-search/extra.pt"),
                         "not in manifest: checkpoints/secure-search/extra.pt"),
    "rename-genomes.csv": (lambda b: (b / "genomes.csv").rename(b / "genomes.csv.bak"), "missing: genomes.csv"),
    "symlink-for-epochs.csv": (lambda b: symlink_to_a_copy(b, "epochs.csv"), "symlink refused: epochs.csv"),
    "symlink-for-checkpoint": (lambda b: symlink_to_a_copy(b, CHECKPOINT), f"symlink refused: {CHECKPOINT}"),
    "symlink-for-MANIFEST.json": (lambda b: symlink_to_a_copy(b, MANIFEST), "MANIFEST.json is a symlink"),
    "manifest-wrong-sha": (lambda b: edit_manifest(b, manifest_sha("epochs.csv", "0" * 64)), "changed: epochs.csv"),
    "manifest-wrong-size": (lambda b: edit_manifest(b, manifest_size("search.json", 1)), "changed: search.json"),
    "manifest-missing-entry": (lambda b: edit_manifest(b, lambda m: m["files"].pop("README.md")),
                               "not in manifest: README.md"),
    "manifest-extra-entry": (lambda b: edit_manifest(b, lambda m: m["files"].update(
        {"ghost.csv": {"sha256": "0" * 64, "size": 3}})), "missing: ghost.csv"),
    "manifest-bad-format": (lambda b: edit_manifest(b, lambda m: m.update(format="a4nn-bundle/99")),
                            "unsupported manifest format 'a4nn-bundle/99'"),
    "manifest-bad-version": (lambda b: edit_manifest(b, lambda m: m.update(version=2)),
                             "unsupported manifest version 2"),
    "manifest-sha-not-hex": (lambda b: edit_manifest(b, manifest_sha("genomes.csv", "not-a-digest")),
                             "files entry 'genomes.csv': sha256"),
    "manifest-negative-size": (lambda b: edit_manifest(b, manifest_size("genomes.csv", -1)),
                               "files entry 'genomes.csv': size"),
    "manifest-not-json": (lambda b: (b / MANIFEST).write_text("{not json"), "not a valid manifest"),
    "manifest-no-files": (lambda b: edit_manifest(b, lambda m: m.pop("files")), "no 'files' object"),
}
# the ones also run through the installed console script
THROUGH_THE_CONSOLE = ["byte-architectures.parquet", "byte-checkpoint", "delete-search.json", "extra-file",
                       "manifest-wrong-sha", "manifest-bad-version", "symlink-for-epochs.csv"]


@pytest.fixture
def exported(recorder, tmp_path: Path) -> Path:
    fill_secure_trail(recorder, tmp_path / "source")
    bundle = export_bundle(recorder.database, SEARCH, tmp_path / "bundle", "per-epoch").folder
    assert verify_bundle(bundle).ok
    return bundle


def row_counts(database: Database) -> dict[str, int]:
    """Rows of every table but Alembic's own, so a write anywhere shows."""
    names = [name for name in inspect(database.engine).get_table_names() if not name.endswith("alembic_version")]
    with database.engine.connect() as connection:
        return {name: connection.execute(select(func.count()).select_from(table(name))).scalar_one() for name in names}


def test_there_are_at_least_24_distinct_tampers() -> None:
    assert len(TAMPERS) >= 24 and len({needle for _, needle in TAMPERS.values()}) >= 20


@pytest.mark.parametrize("name", sorted(TAMPERS))
def test_tamper_is_reported_and_refused(name: str, exported: Path, target: Database) -> None:
    tamper, needle = TAMPERS[name]
    tamper(exported)
    report = verify_bundle(exported)
    assert not report.ok, name
    assert any(needle in line for line in report.problems()), report.problems()
    before = row_counts(target)
    assert sum(before.values()) == 0 and "architectures" in before
    with pytest.raises(InputFormatError) as caught:
        import_bundle(target, exported)
    assert needle in str(caught.value), str(caught.value)
    assert row_counts(target) == before


@pytest.mark.parametrize("name", THROUGH_THE_CONSOLE)
def test_tamper_fails_the_verify_command(name: str, exported: Path) -> None:
    environment = {key: value for key, value in os.environ.items() if key != "A4NN_DB_URL"}
    assert subprocess.run([console_script(), "verify", str(exported)], capture_output=True, text=True,
                          timeout=120, env=environment).returncode == 0
    tamper, needle = TAMPERS[name]
    tamper(exported)
    result = subprocess.run([console_script(), "verify", str(exported)], capture_output=True, text=True,
                            timeout=120, env=environment, stdin=subprocess.DEVNULL)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert needle in output and "Traceback" not in output, output
