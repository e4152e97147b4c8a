"""Fixtures shared by the security tests."""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from a4nn.lineage.database import Database
from a4nn.migrations.runner import upgrade_database


@pytest.fixture
def target(tmp_path: Path) -> Iterator[Database]:
    """A fresh, upgraded SQLite lineage database to import crafted bundles into."""
    url = f"sqlite:///{tmp_path / 'target.db'}"
    upgrade_database(url)
    database = Database.open(url)
    yield database
    database.dispose()
