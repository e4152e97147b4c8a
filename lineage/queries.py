"""The read side of the lineage database: one place for the questions every reader asks.

The CLI, the API, the analyzer, the exporter and the search library all answer
"which search is this?", "how many epochs did it save?", "which networks are its
Pareto front, and which is best?" here, so two outputs cannot disagree on them.

Definitions (written once, used everywhere):

Epoch budget
    The epochs one network of a search may train: the search's configured ``epochs``,
    else the largest ``epochs`` of its networks' training parameters, else the engine's
    ``e_pred``, else the longest recorded run (:func:`epoch_budget`). A search saved
    ``1 - epochs trained / (networks x budget)`` of it (:func:`epochs_saved`); every
    network counts, failed ones included.

Fitness seen, the Pareto front and "best"
    A network is ranked by the fitness the NAS saw (:func:`rank_value`): the engine's
    prediction for a network it stopped, the final validation accuracy for one that
    trained to the end; where no fitness was recorded (some imports) the final accuracy
    stands in. The front is non-dominated in (fitness seen, MFLOPs) among the networks
    that finished with a final accuracy and MFLOPs (:func:`front_rows`); failed
    networks are on no front. "Best" is the front's most accurate member
    (:func:`best_row`). Rows carry ``terminated_early`` so every output can show a
    stopped network as such: its last measured accuracy is an early-epoch value.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable, Mapping

from sqlalchemy import select

from a4nn.errors import A4nnError
from a4nn.lineage.database import Database
from a4nn.lineage.models import Architecture, EngineConfig, Epoch, Search
from a4nn.lineage.pareto import pareto_front
from a4nn.lineage.status import ArchitectureStatus


#: the largest id an SQL INTEGER holds (PostgreSQL refuses larger binds)
INT32_MAX = 2**31 - 1


class SearchNotFoundError(A4nnError):
    """No search with the given id or name."""


def _display(database: Database) -> str:
    try:  # the security layer's redaction helper, where it exists
        from a4nn.lineage.urls import display_url
    except ImportError:
        return database.url.render_as_string(hide_password=True)
    return display_url(database.url)


# ------------------------------------------------------------------ searches
def find_search(database: Database, search: int | str) -> int | None:
    """The id of a search given by id (an int or digits) or by name; None when there is none."""
    text = str(search)
    with database.engine.connect() as connection:
        if _id_or_none(text) is not None:
            found = connection.execute(select(Search.id).where(Search.id == int(text))).scalar()
            if found is not None:
                return int(found)
        found = connection.execute(select(Search.id).where(Search.name == text)).scalar()
    return None if found is None else int(found)


def resolve_search(database: Database, search: int | str) -> int:
    """The id of a search given by id or by name (the CLI and the API accept both)."""
    found = find_search(database, search)
    if found is None:
        raise SearchNotFoundError(f"no search with id or name {str(search)!r} in {_display(database)}")
    return found


def _id_or_none(text: str) -> int | None:
    """``text`` as a search id when it is one that SQL INTEGER can hold (else it can only be a name)."""
    return int(text) if text.isdigit() and int(text) <= INT32_MAX else None


def search_id_by_name(database: Database, name: str) -> int | None:
    """The id of the search called ``name`` (names are unique), else None."""
    with database.engine.connect() as connection:
        found = connection.execute(select(Search.id).where(Search.name == name)).scalar()
    return None if found is None else int(found)


# -------------------------------------------------------------- epoch budget
def _positive(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        return None
    return float(value)


def epoch_budget(config: Mapping[str, Any] | None, train_epochs: Iterable[Any] = (), e_pred: Any = None,
                 trained: Iterable[Any] = ()) -> float | None:
    """Epochs one network of the search may train (the rule in the module docstring)."""
    configured = _positive((config or {}).get("epochs"))
    if configured is not None:
        return configured
    numbers = [n for n in (_number(v) for v in train_epochs) if n is not None]
    if numbers:
        return max(numbers)
    if e_pred:
        return float(e_pred)
    numbers = [n for n in (_number(v) for v in trained) if n is not None]
    return max(numbers) if numbers else None


def search_epoch_budget(database: Database, search_id: int) -> float | None:
    """:func:`epoch_budget` of one search, reading its networks' columns only when the configuration has none."""
    with database.engine.connect() as connection:
        row = connection.execute(select(Search.config, Search.engine_config_id).where(Search.id == search_id)).first()
        if row is None:
            return None
        configured = _positive((row.config or {}).get("epochs"))
        if configured is not None:
            return configured
        networks = connection.execute(select(Architecture.train_params, Architecture.epochs_trained)
                                      .where(Architecture.search_id == search_id)).all()
        e_pred = None
        if row.engine_config_id is not None:
            e_pred = connection.execute(select(EngineConfig.e_pred)
                                        .where(EngineConfig.id == row.engine_config_id)).scalar()
    return epoch_budget(row.config, [(n.train_params or {}).get("epochs") if isinstance(n.train_params, dict) else None
                                     for n in networks], e_pred, [n.epochs_trained for n in networks])


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def epochs_saved(epochs_trained: float, networks: int, budget: float | None) -> float | None:
    """Share of the budget not trained: ``1 - trained / (networks x budget)``; None without a budget."""
    possible = networks * budget if budget else 0
    return 1.0 - epochs_trained / possible if possible else None


