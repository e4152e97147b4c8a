"""One Ray instance for the whole test session (starting Ray costs seconds).

It declares two logical GPUs on a CPU-only machine, so CI runs the GPU-slot path
(``num_gpus=1`` tasks, device chosen from ``ray.get_gpu_ids()``) and the workers
must still fall back to training on the CPU.
"""
from __future__ import annotations

import os
from typing import Iterator

import pytest


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[dict]:
    """A local Ray instance with 2 CPUs and 2 logical GPUs; shut down at session end."""
    ray = pytest.importorskip("ray")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    ray.init(num_cpus=2, num_gpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR",
             runtime_env={"env_vars": {"OMP_NUM_THREADS": "1"}})
    try:
        yield ray.cluster_resources()
    finally:
        ray.shutdown()
