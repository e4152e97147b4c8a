"""The worker half of Ray training: data by spec, device choice, the epoch controller, the task body.

Kept apart from :mod:`a4nn.search.distributed` (the driver) so that what runs inside a
Ray worker process is small and readable on its own.

Data: a worker never receives training tensors per task. A :class:`DataSpec` is
loaded by the worker with :func:`a4nn.search.data.load_dataset` (the simulator
caches its TIFFs on disk, so each node simulates once) and memoized per worker
process; an :class:`ImageSplit` handed to the evaluator instead is ``ray.put`` once
and every task reads the same object-store copy.

Streaming: in the default mode the worker owns no database connection. After each
validation it sends the epoch's metrics to the :class:`EpochController` actor and
blocks until the driver, which runs the :class:`EpochSupervisor` (Recorder + engine),
answers stop/continue, so the engine's decision lands exactly at the epoch boundary.
"""
from __future__ import annotations

import asyncio
import os
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import ray

from a4nn.lineage.urls import SecretURL
from a4nn.search.evaluation import Candidate, EpochMetrics, TrainSettings, error_text


@dataclass(frozen=True)
class DataSpec:
    """How a worker loads the data set itself (the arguments of ``load_dataset``)."""

    spec: str = "xfel-sim"
    beam: str = "low"
    n_images: int = 400
    image_size: int = 32
    seed: int = 0
    cache_dir: str | None = None

    def load(self):  # -> ImageSplit; torch is imported lazily by the loaders
        from a4nn.search.data import load_dataset

        return load_dataset(self.spec, beam=self.beam, n_images=self.n_images, image_size=self.image_size,
                            seed=self.seed, cache_dir=Path(self.cache_dir) if self.cache_dir else None)


_DATA_MEMO: dict[DataSpec, Any] = {}


def resolve_data(data: Any):
    """The ImageSplit for a task argument: a DataSpec (loaded once per process) or the split itself."""
    if isinstance(data, DataSpec):
        if data not in _DATA_MEMO:
            _DATA_MEMO[data] = data.load()
        return _DATA_MEMO[data]
    return data


@dataclass(frozen=True)
class FaultInjection:
    """Test hook: make candidate (generation, index) fail after epoch ``epoch``'s decision.

    ``action="exit"`` kills the worker process with ``os._exit`` the first time only
    (a marker file under the run folder remembers it), which Ray must retry;
    ``action="raise"`` raises every time, which must be recorded as a failed network;
    ``action="hold"`` blocks (at most two minutes) until the file :meth:`release_path`
    exists, so a test can order completions without relying on timing.
    """

    generation: int
    index: int
    epoch: int
    action: str = "exit"

    def trigger(self, candidate: Candidate, epoch: int, run_dir: Path) -> None:
        if (candidate.generation, candidate.index, epoch) != (self.generation, self.index, self.epoch):
            return
        if self.action == "raise":
            raise RuntimeError(f"injected training failure at epoch {epoch}")
        if self.action == "hold":
            deadline = time.monotonic() + 120
            while not self.release_path(run_dir, candidate.architecture_id).exists() and time.monotonic() < deadline:
                time.sleep(0.05)
            return
        marker = Path(run_dir) / f".fault-arch-{candidate.architecture_id}-epoch-{epoch}"
        if not marker.exists():
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.touch()
            os._exit(17)

    @staticmethod
    def release_path(run_dir: Path | str, architecture_id: int) -> Path:
        """The file that releases a ``hold`` fault of that architecture."""
        return Path(run_dir) / f".release-arch-{architecture_id}"


def select_device(requested: str) -> tuple[str, list]:
    """The torch device for this task and the Ray GPU ids it holds.

    Ray restricts ``CUDA_VISIBLE_DEVICES`` to the task's GPU, so the slot's GPU is
    always ``cuda:0`` inside the worker. A node that declares logical GPUs but has no
    CUDA (CI, laptops) trains on the CPU rather than failing.
    """
    import torch

    gpu_ids = list(ray.get_gpu_ids()) if ray.is_initialized() else []
    if requested == "cpu":
        return "cpu", gpu_ids
    if torch.cuda.is_available() and (gpu_ids or requested.startswith("cuda")):
        return ("cuda:0" if gpu_ids else ("cuda" if requested == "auto" else requested)), gpu_ids
    return "cpu", gpu_ids


