"""The Dataverse publisher end to end: the real pyDataverse client against a Dataverse-compatible server."""
from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import pytest
from click.testing import CliRunner
from pyDataverse.api import DataAccessApi
from sqlalchemy import select

from a4nn.cli.export import publish
from a4nn.commons.bundle import STATE_FILE, export_bundle, read_manifest, write_manifest
from a4nn.commons.dataverse import CitationMetadata, DataversePublisher, PublishError, RetryPolicy
from a4nn.lineage.database import Database
from a4nn.lineage.models import Publication
from a4nn.lineage.recorder import Recorder
from a4nn.migrations.runner import upgrade_database
from dataverse_server import DataverseServer
from trail_fixture import fill_trail

TOKEN = "tok-SECRET-7f3a9c"
FAST = RetryPolicy(timeout=2.0, retries=3, backoff=0.01, max_backoff=0.05, lock_timeout=20, poll_interval=0.01,
                   release_timeout=20)
METADATA = CitationMetadata(
    title="A4NN record trail: fixture-search", authors=[{"name": "Doe, Jane", "affiliation": "UTK"}],
    contact_name="Doe, Jane", contact_email="jane@example.org", description="NAS record trail for tests.",
    keywords=["neural architecture search", "A4NN"])


def _export(database: Database, tmp_path: Path) -> Path:
    trail = fill_trail(Recorder(database), tmp_path / "weights")
    return export_bundle(database, trail.search_id, tmp_path / "bundle", "per-epoch").folder


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    """A bundle exported from a private SQLite database (publisher tests that record nothing)."""
    url = f"sqlite:///{tmp_path / 'source.db'}"
    upgrade_database(url)
    source = Database.open(url)
    try:
        return _export(source, tmp_path)
    finally:
        source.dispose()


@pytest.fixture
def db_bundle(database, tmp_path: Path) -> Path:
    """A bundle exported from the ``database`` fixture (every backend), for tests that record publications."""
    return _export(database, tmp_path)


@pytest.fixture
def server():
    with DataverseServer(token=TOKEN) as running:
        yield running


def expected_paths(bundle: Path) -> list[str]:
    return sorted([*read_manifest(bundle)["files"], "MANIFEST.json"])


def stored_paths(server: DataverseServer, pid: str) -> list[str]:
    return sorted(f"{f.directory_label}/{f.label}" if f.directory_label else f.label
                  for f in server.state.datasets[pid].files)


def adds(server: DataverseServer) -> list[int]:
    return [status for method, path, status in server.state.requests if path.endswith("/add")]


def publisher(server: DataverseServer, policy: RetryPolicy = FAST, token: str = TOKEN) -> DataversePublisher:
    return DataversePublisher(server.base_url, token, policy)


