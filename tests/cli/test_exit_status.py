"""The exit-status table (README "Exit status", `a4nn-commons --help`), through the installed console script.

0 success, 1 some input rejected / a check failed, 2 the command could not run
(usage, option value, database, server, file or id), 130 interrupted. Every failure
is one clear line on stderr, never a traceback.
"""
from __future__ import annotations

import importlib
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import time
from pathlib import Path

import click
import pytest

from cli_helpers import TINY_ICPP, TINY_ICPP_NAME, assert_clean_failure, console_script, run_console

GOLDEN_0001 = Path(__file__).resolve().parents[1] / "data" / "golden_0001.sqlite"


def _command_paths() -> list[list[str]]:
    """Every command and sub-command, found from the CLI's own table (new commands are covered too)."""
    from a4nn.cli.main import COMMANDS

    paths: list[list[str]] = [[]]
    for name, target in sorted(COMMANDS.items()):
        module, attribute = target.split(":")
        command = getattr(importlib.import_module(module), attribute)
        paths.append([name])
        if isinstance(command, click.Group):
            paths.extend([name, sub] for sub in sorted(command.commands))
    return paths


@pytest.mark.parametrize("path", _command_paths(), ids=lambda p: " ".join(p) or "a4nn-commons")
def test_help_of_every_command_exits_0(path: list[str]) -> None:
    result = run_console([*path, "--help"])
    assert result.returncode == 0, result.stderr
    assert "Usage:" in result.stdout and not result.stderr


def test_top_level_help_has_the_exit_status_table() -> None:
    text = run_console(["--help"]).stdout
    assert "Exit status:" in text
    for code in ("0 ", "1 ", "2 ", "130 "):
        assert f"\n    {code}" in text, text


def test_version_exits_0() -> None:
    result = run_console(["--version"])
    assert result.returncode == 0 and "a4nn-commons" in result.stdout


def test_the_readme_table_matches_the_help() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("### Exit status", 1)[1].split("\n#", 1)[0]
    codes = [line.split("|")[1].strip().strip("`") for line in section.splitlines() if line.startswith("| `")]
    assert codes == ["0", "1", "2", "130"]


# --- ingest: rejected files and --strict (1), success (0) -------------------------------------------------

def _logs(folder: Path, *, bad: bool) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / TINY_ICPP_NAME).write_text(TINY_ICPP)
    if bad:
        (folder / "1gpu_1e15_training_data.csv").write_text("epoch,val_accs,arch\n0,70.5,0\n1,not-a-number,0\n")
    return folder


def test_ingest_of_good_files_exits_0(tmp_path: Path) -> None:
    result = run_console(["ingest", str(_logs(tmp_path / "logs", bad=False)), "--db", f"sqlite:///{tmp_path / 'a.db'}"])
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr


def test_ingest_with_a_rejected_file_exits_1_and_keeps_the_good_one(tmp_path: Path) -> None:
    database = tmp_path / "a.db"
    result = run_console(["ingest", str(_logs(tmp_path / "logs", bad=True)), "--db", f"sqlite:///{database}"])
    assert_clean_failure(result, 1, "1gpu_1e15_training_data.csv:3", "not-a-number")
    with sqlite3.connect(database) as connection:
        assert connection.execute("SELECT count(*) FROM architectures").fetchone()[0] == 2  # the good file's


def test_ingest_strict_exits_1(tmp_path: Path) -> None:
    result = run_console(["ingest", str(_logs(tmp_path / "logs", bad=True)), "--strict",
                          "--db", f"sqlite:///{tmp_path / 'a.db'}"])
    assert_clean_failure(result, 1, "1gpu_1e15_training_data.csv:3", "--strict")


def test_ingest_of_a_missing_path_fails_in_one_line(tmp_path: Path) -> None:
    result = run_console(["ingest", str(tmp_path / "not-there"), "--db", f"sqlite:///{tmp_path / 'a.db'}"])
    assert result.returncode in (1, 2), result.stderr  # refused (2) or reported as nothing ingested (1), never 0
    assert "Traceback" not in result.stderr and "not-there" in result.stderr


# --- verify: a tampered bundle (1) -----------------------------------------------------------------------

@pytest.fixture
def bundle(tiny_db: str, tmp_path: Path) -> Path:
    out = tmp_path / "bundle"
    result = run_console(["export", "1", "--out", str(out), "--db", tiny_db])
    assert result.returncode == 0, result.stderr
    return out


def test_verify_exits_0_on_an_intact_bundle_and_1_on_a_tampered_one(bundle: Path) -> None:
    assert run_console(["verify", str(bundle)]).returncode == 0
    with open(bundle / "architectures.csv", "a") as handle:
        handle.write("\n")
    assert_clean_failure(run_console(["verify", str(bundle)]), 1, "architectures.csv")


# --- publish: an unreachable server (2) ------------------------------------------------------------------

def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # nothing listens once the socket is closed


