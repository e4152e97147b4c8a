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
    server.faults.slow, server.faults.slow_path, server.faults.delay = 1, "/add", 3.0
    policy = RetryPolicy(timeout=1.0, retries=3, backoff=0.01, poll_interval=0.01)
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


# ------------------------------------------------------------ hostile servers (issue 22.5)
def test_a_timed_out_create_is_found_by_its_key_instead_of_made_twice(bundle: Path, server) -> None:
    server.faults.slow, server.faults.slow_path, server.faults.delay = 1, "/dataverses/", 3.0
    policy = RetryPolicy(timeout=1.0, retries=3, backoff=0.01, poll_interval=0.01)
    result = publisher(server, policy).publish_bundle(bundle, "a4nn", METADATA)
    assert len(server.state.datasets) == 1 and result.created
    creates = [s for m, p, s in server.state.requests if m == "POST" and p.endswith("/datasets")]
    assert creates == [201]  # the lost answer was not followed by a second create
    assert any(p == "/api/search" for _, p, _ in server.state.requests)  # found through the Search API
    state = json.loads((bundle / STATE_FILE).read_text())
    assert state["persistent_id"] == result.persistent_id and state["client_key"]
    fields = {f["typeName"]: f["value"] for f in
              server.state.datasets[result.persistent_id].metadata["datasetVersion"]["metadataBlocks"]["citation"]["fields"]}
    assert fields["otherId"][0]["otherIdValue"]["value"] == state["client_key"]


def test_the_collection_listing_finds_the_draft_when_the_search_index_lags(bundle: Path, server) -> None:
    server.faults.slow, server.faults.slow_path, server.faults.delay = 1, "/dataverses/", 3.0
    server.faults.search_index_lag = True
    policy = RetryPolicy(timeout=1.0, retries=3, backoff=0.01, poll_interval=0.01)
    result = publisher(server, policy).publish_bundle(bundle, "a4nn", METADATA)
    assert len(server.state.datasets) == 1
    assert any(p.endswith("/dataverses/a4nn/contents") for _, p, _ in server.state.requests)
    assert stored_paths(server, result.persistent_id) == expected_paths(bundle)


def test_a_run_that_died_in_the_create_is_found_from_the_database_without_the_state_file(
        database, db_bundle: Path, server) -> None:
    bundle = db_bundle
    server.faults.slow, server.faults.slow_path, server.faults.delay = 1, "/dataverses/", 3.0
    server.faults.search_index_lag = True  # the retry cannot see it either: the run gives up
    server.faults.errors, server.faults.error_path = 100, "/contents"
    with pytest.raises(PublishError):
        publisher(server, RetryPolicy(timeout=1.0, retries=0)).publish_bundle(bundle, "a4nn", METADATA,
                                                                              database=database)
    (pid, _), = server.state.datasets.items()
    with database.engine.connect() as connection:
        (manifest, recorded_pid), = connection.execute(select(Publication.manifest, Publication.persistent_id)
                                                       .where(Publication.target == "dataverse")).all()
    assert manifest["status"] == "creating" and manifest["client_key"] and recorded_pid is None
    (bundle / STATE_FILE).unlink()
    server.faults.errors = 0
    result = publisher(server).publish_bundle(bundle, "a4nn", METADATA, database=database)
    assert result.persistent_id == pid and len(server.state.datasets) == 1 and not result.created


def test_the_publication_is_recorded_before_the_first_upload(database, db_bundle: Path, server) -> None:
    bundle = db_bundle
    server.faults.uploads_before_failure = 0
    with pytest.raises(PublishError, match="run the same command again"):
        publisher(server).publish_bundle(bundle, "a4nn", METADATA, database=database)
    (pid, dataset), = server.state.datasets.items()
    assert dataset.files == []
    with database.engine.connect() as connection:
        rows = connection.execute(select(Publication.persistent_id, Publication.manifest)
                                  .where(Publication.target == "dataverse")).all()
    assert [(r.persistent_id, r.manifest["status"], r.manifest["collection"]) for r in rows] == [(pid, "uploading", "a4nn")]
    (bundle / STATE_FILE).unlink()
    server.faults.uploads_before_failure = None
    result = publisher(server).publish_bundle(bundle, "a4nn", METADATA, database=database)
    assert result.persistent_id == pid and len(server.state.datasets) == 1
    with database.engine.connect() as connection:
        rows = connection.execute(select(Publication.persistent_id, Publication.manifest)
                                  .where(Publication.target == "dataverse")).all()
    assert [(r.persistent_id, r.manifest["status"], r.manifest["state"]) for r in rows] == [(pid, "done", "DRAFT")]


