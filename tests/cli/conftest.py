"""Fixtures of the CLI tests (helpers in cli_helpers.py): a database made the way a user makes one."""
from __future__ import annotations

import pytest

from cli_helpers import TINY_ICPP, TINY_ICPP_NAME, run_console


@pytest.fixture(scope="session")
def tiny_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    """`a4nn-commons ingest` of a tiny ICPP'23-layout log (2 networks, 3 epochs) into a fresh SQLite file."""
    folder = tmp_path_factory.mktemp("tiny-db")
    (folder / "logs").mkdir()
    (folder / "logs" / TINY_ICPP_NAME).write_text(TINY_ICPP)
    url = f"sqlite:///{folder / 'tiny.db'}"
    result = run_console(["ingest", str(folder / "logs"), "--db", url, "--quiet"])
    assert result.returncode == 0, result.stderr
    return url
