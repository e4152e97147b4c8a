"""Refine: the third step of generate -> select -> refine.

The Pareto-optimal networks of a search at or below a MFLOPs cut-off (a number, or
the front's knee, :mod:`a4nn.commons.models.knee`) train on for many more epochs. Each
refined network is a new architecture in a new search (``nas = "refine"``) with the
parent's genome, linked to the parent by an ``architecture_parents`` edge with operator
``refine`` and the parent epoch it started from. Training continues from the parent's
last checkpoint (sha256 checked) or, when none was kept, from the parent's seeded
initialisation; the optimizer restarts (checkpoints hold weights only) with a fresh
cosine schedule over the refine budget. Every epoch is recorded and checkpointed, and
no early termination happens unless an engine is asked for.

Built on the search package's pieces: :class:`~a4nn.search.supervision.EpochSupervisor`
records each epoch, :func:`~a4nn.search.trainer.train_network` trains, and
:class:`~a4nn.lineage.recorder.Recorder` writes. Resume follows the search's rule: a
refined network whose row is finished is never trained again; an unfinished one has its
partial trail cleared and trains again from its parent, so a kill loses and duplicates
no rows. With ``workers > 1`` networks train as Ray tasks (one CPU or GPU slot each);
the driver records each network's epochs, checkpoints and result in one transaction
when its task returns.
"""
from __future__ import annotations

import math
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import torch
from sqlalchemy import select

from a4nn import __version__
from a4nn.errors import A4nnError
from a4nn.commons.models.knee import METHOD as KNEE_METHOD, knee_point
from a4nn.lineage.database import Database
from a4nn.lineage.models import Architecture, ArchitectureParent, Checkpoint, Dataset, Search
from a4nn.lineage.pareto import pareto_front
from a4nn.lineage.recorder import Recorder

NAS = "refine"
OPERATOR = "refine"
FINISHED = ("completed", "stopped", "failed")


class RefineError(A4nnError):
    """A refine request that cannot run (unknown search, empty selection, mismatched resume)."""


class RefineInterrupted(KeyboardInterrupt):
    """Ctrl-C during a refine run; carries the refine search id so the caller can print the resume command."""

    def __init__(self, search_id: int):
        super().__init__(f"refine search {search_id} interrupted")
        self.search_id = search_id


@dataclass
class Selection:
    """The parents chosen from a search's front and how the cut-off was found."""

    parents: list[dict[str, Any]]
    front: list[dict[str, Any]]
    method: str
    flops_max: float


@dataclass
class RefineRow:
    """One line of Table I: network, MFLOPs, accuracy before and after, inference time."""

    parent_id: int
    refined_id: int
    flops: float | None
    acc_before: float | None
    acc_after: float | None
    epochs: int
    start_epoch: float | None
    inference_ms: float | None
    status: str


@dataclass
class RefineResult:
    search_id: int
    name: str
    selection: dict[str, Any]
    rows: list[RefineRow] = field(default_factory=list)
    wall_seconds: float = 0.0
    trained: int = 0
    reused: int = 0


# ----------------------------------------------------------------- selection
def search_front(database: Database, search_id: int) -> list[dict[str, Any]]:
    """The search's own Pareto front: the fitness the NAS saw (final accuracy when absent) vs MFLOPs."""
    with database.session() as session:
        rows = session.execute(select(Architecture.id, Architecture.flops, Architecture.final_acc,
                                      Architecture.fitness, Architecture.status)
                               .where(Architecture.search_id == search_id,
                                      Architecture.status.in_(("completed", "stopped")))).all()
    points = []
    for row in rows:
        acc = row.fitness if row.fitness is not None and math.isfinite(row.fitness) else row.final_acc
        points.append({"id": int(row.id), "flops": row.flops, "acc": acc, "final_acc": row.final_acc})
    return pareto_front(points)