@ray.remote(num_cpus=0, max_concurrency=1000)
class EpochController:
    """Mailbox between training tasks and the driver (an async actor).

    Workers ``report`` an epoch and await the driver's verdict; the driver long-polls
    ``next_events`` and answers with ``decide``. Events carry a sequence number and
    are handed out strictly in arrival order.
    """

    def __init__(self) -> None:
        self.events: list[dict] = []
        self.arrived = asyncio.Event()
        self.verdicts: dict[tuple, asyncio.Future] = {}
        self.sequence = 0

    def _push(self, event: dict) -> None:
        self.sequence += 1
        event["seq"] = self.sequence
        self.events.append(event)
        self.arrived.set()

    async def begin(self, architecture_id: int, attempt: str, info: dict) -> None:
        self._push({"kind": "begin", "architecture_id": architecture_id, "attempt": attempt, "info": info})

    async def report(self, architecture_id: int, attempt: str, metrics: dict, checkpoint: tuple | None) -> bool:
        key = (architecture_id, attempt, metrics["epoch"])
        future = self.verdicts.setdefault(key, asyncio.get_running_loop().create_future())
        self._push({"kind": "epoch", "architecture_id": architecture_id, "attempt": attempt, "metrics": metrics,
                    "checkpoint": checkpoint})
        try:
            return await future
        finally:
            self.verdicts.pop(key, None)

    async def next_events(self, timeout: float) -> list[dict]:
        if not self.events:
            self.arrived.clear()
            try:
                await asyncio.wait_for(self.arrived.wait(), timeout)
            except asyncio.TimeoutError:
                pass
        events, self.events = self.events, []
        return events

    async def decide(self, verdicts: list[tuple[int, str, int, bool]]) -> None:
        for architecture_id, attempt, epoch, stop in verdicts:
            future = self.verdicts.get((architecture_id, attempt, epoch))
            if future is not None and not future.done():
                future.set_result(stop)


THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def thread_env(num_threads: int) -> dict[str, str]:
    """The environment that pins OpenMP/MKL/OpenBLAS to ``num_threads`` (a Ray ``runtime_env``'s env_vars)."""
    return {name: str(max(1, int(num_threads))) for name in THREAD_ENV}


def pin_threads(num_threads: int) -> None:
    """Pin this worker process to ``num_threads`` CPU threads, torch included.

    The environment variables only reach the OpenMP/MKL runtimes if they are set
    before torch is first imported in the process, so this runs at the top of every
    task (torch is imported lazily here); ``torch.set_num_threads`` covers a process
    that imported torch already. Inter-op threads can only be set once per process.
    """
    for name, value in thread_env(num_threads).items():
        os.environ[name] = value
    import torch

    torch.set_num_threads(max(1, int(num_threads)))
    if torch.get_num_interop_threads() != 1:
        try:
            torch.set_num_interop_threads(1)
        except RuntimeError:  # already used in this process: leave it
            pass


