"""`a4nn-commons db` and the one-line errors for unusable databases."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from a4nn.cli.main import cli, main


def run(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "a4nn.cli.main", *args], capture_output=True, text=True, timeout=120)


def test_upgrade_then_current(empty_database_url: str) -> None:
    assert main(["db", "upgrade", "--db", empty_database_url]) == 0
    result = CliRunner().invoke(cli, ["db", "current", "--db", empty_database_url])
    assert result.exit_code == 0 and "up to date" in result.output


def test_env_var_selects_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path / 'env.db'}"
    monkeypatch.setenv("A4NN_DB_URL", url)
    assert main(["db", "upgrade"]) == 0
    assert (tmp_path / "env.db").exists()


@pytest.mark.parametrize(
    "url, message",
    [
        ("mysql://root@localhost/x", "unsupported database URL scheme"),
        ("not a url", "not a database URL"),
        ("postgresql://nobody@127.0.0.1:1/none", "cannot open database"),
        ("sqlite:////nonexistent-folder/x.db", "does not exist"),
    ],
)
def test_unusable_database_is_one_clear_line(url: str, message: str) -> None:
    result = run(["db", "current", "--db", url])
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_non_database_file(tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_text("this is not sqlite\n" * 100)
    result = run(["db", "current", "--db", f"sqlite:///{junk}"])
    assert result.returncode == 2 and "file is not a database" in result.stderr
    assert "Traceback" not in result.stderr


def test_every_command_has_help() -> None:
    from a4nn.cli.main import COMMANDS

    for name in COMMANDS:
        result = run([name, "--help"])
        assert result.returncode == 0, (name, result.stderr[-2000:])
        assert "Usage:" in result.stdout