def select_parents(database: Database, search_id: int, flops_max: float | None = None,
                   knee: bool = False) -> Selection:
    """The front's networks at or below ``flops_max``, or at or below the knee's MFLOPs."""
    if (flops_max is None) == (not knee):
        raise RefineError("give exactly one of --flops-max X or --knee")
    front = search_front(database, search_id)
    if not front:
        raise RefineError(f"search {search_id} has no finished network with accuracy and MFLOPs; nothing to refine")
    if knee:
        position = knee_point(front)
        if position is None:
            cut = front[-1]["flops"]
            method = f"knee ({KNEE_METHOD}): fewer than three distinct front points, whole front kept"
        else:
            cut = front[position]["flops"]
            method = f"knee ({KNEE_METHOD}) at model {front[position]['id']}"
    else:
        cut, method = float(flops_max), f"flops <= {float(flops_max):g}"
    parents = [p for p in front if p["flops"] <= cut + 1e-9]
    if not parents:
        raise RefineError(f"no Pareto network of search {search_id} at or below {cut:g} MFLOPs "
                          f"(the cheapest has {front[0]['flops']:g})")
    return Selection(parents, front, method, float(cut))


# ------------------------------------------------------------------- training
@dataclass(frozen=True)
class RefineTask:
    """One network to refine: everything a worker needs, no database handle."""

    candidate: Any                         # a4nn.search.evaluation.Candidate of the refined architecture
    settings: Any                          # TrainSettings of the refine run
    initial_state: dict[str, torch.Tensor] | None   # the parent's verified weights, or None: seeded init
    parent_settings: Any                   # TrainSettings the parent was trained with (seeded init)
    run_dir: str


def _initial_model(task: RefineTask, data: Any) -> torch.nn.Module:
    from a4nn.search.trainer import build_model

    model = build_model(task.candidate.bits, task.parent_settings, data)  # the parent's seeded initialisation
    if task.initial_state is not None:
        model.load_state_dict(task.initial_state, strict=True)
    return model


def train_task(task: RefineTask, data: Any) -> dict[str, Any]:
    """Train one refined network, saving its checkpoints; returns the metrics and checkpoint paths (worker side)."""
    from a4nn.search.evaluation import error_text
    from a4nn.search.supervision import EpochSupervisor
    from a4nn.search.trainer import train_network

    saver = EpochSupervisor(None, None, task.candidate, Path(task.run_dir), task.settings)
    epochs: list[Any] = []
    saved: list[tuple[int, str]] = []

    def on_epoch(metrics: Any, model: torch.nn.Module) -> bool:
        epochs.append(metrics)
        path = saver.save_checkpoint(model, metrics.epoch, metrics.epoch >= task.settings.epochs)
        if path is not None:
            saved.append((metrics.epoch, str(path)))
        return False

    start = time.perf_counter()
    try:
        train_network(_initial_model(task, data), data, task.settings, on_epoch)
        error = None
    except Exception as exc:  # noqa: BLE001 - a failed network is a result
        error = error_text(exc)
    return {"epochs": epochs, "checkpoints": saved, "seconds": time.perf_counter() - start, "error": error}


def record_outcome(recorder: Recorder, task: RefineTask, outcome: Mapping[str, Any]) -> None:
    """Write a finished task's epochs, checkpoints and result in one transaction (driver side)."""
    from a4nn.search.supervision import EpochSupervisor

    with recorder.transaction():
        recorder.clear_architecture_trail(task.candidate.architecture_id)
        supervisor = EpochSupervisor(recorder, None, task.candidate, Path(task.run_dir), task.settings)
        for metrics in outcome["epochs"]:
            supervisor.on_metrics(metrics)
        for epoch, path in outcome["checkpoints"]:
            supervisor.record_checkpoint(epoch, path)
        supervisor.finish(outcome["seconds"], error=outcome["error"])


def _train_serial(recorder: Recorder, task: RefineTask, data: Any, engine: Any) -> None:
    """In process: every epoch is recorded as it ends (the search's own supervisor path)."""
    from a4nn.search.evaluation import error_text
    from a4nn.search.supervision import EpochSupervisor
    from a4nn.search.trainer import train_network

    recorder.clear_architecture_trail(task.candidate.architecture_id)
    supervisor = EpochSupervisor(recorder, engine, task.candidate, Path(task.run_dir), task.settings)
    start = time.perf_counter()
    try:
        train_network(_initial_model(task, data), data, task.settings, supervisor.on_epoch)
    except Exception as exc:  # noqa: BLE001 - a failed network is a result, the others go on
        supervisor.finish(time.perf_counter() - start, error=error_text(exc))
        return
    supervisor.finish(time.perf_counter() - start)


