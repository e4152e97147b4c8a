"""One Ray instance for the Ray evaluator's tests (starting Ray costs seconds).

It lives as long as the module that asks for it (``test_distributed.py``), not the whole session:
later tests that must start a Ray instance of their own (``tests/security``) then find none running.

It declares two logical GPUs on a CPU-only machine, so CI runs the GPU-slot path
(``num_gpus=1`` tasks, device chosen from ``ray.get_gpu_ids()``) and the workers
must still fall back to training on the CPU.
"""
from __future__ import annotations

import os
from typing import Iterator

import pytest


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[dict]:
    """A local Ray instance with 2 CPUs and 2 logical GPUs; shut down after the module."""
    ray = pytest.importorskip("ray")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    ray.init(num_cpus=2, num_gpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR",
             runtime_env={"env_vars": {"OMP_NUM_THREADS": "1"}})
    try:
        yield ray.cluster_resources()
    finally:
        ray.shutdown()