def test_publish_to_an_unreachable_server_exits_2(bundle: Path) -> None:
    result = run_console(["publish", str(bundle), "--server", f"http://127.0.0.1:{_closed_port()}",
                          "--collection", "x", "--author", "Doe, Jane", "--contact-email", "j@example.org",
                          "--retries", "0", "--timeout", "5"],
                         env={"DATAVERSE_API_TOKEN": "not-a-real-token"}, timeout=120)
    assert_clean_failure(result, 2, "error:")
    assert "not-a-real-token" not in result.stderr + result.stdout


def test_the_client_of_an_unreachable_service_raises_one_clear_error() -> None:
    """The README's DataFrame client (a library call, no exit status): an A4nnError naming the URL, not httpx's."""
    from a4nn.commons.client import Client, ServiceError
    from a4nn.errors import A4nnError

    base = f"http://127.0.0.1:{_closed_port()}"
    with Client(base, timeout=5) as client, pytest.raises(ServiceError) as caught:
        client.models("beam=low")
    assert isinstance(caught.value, A4nnError) and f"cannot reach {base}/models" in str(caught.value)
    assert caught.value.status_code is None


# --- usage and option values (2) -------------------------------------------------------------------------

@pytest.mark.parametrize("args, needle", [
    (["search", "--preset", "nope"], "--preset"),
    (["plot", "curve", "--out", "x.png"], "--model"),
    (["no-such-command"], "no-such-command"),
])
def test_usage_errors_exit_2(args: list[str], needle: str, tmp_path: Path) -> None:
    assert_clean_failure(run_console(args, cwd=tmp_path), 2, needle)


def test_serve_on_a_taken_port_fails_fast_with_one_line(tiny_db: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        start = time.monotonic()
        result = run_console(["serve", "--db", tiny_db, "--port", str(port)], timeout=60)
    assert_clean_failure(result, 2, f"127.0.0.1:{port}", "--port")
    assert time.monotonic() - start < 30
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


@pytest.mark.parametrize("command", [["report", "1"], ["export", "1", "--out", "b"], ["serve"], ["similar", "1"],
                                     ["plot", "pareto", "--out", "p.png"], ["db", "current"], ["db", "upgrade"],
                                     ["ingest", "."], ["search", "--resume", "1"]])
def test_unknown_url_scheme_exits_2(command: list[str], tmp_path: Path) -> None:
    result = run_console([*command, "--db", "mysql://root@localhost/a4nn"], cwd=tmp_path)
    assert_clean_failure(result, 2, "unsupported database URL scheme 'mysql'")
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("command", [["report", "1"], ["export", "1", "--out", "b"], ["serve"], ["similar", "1"],
                                     ["plot", "pareto", "--out", "p.png"]])
def test_readers_refuse_a_schema_behind_with_the_upgrade_hint(command: list[str], tmp_path: Path) -> None:
    copy = tmp_path / "old.db"
    shutil.copy(GOLDEN_0001, copy)
    result = run_console([*command, "--db", f"sqlite:///{copy}"], cwd=tmp_path)
    assert_clean_failure(result, 2, "revision 0001", "a4nn-commons db upgrade")
    with sqlite3.connect(copy) as connection:  # refused, not upgraded behind the user's back
        assert connection.execute("SELECT version_num FROM a4nn_alembic_version").fetchone()[0] == "0001"


@pytest.mark.parametrize("command, needle", [
    (["report", "99"], "99"),
    (["export", "99", "--out", "b"], "99"),
    (["plot", "fates", "--search", "99", "--out", "f.png"], "99"),
    (["similar", "99"], "99"),
    (["plot", "curve", "--model", "99", "--out", "c.png"], "99"),
    (["search", "--resume", "99"], "no search with id 99"),
])
def test_unknown_search_or_model_id_exits_2(command: list[str], needle: str, tiny_db: str, tmp_path: Path) -> None:
    result = run_console([*command, "--db", tiny_db], cwd=tmp_path)
    assert_clean_failure(result, 2, needle)


# --- interrupted (130) ------------------------------------------------------------------------------------

@pytest.mark.slow
def test_ctrl_c_of_a_search_exits_130_and_says_how_to_resume(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    process = subprocess.Popen(
        [console_script(), "search", "--pop", "2", "--offspring", "1", "--generations", "2", "--epochs", "50",
         "--image-size", "8", "--n-images", "40", "--channels", "2", "--checkpoints", "none", "--quiet",
         "--db", url, "--run-dir", str(tmp_path / "runs")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "A4NN_DATA_DIR": str(tmp_path / "data"), "OMP_NUM_THREADS": "1"})
    try:
        deadline = time.time() + 240
        while time.time() < deadline and process.poll() is None:
            with sqlite3.connect(tmp_path / "s.db") as connection:
                try:
                    if connection.execute("SELECT count(*) FROM epochs").fetchone()[0] > 0:
                        break
                except sqlite3.OperationalError:  # tables not there yet
                    pass
            time.sleep(0.2)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr and "--resume" in stderr
    with sqlite3.connect(tmp_path / "s.db") as connection:
        assert connection.execute("SELECT status FROM searches").fetchone()[0] == "interrupted"
