"""The INSTALLED ``a4nn-commons`` console script, for tests that run a command the way a user does.

Not click's CliRunner and not ``python -m``: the console script's ``main()`` decides the exit
status (issue 22: it once dropped the code of ``ctx.exit(1)``), so only a subprocess through the
installed entry point tests it. Shared by every test folder (``tests/`` is on ``sys.path``
because of its rootdir ``conftest.py``).
"""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest


def console_script() -> str:
    """The ``a4nn-commons`` that ``pip install`` put beside this interpreter (else the one on PATH)."""
    beside = Path(sys.executable).with_name("a4nn-commons")
    if beside.is_file():
        return str(beside)
    found = shutil.which("a4nn-commons")
    if found is None:
        pytest.skip("the a4nn-commons console script is not installed (pip install -e .)")
    return found