def test_cli_publishes_a_bundle_and_records_it_without_leaking_the_token(database, database_url, db_bundle: Path,
                                                                        server, caplog) -> None:
    bundle = db_bundle
    caplog.set_level(logging.DEBUG)
    result = CliRunner().invoke(publish, [
        str(bundle), "--server", server.base_url, "--collection", "a4nn", "--author", "Doe, Jane;UTK",
        "--contact-email", "jane@example.org", "--keyword", "NAS", "--keyword", "A4NN", "--publish", "major",
        "--db", database_url, "--timeout", "5"], env={"DATAVERSE_API_TOKEN": TOKEN})
    assert result.exit_code == 0, result.output
    assert TOKEN not in result.output and TOKEN not in caplog.text
    assert "RELEASED" in result.output

    (pid, dataset), = server.state.datasets.items()
    assert dataset.state == "RELEASED" and dataset.version == (1, 0)
    assert stored_paths(server, pid) == expected_paths(bundle)
    assert not any(f.tab_ingest for f in dataset.files)  # CSV twins stay byte-identical
    checkpoint = next(f for f in dataset.files if f.label == "g000_i0000_e2.pt")
    assert checkpoint.directory_label == "checkpoints/fixture-search" and checkpoint.description == "Model checkpoint."
    assert next(f for f in dataset.files if f.label == "epochs.parquet").description.startswith("Per-epoch")

    fields = {f["typeName"]: f["value"] for f in dataset.metadata["datasetVersion"]["metadataBlocks"]["citation"]["fields"]}
    assert fields["subject"] == ["Computer and Information Science"]
    assert fields["datasetContact"][0]["datasetContactEmail"]["value"] == "jane@example.org"
    assert [k["keywordValue"]["value"] for k in fields["keyword"]] == ["NAS", "A4NN"]
    assert fields["author"][0]["authorAffiliation"]["value"] == "UTK"
    assert dataset.metadata["datasetVersion"]["license"]["name"] == "CC0 1.0"

    # every file downloads byte-identical to the bundle (pyDataverse's data access API)
    access = DataAccessApi(server.base_url, api_token=TOKEN)
    manifest = read_manifest(bundle)["files"]
    for stored in dataset.files:
        path = f"{stored.directory_label}/{stored.label}" if stored.directory_label else stored.label
        content = access.get_datafile(stored.id, is_pid=False).content
        assert content == (bundle / path).read_bytes()
        if path in manifest:
            assert hashlib.sha256(content).hexdigest() == manifest[path]["sha256"]

    assert json.loads((bundle / STATE_FILE).read_text())["persistent_id"] == pid
    with database.engine.connect() as connection:
        rows = connection.execute(select(Publication.target, Publication.persistent_id, Publication.url,
                                         Publication.search_id).where(Publication.target == "dataverse")).all()
    assert len(rows) == 1 and rows[0].persistent_id == pid and rows[0].url.endswith(f"persistentId={pid}")
    assert rows[0].search_id is not None


