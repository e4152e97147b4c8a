"""Helpers of the CLI tests: run the INSTALLED ``a4nn-commons`` console script the way a user or a script does.

Not click's CliRunner and not ``python -m``: the console script's ``main()`` is what
decides the exit status (issue 22: it once dropped the code of ``ctx.exit(1)``), so
only a real subprocess through the installed entry point tests it.
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

from installed import console_script  # noqa: F401  (the CLI tests import it from here)

TINY_ICPP = (  # a hand-written log in the published layout: 2 networks, 3 epochs, one stopped early
    "epoch,train_accs,val_accs,epoch_times,predictions,converged,flops,arch\n"
    "0,60.0,55.0,1.5,inf,False,120.5,0\n"
    "1,70.0,66.0,1.4,80.0,False,120.5,0\n"
    "2,75.0,71.0,1.4,80.2,True,120.5,0\n"
    "0,58.0,52.0,1.1,inf,False,300.25,1\n"
    "1,68.0,61.0,1.2,inf,False,300.25,1\n"
    "2,72.0,69.5,1.2,76.0,False,300.25,1\n"
)
TINY_ICPP_NAME = "1gpu_1e14_stopping_training_data.csv"


def run_console(args: list[str], *, cwd: Path | None = None, env: dict[str, str] | None = None,
                timeout: float = 180) -> subprocess.CompletedProcess:
    """``a4nn-commons ARGS`` with stdout and stderr piped (not a terminal), like a script or a CI job."""
    # a developer's own $A4NN_DB_URL must not leak in: each test names its database
    environment = {key: value for key, value in os.environ.items() if key != "A4NN_DB_URL"}
    environment.update({"OMP_NUM_THREADS": "1", **(env or {})})
    return subprocess.run([console_script(), *args], cwd=cwd, env=environment, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def assert_clean_failure(result: subprocess.CompletedProcess, code: int, *needles: str) -> None:
    """Exit ``code``, no traceback, and every needle in stderr (the one clear line)."""
    detail = f"exit {result.returncode}\nstdout:\n{result.stdout[-2000:]}\nstderr:\n{result.stderr[-3000:]}"
    assert result.returncode == code, detail
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout, detail
    for needle in needles:
        assert needle in result.stderr, detail
