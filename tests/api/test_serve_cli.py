"""``a4nn-commons serve``: clear errors before binding, and a real uvicorn round trip."""
from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from a4nn.cli.main import cli, main
from a4nn.commons.client import Client


def test_serve_refuses_a_database_without_schema(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--db", f"sqlite:///{tmp_path / 'empty.db'}"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error:") and "db upgrade" in error and "Traceback" not in error


def test_serve_help_shows_the_grammar() -> None:
    result = CliRunner().invoke(cli, ["serve", "--help"])
    assert result.exit_code == 0 and "acc>99" in result.output and "--checkpoint-root" in result.output


@pytest.mark.slow
def test_served_over_http_to_the_dataframe_client(tmp_path: Path) -> None:
    from a4nn.lineage.database import Database
    from a4nn.lineage.recorder import Recorder
    from a4nn.migrations.runner import upgrade_database

    url = f"sqlite:///{tmp_path / 'served.db'}"
    upgrade_database(url)
    database = Database.open(url)
    recorder = Recorder(database)
    search = recorder.start_search("served", "random-nn", config={"epochs": 2})
    for index in range(3):
        arch = recorder.start_architecture(search, index=index, flops=float(index))
        recorder.finish_architecture(arch, final_acc=70.0 + index, epochs_trained=2)
    database.dispose()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "a4nn.cli.main", "serve", "--db", url, "--port", str(port),
                               "--log-level", "warning"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                assert time.time() < deadline and server.poll() is None, "serve did not start"
                time.sleep(0.2)
        with Client(f"http://127.0.0.1:{port}") as client:
            frame = client.models("acc>70&sort=-acc", page_size=1)
            assert list(frame["final_acc"]) == [72.0, 71.0]
            assert client.search(int(frame["search_id"][0]))["epochs_saved"] == 0.0
        assert httpx.get(f"http://127.0.0.1:{port}/docs").status_code == 200
    finally:
        server.terminate()
        server.wait(timeout=30)
