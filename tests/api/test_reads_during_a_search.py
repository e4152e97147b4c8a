"""Readers of a database a search is writing get answers, not errors (issue 22, item 7: "8 clients during a search").

A tiny search writes its lineage into a SQLite file through the installed console
script while ``a4nn-commons serve`` serves the same file; eight client threads read
the model list, a sorted page, the searches, one search and a model's epochs the
whole time. SQLite lets one writer and many readers share a file only if every
connection waits for the lock instead of failing at once, so a missing timeout or a
transaction held open across a training step shows up here as a 5xx, a refused
connection or a truncated answer.
"""
from __future__ import annotations

import os
import socket
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest
from installed import console_script

CLIENTS = 8
REQUESTS_PER_CLIENT = 40
PATHS = ["/models", "/models?sort=-acc&limit=5", "/searches", "/searches/1", "EPOCHS"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_served(base: str, server: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.time() + seconds
    while True:
        try:
            if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert time.time() < deadline and server.poll() is None, "serve did not start"
        time.sleep(0.2)


def wait_for_a_model(base: str, search: subprocess.Popen, seconds: float = 120) -> None:
    """Start reading once the search has recorded its first network, so the reads overlap its writes."""
    deadline = time.time() + seconds
    while not httpx.get(f"{base}/models", timeout=30).json()["items"]:
        assert time.time() < deadline and search.poll() is None, "the search recorded no network"
        time.sleep(0.1)


@pytest.mark.slow
def test_eight_clients_read_while_a_search_writes(tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if key != "A4NN_DB_URL"}
    env.update(OMP_NUM_THREADS="1", A4NN_DATA_DIR=str(tmp_path / "data"))
    url = f"sqlite:///{tmp_path / 'live.db'}"
    upgraded = subprocess.run([console_script(), "db", "upgrade", "--db", url], capture_output=True, text=True,
                              env=env, timeout=120, stdin=subprocess.DEVNULL)
    assert upgraded.returncode == 0, upgraded.stderr
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([console_script(), "serve", "--db", url, "--port", str(port), "--log-level", "warning"],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    search = None
    try:
        wait_until_served(base, server)
        search = subprocess.Popen(
            [console_script(), "search", "--pop", "3", "--offspring", "2", "--generations", "12", "--epochs", "16",
             "--image-size", "8", "--n-images", "40", "--channels", "2", "--checkpoints", "none",
             "--db", url, "--run-dir", str(tmp_path / "runs")],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
        wait_for_a_model(base, search)
        failures: list[str] = []
        answered: list[tuple[str, int, bool]] = []  # (path, status, the search was still running)
        model_ids: list[int] = []
        lock = threading.Lock()

        def client(number: int) -> None:
            with httpx.Client(base_url=base, timeout=30) as http:
                for index in range(REQUESTS_PER_CLIENT):
                    path = PATHS[(number + index) % len(PATHS)]
                    if path == "EPOCHS":
                        with lock:
                            path = f"/models/{model_ids[-1]}/epochs" if model_ids else "/models"
                    running = search.poll() is None
                    try:
                        response = http.get(path)
                        body = response.json()
                    except (httpx.HTTPError, ValueError) as exc:
                        with lock:
                            failures.append(f"{path}: {exc.__class__.__name__}: {exc}")
                        continue
                    with lock:
                        answered.append((path, response.status_code, running))
                        if response.status_code >= 500:
                            failures.append(f"{path}: {response.status_code} {body}")
                        if path.startswith("/models?") and response.status_code == 200 and body["items"]:
                            model_ids.append(body["items"][0]["id"])
                    time.sleep(0.1)

        threads = [threading.Thread(target=client, args=(number,)) for number in range(CLIENTS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert not any(thread.is_alive() for thread in threads), "a client hung"
        stdout, stderr = search.communicate(timeout=300)
        assert search.returncode == 0, stderr[-3000:]
        assert failures == [], failures[:10]
        assert len(answered) == CLIENTS * REQUESTS_PER_CLIENT
        during = [entry for entry in answered if entry[2]]
        assert len(during) >= len(answered) // 2, "the search ended before most reads: make it longer"
        assert any(path.endswith("/epochs") and status == 200 for path, status, _ in during), \
            "no model's epochs were read while the search ran"
        # every status is a real answer: 200, or 404 for the search before it was recorded
        assert {status for _, status, _ in answered} <= {200, 404}, sorted({s for _, s, _ in answered})
        final = httpx.get(f"{base}/models?limit=100", timeout=30).json()
        assert final["items"], "the search recorded no model the server can see"
    finally:
        if search is not None and search.poll() is None:
            search.kill()
            search.wait(timeout=30)
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
