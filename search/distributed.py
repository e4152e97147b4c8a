"""Training candidates in parallel on Ray: one task per slot, FIFO, decisions streamed per epoch.

:class:`RayEvaluator` implements the :class:`~a4nn.search.evaluation.Evaluator`
protocol, so the NSGA loop does not know whether networks train in-process or on a
Ray cluster.

* Slots: every candidate is one Ray task holding one slot, ``num_gpus=1`` when the
  cluster declares GPUs (a fresh worker process per task, so each gets a clean CUDA
  context on its own GPU), else ``num_cpus=1``. Candidates are dispatched in FIFO
  order, never more than ``workers`` in flight, and collected in completion order
  with ``ray.wait``.
* Streaming: by default only the driver touches the database (SQLite allows one
  writer; a dozen workers would fight over its lock). Workers stream each epoch to an
  :class:`~a4nn.search.ray_worker.EpochController` actor; the driver runs the
  :class:`~a4nn.search.supervision.EpochSupervisor` (Recorder + prediction engine)
  and its stop decision travels back before the worker starts the next epoch. With
  a PostgreSQL URL ``direct_writes=True`` lets every worker write its own trail.
* Faults: a worker process that dies is retried by Ray (``max_retries``); the driver
  sees the new attempt, clears the partial trail and starts a fresh engine, and
  epochs are upserted by (architecture, epoch), so no row is duplicated. A network
  whose training raises is recorded as failed with its error; the search goes on.
  Ctrl-C cancels every task, marks the search ``interrupted`` and shuts down the Ray
  instance this evaluator started; unfinished networks are retrained on ``--resume``.
* Threads: a Ray instance this evaluator starts gives every worker
  ``OMP/MKL/OPENBLAS_NUM_THREADS = settings.num_threads``, and every task pins torch
  to that many threads (:func:`~a4nn.search.ray_worker.pin_threads`); W slots on W
  cores therefore never oversubscribe the CPU.
* Profile: :attr:`RayEvaluator.timeline` keeps, per collected task, the driver's
  submit/collect stamps and the worker's own timing (start, end, data loading, build,
  training, waiting for verdicts); ``ray_start_seconds`` is the ``ray.init`` time.
  ``benchmarks/scaling.py`` turns both into idle-slot and latency figures.
"""
from __future__ import annotations

import logging
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import ray

from a4nn.errors import A4nnError
from a4nn.lineage.recorder import Recorder
from a4nn.lineage.status import SearchStatus
from a4nn.lineage.urls import SecretURL, display_url
from a4nn.search.evaluation import Candidate, CandidateResult, EpochMetrics, TrainSettings
from a4nn.search.ray_worker import DataSpec, EpochController, FaultInjection, thread_env, train_candidate
from a4nn.search.supervision import EpochSupervisor, recorded_result

log = logging.getLogger(__name__)

POLL_SECONDS = 0.5


class DistributedError(A4nnError):
    """The Ray evaluator cannot run as configured (bad address, unusable options)."""


@dataclass(frozen=True)
class SlotPlan:
    """What one task asks Ray for, and how many tasks may run at once."""

    kind: str  # "gpu" | "cpu"
    slots: int
    resources: dict[str, float]


def plan_slots(workers: int | None, cluster: dict[str, float], slot: str = "auto") -> SlotPlan:
    """GPU slots when the cluster has GPUs (or ``slot="gpu"``), else CPU slots.

    ``workers`` caps the tasks in flight; ``None`` uses every slot the cluster has.
    """
    gpus, cpus = int(cluster.get("GPU", 0)), int(cluster.get("CPU", 0))
    kind = slot if slot in ("gpu", "cpu") else ("gpu" if gpus > 0 else "cpu")
    if kind == "gpu" and gpus == 0:
        raise DistributedError("slot='gpu' asked for, but the Ray cluster declares no GPUs")
    available = gpus if kind == "gpu" else cpus
    slots = workers if workers is not None else max(1, available)
    if slots < 1:
        raise DistributedError(f"workers must be at least 1, got {workers}")
    # more workers than GPUs share them: each task asks for its fraction (2 workers on 1 GPU: 0.5 each)
    share = min(1.0, available / slots) if kind == "gpu" else 1.0
    resources = {"num_gpus": share} if kind == "gpu" else {"num_cpus": 1.0}
    return SlotPlan(kind, slots, resources)


_train_on_cpu = ray.remote(num_cpus=1)(train_candidate)
_train_on_gpu = ray.remote(num_gpus=1, max_calls=1)(train_candidate)


@dataclass
class _Running:
    """Driver-side state of one candidate in flight."""

    candidate: Candidate
    submitted: float
    submitted_at: float = 0.0  # time.time(), for the timeline
    supervisor: EpochSupervisor | None = None
    attempt: str | None = None
    attempts: int = 0
    seen: dict[int, bool] = field(default_factory=dict)  # epoch -> verdict of the current attempt