def train_candidate(candidate: Candidate, settings: TrainSettings, data: Any, run_dir: str,
                    controller: Any = None, database_url: "SecretURL | str | None" = None,
                    engine_factory: Callable[[], Any] | None = None, faults: tuple[FaultInjection, ...] = ()) -> dict:
    """Train one candidate inside a Ray worker; returns a JSON-able outcome.

    Exactly one of ``controller`` (stream to the driver, default) or ``database_url``
    (direct writes, PostgreSQL; a :class:`~a4nn.lineage.urls.SecretURL` that the driver put
    in the object store, so the password is in no task argument) is given. Exceptions from training are caught and
    returned as ``error`` so that they are recorded, not retried; only a dying
    process is retried by Ray.

    ``outcome["timing"]`` says where the task's time went: wall-clock stamps
    (``time.time()``, comparable across the processes of one node) of the task's
    start and end, and the seconds spent importing/pinning, loading data, building
    the network, training and waiting for the driver's verdicts.
    """
    entered = time.time()
    clock = time.perf_counter()
    pin_threads(settings.num_threads)
    import torch

    from a4nn.search.supervision import EpochSupervisor
    from a4nn.search.trainer import build_model, train_network

    device, gpu_ids = select_device(settings.device)
    settings = type(settings)(**{**settings.to_dict(), "device": device})
    attempt = uuid.uuid4().hex[:12]
    info = {"device": device, "gpu_ids": [str(g) for g in gpu_ids], "pid": os.getpid(),
            "node": ray.get_runtime_context().get_node_id() if ray.is_initialized() else None,
            "torch_threads": torch.get_num_threads()}
    run_path = Path(run_dir)
    start = time.perf_counter()
    timing: dict[str, Any] = {"started": entered, "setup_seconds": start - clock, "data_seconds": 0.0,
                              "build_seconds": 0.0, "train_seconds": 0.0, "verdict_wait_seconds": 0.0,
                              "pid": os.getpid()}
    outcome: dict[str, Any] = {"attempt": attempt, "info": info, "error": None, "checkpoint": None, "result": None,
                               "timing": timing}

    def prepare():
        mark = time.perf_counter()
        data_split = resolve_data(data)
        timing["data_seconds"] = time.perf_counter() - mark
        mark = time.perf_counter()
        # seeded from the search seed and the genome, as in-process training does: the same
        # network trains to the same curve whichever worker (or how many) trains it
        model = build_model(candidate.bits, settings, data_split, network=candidate.architecture_id)
        timing["build_seconds"] = time.perf_counter() - mark
        return data_split, model

    def close(error: str | None) -> None:
        timing["train_seconds"] = max(0.0, time.perf_counter() - start - timing["data_seconds"]
                                      - timing["build_seconds"] - timing["verdict_wait_seconds"])
        timing["ended"] = time.time()
        outcome["error"] = error
        outcome["wall_seconds"] = time.perf_counter() - start

    def train(verdict: Callable[[EpochMetrics, Any], bool],
              after: Callable[[EpochMetrics, Any, bool], None] | None = None) -> str | None:
        """Train with ``verdict`` deciding each epoch (timed as the wait for it), then ``after`` and the faults.

        The one epoch callback of both modes; returns the error text of a training that raised.
        """

        def on_epoch(metrics: EpochMetrics, model: torch.nn.Module) -> bool:
            mark = time.perf_counter()
            stop = verdict(metrics, model)
            timing["verdict_wait_seconds"] += time.perf_counter() - mark
            if after is not None:
                after(metrics, model, stop)
            for fault in faults:
                fault.trigger(candidate, metrics.epoch, run_path)
            return stop

        try:
            data_split, model = prepare()
            train_network(model, data_split, settings, on_epoch)
        except Exception as exc:  # recorded as a failed network; the search goes on
            return error_text(exc)
        return None

    if database_url is not None:  # direct writes: this worker is a full supervisor
        from a4nn.lineage.database import Database
        from a4nn.lineage.recorder import Recorder

        # a SecretURL (from the object store) reveals its password only here, to connect
        database = Database.open(database_url.reveal() if isinstance(database_url, SecretURL) else database_url)
        try:
            recorder = Recorder(database)
            recorder.clear_architecture_trail(candidate.architecture_id)  # a retried attempt starts clean
            engine = engine_factory() if engine_factory else None
            population = getattr(engine, "population", None)
            known = len(population.checks) if population is not None else 0
            supervisor = EpochSupervisor(recorder, engine, candidate, run_path, settings)
            error = train(supervisor.on_epoch)
            close(error)
            result = supervisor.finish(outcome["wall_seconds"], error=error)
            outcome["result"] = asdict(result)
            # what this network's complete curve showed of the rules' expected errors (an overruled stop
            # checked against the final value) is not in the lineage: the driver's population gets it here
            outcome["checks"] = list(population.checks[known:]) if population is not None else []
            return outcome
        finally:
            database.dispose()

    ray.get(controller.begin.remote(candidate.architecture_id, attempt, info))
    saver = EpochSupervisor(None, None, candidate, run_path, settings)  # type: ignore[arg-type] - only saves files
    pending: list[tuple | None] = [None]  # checkpoint saved after the last verdict, sent with the next report

    def streamed(metrics: EpochMetrics, model: torch.nn.Module) -> bool:
        """Report the epoch (with the checkpoint saved after the last verdict) and wait for the driver's verdict."""
        return bool(ray.get(controller.report.remote(candidate.architecture_id, attempt, asdict(metrics),
                                                     pending[0])))

    def save(metrics: EpochMetrics, model: torch.nn.Module, stop: bool) -> None:
        path = saver.save_checkpoint(model, metrics.epoch, stop or metrics.epoch >= settings.epochs)
        pending[0] = (metrics.epoch, str(path)) if path is not None else None

    error = train(streamed, save)
    outcome["checkpoint"] = pending[0]
    close(error)
    return outcome