# ------------------------------------------------------- front and "best"
def _finite(value: Any) -> bool:
    return value is not None and not isinstance(value, bool) and isinstance(value, (int, float)) \
        and math.isfinite(value)


def rank_value(fitness: Any, final_acc: Any) -> float:
    """What a network is ranked by: the fitness the NAS saw, else its final accuracy (NaN if neither)."""
    if _finite(fitness):
        return float(fitness)
    return float(final_acc) if _finite(final_acc) else math.nan


def fitness_seen(fitness: Any, final_acc: Any, status: Any = None) -> float:
    """:func:`rank_value` for a network that may be on a front, else NaN (failed, or no final accuracy)."""
    if status == ArchitectureStatus.FAILED or not _finite(_float(final_acc)):
        return math.nan
    return rank_value(_float(fitness), _float(final_acc))


def _get(row: Any, key: str, default: Any = None) -> Any:
    if isinstance(row, Mapping):
        return row.get(key, default)
    return getattr(row, key, default)


def front_rows(rows: Iterable[Any]) -> list[dict[str, Any]]:
    """The Pareto front (fitness seen vs MFLOPs) of a search's networks, cheapest first.

    ``rows`` are mappings, objects (ORM rows, ``itertuples``) or a DataFrame with ``id``,
    ``generation``, ``final_acc``, ``fitness``, ``flops``, ``epochs_trained``,
    ``terminated_early`` and optionally ``status``/``index``. Each returned row has
    ``id, generation, index, acc, fitness, rank, flops, epochs, early, terminated_early``:
    ``rank`` is what the front is computed on (:func:`rank_value`), ``acc`` the last
    measured accuracy, ``early``/``terminated_early`` whether the engine stopped it.
    """
    if hasattr(rows, "itertuples"):  # a pandas DataFrame (architectures_frame)
        rows = rows.itertuples()
    points = []
    for r in rows:
        acc, flops = _float(_get(r, "final_acc")), _float(_get(r, "flops"))
        rank = fitness_seen(_get(r, "fitness"), acc, _get(r, "status"))
        if not _finite(rank) or not _finite(flops):
            continue
        fitness = _float(_get(r, "fitness"))
        early = bool(_get(r, "terminated_early") or False)
        index, generation, epochs = (_float(_get(r, key)) for key in ("index", "generation", "epochs_trained"))
        points.append({"id": int(_get(r, "id")), "generation": int(generation) if _finite(generation) else 0,
                       "index": int(index) if _finite(index) else None, "acc": acc,
                       "fitness": fitness if _finite(fitness) else math.nan, "rank": rank, "flops": flops,
                       "epochs": epochs if _finite(epochs) else 0.0, "early": early, "terminated_early": early})
    return pareto_front(points, accuracy="rank")


