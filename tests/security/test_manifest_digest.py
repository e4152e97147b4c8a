"""The manifest's own digest: printed, checked against --expect, recorded, and the manifest's fields validated."""
from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from a4nn.commons.bundle import MANIFEST, export_bundle, manifest_digest, verify_bundle, write_manifest
from a4nn.errors import A4nnError
from a4nn.lineage.models import Publication
from security_trail import SEARCH, fill_secure_trail


def verify_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "a4nn.cli.main", "verify", *args], capture_output=True, text=True,
                          timeout=120)


@pytest.fixture
def bundle(recorder, tmp_path: Path) -> Path:
    fill_secure_trail(recorder, tmp_path / "machine")
    return export_bundle(recorder.database, SEARCH, tmp_path / "bundle").folder


def test_digest_is_the_sha256_of_the_manifest_bytes_and_is_recorded(recorder, bundle: Path) -> None:
    digest = hashlib.sha256((bundle / MANIFEST).read_bytes()).hexdigest()
    assert manifest_digest(bundle) == digest == verify_bundle(bundle).manifest_sha256
    with recorder.database.engine.connect() as connection:
        recorded = connection.execute(select(Publication.manifest).where(Publication.target == "bundle")).scalar_one()
    assert recorded["manifest_sha256"] == digest


def test_verify_prints_the_digest_and_checks_expect(bundle: Path) -> None:
    digest = manifest_digest(bundle)
    plain = verify_cli(str(bundle))
    assert plain.returncode == 0 and f"manifest sha256 {digest}" in plain.stdout
    assert verify_cli(str(bundle), "--expect", digest.upper()).returncode == 0
    assert verify_cli(str(bundle), "--expect", f"sha256:{digest}").returncode == 0
    wrong = "0" * 64
    failed = verify_cli(str(bundle), "--expect", wrong)
    assert failed.returncode == 1 and digest in failed.stderr and wrong in failed.stderr
    assert "Traceback" not in failed.stderr
    garbage = verify_cli(str(bundle), "--expect", "not-a-digest")
    assert garbage.returncode != 0 and "not-a-digest" in garbage.stderr and "Traceback" not in garbage.stderr


def test_an_edited_csv_with_a_rehashed_manifest_fails_expect(bundle: Path) -> None:
    published = manifest_digest(bundle)
    csv = bundle / "architectures.csv"
    csv.write_text(csv.read_text().replace("52.0", "99.9"))
    assert not verify_bundle(bundle).ok
    write_manifest(bundle)  # the attacker rehashes: the file checks pass again ...
    assert verify_bundle(bundle).ok
    report = verify_bundle(bundle, expect=published)  # ... but not the published digest
    assert not report.ok and published in report.problems()[0] and report.manifest_sha256 in report.problems()[0]
    assert verify_cli(str(bundle), "--expect", published).returncode == 1


@pytest.mark.parametrize("change, message", [
    (lambda m: m.update(format="a4nn-bundle/9"), "unsupported manifest format 'a4nn-bundle/9'"),
    (lambda m: m.pop("format"), "unsupported manifest format None"),
    (lambda m: m.update(version=2), "unsupported manifest version 2"),
    (lambda m: m.update(version="1"), "unsupported manifest version '1'"),
    (lambda m: m.update(files=[]), "no 'files' object"),
    (lambda m: m["files"]["README.md"].update(sha256="xyz"), "sha256 must be 64 lowercase hex digits"),
    (lambda m: m["files"]["README.md"].update(size=-1), "size must be a non-negative integer"),
])
def test_manifest_fields_are_validated(bundle: Path, change, message: str) -> None:
    manifest = json.loads((bundle / MANIFEST).read_text())
    assert manifest["format"] == "a4nn-bundle/1" and manifest["version"] == 1
    change(manifest)
    (bundle / MANIFEST).write_text(json.dumps(manifest))
    report = verify_bundle(bundle)
    assert not report.ok and message in report.error
    result = verify_cli(str(bundle))
    assert result.returncode == 1 and message in result.stderr and "Traceback" not in result.stderr


def test_a_manifest_without_version_is_read_as_version_1(bundle: Path) -> None:
    manifest = json.loads((bundle / MANIFEST).read_text())
    del manifest["version"]  # bundles exported before the field existed
    (bundle / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    assert verify_bundle(bundle).ok


def test_expect_must_be_a_digest(bundle: Path) -> None:
    with pytest.raises(A4nnError, match="not a sha256 digest"):
        verify_bundle(bundle, expect="abc")