def _train_ray(recorder: Recorder, tasks: list[RefineTask], data: Any, workers: int, address: str | None,
               on_done: Callable[[RefineTask], None]) -> None:
    import ray

    started = False
    if not ray.is_initialized():
        if address:
            ray.init(address=address, include_dashboard=False, log_to_driver=False)
        else:
            ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False,
                     runtime_env={"env_vars": {"OMP_NUM_THREADS": "1"}})
        started = True
    try:
        gpus = ray.cluster_resources().get("GPU", 0)
        remote = ray.remote(num_cpus=0 if gpus else 1, num_gpus=1 if gpus else 0, max_retries=2)(_ray_train)
        data_ref = ray.put(data)
        pending: dict[Any, RefineTask] = {}
        queue = list(tasks)
        while queue or pending:
            while queue and len(pending) < workers:
                task = queue.pop(0)
                pending[remote.remote(task, data_ref)] = task
            done, _ = ray.wait(list(pending), num_returns=1)
            task = pending.pop(done[0])
            try:
                outcome = ray.get(done[0])
            except Exception as exc:  # noqa: BLE001 - a task that kept dying is recorded as failed
                outcome = {"epochs": [], "checkpoints": [], "seconds": 0.0, "error": f"worker failed: {exc}"[:500]}
            record_outcome(recorder, task, outcome)
            on_done(task)
    except KeyboardInterrupt:
        for reference in pending:
            ray.cancel(reference, force=True)
        raise
    finally:
        if started:
            ray.shutdown()


def _ray_train(task: RefineTask, data: Any) -> dict[str, Any]:
    import dataclasses

    import ray

    torch.set_num_threads(1)
    settings = task.settings
    if settings.device in ("auto", "cuda") and ray.get_gpu_ids() and torch.cuda.is_available():
        settings = dataclasses.replace(settings, device="cuda")
    elif settings.device == "auto" or not torch.cuda.is_available():
        settings = dataclasses.replace(settings, device="cpu")
    return train_task(dataclasses.replace(task, settings=settings), data)


# --------------------------------------------------------------------- driver
def _parent_settings(train_params: Mapping[str, Any]) -> Any:
    from a4nn.search.evaluation import TrainSettings

    known = {k: v for k, v in train_params.items() if k in TrainSettings.__dataclass_fields__}
    return TrainSettings(**known)


def _load_data(options: Mapping[str, Any], progress: bool) -> Any:
    """The parent search's data set, loaded as the search loaded it (its stored options)."""
    from a4nn.search.data import load_dataset

    return load_dataset(options.get("dataset", "xfel-sim"), beam=options.get("beam"),
                        n_images=options.get("n_images", 400), image_size=options.get("image_size", 32),
                        seed=options.get("seed", 0), progress=progress)


def _check_same_data(data: Any, dataset: Dataset | None, search_name: str) -> None:
    if dataset is None:
        return
    recorded, loaded = (dataset.attributes or {}).get("checksum"), data.attributes.get("checksum")
    if recorded and loaded and recorded != loaded:
        raise RefineError(f"the data loaded for search {search_name!r} ({data.name}) is not the data it was trained "
                          f"on (checksum {loaded[:12]}..., recorded {recorded[:12]}...); pass --dataset PATH")


def _start(database: Database, recorder: Recorder, parent_search: Search, selection: Selection,
           options: dict[str, Any], name: str | None, run_root: Path) -> tuple[int, str]:
    name = name or (f"refine-{parent_search.name}-{'knee' if options['knee'] else f'f{selection.flops_max:g}'}"
                    f"-e{options['epochs']}-{time.strftime('%Y%m%dT%H%M%S')}")
    with database.session() as session:
        existing = session.scalar(select(Search.id).where(Search.name == name))
    if existing is not None:
        raise RefineError(f"a search named {name!r} exists (id {existing}); use --resume {existing} or another --name")
    folder = (run_root / name).resolve()
    options.update(run_dir=str(folder), parents=[p["id"] for p in selection.parents],
                   selection={"method": selection.method, "flops_max": selection.flops_max,
                              "front": [{"id": p["id"], "flops": p["flops"], "acc": p["acc"]} for p in selection.front]})
    search_id = recorder.start_search(name, NAS, parent_search.dataset_id, None, options, seed=options["seed"],
                                      code_version=__version__, host=socket.gethostname())
    return search_id, name