def _float(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def best_row(front: list[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The best network: the front's highest fitness seen (the cheaper one on a tie)."""
    if not front:
        return None
    return max(front, key=lambda r: (r["rank"], -r["flops"]))


def front_ids(rows: Iterable[Any]) -> list[int]:
    """Ids of :func:`front_rows`, cheapest first (what tests compare between outputs)."""
    return [row["id"] for row in front_rows(rows)]


#: what a search's Pareto front may rank by: the fitness seen (the definition above), or one raw column
FRONT_METRICS = ("fitness", "acc", "pred")


def pareto_points(database: Database, search_id: int, metric: str = "fitness") -> list[dict[str, Any]]:
    """A search's front as ``id, generation, index, accuracy, flops, terminated_early`` rows, cheapest first.

    ``metric="fitness"`` is :func:`front_rows` (``accuracy`` is the fitness seen); ``acc``
    and ``pred`` rank by the last measured accuracy or the engine's prediction alone,
    for a reader who asks for exactly that.
    """
    columns = {"acc": Architecture.final_acc, "pred": Architecture.predicted_acc}
    if metric not in FRONT_METRICS:
        raise A4nnError(f"unknown front metric {metric!r}; use one of {', '.join(FRONT_METRICS)}")
    with database.engine.connect() as connection:
        rows = connection.execute(
            select(Architecture.id, Architecture.generation, Architecture.index, Architecture.final_acc,
                   Architecture.fitness, Architecture.predicted_acc, Architecture.flops, Architecture.epochs_trained,
                   Architecture.terminated_early, Architecture.status)
            .where(Architecture.search_id == search_id).order_by(Architecture.id)).mappings().all()
    if metric == "fitness":
        return [{"id": r["id"], "generation": r["generation"], "index": r["index"], "accuracy": r["rank"],
                 "flops": r["flops"], "terminated_early": r["terminated_early"]} for r in front_rows(rows)]
    name = columns[metric].key
    points = [{"id": r["id"], "generation": r["generation"], "index": r["index"], "accuracy": r[name],
               "flops": r["flops"], "terminated_early": bool(r["terminated_early"])}
              for r in rows if r[name] is not None and r["flops"] is not None]
    return pareto_front(points, accuracy="accuracy", cost="flops")


# ------------------------------------------------------------ summaries
@dataclass
class SearchSummary:
    """A search's record at a glance: networks, epochs trained against the budget, its front."""

    search_id: int
    name: str
    status: str
    networks: int
    failed: int
    stopped_early: int
    epochs_trained: float
    budget_per_network: float | None
    epochs_budget: float | None
    epochs_saved: float | None
    front: list[dict[str, Any]] = field(default_factory=list)

    @property
    def best(self) -> Mapping[str, Any] | None:
        return best_row(self.front)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def search_summary(database: Database, search: int | str) -> SearchSummary:
    """The summary of one search (by id or name)."""
    from a4nn.lineage.frames import architectures_frame

    search_id = resolve_search(database, search)
    with database.session() as session:
        row = session.get(Search, search_id)
        name, status, config = row.name, row.status, dict(row.config or {})
        e_pred = None
        if row.engine_config_id is not None:
            e_pred = session.scalar(select(EngineConfig.e_pred).where(EngineConfig.id == row.engine_config_id))
    frame = architectures_frame(database, search_id)
    networks = len(frame)
    trained = float(frame["epochs_trained"].fillna(0).sum()) if networks else 0.0
    train_epochs = [(p or {}).get("epochs") if isinstance(p, dict) else None
                    for p in frame["train_params"]] if networks else []
    budget = epoch_budget(config, train_epochs, e_pred, frame["epochs_trained"] if networks else ())
    failed = int((frame["status"] == ArchitectureStatus.FAILED).sum()) if networks else 0
    early = int(frame["terminated_early"].fillna(False).astype(bool).sum()) if networks else 0
    return SearchSummary(search_id, name, status, networks, failed, early, trained, budget,
                         budget * networks if budget is not None and networks else None,
                         epochs_saved(trained, networks, budget),
                         front_rows(frame) if networks else [])


# ------------------------------------------------------ resume population
@dataclass
class Population:
    """What a search's engines knew, read back for a resume, in training order.

    ``curves`` / ``curve_costs``: validation curves and MFLOPs of the networks that trained
    the full budget; ``stopped_fitness`` / ``stopped_costs``: fitness the NAS saw and MFLOPs
    of the networks the engine stopped early (the population the contender rule ranks in).
    """

    curves: list[list[float]]
    curve_costs: list[float | None]
    stopped_fitness: list[float]
    stopped_costs: list[float | None]


def resume_population(database: Database, search_id: int | None, epochs: int,
                      architecture_id: int | None = None) -> Population:
    """The search's complete curves and stopped networks' fitness, each with the network's MFLOPs.

    ``architecture_id`` narrows it to one network (``search_id`` may then be None): the engine
    factory uses that to learn one finished network that a worker recorded itself.
    """

    def cost(value: Any) -> float | None:
        return None if value is None else float(value)

    with database.session() as session:
        which = (Architecture.id == architecture_id) if architecture_id is not None else (
            Architecture.search_id == search_id)
        complete = session.execute(select(Architecture.id, Architecture.flops).where(
            which, Architecture.status == ArchitectureStatus.COMPLETED,
            Architecture.epochs_trained >= epochs).order_by(Architecture.id)).all()
        curves = []
        for row in complete:
            values = session.scalars(select(Epoch.val_acc).where(Epoch.architecture_id == row.id)
                                     .order_by(Epoch.epoch)).all()
            curves.append([float("nan") if v is None else float(v) for v in values])
        stopped = session.execute(select(Architecture.fitness, Architecture.flops).where(
            which, Architecture.terminated_early.is_(True),
            Architecture.fitness.is_not(None)).order_by(Architecture.id)).all()
    return Population(curves, [cost(row.flops) for row in complete],
                      [float(row.fitness) for row in stopped], [cost(row.flops) for row in stopped])


# ------------------------------------------------------------- one model
def model_detail(database: Database, model_id: int) -> dict[str, Any] | None:
    """One network's record: every ``architectures`` column, its search, data set, genome, engine, evaluations.

    None when there is no such model. Values are as stored (no public filtering: the API
    applies :mod:`a4nn.lineage.public` before answering).
    """
    from a4nn.lineage.models import Dataset, Evaluation, Genome

    with database.session() as session:
        row = session.execute(
            select(Architecture, Search.name.label("search_name"), Search.nas, Dataset.name.label("dataset_name"),
                   Dataset.beam, Dataset.attributes.label("dataset_attributes"), Genome.bits.label("genome_bits"),
                   Genome.encoding.label("genome_encoding"), EngineConfig)
            .join(Search, Search.id == Architecture.search_id)
            .outerjoin(Dataset, Dataset.id == Search.dataset_id)
            .outerjoin(Genome, Genome.id == Architecture.genome_id)
            .outerjoin(EngineConfig, EngineConfig.id == Search.engine_config_id)
            .where(Architecture.id == model_id)
        ).first()
        if row is None:
            return None
        arch: Architecture = row.Architecture
        engine: EngineConfig | None = row.EngineConfig
        evaluations = session.scalars(select(Evaluation).where(Evaluation.architecture_id == model_id)
                                      .order_by(Evaluation.id)).all()
        return {
            **{column.key: getattr(arch, column.key) for column in Architecture.__table__.columns},
            "search": row.search_name, "nas": row.nas, "dataset": row.dataset_name, "beam": row.beam,
            "genome": row.genome_bits, "genome_encoding": row.genome_encoding,
            "function": engine.function if engine else None,
            "arch": arch.arch or {}, "train_params": arch.train_params or {},
            "dataset_attributes": row.dataset_attributes,
            "fitness_seen": fitness_seen(arch.fitness, arch.final_acc, arch.status),
            "engine_config": None if engine is None else {
                "id": engine.id, "function": engine.function, "c_min": engine.c_min, "e_pred": engine.e_pred,
                "n": engine.n, "r": engine.r, "bounds": engine.bounds, "extra": engine.extra},
            "evaluations": [{"id": e.id, "epoch": e.epoch, "dataset": e.dataset or {}, "metrics": e.metrics or {},
                             "created": e.created_at.isoformat() if e.created_at else None} for e in evaluations],
        }


def genome_lineage(database: Database, model_id: int, direction: str = "up", hops: int = 1) -> dict[str, Any] | None:
    """A model's genome ancestry (``up``) or descendants (``down``), ``hops`` edges deep; None without the model.

    Breadth-first over ``genome_parents``, one query per hop; a cycle stops at genomes
    already seen. Each genome lists the models trained from it.
    """
    from a4nn.lineage.models import Genome, GenomeParent

    if direction not in ("up", "down"):
        raise A4nnError(f"direction must be 'up' or 'down', got {direction!r}")
    with database.engine.connect() as connection:
        start = connection.execute(select(Architecture.genome_id).where(Architecture.id == model_id)).first()
        if start is None:
            return None
        genome_id = start[0]
        if genome_id is None:
            return {"model": model_id, "genome_id": None, "direction": direction, "hops": hops, "edges": [],
                    "genomes": []}
        mine, other = ((GenomeParent.child_id, GenomeParent.parent_id) if direction == "up"
                       else (GenomeParent.parent_id, GenomeParent.child_id))
        edges: list[dict[str, Any]] = []
        frontier, seen = {genome_id}, {genome_id}
        for hop in range(1, hops + 1):
            if not frontier:
                break
            found = connection.execute(select(GenomeParent.child_id, GenomeParent.parent_id, GenomeParent.operator,
                                              GenomeParent.search_id, other).where(mine.in_(frontier))
                                       .order_by(GenomeParent.id)).all()
            frontier = set()
            for child, parent, operator, search_id, reached in found:
                edges.append({"child": child, "parent": parent, "operator": operator, "hop": hop,
                              "search_id": search_id})
                if reached not in seen:
                    seen.add(reached)
                    frontier.add(reached)
        bits = dict(connection.execute(select(Genome.id, Genome.bits).where(Genome.id.in_(seen))).all())
        models_of: dict[int, list[int]] = {}
        for arch_id, owner in connection.execute(select(Architecture.id, Architecture.genome_id)
                                                 .where(Architecture.genome_id.in_(seen)).order_by(Architecture.id)):
            models_of.setdefault(owner, []).append(arch_id)
    genomes = [{"id": g, "bits": bits[g], "models": models_of.get(g, [])} for g in sorted(seen) if g in bits]
    return {"model": model_id, "genome_id": genome_id, "direction": direction, "hops": hops, "edges": edges,
            "genomes": genomes}