@pytest.mark.parametrize("header", ["3600", "inf", "nan", "-5", "soon", "Wed, 21 Oct 2099 07:28:00 GMT"])
def test_retry_after_is_capped_and_garbage_is_ignored(bundle: Path, server, header: str) -> None:
    server.faults.errors, server.faults.error_status, server.faults.error_path = 2, 503, "/add"
    server.faults.retry_after = header
    sleeps: list[float] = []
    DataversePublisher(server.base_url, TOKEN, FAST, sleep=sleeps.append).publish_bundle(bundle, "a4nn", METADATA)
    assert len(sleeps) >= 2 and max(sleeps) <= FAST.max_backoff
    expected = FAST.max_backoff if header in ("3600", "Wed, 21 Oct 2099 07:28:00 GMT") else 0.01
    assert sleeps[0] == pytest.approx(expected)


def test_a_201_whose_body_is_not_json_is_one_clear_error(bundle: Path, server) -> None:
    server.faults.mangle, server.faults.mangle_path = 1, "/dataverses/"
    with pytest.raises(PublishError, match="not JSON.*Dataverse installation") as caught:
        publisher(server).publish_bundle(bundle, "a4nn", METADATA)
    assert "\n" not in str(caught.value)
    # the create took effect; the next run finds it by its key instead of making another
    result = publisher(server).publish_bundle(bundle, "a4nn", METADATA)
    assert len(server.state.datasets) == 1 and stored_paths(server, result.persistent_id) == expected_paths(bundle)


def test_a_trickled_body_hits_the_total_deadline(bundle: Path, server) -> None:
    import time

    server.faults.trickle, server.faults.trickle_path, server.faults.trickle_interval = 1, "/dataverses/", 0.5
    policy = RetryPolicy(timeout=1.0, retries=0)
    started = time.monotonic()
    with pytest.raises(PublishError, match="no complete answer within 1 s"):
        publisher(server, policy).publish_bundle(bundle, "a4nn", METADATA)
    assert time.monotonic() - started < 4  # the ~60-byte answer would take ~30 s at this pace


@pytest.mark.parametrize("field, value", [("timeout", -1.0), ("timeout", float("nan")), ("timeout", float("inf")),
                                          ("timeout", 0.0), ("retries", -1), ("max_backoff", float("inf"))])
def test_retry_policy_refuses_values_that_would_hang(field: str, value: float) -> None:
    with pytest.raises(PublishError, match=field):
        RetryPolicy(**{field: value})


def _console(*args: str, token: str = TOKEN) -> "subprocess.CompletedProcess[str]":
    import os
    import subprocess

    env = {**os.environ, "DATAVERSE_API_TOKEN": token}
    env.pop("A4NN_DB_URL", None)
    return subprocess.run(["a4nn-commons", *args], capture_output=True, text=True, env=env, timeout=120)


@pytest.mark.parametrize("option, value", [("--timeout", "-1"), ("--timeout", "nan"), ("--timeout", "inf"),
                                           ("--retries", "-1")])
def test_the_console_script_rejects_option_values_in_one_line(bundle: Path, option: str, value: str) -> None:
    result = _console("publish", str(bundle), "--server", "http://127.0.0.1:9", "--collection", "a4nn",
                      "--author", "Doe, Jane", "--contact-email", "j@example.org", option, value)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and option in lines[0] and "Traceback" not in result.stderr


def test_the_console_script_reports_a_non_json_create_answer_in_one_line(bundle: Path, server) -> None:
    server.faults.mangle, server.faults.mangle_path = 1, "/dataverses/"
    result = _console("publish", str(bundle), "--server", server.base_url, "--collection", "a4nn",
                      "--author", "Doe, Jane", "--contact-email", "j@example.org", "--timeout", "10")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: create dataset") and "not JSON" in result.stderr
    assert TOKEN not in result.stderr + result.stdout
