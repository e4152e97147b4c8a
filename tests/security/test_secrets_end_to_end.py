"""No password and no token anywhere (issue 23, item 2), checked the way a careless user would leak them.

A PostgreSQL role with a password runs a tiny search on 2 Ray workers through the
CLI, is interrupted with Ctrl-C, resumed, exported and published to Dataverse with an
API token; a second run lets Ray workers write to PostgreSQL themselves (the only
path where a worker needs the password). Then stdout, stderr, the run folder, the
bundle, every database row and Ray's session logs are searched for the password and
the token. (The test server trusts every local connection, so any password logs in:
the test is about where the secret travels, not about authentication.)
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Iterator

import pytest
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from dataverse_server import DataverseServer

pytestmark = [pytest.mark.slow, pytest.mark.postgres]
POSTGRES_ENV = "A4NN_TEST_POSTGRES_URL"
RAY_ROOT = Path("/tmp/ray")
TINY = ["--pop", "4", "--offspring", "4", "--generations", "2", "--epochs", "3", "--image-size", "16",
        "--n-images", "60", "--channels", "4", "--batch-size", "16", "--checkpoints", "epoch", "--quiet"]


@pytest.fixture
def secret_url() -> Iterator[tuple[str, str]]:
    """(URL with password, password) of a fresh role owning a fresh schema; both dropped afterwards."""
    if not os.environ.get(POSTGRES_ENV):
        pytest.skip(f"{POSTGRES_ENV} not set")
    admin_url = make_url(os.environ[POSTGRES_ENV]).set(drivername="postgresql+psycopg")
    tag = uuid.uuid4().hex[:10]
    role, schema, password = f"sec_{tag}", f"sec_{tag}", f"Pw{uuid.uuid4().hex}"
    admin = create_engine(admin_url)
    with admin.begin() as connection:
        connection.execute(text(f"CREATE ROLE {role} LOGIN PASSWORD '{password}'"))
        connection.execute(text(f'CREATE SCHEMA "{schema}" AUTHORIZATION {role}'))
    url = admin_url.set(username=role, password=password).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False), password
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            connection.execute(text(f"DROP ROLE {role}"))
        admin.dispose()


def ray_sessions() -> set[Path]:
    return {p.resolve() for p in RAY_ROOT.glob("session_2*")} if RAY_ROOT.is_dir() else set()


def leaks(root: Path, secrets: list[str]) -> list[str]:
    """Files below ``root`` whose bytes contain a secret (symlinks not followed)."""
    found = []
    for path in root.rglob("*"):
        if path.is_symlink() or not path.is_file():
            continue
        try:
            data = path.read_bytes()
        except OSError:  # a socket or a file Ray removed meanwhile
            continue
        found += [f"{path}: {secret[:4]}..." for secret in secrets if secret.encode() in data]
    return found


def database_text(url: str) -> str:
    """Every row of every table of the schema (and the Alembic version table) as text."""
    from a4nn.lineage.database import Database

    database = Database.open(url)
    try:
        with database.engine.connect() as connection:
            names = connection.execute(text(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()")).scalars().all()
            assert "searches" in names and "publications" in names
            return "\n".join(f"{name}: {row}" for name in names
                             for row in connection.execute(text(f'SELECT * FROM "{name}"')).all())
    finally:
        database.dispose()


def cli(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "a4nn.cli.main", *args], env=env, cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finished_networks(url: str) -> int:
    from a4nn.lineage.database import Database
    from a4nn.lineage.models import Architecture

    database = Database.open(url)
    try:
        with database.session() as session:
            return session.scalar(select(func.count()).select_from(Architecture)
                                  .where(Architecture.status.in_(["completed", "stopped", "failed"]))) or 0
    finally:
        database.dispose()


def test_no_password_or_token_leaves_the_process(secret_url: tuple[str, str], tmp_path: Path) -> None:
    url, password = secret_url
    token = f"tok-{uuid.uuid4().hex}"
    env = {**os.environ, "A4NN_DATA_DIR": str(tmp_path / "data"), "OMP_NUM_THREADS": "1",
           "DATAVERSE_API_TOKEN": token}
    env.pop("A4NN_DB_URL", None)
    outputs: list[str] = []
    before = ray_sessions()

    subprocess.run([sys.executable, "-m", "a4nn.cli.main", "db", "upgrade", "--db", url], env=env, cwd=tmp_path,
                   check=True, capture_output=True, text=True)
    search = cli(["search", *TINY, "--workers", "2", "--db", url, "--run-dir", str(tmp_path / "runs")], env, tmp_path)
    deadline = time.time() + 400
    while time.time() < deadline and search.poll() is None and finished_networks(url) < 2:
        time.sleep(0.5)
    assert search.poll() is None, "the search ended before it could be interrupted"
    search.send_signal(signal.SIGINT)  # Ctrl-C: the CLI prints how to continue
    out, err = search.communicate(timeout=120)
    outputs += [out, err]
    assert "--resume" in err, err[-2000:]

    from a4nn.lineage.database import Database
    from a4nn.lineage.models import Search

    database = Database.open(url)
    with database.session() as session:
        search_id = session.scalar(select(Search.id))
    database.dispose()
    resumed = cli(["search", "--resume", str(search_id), "--workers", "2", "--db", url], env, tmp_path)
    out, err = resumed.communicate(timeout=600)
    outputs += [out, err]
    assert resumed.returncode == 0, err[-3000:]
    # commands that print the URL or fail on it
    for args in (["db", "current", "--db", url], ["db", "upgrade", "--db", url],
                 ["search", "--resume", "9999", "--db", url],
                 ["export", str(search_id), "--db", url.replace("127.0.0.1", "127.0.0.1:1"), "--out", "x"],
                 ["export", str(search_id), "--out", str(tmp_path / "bundle"), "--with-checkpoints", "final",
                  "--db", url]):
        done = subprocess.run([sys.executable, "-m", "a4nn.cli.main", *args], env=env, cwd=tmp_path,
                              capture_output=True, text=True, timeout=300)
        outputs += [done.stdout, done.stderr]
    assert (tmp_path / "bundle" / "MANIFEST.json").is_file(), outputs[-1]
    with DataverseServer(token=token) as server:
        published = subprocess.run(
            [sys.executable, "-m", "a4nn.cli.main", "publish", str(tmp_path / "bundle"), "--server", server.base_url,
             "--collection", "a4nn", "--author", "Doe, Jane", "--contact-email", "jane@example.org",
             "--publish", "major", "--db", url, "--timeout", "10"],
            env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    outputs += [published.stdout, published.stderr]
    assert published.returncode == 0, published.stderr[-2000:]

    secrets = [password, token]
    printed = "\n".join(outputs)
    assert "***" in printed  # the URL was shown, masked
    for secret in secrets:
        assert secret not in printed
        assert secret not in database_text(url)
    assert leaks(tmp_path / "runs", secrets) == []
    assert leaks(tmp_path / "bundle", secrets) == []
    new_sessions = ray_sessions() - before
    assert new_sessions, "the search should have started its own Ray instance"
    for session in new_sessions:
        assert leaks(session / "logs", secrets) == [], session


def test_direct_writing_ray_workers_get_the_password_only_through_the_object_store(
        secret_url: tuple[str, str], tmp_path: Path) -> None:
    import ray

    from a4nn.lineage.database import Database
    from a4nn.lineage.recorder import Recorder
    from a4nn.lineage.urls import SecretURL
    from a4nn.migrations.runner import upgrade_database
    from a4nn.search.distributed import RayEvaluator
    from a4nn.search.evaluation import Candidate, TrainSettings
    from a4nn.search.ray_worker import DataSpec

    url, password = secret_url
    upgrade_database(url)
    database = Database.open(url)
    before = ray_sessions()
    if ray.is_initialized():
        pytest.skip("needs its own Ray instance (another test left one running)")
    try:
        recorder = Recorder(database)
        spec = DataSpec("xfel-sim", beam="high", n_images=40, image_size=16, seed=0, cache_dir=str(tmp_path / "x"))
        spec.load()
        search_id = recorder.start_search("direct", "nsga-net-macro", recorder.register_dataset("tiny", "xfel-sim"))
        settings = TrainSettings(epochs=2, batch_size=16, channels=4, n_nodes=4, seed=0, num_threads=1,
                                 checkpoints="none")
        candidates = []
        for index, bits in enumerate([(1, 0, 1, 0, 0, 1, 0) * 3, (0, 1, 1, 0, 1, 0, 1) * 3]):
            genome = recorder.register_genome(list(bits))
            arch = recorder.start_architecture(search_id, index=index, generation=0, genome_id=genome)
            candidates.append(Candidate(search_id, 0, index, bits, genome, arch))
        evaluator = RayEvaluator(recorder, lambda: None, spec, settings, workers=2, run_dir=tmp_path / "runs",
                                 slot="cpu", direct_writes=True)
        try:
            assert password not in repr(vars(evaluator)) and "***" in evaluator.database_url
            secret = ray.get(evaluator._database_secret)
            assert isinstance(secret, SecretURL) and secret.reveal() == url and password not in repr(secret)
            results = evaluator.evaluate(candidates)
        finally:
            evaluator.close()
        assert [r.status for r in results] == ["completed", "completed"]  # the workers did connect
    finally:
        database.dispose()
    for session in ray_sessions() - before:
        assert leaks(session / "logs", [password]) == [], session
