"""No host path in public answers or bundles; serve hands out no file outside its roots (issue 23, items 1 and 3)."""
from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from fastapi.testclient import TestClient

from a4nn.api.app import create_app
from a4nn.commons.bundle import export_bundle
from a4nn.lineage.database import Database
from a4nn.lineage.recorder import Recorder
from a4nn.migrations.runner import upgrade_database
from security_trail import SEARCH, fill_secure_trail


def _answers(client: TestClient, trail) -> dict[str, str]:
    """Every read route of the service on the trail, as text."""
    paths = ["/searches", f"/searches/{trail.search_id}", f"/searches/{trail.search_id}/pareto", "/datasets",
             "/models", "/models?format=csv", f"/searches/{trail.search_id}/generations",
             f"/searches/{trail.search_id}/points"]
    for model in trail.architecture_ids:
        paths += [f"/models/{model}", f"/models/{model}/epochs", f"/models/{model}/predictions",
                  f"/models/{model}/lineage", f"/models/{model}/checkpoints", f"/models/{model}/checkpoints?format=csv"]
    answers = {}
    for path in paths:
        response = client.get(path)
        if response.status_code == 404 and "Not Found" in response.text:  # a route another build may not have
            continue
        assert response.status_code == 200, (path, response.text)
        answers[path] = response.text
    return answers


def test_no_absolute_path_in_any_api_answer(recorder: Recorder, tmp_path: Path) -> None:
    trail = fill_secure_trail(recorder, tmp_path)
    client = TestClient(create_app(database=recorder.database, checkpoint_roots=[trail.run_dir]))
    answers = _answers(client, trail)
    assert len(answers) >= 10
    for path, text in answers.items():
        assert str(tmp_path) not in text, path
        assert "file://" not in text and "secret-host" not in text, path
    detail = client.get(f"/searches/{trail.search_id}").json()
    assert "run_dir" not in detail["config"] and "state_path" not in detail["config"] and detail["host"] is None
    assert detail["config"]["dataset"] == "xfel-sim-low-24px"  # a path cut to its name, not dropped
    listed = client.get(f"/models/{trail.architecture_ids[0]}/checkpoints").json()
    assert [row["uri"] for row in listed] == [f"architecture-{trail.architecture_ids[0]:05d}/epoch-001.pt",
                                              f"architecture-{trail.architecture_ids[0]:05d}/epoch-002.pt"]
    attributes = client.get(f"/models/{trail.architecture_ids[0]}").json()["dataset_attributes"]
    assert attributes["root"] == "xfel-sim-low-24px" and attributes["molecule"] == "two.pdb"
    download = client.get(listed[0]["download"])  # the relative uri still downloads through its link
    assert download.status_code == 200 and download.content == trail.checkpoints[0].read_bytes()


def test_no_absolute_path_in_any_bundle_file(recorder: Recorder, tmp_path: Path) -> None:
    fill_secure_trail(recorder, tmp_path / "machine")
    bundle = export_bundle(recorder.database, SEARCH, tmp_path / "bundle", "per-epoch").folder
    files = [p for p in bundle.rglob("*") if p.is_file()]
    assert any(p.suffix == ".parquet" for p in files) and any(p.name.endswith(".pt") for p in files)
    for path in files:
        data = path.read_bytes()
        for needle in (str(tmp_path).encode(), b"file://", b"secret-host"):
            assert needle not in data, (path.name, needle)


def _checkpoint_row_to(recorder: Recorder, target: Path) -> tuple[int, float]:
    search = recorder.start_search("crafted", "random-nn", config={"epochs": 20})
    arch = recorder.start_architecture(search, index=0)
    recorder.log_checkpoint(arch, 20, target)  # as a crafted bundle or database row would have it
    return arch, 20


def test_serve_reproducer_log_file_beside_the_database(tmp_path: Path) -> None:
    """The issue's reproducer with the real `a4nn-commons serve`: a row pointing at serve.log beside the db."""
    url = f"sqlite:///{tmp_path / 'a4nn.db'}"
    upgrade_database(url)
    log = tmp_path / "serve.log"
    log.write_text("2026-12-01 INFO listening; token=hunter2\n")
    database = Database.open(url)
    recorder = Recorder(database)
    arch, epoch = _checkpoint_row_to(recorder, log)
    inside = tmp_path / "runs" / "s" / "epoch-001.pt"  # and a real checkpoint under the default root ./runs
    inside.parent.mkdir(parents=True)
    inside.write_bytes(b"weights" * 10)
    good_arch = recorder.start_architecture(recorder.start_search("good", "random-nn"), index=0)
    recorder.log_checkpoint(good_arch, 1, inside)
    database.dispose()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "a4nn.cli.main", "serve", "--db", url, "--port", str(port),
                               "--log-level", "warning"], cwd=tmp_path, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.time() + 60
        while True:
            try:
                httpx.get(f"{base}/health", timeout=2)
                break
            except httpx.HTTPError:
                if time.time() > deadline or server.poll() is not None:
                    raise
                time.sleep(0.3)
        refused = httpx.get(f"{base}/models/{arch}/checkpoints/{epoch}", timeout=10)
        assert refused.status_code == 403 and "hunter2" not in refused.text and str(tmp_path) not in refused.text
        served = httpx.get(f"{base}/models/{good_arch}/checkpoints/1", timeout=10)
        assert served.status_code == 200 and served.content == inside.read_bytes()
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_serve_refuses_symlinks_dotdot_and_changed_files_inside_its_root(recorder: Recorder, tmp_path: Path) -> None:
    root = tmp_path / "runs"
    root.mkdir()
    secret = tmp_path / "secret.txt"
    secret.write_text("outside the root")
    link = root / "link.pt"
    link.symlink_to(secret)
    arch, epoch = _checkpoint_row_to(recorder, secret)
    client = TestClient(create_app(database=recorder.database, checkpoint_roots=[root]))
    from sqlalchemy import update

    from a4nn.lineage.models import Checkpoint

    for uri in (link.absolute().as_uri(), f"file://{root}/../secret.txt", secret.as_uri()):
        with recorder.database.engine.begin() as connection:
            connection.execute(update(Checkpoint).where(Checkpoint.architecture_id == arch).values(uri=uri))
        response = client.get(f"/models/{arch}/checkpoints/{epoch}")
        assert response.status_code == 403, (uri, response.text)
        assert "outside the root" not in response.text and str(tmp_path) not in response.text
    same_size = root / "changed.pt"
    same_size.write_text("outside the rooT")  # same size as the recorded file, other bytes
    with recorder.database.engine.begin() as connection:
        connection.execute(update(Checkpoint).where(Checkpoint.architecture_id == arch).values(uri=same_size.as_uri()))
    assert client.get(f"/models/{arch}/checkpoints/{epoch}").status_code == 409