def _tasks(database: Database, recorder: Recorder, search_id: int, options: Mapping[str, Any]) -> list[RefineTask]:
    """Architecture rows and refine edges (created once, reused on resume) and what each network needs."""
    from a4nn.commons.models.loader import pick_checkpoint, verified_state
    from a4nn.commons.models.sources import DatabaseSource
    from a4nn.search.encoding import string_to_bits
    from a4nn.search.evaluation import Candidate, TrainSettings

    source = DatabaseSource(database)
    tasks = []
    for index, parent_id in enumerate(options["parents"]):
        record = source.record(parent_id)
        parent_settings = _parent_settings(record.train_params)
        state, start_epoch, sha = None, None, None
        if record.checkpoints:
            checkpoint = pick_checkpoint(record, None)
            state = dict(verified_state(source.checkpoint_bytes(record, checkpoint), record, checkpoint))
            start_epoch, sha = checkpoint.epoch, checkpoint.sha256
        settings = TrainSettings(
            epochs=options["epochs"], batch_size=options.get("batch_size") or parent_settings.batch_size,
            lr=options.get("lr") or parent_settings.lr, momentum=parent_settings.momentum,
            weight_decay=parent_settings.weight_decay, grad_clip=parent_settings.grad_clip,
            cosine=parent_settings.cosine, precise_bn=parent_settings.precise_bn, channels=record.channels,
            n_nodes=record.n_nodes, seed=parent_settings.seed, device=options.get("device") or "cpu",
            checkpoints="epoch")
        with database.session() as session:
            genome_id = session.scalar(select(Architecture.genome_id).where(Architecture.id == parent_id))
        train_params = {**settings.to_dict(), "refine": {"parent": parent_id, "start_epoch": start_epoch,
                                                         "checkpoint_sha256": sha,
                                                         "init": "checkpoint" if state is not None else "seed"}}
        architecture_id = recorder.start_architecture(search_id, index=index, generation=0, genome_id=genome_id,
                                                      arch=record.arch, train_params=train_params, flops=record.flops,
                                                      n_params=record.n_params)
        add_refine_edge(recorder, architecture_id, parent_id, start_epoch, search_id)
        candidate = Candidate(search_id, 0, index, tuple(int(b) for b in string_to_bits(record.bits)), genome_id,
                              architecture_id, record.flops)
        tasks.append(RefineTask(candidate, settings, state, parent_settings, str(options["run_dir"])))
    return tasks


def add_refine_edge(recorder: Recorder, child_id: int, parent_id: int, epoch: float | None,
                    search_id: int | None) -> None:
    """The ``architecture_parents`` edge child -> parent with operator ``refine`` (idempotent)."""
    with recorder._begin() as connection:  # noqa: SLF001 - the Recorder's transaction-aware connection
        recorder._insert_ignore(connection, ArchitectureParent,  # noqa: SLF001
                                {"child_id": child_id, "parent_id": parent_id, "operator": OPERATOR, "epoch": epoch,
                                 "search_id": search_id}, ["child_id", "parent_id", "operator"])


