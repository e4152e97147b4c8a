"""Pull a published commons: the real pyDataverse client against the Dataverse-compatible test server."""
from __future__ import annotations

import hashlib
import io
import os
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from a4nn.api.app import create_app
from a4nn.commons.bundle import export_bundle
from a4nn.commons.dataverse import CitationMetadata, DataversePublisher, RetryPolicy
from a4nn.commons.pull import DataversePuller, PullError
from a4nn.lineage.database import Database
from a4nn.lineage.models import Architecture, Epoch, Publication, Search
from a4nn.migrations.runner import upgrade_database
from dataverse_server import DataverseServer
from test_ingest_random_nn import TABLE_A, TABLE_B

TOKEN = "tok-PULL-5e1f"
FAST = RetryPolicy(timeout=5.0, retries=3, backoff=0.01, max_backoff=0.05, poll_interval=0.01)
ICPP = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "icpp23" / "1gpu" / "early_termination"
METADATA = CitationMetadata(title="A4NN record trail", authors=[{"name": "Doe, Jane"}], contact_name="Doe, Jane",
                            contact_email="jane@example.org", description="round trip")


@pytest.fixture
def server():
    with DataverseServer(token=TOKEN) as running:
        yield running


def puller(server: DataverseServer, tmp_path: Path, token: str | None = None, policy: RetryPolicy = FAST) -> DataversePuller:
    return DataversePuller(server.base_url, token, policy, cache_dir=tmp_path / "cache")


def downloads(server: DataverseServer) -> list[int]:
    return [status for method, path, status in server.state.requests if "/access/datafile/" in path]


def _fresh(tmp_path: Path, name: str) -> Database:
    url = f"sqlite:///{tmp_path / name}"
    upgrade_database(url)
    return Database.open(url)


def _counts(database: Database) -> tuple[int, int]:
    with database.engine.connect() as connection:
        return (connection.execute(select(func.count()).select_from(Architecture)).scalar_one(),
                connection.execute(select(func.count()).select_from(Epoch)).scalar_one())


def _models(database: Database) -> pd.DataFrame:
    """/models of the whole database as the API serves it (CSV), database ids aside."""
    client = TestClient(create_app(database=database))
    frame = pd.read_csv(io.StringIO(client.get("/models?limit=1000&format=csv").text))
    frame = frame.drop(columns=["id", "search_id", "genome_id"])
    return frame.sort_values(["search", "generation", "index"]).reset_index(drop=True)


def _exported_tables(database: Database, search: str, folder: Path) -> dict[str, pd.DataFrame]:
    result = export_bundle(database, search, folder)
    tables = {}
    for name in ("architectures", "epochs", "predictions", "genomes", "genome_parents"):
        tables[name] = pd.read_parquet(result.folder / f"{name}.parquet")
    return tables


# ------------------------------------------------------------------ round trip
TINY_SEARCH = ["--pop", "3", "--offspring", "3", "--generations", "1", "--epochs", "3", "--image-size", "16",
               "--n-images", "60", "--channels", "4", "--batch-size", "16", "--quiet"]