@dataclass
class GenerationStats:
    """Timeline of one ``evaluate`` call, for the scaling benchmark."""

    candidates: int
    slots: int
    wall_seconds: float = 0.0
    busy_seconds: float = 0.0       # sum of task durations (submit -> result)
    tail_idle_seconds: float = 0.0  # slot-seconds idle because the generation's queue ran dry
    retries: int = 0


class RayEvaluator:
    """Evaluate candidates as Ray tasks (see the module docstring for the design)."""

    def __init__(self, recorder: Recorder, engine_factory: Callable[[], Any], data: Any, settings: TrainSettings,
                 workers: int | None = None, address: str | None = None, overlap: bool = False,
                 run_dir: Path | str = "runs", direct_writes: bool = False, max_retries: int = 2,
                 slot: str = "auto", faults: Sequence[FaultInjection] = (), ray_init: dict | None = None,
                 progress: bool = False):
        self.recorder = recorder
        self.engine_factory = engine_factory
        self.settings = settings
        self.overlap = overlap  # read by the overlapping NSGA loop (a4nn.search.ray_overlap)
        self.run_dir = Path(run_dir).resolve()
        self.max_retries = max_retries
        self.faults = tuple(faults)  # test hook: see FaultInjection
        self.progress = progress
        self.database_url: str | None = None
        if direct_writes:
            if recorder.database.dialect != "postgresql":
                raise DistributedError("direct_writes needs a PostgreSQL database; with SQLite only the driver "
                                       "may write (workers would contend for its single write lock)")
            # what a person may see (logs, messages); the secret itself travels only in the object store
            self.database_url = display_url(recorder.database.url)
        self.owns_ray = False
        self.ray_start_seconds = 0.0  # starting (or connecting to) Ray, reported apart from the search's time
        if not ray.is_initialized():
            options: dict[str, Any] = {"include_dashboard": False, "logging_level": logging.WARNING,
                                       "log_to_driver": False,
                                       # OpenMP/MKL read these once, when torch loads: every worker gets them
                                       "runtime_env": {"env_vars": thread_env(settings.num_threads)}}
            if address is None:
                options["num_cpus"] = max(workers or 1, 1)
            options.update(ray_init or {})
            mark = time.perf_counter()
            try:
                ray.init(address=address, **options)
            except (ConnectionError, ValueError, RuntimeError) as exc:
                where = address or "a new local instance"
                raise DistributedError(f"cannot start or reach Ray at {where}: {exc}") from exc
            self.ray_start_seconds = time.perf_counter() - mark
            self.owns_ray = True
        self.plan = plan_slots(workers, ray.cluster_resources(), slot)
        self._remote = _train_on_gpu if self.plan.kind == "gpu" else _train_on_cpu
        self.data = ray.put(data) if not isinstance(data, DataSpec) else data
        self.controller = EpochController.remote() if self.database_url is None else None
        # workers get the full URL as an ObjectRef to a SecretURL: task arguments (which Ray's dashboard,
        # state API and task logs show) hold only the reference, and the wrapper's repr hides the password
        self._database_secret = ray.put(SecretURL(recorder.database.url)) if self.database_url is not None else None
        self.stats: list[GenerationStats] = []
        self.retries = 0
        self.reports = 0                           # epoch reports handled (duplicates included)
        self.attempt_info: dict[int, dict] = {}    # architecture id -> device, GPU ids, pid of its last attempt
        self.dispatched: list[int] = []            # architecture ids in dispatch order (FIFO)
        self.max_inflight = 0
        self.timeline: list[dict] = []             # one entry per collected task: driver and worker time stamps
        self.closed = False
        # the asynchronous core (also used by the overlapping NSGA loop)
        self._queue: deque[Candidate] = deque()
        self._inflight: dict[ray.ObjectRef, _Running] = {}
        self._by_architecture: dict[int, _Running] = {}
        self._poll: ray.ObjectRef | None = None
        self._ready: list[CandidateResult] = []

    @property
    def workers(self) -> int:
        return self.plan.slots

    def wait_ready(self, timeout: float = 120.0) -> None:
        """Block until the controller actor runs (its process start is start-up cost, not search time)."""
        if self.controller is not None:
            ray.get(self.controller.next_events.remote(0.0), timeout=timeout)

    # ------------------------------------------------------------ async core
    def submit(self, candidates: Sequence[Candidate]) -> None:
        """Queue candidates (FIFO); finished ones (resume) are answered from the database at once."""
        for candidate in candidates:
            done = recorded_result(self.recorder, candidate)
            if done is not None:
                self._ready.append(done)
            else:
                self._queue.append(candidate)
        self._dispatch()

    def _dispatch(self) -> None:
        while self._queue and len(self._inflight) < self.plan.slots:
            candidate = self._queue.popleft()
            if self.database_url is None:
                self.recorder.clear_architecture_trail(candidate.architecture_id)
            ref = self._remote.options(max_retries=self.max_retries, retry_exceptions=False,
                                       **(self.plan.resources if self.plan.kind == "gpu" else {})).remote(
                candidate, self.settings, self.data, str(self.run_dir), self.controller, self._database_secret,
                self.engine_factory if self.database_url else None, self.faults)
            running = _Running(candidate, time.perf_counter(), time.time())
            self._inflight[ref] = running
            self._by_architecture[candidate.architecture_id] = running
            self.dispatched.append(candidate.architecture_id)
            self.max_inflight = max(self.max_inflight, len(self._inflight))

    @property
    def busy(self) -> int:
        """Tasks in flight."""
        return len(self._inflight)

    @property
    def queued(self) -> int:
        """Candidates submitted and waiting for a slot."""
        return len(self._queue)

    @property
    def pending(self) -> int:
        """Candidates submitted and not yet returned by :meth:`collect`."""
        return len(self._queue) + len(self._inflight) + len(self._ready)

    def collect(self, timeout: float | None = None) -> list[CandidateResult]:
        """Results finished so far, in completion order; waits until at least one is ready or ``timeout``."""
        deadline = None if timeout is None else time.perf_counter() + timeout
        try:
            while not self._ready and (self._inflight or self._queue):
                if deadline is not None and time.perf_counter() >= deadline:
                    break
                self._step()
        except BaseException:  # KeyboardInterrupt above all: leave nothing running
            self._abort()
            raise
        ready, self._ready = self._ready, []
        return ready

    def _step(self) -> None:
        waiting = list(self._inflight)
        if self.controller is not None and self._poll is None:
            self._poll = self.controller.next_events.remote(POLL_SECONDS)
        if self._poll is not None:
            waiting.append(self._poll)
        done, _ = ray.wait(waiting, num_returns=1, timeout=POLL_SECONDS)
        if self._poll is not None and self._poll in done:
            self._handle_events(ray.get(self._poll))
            self._poll = None
        finished = [ref for ref in done if ref in self._inflight]
        if finished:
            # Every epoch report of a finished task was answered, hence handled, so the
            # outstanding long-poll is left running: waiting on it here would hold every
            # other worker's verdict (and the next dispatch) for up to POLL_SECONDS.
            # Events that arrive later for a finished candidate are released or ignored
            # in _handle_events; those of a dead attempt carry lower sequence numbers than
            # its retry's, so they are always handled first.
            for ref in finished:
                self._finish(ref)
            self._dispatch()

    def _handle_events(self, events: list[dict]) -> None:
        verdicts: list[tuple[int, str, int, bool]] = []
        for event in sorted(events, key=lambda e: e["seq"]):
            running = self._by_architecture.get(event["architecture_id"])
            if running is None:  # an attempt outliving its candidate: release it
                if event["kind"] == "epoch":
                    verdicts.append((event["architecture_id"], event["attempt"], event["metrics"]["epoch"], True))
                continue
            if event["attempt"] != running.attempt:
                self._new_attempt(running, event["attempt"])
            if event["kind"] == "begin":
                self.attempt_info[event["architecture_id"]] = event["info"]
            if event["kind"] == "epoch":
                verdicts.append((running.candidate.architecture_id, running.attempt,
                                 event["metrics"]["epoch"], self._on_epoch(running, event)))
        if verdicts:
            self.controller.decide.remote(verdicts)

    def _new_attempt(self, running: _Running, attempt: str) -> None:
        """First report of an attempt; a second one means Ray retried a dead worker."""
        if running.attempt is not None:
            self.retries += 1
            log.warning("architecture %s: worker died, Ray retried it (attempt %d)",
                        running.candidate.architecture_id, running.attempts + 1)
            self.recorder.clear_architecture_trail(running.candidate.architecture_id)
        running.attempt = attempt
        running.attempts += 1
        running.seen.clear()
        running.supervisor = EpochSupervisor(self.recorder, self.engine_factory(), running.candidate, self.run_dir,
                                             self.settings)

    def _on_epoch(self, running: _Running, event: dict) -> bool:
        supervisor = running.supervisor
        assert supervisor is not None
        if event["checkpoint"] is not None:
            supervisor.record_checkpoint(*event["checkpoint"])
        metrics = EpochMetrics(**event["metrics"])
        self.reports += 1
        if metrics.epoch in running.seen:  # a redelivered report: the upsert keeps one row, the engine sees it once
            self.recorder.log_epoch(running.candidate.architecture_id, metrics.epoch, train_loss=metrics.train_loss,
                                    train_acc=metrics.train_acc, val_loss=metrics.val_loss, val_acc=metrics.val_acc,
                                    seconds=metrics.seconds)
            return running.seen[metrics.epoch]
        stop = supervisor.on_metrics(metrics)
        running.seen[metrics.epoch] = stop
        return stop

    def _finish(self, ref: ray.ObjectRef) -> None:
        running = self._inflight.pop(ref)
        self._by_architecture.pop(running.candidate.architecture_id, None)
        elapsed = time.perf_counter() - running.submitted
        self._busy_seconds += elapsed
        entry = {"architecture_id": running.candidate.architecture_id, "generation": running.candidate.generation,
                 "index": running.candidate.index, "submitted": running.submitted_at, "collected": time.time(),
                 "attempts": max(running.attempts, 1)}
        self.timeline.append(entry)
        try:
            outcome = ray.get(ref)
            entry.update(outcome.get("timing") or {})
        except (ray.exceptions.RayError, ray.exceptions.RayTaskError) as exc:  # retries exhausted, cancelled, ...
            self._ready.append(self._record_failure(running, f"{type(exc).__name__}: {str(exc).splitlines()[0]}",
                                                    elapsed))
            return
        if outcome.get("result") is not None:  # direct writes: the worker closed the row itself
            result = outcome["result"]
            result["candidate"] = running.candidate
            # the worker's engine decided on a copy of the population: the driver's learns the
            # finished network from its record, so the next dispatch carries it
            learn = getattr(self.engine_factory, "learn", None)
            if learn is not None:
                learn(self.recorder.database, running.candidate.architecture_id, checks=outcome.get("checks") or ())
            self._ready.append(CandidateResult(**result))
            return
        if running.supervisor is None or running.attempt != outcome["attempt"]:
            self._new_attempt(running, outcome["attempt"])  # failed before its first epoch report was handled
        supervisor = running.supervisor
        assert supervisor is not None
        if outcome.get("checkpoint"):
            supervisor.record_checkpoint(*outcome["checkpoint"])
        self._ready.append(supervisor.finish(outcome["wall_seconds"], error=outcome["error"]))

    def _record_failure(self, running: _Running, error: str, elapsed: float) -> CandidateResult:
        log.error("architecture %s failed: %s", running.candidate.architecture_id, error)
        if running.supervisor is not None and self.database_url is None:
            return running.supervisor.finish(elapsed, error=error)
        supervisor = EpochSupervisor(self.recorder, None, running.candidate, self.run_dir, self.settings)
        return supervisor.finish(elapsed, error=error)

    def _abort(self) -> None:
        """Cancel every task, mark the search interrupted, release Ray (if ours)."""
        searches = {r.candidate.search_id for r in self._inflight.values()} | {c.search_id for c in self._queue}
        for ref in list(self._inflight):
            try:
                ray.cancel(ref, force=True)
            except Exception:  # already finished or gone
                pass
        self._inflight.clear()
        self._by_architecture.clear()
        self._queue.clear()
        self._poll = None
        for search_id in searches:
            try:
                self.recorder.set_search_status(search_id, SearchStatus.INTERRUPTED)
            except Exception:  # the database may be what failed
                log.exception("could not mark search %s interrupted", search_id)
        self.close()

    # --------------------------------------------------------------- protocol
    _busy_seconds: float = 0.0

    def evaluate(self, candidates: Sequence[Candidate]) -> list[CandidateResult]:
        """Train one generation; results in the candidates' order (collected in completion order)."""
        if self.closed:
            raise DistributedError("this Ray evaluator was closed")
        start = time.perf_counter()
        self._busy_seconds = 0.0
        stats = GenerationStats(len(candidates), self.plan.slots)
        retries_before = self.retries
        self.submit(candidates)
        wanted = {c.architecture_id for c in candidates}
        results: dict[int, CandidateResult] = {}
        idle_area = 0.0  # slot-seconds idle while this generation had nothing left to dispatch
        while wanted - results.keys():
            before, idle = time.perf_counter(), (self.plan.slots - self.busy if not self._queue else 0)
            for result in self.collect():
                results[result.candidate.architecture_id] = result
            idle_area += idle * (time.perf_counter() - before)
        end = time.perf_counter()
        stats.wall_seconds = end - start
        stats.busy_seconds = self._busy_seconds
        stats.tail_idle_seconds = idle_area
        stats.retries = self.retries - retries_before
        self.stats.append(stats)
        return [results[c.architecture_id] for c in candidates]

    def close(self) -> None:
        """Stop the controller and, when this evaluator started Ray, shut it down."""
        if self.closed:
            return
        self.closed = True
        if self.controller is not None:
            try:
                ray.kill(self.controller)
            except Exception:
                pass
            self.controller = None
        if self.owns_ray and ray.is_initialized():
            ray.shutdown()