def refine(database: Database, search: int | str | None = None, *, flops_max: float | None = None,
           knee: bool = False, epochs: int = 100, workers: int = 1, resume: int | None = None,
           run_dir: Path | str = "runs", name: str | None = None, device: str = "cpu", lr: float | None = None,
           batch_size: int | None = None, engine: str = "none", ray_address: str | None = None,
           data: Any = None, progress: Callable[[str], None] | None = None) -> RefineResult:
    """Refine a search's Pareto networks (or resume refine search ``resume``); returns Table I's rows.

    ``data`` overrides loading the parent search's data set (tests, benchmarks, a
    user's own file); it must be the data the parents were trained on when they are to
    continue from their checkpoints.
    """
    say = progress or (lambda _line: None)
    recorder = Recorder(database)
    started = time.perf_counter()
    if resume is not None:
        with database.session() as session:
            row = session.get(Search, int(resume))
            if row is None or row.nas != NAS:
                raise RefineError(f"no refine search with id {resume}")
            options, name, refine_id = dict(row.config), row.name, row.id
            parent_search = session.get(Search, options["parent_search_id"])
        options.update({k: v for k, v in (("workers", workers), ("device", device)) if v is not None})
        recorder.set_search_status(refine_id, "running")
        say(f"resuming refine search {refine_id} ({name})")
    else:
        from a4nn.commons.bundle import resolve_search

        if epochs < 1:
            raise RefineError(f"--epochs must be >= 1, got {epochs}")
        parent_id = resolve_search(database, search)
        with database.session() as session:
            parent_search = session.get(Search, parent_id)
        selection = select_parents(database, parent_id, flops_max, knee)
        options = {"parent_search_id": parent_id, "parent_search": parent_search.name, "epochs": int(epochs),
                   "flops_max": flops_max, "knee": bool(knee), "workers": workers, "device": device, "lr": lr,
                   "batch_size": batch_size, "engine": engine, "seed": parent_search.seed or 0,
                   "checkpoints": "epoch"}
        refine_id, name = _start(database, recorder, parent_search, selection, options, name, Path(run_dir))
        say(f"refine search {refine_id} ({name}): {len(selection.parents)} network(s) of search {parent_id} "
            f"({selection.method}), {epochs} epochs each")
    with database.session() as session:
        dataset = session.get(Dataset, parent_search.dataset_id) if parent_search.dataset_id else None
        if data is None:
            data = _load_data(parent_search.config or {}, progress is not None)
        _check_same_data(data, dataset, parent_search.name)
    tasks = _tasks(database, recorder, refine_id, options)
    todo = [t for t in tasks if recorder.architecture_status(t.candidate.architecture_id) not in FINISHED]
    result = RefineResult(refine_id, name, {k: options.get(k) for k in ("selection", "parents", "epochs")},
                          reused=len(tasks) - len(todo))
    try:
        if (options.get("workers") or 1) > 1 or ray_address:
            _train_ray(recorder, todo, data, int(options.get("workers") or 1), ray_address,
                       lambda task: say(f"  refined model {task.candidate.architecture_id}"))
        else:
            factory = _engine_factory(options, data)
            for task in todo:
                _train_serial(recorder, task, data, factory() if factory else None)
                say(f"  refined model {task.candidate.architecture_id}")
        result.trained = len(todo)
    except KeyboardInterrupt:
        recorder.set_search_status(refine_id, "interrupted")
        raise RefineInterrupted(refine_id) from None
    except BaseException:
        recorder.set_search_status(refine_id, "failed")
        raise
    recorder.finish_search(refine_id)
    result.rows = table_rows(database, refine_id, data)
    result.wall_seconds = time.perf_counter() - started
    return result


def _engine_factory(options: Mapping[str, Any], data: Any) -> Callable[[], Any] | None:
    if options.get("engine", "none") == "none":
        return None
    from a4nn.search.engine_factory import EngineFactory, chance_band

    return EngineFactory(options["engine"], options["epochs"], 1.0, chance_band(data), n_val=len(data.val_y))


def table_rows(database: Database, refine_id: int, data: Any | None = None) -> list[RefineRow]:
    """Table I of the refine search: parent accuracy before, refined accuracy after, per-image inference time."""
    from a4nn.commons.models.evaluate import LATENCY_IMAGES
    from a4nn.commons.models.loader import load_network

    with database.session() as session:
        edges = session.execute(
            select(ArchitectureParent.child_id, ArchitectureParent.parent_id, ArchitectureParent.epoch,
                   Architecture.final_acc, Architecture.flops, Architecture.status, Architecture.epochs_trained)
            .join(Architecture, Architecture.id == ArchitectureParent.child_id)
            .where(Architecture.search_id == refine_id, ArchitectureParent.operator == OPERATOR)
            .order_by(Architecture.index)).all()
        before = dict(session.execute(select(Architecture.id, Architecture.final_acc)
                                      .where(Architecture.id.in_([e.parent_id for e in edges]))).all())
        has_checkpoint = {c for (c,) in session.execute(select(Checkpoint.architecture_id).where(
            Checkpoint.architecture_id.in_([e.child_id for e in edges])))}
    rows = []
    for edge in edges:
        latency = None
        if edge.child_id in has_checkpoint and data is not None:
            loaded = load_network(database, edge.child_id)
            images = data.val_x[:LATENCY_IMAGES]
            with torch.no_grad():
                loaded.module(images[:1])  # warm-up
                tick = time.perf_counter()
                for image in images:
                    loaded.module(image.unsqueeze(0))
                latency = 1e3 * (time.perf_counter() - tick) / max(len(images), 1)
        rows.append(RefineRow(edge.parent_id, edge.child_id, edge.flops, before.get(edge.parent_id), edge.final_acc,
                              int(edge.epochs_trained or 0), edge.epoch, latency, edge.status))
    return rows