def _searched(tmp_path: Path) -> tuple[Database, str]:
    """A real (tiny) NSGA-Net search run by the installed console script; its database and search name."""
    env = {**os.environ, "A4NN_DATA_DIR": str(tmp_path / "data")}
    env.pop("A4NN_DB_URL", None)
    url = f"sqlite:///{tmp_path / 'searched.db'}"
    run = subprocess.run(["a4nn-commons", "search", *TINY_SEARCH, "--db", url, "--run-dir", str(tmp_path / "runs")],
                         capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert run.returncode == 0, run.stderr
    source = Database.open(url)
    with source.engine.connect() as connection:
        name = connection.execute(select(Search.name)).scalar_one()
    return source, name


def test_round_trip_publish_then_pull_gives_the_same_models_and_parquet(database, tmp_path: Path, server) -> None:
    """Source: a tiny real search (SQLite); target: a fresh database of every backend (SQLite, PostgreSQL)."""
    source, name = _searched(tmp_path)
    target = database
    try:
        bundle = export_bundle(source, name, tmp_path / "bundle", "final").folder
        published = DataversePublisher(server.base_url, TOKEN, FAST).publish_bundle(bundle, "a4nn", METADATA,
                                                                                    release="major")
        result = puller(server, tmp_path).pull(published.persistent_id, target)
        assert (result.kind, result.version, result.downloaded) == ("bundle", "1.0", len(result.files))
        source_models = _models(source)
        assert len(source_models) == 3 and source_models["final_acc"].notna().all()  # pop 3, one generation
        pd.testing.assert_frame_equal(_models(target), source_models)
        before = _exported_tables(source, name, tmp_path / "again-source")
        after = _exported_tables(target, name, tmp_path / "again-target")
        for name in before:
            pd.testing.assert_frame_equal(after[name], before[name], check_like=True, obj=name)
        with target.engine.connect() as connection:
            (manifest, pid), = connection.execute(select(Publication.manifest, Publication.persistent_id)
                                                  .where(Publication.target == "pull")).all()
        assert pid == published.persistent_id and manifest["version"] == "1.0" and manifest["server"] == server.base_url
        assert {f["path"] for f in manifest["files"]} == {f.path for f in result.files}
        assert all(f["checksum"]["type"] == "MD5" and len(f["checksum"]["value"]) == 32 for f in manifest["files"])

        # the same version again: nothing downloaded, no rows added
        seen, rows = len(downloads(server)), _counts(target)
        again = puller(server, tmp_path).pull(published.persistent_id, target)
        assert again.already_pulled and len(downloads(server)) == seen and _counts(target) == rows
    finally:
        source.dispose()


# ----------------------------------------------------------------- checksums
@pytest.mark.parametrize("kind", ["MD5", "SHA-1", "SHA-256"])
def test_every_checksum_type_dataverse_reports_is_verified(tmp_path: Path, server, kind: str) -> None:
    server.state.checksum_type = kind
    pid = server.put_dataset({"tables/a.txt": TABLE_A.encode(), "tables/b.txt": TABLE_B.encode()})
    target = _fresh(tmp_path, "t.db")
    try:
        result = puller(server, tmp_path).pull(pid, target)
        assert result.kind == "tables" and result.added["networks"] == 2 and _counts(target)[0] == 2
        assert {f.checksum_type for f in result.files} == {kind}
        assert (result.folder / "tables/a.txt").read_text() == TABLE_A
    finally:
        target.dispose()


def test_a_corrupt_download_is_deleted_and_fetched_again(tmp_path: Path, server) -> None:
    pid = server.put_dataset({"a.txt": TABLE_A.encode(), "b.txt": TABLE_B.encode()})
    server.faults.corrupt, server.faults.corrupt_path = 1, "/access/datafile/"
    target = _fresh(tmp_path, "t.db")
    try:
        result = puller(server, tmp_path).pull(pid, target)
        assert result.downloaded == 2 and len(downloads(server)) == 3 and _counts(target)[0] == 2
    finally:
        target.dispose()


def test_a_file_that_stays_corrupt_is_named_and_nothing_is_ingested(tmp_path: Path, server) -> None:
    pid = server.put_dataset({"a.txt": TABLE_A.encode(), "b.txt": TABLE_B.encode()})
    server.faults.corrupt, server.faults.corrupt_path = 2, f"/access/datafile/{server.state.datasets[pid].files[1].id}"
    target = _fresh(tmp_path, "t.db")
    try:
        with pytest.raises(PullError, match=r"b\.txt .*does not match.*twice.*nothing was ingested"):
            puller(server, tmp_path).pull(pid, target)
        assert _counts(target) == (0, 0)
        folder = puller(server, tmp_path).folder_for(pid, "1.0")
        assert not (folder / "b.txt").exists() and not (folder / "b.txt.part").exists()
        with target.engine.connect() as connection:
            assert connection.execute(select(func.count()).select_from(Publication)).scalar_one() == 0
    finally:
        target.dispose()


# -------------------------------------------------------------- interruptions
def test_a_cut_off_download_resumes_with_a_range_request(tmp_path: Path, server) -> None:
    big = TABLE_A.encode() * 1  # one table; the cut comes halfway
    pid = server.put_dataset({"a.txt": big, "b.txt": TABLE_B.encode()})
    server.faults.truncate, server.faults.truncate_path = 1, "/access/datafile/"
    target = _fresh(tmp_path, "t.db")
    try:
        result = puller(server, tmp_path).pull(pid, target)
        assert _counts(target)[0] == 2 and result.downloaded == 2
        assert downloads(server).count(206) == 1  # the rest of the cut-off file, not the whole file again
    finally:
        target.dispose()


def test_5xx_and_slow_answers_are_retried(tmp_path: Path, server) -> None:
    pid = server.put_dataset({"a.txt": TABLE_A.encode(), "b.txt": TABLE_B.encode()})
    server.faults.errors, server.faults.error_path = 2, "/access/datafile/"
    server.faults.slow, server.faults.slow_path, server.faults.delay = 1, "/versions/", 3.0
    target = _fresh(tmp_path, "t.db")
    try:
        result = puller(server, tmp_path, policy=RetryPolicy(timeout=1.0, retries=3, backoff=0.01)).pull(pid, target)
        assert _counts(target)[0] == 2 and result.downloaded == 2 and downloads(server).count(500) == 2
    finally:
        target.dispose()


def test_a_second_run_after_a_failure_downloads_only_what_is_missing(tmp_path: Path, server) -> None:
    pid = server.put_dataset({"a.txt": TABLE_A.encode(), "b.txt": TABLE_B.encode()})
    second = server.state.datasets[pid].files[1].id
    server.faults.errors, server.faults.error_path = 100, f"/access/datafile/{second}"
    target = _fresh(tmp_path, "t.db")
    try:
        with pytest.raises(PullError, match="failed after 2 attempts"):
            puller(server, tmp_path, policy=RetryPolicy(timeout=5.0, retries=1, backoff=0.01)).pull(pid, target)
        assert _counts(target) == (0, 0)
        server.faults.errors = 0
        result = puller(server, tmp_path).pull(pid, target)
        assert (result.downloaded, result.reused) == (1, 1) and _counts(target)[0] == 2
    finally:
        target.dispose()


# ---------------------------------------------------------------- access rules
def test_restricted_files_need_a_token_and_a_bad_token_is_refused(tmp_path: Path, server) -> None:
    pid = server.put_dataset({"a.txt": TABLE_A.encode(), "b.txt": TABLE_B.encode()}, restricted=("b.txt",))
    target = _fresh(tmp_path, "t.db")
    try:
        with pytest.raises(PullError, match="b.txt: HTTP 403, it is restricted"):
            puller(server, tmp_path).pull(pid, target)
        assert _counts(target) == (0, 0)
        with pytest.raises(PullError) as caught:
            puller(server, tmp_path, token="tok-WRONG").pull(pid, target)
        assert "tok-WRONG" not in str(caught.value)
        assert puller(server, tmp_path, token=TOKEN).pull(pid, target).added["networks"] == 2
    finally:
        target.dispose()


def test_a_given_version_is_pulled_and_drafts_need_a_token(tmp_path: Path, server) -> None:
    pid = server.put_dataset({"a.txt": TABLE_A.encode()})
    dataset = server.state.datasets[pid]
    added = dataset.files[0].__class__(999, "b.txt", "", "", TABLE_B.encode(), "text/plain", False)
    dataset.files.append(added)
    server.state.file_index[999] = (dataset, added)
    dataset.state = "DRAFT"
    assert [f.path for f in puller(server, tmp_path).listing(pid, ":latest")[1]] == ["a.txt"]
    assert puller(server, tmp_path).listing(pid, "1")[0] == "1.0"
    number, files = puller(server, tmp_path, token=TOKEN).listing(pid, ":latest")
    assert number == "DRAFT" and [f.path for f in files] == ["a.txt", "b.txt"]
    with pytest.raises(PullError, match="not found"):
        puller(server, tmp_path).listing(pid, "2.0")
    with pytest.raises(PullError, match="version must be"):
        puller(server, tmp_path).listing(pid, "latest; rm")


# ------------------------------------------------------------ the console script
def _console(*args: str, cwd: Path, token: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("A4NN_DB_URL", "DATAVERSE_API_TOKEN")}
    if token:
        env["DATAVERSE_API_TOKEN"] = token
    return subprocess.run(["a4nn-commons", *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=180)


class _NotDataverse(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - the base class's name
        body = b"<html><body>Welcome to nginx!</body></html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        return


@pytest.fixture
def not_dataverse():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _NotDataverse)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_bad_input_is_one_line_a_nonzero_exit_and_nothing_written(tmp_path: Path, server, not_dataverse) -> None:
    pid = server.put_dataset({"notes/readme.pdf": b"%PDF-1.4", "image.png": b"\x89PNG"})
    work = tmp_path / "work"
    work.mkdir()
    cases = {
        "unknown DOI": (["doi:10.5072/FK2/NOPE", "--server", server.base_url], "not found"),
        "no recognised files": ([pid, "--server", server.base_url], "found: notes/readme.pdf, image.png"),
        "not a Dataverse": (["doi:10.5072/FK2/X", "--server", not_dataverse], "not JSON"),
        "no network": (["doi:10.5072/FK2/X", "--server", "http://127.0.0.1:9", "--retries", "0"], "connection error"),
        "bad version": ([pid, "--server", server.base_url, "--version", "newest"], "version must be"),
    }
    for name, (args, expected) in cases.items():
        result = _console("pull", *args, "--cache", str(work / "cache"), cwd=work)
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2, (name, result.stderr)
        assert "Traceback" not in result.stderr and lines[-1].startswith("error: ") and expected in lines[-1], name
        assert list(work.iterdir()) == [], (name, list(work.iterdir()))  # no database, no cache folder


def test_the_console_script_pulls_and_a_rerun_adds_nothing(tmp_path: Path, server) -> None:
    pid = server.put_dataset({"t/a.txt": TABLE_A.encode(), "t/b.txt": TABLE_B.encode()})
    url = f"sqlite:///{tmp_path / 'c.db'}"
    first = _console("pull", pid, "--server", server.base_url, "--into", url, "--cache", str(tmp_path / "c"),
                     cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "2 downloaded" in first.stdout and "2 networks" in first.stdout
    second = _console("pull", pid, "--server", server.base_url, "--into", url, "--cache", str(tmp_path / "c"),
                      cwd=tmp_path)
    assert second.returncode == 0 and "already pulled" in second.stdout
    database = Database.open(url)
    try:
        assert _counts(database)[0] == 2
    finally:
        database.dispose()


@pytest.mark.skipif(not ICPP.is_dir(), reason="the published ICPP'23 logs are not beside the repository")
def test_icpp23_logs_are_pulled_through_the_icpp_reader(tmp_path: Path, server) -> None:
    source = ICPP / "1gpu_1e14_stopping_training_data.csv"
    pid = server.put_dataset({f"logs/{source.name}": source.read_bytes()})
    target = _fresh(tmp_path, "t.db")
    try:
        result = puller(server, tmp_path).pull(pid, target)
        assert result.kind == "tables" and result.added["networks"] == 100
        assert hashlib.md5(source.read_bytes()).hexdigest() == result.files[0].checksum
    finally:
        target.dispose()


def test_a_table_the_reader_rejects_is_named_and_the_exit_code_is_1(tmp_path: Path, server) -> None:
    from test_ingest_random_nn import _missing_column

    pid = server.put_dataset({"t/a.txt": TABLE_A.encode(), "t/bad.txt": _missing_column(TABLE_B).encode()})
    result = _console("pull", pid, "--server", server.base_url, "--into", f"sqlite:///{tmp_path / 'r.db'}",
                      "--cache", str(tmp_path / "c"), cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    assert "rejected:" in result.stderr and "bad.txt" in result.stderr and "1 networks" in result.stdout


def test_zipped_tables_are_unpacked_by_the_ingest_driver(tmp_path: Path, server) -> None:
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("nets/a.txt", TABLE_A)
        archive.writestr("nets/b.txt", TABLE_B)
    pid = server.put_dataset({"random-nn.zip": buffer.getvalue()})
    target = _fresh(tmp_path, "t.db")
    try:
        result = puller(server, tmp_path).pull(pid, target)
        assert result.kind == "tables" and result.added["networks"] == 2 and _counts(target)[0] == 2
    finally:
        target.dispose()