def test_missing_or_bad_token_is_a_clear_error_that_never_shows_the_token(bundle: Path, server, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    result = CliRunner().invoke(publish, [str(bundle), "--server", server.base_url, "--collection", "a4nn",
                                          "--author", "Doe, Jane", "--contact-email", "j@example.org"],
                                env={"DATAVERSE_API_TOKEN": ""})
    assert result.exit_code != 0 and "no Dataverse API token" in str(result.exception)
    wrong = "tok-WRONG-0000"
    with pytest.raises(PublishError, match="token was rejected") as caught:
        publisher(server, token=wrong).publish_bundle(bundle, "a4nn", METADATA)
    assert wrong not in str(caught.value) and wrong not in caplog.text
    assert server.state.datasets == {}


def test_retries_5xx_and_429_with_backoff(bundle: Path, server) -> None:
    server.faults.errors, server.faults.error_path = 2, "/add"
    sleeps: list[float] = []
    first = DataversePublisher(server.base_url, TOKEN, FAST, sleep=sleeps.append)
    result = first.publish_bundle(bundle, "a4nn", METADATA)
    assert adds(server).count(500) == 2 and sleeps[:2] == [0.01, 0.02]  # exponential backoff
    assert stored_paths(server, result.persistent_id) == expected_paths(bundle)

    server.faults.errors, server.faults.error_status, server.faults.error_path = 2, 429, "/datasets"
    (bundle / STATE_FILE).unlink()
    second = publisher(server).publish_bundle(bundle, "a4nn", METADATA)
    assert second.created and [s for _, _, s in server.state.requests].count(429) == 2
    assert len(server.state.datasets) == 2


def test_persistent_server_errors_give_up_with_a_resume_hint(bundle: Path, server) -> None:
    server.faults.errors, server.faults.error_path = 100, "/dataverses/"
    with pytest.raises(PublishError, match="failed after 4 attempts: HTTP 500.*run the same command again"):
        publisher(server).publish_bundle(bundle, "a4nn", METADATA)


def test_a_timed_out_upload_that_landed_is_not_uploaded_twice(bundle: Path, server) -> None:
    server.faults.slow, server.faults.slow_path, server.faults.delay = 1, "/add", 1.5
    policy = RetryPolicy(timeout=0.5, retries=3, backoff=0.01, poll_interval=0.01)
    result = publisher(server, policy).publish_bundle(bundle, "a4nn", METADATA)
    assert stored_paths(server, result.persistent_id) == expected_paths(bundle)  # no "-1" duplicates
    assert len(adds(server)) == len(expected_paths(bundle))
    assert result.uploaded == len(expected_paths(bundle)) - 1 and result.skipped == 1


def test_waits_for_dataset_locks_before_uploading_and_publishing(bundle: Path, server) -> None:
    server.faults.lock_polls_after_upload = 2
    server.faults.publish_lock_polls = 4
    result = publisher(server).publish_bundle(bundle, "a4nn", METADATA, release="minor")
    assert result.state == "RELEASED" and result.version == "1.0"
    assert stored_paths(server, result.persistent_id) == expected_paths(bundle)
    # each upload left a lock: the next one was refused (403 "dataset lock"), waited out, and retried once
    assert adds(server).count(200) == len(expected_paths(bundle)) and adds(server).count(403) >= 1
    assert len([p for m, p, s in server.state.requests if p.endswith("/locks/")]) >= adds(server).count(403)


def test_403_dataset_lock_on_publish_is_waited_out_and_retried(bundle: Path, server) -> None:
    server.faults.publish_lock_polls = 1
    pub = publisher(server)
    pid = pub.publish_bundle(bundle, "a4nn", METADATA).persistent_id
    server.state.datasets[pid].locks["Ingest"] = 2  # somebody else's ingest locks the dataset
    response = pub._call("publish", lambda: pub.native.publish_dataset(pid, release_type="major"), pid)
    assert response is not None and response.status_code == 202
    publishes = [s for m, p, s in server.state.requests if p.endswith("/actions/:publish")]
    assert publishes == [403, 202]
    assert pub.dataset_version(pid) == ("RELEASED", "1.0")


def test_an_interrupted_publish_resumes_without_duplicates(database, db_bundle: Path, server) -> None:
    bundle = db_bundle
    total = len(expected_paths(bundle))
    server.faults.uploads_before_failure = 3
    with pytest.raises(PublishError, match="run the same command again"):
        publisher(server).publish_bundle(bundle, "a4nn", METADATA, release="major", database=database)
    (pid, dataset), = server.state.datasets.items()
    assert len(dataset.files) == 3 and dataset.state == "DRAFT"

    server.faults.uploads_before_failure = None
    result = publisher(server).publish_bundle(bundle, "a4nn", METADATA, release="major", database=database)
    assert (result.persistent_id, result.created, result.uploaded, result.skipped) == (pid, False, total - 3, 3)
    assert stored_paths(server, pid) == expected_paths(bundle) and len(server.state.datasets) == 1
    assert result.state == "RELEASED"
    readme = next(f for f in dataset.files if f.label == "README.md")
    assert publisher(server).download(readme.id) == (bundle / "README.md").read_bytes()

    # the state file lost: the publication recorded in the database still finds the dataset
    (bundle / STATE_FILE).unlink()
    rerun = publisher(server).publish_bundle(bundle, "a4nn", METADATA, release="major", database=database)
    assert (rerun.persistent_id, rerun.uploaded, rerun.state) == (pid, 0, "RELEASED")
    assert len(server.state.datasets) == 1 and len(dataset.files) == total


def test_refuses_changed_bundles_and_bad_metadata(bundle: Path, server) -> None:
    with pytest.raises(PublishError, match="contact e-mail"):
        publisher(server).publish_bundle(bundle, "a4nn", CitationMetadata("T", [{"name": "X"}], "X", "nope", "d"))
    with pytest.raises(PublishError, match="not found"):
        publisher(server).publish_bundle(bundle, "no-such-collection", METADATA)
    result = publisher(server).publish_bundle(bundle, "a4nn", METADATA)
    (bundle / "README.md").write_text("edited\n")
    with pytest.raises(PublishError, match="does not match its manifest"):
        publisher(server).publish_bundle(bundle, "a4nn", METADATA)
    write_manifest(bundle)
    with pytest.raises(PublishError, match="README.md in dataset .* differs"):
        publisher(server).publish_bundle(bundle, "a4nn", METADATA)
    assert len(server.state.datasets[result.persistent_id].files) == len(expected_paths(bundle))
