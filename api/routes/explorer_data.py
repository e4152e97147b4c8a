"""JSON (and SVG) the web explorer needs beyond the list and detail routes.

A search page plots every network of a search at once, which the paginated ``/models``
cannot give in one request; its per-generation hypervolume and savings, the drawing of a
network's architecture and a whole-filter download are computed here. What a network is
ranked by, the Pareto front and the epoch budget come from :mod:`a4nn.lineage.queries`
(the one definition the CLI, ``/searches/{id}/pareto`` and the report use), so the
explorer shows the numbers they report.
"""
from __future__ import annotations

import gc
import io
import itertools
import json
import math
import threading
import time
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Iterator, Literal

import numpy as np
from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import Response
from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from a4nn.api.dependencies import Id, get_database
from a4nn.api.responses import PARQUET, tabular
from a4nn.api.routes.models import SUMMARY_KEYS, summary
from a4nn.api.schemas import ErrorBody
from a4nn.lineage import queries
from a4nn.lineage.database import Database
from a4nn.lineage.filters import MAX_LIMIT, FilterError, find_models, parse_filter
from a4nn.lineage.models import Architecture, Genome, Search
from a4nn.lineage.status import FINISHED, ArchitectureStatus

router = APIRouter(tags=["explorer"])
ERRORS: dict[int | str, dict[str, Any]] = {400: {"model": ErrorBody}, 404: {"model": ErrorBody}}
#: a scatter of more networks than this is sent as an even sample (plus the whole front): 4,000
#: marks already cover the plot, and the answer stays near 300 KB however large the search
MAX_POINTS = 4000
#: past this many unfinished networks (a search killed mid-generation leaves them "running"),
#: a changed search is read again whole rather than by an ever longer list of ids
MAX_REREAD = 1000
#: whole-filter downloads stop here (a bigger table is a bundle export's job)
MAX_EXPORT_ROWS = 200_000
#: as ``/searches/{id}/pareto``: ``fitness`` is the fitness the NAS saw (queries.rank_value), the others raw columns
Metric = Literal["fitness", "acc", "pred"]
RAW = {"acc": "final_acc", "pred": "predicted_acc"}


def _require_search(connection: Connection, search_id: int) -> None:
    if connection.execute(select(Search.id).where(Search.id == search_id)).first() is None:
        raise HTTPException(404, f"no search with id {search_id}")


COLUMNS = ("id", "generation", "index", "accuracy", "flops", "status", "terminated_early", "epochs_trained",
           "stop_epoch")
#: what ``_view`` reads of each network, in this order (the search_id index finds them)
READ = (Architecture.id, Architecture.generation, Architecture.index, Architecture.final_acc, Architecture.fitness,
        Architecture.predicted_acc, Architecture.flops, Architecture.status, Architecture.terminated_early,
        Architecture.epochs_trained, Architecture.stop_epoch)


@dataclass
class SearchView:
    """What a search page plots, computed once per state of the search and metric.

    ``accuracy`` is what ``metric`` ranks a network by: for ``fitness`` the fitness seen
    (:func:`a4nn.lineage.queries.fitness_seen`, NaN for failed networks and those without a
    final accuracy), else the raw column. The front is :func:`a4nn.lineage.pareto.pareto_front`'s
    (same dominance, ties and duplicates) over the finite ones, which is what
    ``queries.front_rows`` / ``/searches/{id}/pareto`` compute (a test compares the two),
    without building their full rows for 30,000 networks.

    A running search changes between two refreshes of its page, so this is rebuilt often:
    the columns stay as read (tuples, one per column) and the per-network arithmetic is
    numpy's; only the fronts walk Python lists, a generation's newcomers at a time.
    """

    columns: Columns  # READ's columns as read, ordered by id
    accuracy: np.ndarray  # what ``metric`` ranks by, NaN where a network has none
    plottable: np.ndarray  # positions with a finite accuracy and MFLOPs
    front_ids: list[int]
    generations: list[dict[str, Any]]
    reference_flops: float | None
    epochs_per_network: float | None
    bodies: dict[Any, bytes] = field(default_factory=dict)  # JSON answers already written from this view


def _fetch(connection: Connection, search_id: int, since: int | None = None, ids: list[int] | None = None
           ) -> list[tuple[Any, ...]]:
    """READ of the search's networks as plain DB-API tuples, ordered by id: all, those after ``since``, or ``ids``.

    SQLAlchemy's row objects cost more than the query on 30,000 networks, so the statement
    (its bound values, integers, inlined by the dialect's compiler) runs on the DB-API
    cursor of this connection.
    """
    statement = select(*READ).where(Architecture.search_id == int(search_id)).order_by(Architecture.id)
    if since is not None:
        statement = statement.where(Architecture.id > int(since))  # the primary key's range
    if ids is not None:
        statement = statement.where(Architecture.id.in_([int(i) for i in ids]))
    sql = str(statement.compile(dialect=connection.dialect, compile_kwargs={"literal_binds": True}))
    cursor = connection.connection.cursor()
    try:
        cursor.execute(sql)
        return list(cursor.fetchall())
    finally:
        cursor.close()


NAMES = [column.key for column in READ]
STATUS = NAMES.index("status")
#: plain strings, as the driver gives them (comparing those to enum members costs 10x more)
_FINISHED = frozenset(str(status) for status in FINISHED)
_FAILED = str(ArchitectureStatus.FAILED)


_SERIALS = itertools.count()


class Columns:
    """READ's columns of a search's networks (tuples, as read, ordered by id) and their float64 arrays, made once.

    Immutable once made: a changed search gets new columns (:meth:`merged`), so the views
    built from the old ones stay as they were.
    """

    def __init__(self, rows: list[tuple[Any, ...]]) -> None:
        self.values: dict[str, tuple[Any, ...]] = dict(zip(NAMES, zip(*rows))) if rows else {n: () for n in NAMES}
        self._arrays: dict[str, np.ndarray] = {}
        self.serial = next(_SERIALS)  # names this state of the search in the views' cache

    def row(self, position: int) -> tuple[Any, ...]:
        """One network as :func:`_fetch` gives it."""
        return tuple(self.values[name][position] for name in NAMES)

    def __getitem__(self, name: str) -> tuple[Any, ...]:
        return self.values[name]

    def __len__(self) -> int:
        return len(self.values["id"])

    def floats(self, name: str) -> np.ndarray:
        """The column as float64, None (SQL NULL) as NaN."""
        if name not in self._arrays:
            values = self.values[name]
            self._arrays[name] = np.array(values, dtype=float) if values else np.empty(0)
        return self._arrays[name]

    def unfinished(self) -> dict[int, int]:
        """id -> position of the networks still training (or never finished)."""
        ids = self.values["id"]
        return {ids[n]: n for n, status in enumerate(self.values["status"]) if status not in _FINISHED}

    def merged(self, replaced: dict[int, tuple[Any, ...]], appended: list[tuple[Any, ...]]) -> "Columns":
        """These columns with the rows at some positions replaced and rows appended (tuples in READ's order)."""
        out = Columns([])
        for k, name in enumerate(NAMES):
            column = self.values[name]
            if replaced:
                values = list(column)
                for position, row in replaced.items():
                    values[position] = row[k]
                column = tuple(values)
            out.values[name] = column + tuple(row[k] for row in appended)
        for name, array in self._arrays.items():  # the arrays already made, brought up to date
            k = NAMES.index(name)
            merged = np.concatenate([array, np.array([row[k] for row in appended], dtype=float)]) if appended \
                else array.copy()
            for position, row in replaced.items():
                merged[position] = np.nan if row[k] is None else float(row[k])
            out._arrays[name] = merged
        return out


@dataclass
class _Known:
    """A search's networks as last read, where the unfinished ones are, and when they were last checked whole."""

    columns: Columns
    unfinished: dict[int, int]  # id -> position
    checked: float  # time.monotonic() of the last full read or summary check


_KNOWN: "OrderedDict[tuple[int, int], _Known]" = OrderedDict()
_KNOWN_KEPT = 8
#: how often (seconds) the columns read piecemeal are checked against the search's summary
RECHECK_S = 5.0
#: (database, search) -> (when the query began, (networks, last id)): see :func:`_counted`
_COUNTS: dict[tuple[int, int], tuple[float, tuple[Any, ...]]] = {}


def _counted(connection: Connection, database: Database, search_id: int, arrived: float) -> tuple[Any, ...]:
    """The search's number of networks and last id (one index range, a few milliseconds).

    A page asks for its points and its generations at once; the count read for one of them
    serves the other when that read began after the other request arrived (it sees every
    change the request could have seen). Called under ``_VIEWS_LOCK``.
    """
    key = (id(database), int(search_id))
    known = _COUNTS.get(key)
    if known is not None and known[0] >= arrived:
        return known[1]
    began = time.monotonic()
    counted = tuple(connection.execute(select(func.count(Architecture.id), func.max(Architecture.id))
                                       .where(Architecture.search_id == search_id)).one())
    _COUNTS[key] = (began, counted)
    return counted


def _summary(connection: Connection, search_id: int) -> tuple[Any, ...]:
    """Count, last id, count of final accuracies and sums of the columns a page shows: what :func:`_adds_up` checks."""
    return tuple(connection.execute(
        select(func.count(Architecture.id), func.max(Architecture.id), func.sum(Architecture.epochs_trained),
               func.count(Architecture.final_acc), func.sum(Architecture.final_acc),
               func.sum(Architecture.fitness), func.sum(Architecture.predicted_acc))
        .where(Architecture.search_id == search_id)).one())


def _read(connection: Connection, database: Database, search_id: int, arrived: float) -> Columns:
    """READ's columns of the search's networks now, reading only what can have changed since the last read.

    Between two refreshes of a running search's page a few networks are added and a few
    running ones finish; a finished network is never trained again
    (:data:`a4nn.lineage.status.FINISHED`). So after a first full read only the networks
    after the last id read and the unfinished ones are read again; when none of them
    changed, the same :class:`Columns` come back (and the views made from them serve). The
    merged columns must have the search's count and last id, and at least every
    ``RECHECK_S`` seconds they must add up to its summary (:func:`_adds_up`: sums of the
    accuracies and epochs); anything else (a deleted network, a row rewritten by hand)
    falls back to a full read.
    """
    key = (id(database), int(search_id))
    known = _KNOWN.get(key)
    count, last = _counted(connection, database, search_id, arrived)
    columns = None
    if known is not None and len(known.columns) and len(known.unfinished) <= MAX_REREAD:
        old = known.columns
        appended = _fetch(connection, search_id, since=old["id"][-1]) if last is not None and last > old["id"][-1] else []
        again = _fetch(connection, search_id, ids=list(known.unfinished)) if known.unfinished else []
        replaced = {known.unfinished[row[0]]: row for row in again if row != old.row(known.unfinished[row[0]])}
        columns = old.merged(replaced, appended) if appended or replaced else old
        checked = known.checked
        if len(columns) != count or columns["id"][-1] != last:
            columns = None
        elif time.monotonic() - checked >= RECHECK_S:
            checked = time.monotonic()
            if not _adds_up(columns, _summary(connection, search_id)):
                columns = None
        if columns is not None:
            unfinished = {i: n for i, n in known.unfinished.items()
                          if n not in replaced or replaced[n][STATUS] not in _FINISHED}
            unfinished.update((row[0], len(old) + n) for n, row in enumerate(appended) if row[STATUS] not in _FINISHED)
    if columns is None:
        checked = time.monotonic()
        columns = Columns(_fetch(connection, search_id))
        unfinished = columns.unfinished()
    _KNOWN[key] = _Known(columns, unfinished, checked)
    _KNOWN.move_to_end(key)
    while len(_KNOWN) > _KNOWN_KEPT:
        _KNOWN.popitem(last=False)
    return columns


def _adds_up(columns: Columns, state: tuple[Any, ...]) -> bool:
    """Whether ``columns`` give search_view's summary ``state`` (sums to within rounding: SQL adds in its own order)."""
    count, last, epochs, accuracies, accuracy, fitness, predicted = state
    ids = columns["id"]
    if len(ids) != count or not ids or ids[-1] != last:
        return False
    if count - columns["final_acc"].count(None) != accuracies:
        return False
    for name, total in (("epochs_trained", epochs), ("final_acc", accuracy), ("fitness", fitness),
                        ("predicted_acc", predicted)):
        values = columns.floats(name)
        values = values[~np.isnan(values)]  # SQL's sum skips NULLs
        if total is None:
            if len(values):
                return False
        elif not math.isclose(float(values.sum()), float(total), rel_tol=1e-9, abs_tol=1e-6):
            return False
    return True


def _ranked(columns: Columns, metric: Metric) -> np.ndarray:
    """``metric`` of every network, NaN where it has none (vectorised ``queries.fitness_seen``)."""
    if metric != "fitness":
        values = columns.floats(RAW[metric])
        return np.where(np.isfinite(values), values, np.nan)
    final_acc, fitness = columns.floats("final_acc"), columns.floats("fitness")
    failed = np.array(columns["status"], dtype=object) == _FAILED
    seen = np.where(np.isfinite(fitness), fitness, final_acc)  # queries.rank_value
    seen[failed | ~np.isfinite(final_acc)] = np.nan
    return seen


def extend_front(front: list[tuple[float, float, int]], newcomers: list[tuple[float, float, int]]
                 ) -> list[tuple[float, float, int]]:
    """The Pareto front of ``front`` (a front) plus ``newcomers``, as (MFLOPs, −accuracy, id), cheapest first.

    :func:`a4nn.lineage.pareto.pareto_front` on tuples: the highest accuracy at each cost
    that beats every cheaper point, exact duplicates of a front point all kept. A dominated
    network stays dominated, so a search's front so far only needs the next generation's
    networks, never the earlier ones again.
    """
    if not newcomers:
        return front
    candidates = front + newcomers
    candidates.sort()
    out: list[tuple[float, float, int]] = []
    best = math.inf  # the lowest −accuracy so far
    for point in candidates:
        if point[1] < best:
            out.append(point)
            best = point[1]
        elif out and point[0] == out[-1][0] and point[1] == out[-1][1]:
            out.append(point)
    return out


def _not_dominated(front: list[tuple[float, float, int]], cost: np.ndarray, accuracy: np.ndarray) -> np.ndarray:
    """Which of these networks no member of ``front`` dominates (exact duplicates of a member included).

    A generation's networks are mostly dominated by the front so far; rejecting those with
    numpy leaves :func:`extend_front` a handful. Along a front accuracy rises with cost, so
    the best accuracy at most a network's cost is that of the last member no dearer than it.
    """
    if not front:
        return np.ones(len(cost), dtype=bool)
    costs = np.array([member[0] for member in front])
    accuracies = -np.array([member[1] for member in front])
    last = np.searchsorted(costs, cost, side="right") - 1
    at = np.maximum(last, 0)
    cheaper = last >= 0
    return ~cheaper | (accuracy > accuracies[at]) | ((accuracy == accuracies[at]) & (cost == costs[at]))


def _area(front: list[tuple[float, float, int]], reference_flops: float) -> float:
    """Hypervolume of a front of (MFLOPs, −accuracy, …) in increasing MFLOPs, from (100 − 0 %, ``reference_flops``).

    In two objectives the region a front dominates is a staircase: between one member's
    MFLOPs and the next one's, the best error is that member's (a front's accuracy rises
    with its cost), so the area is a sum of rectangles (``test_hypervolume_is_pymoos``).
    """
    total = 0.0
    last = len(front) - 1
    for k, (cost, negative, *_rest) in enumerate(front):
        if negative >= 0 or cost >= reference_flops:  # no accuracy above 0 %, or beyond the reference
            continue
        right = front[k + 1][0] if k < last else reference_flops
        total += -negative * (min(right, reference_flops) - cost)
    return total


def _view(database: Database, columns: Columns, search_id: int, metric: Metric) -> SearchView:
    accuracy = _ranked(columns, metric)
    flops = columns.floats("flops")
    plottable = np.flatnonzero(np.isfinite(accuracy) & np.isfinite(flops))
    reference = float(1.1 * flops[plottable].max()) if len(plottable) else None
    per_network = queries.search_epoch_budget(database, search_id)
    generation = columns.floats("generation")  # NOT NULL integers
    numbers, inverse = np.unique(generation, return_inverse=True)
    networks = np.bincount(inverse, minlength=len(numbers))
    early = np.bincount(inverse, weights=columns.floats("terminated_early") > 0, minlength=len(numbers))
    epochs = columns.floats("epochs_trained")
    trained = np.bincount(inverse, weights=np.where(np.isnan(epochs), 0.0, epochs), minlength=len(numbers))
    # each generation's plottable networks, in generation order
    order = plottable[np.argsort(generation[plottable], kind="stable")]
    ids = columns["id"]
    cost, merit = flops[order], accuracy[order]
    starts = np.searchsorted(generation[order], numbers, side="left").tolist() + [len(order)]
    generations: list[dict[str, Any]] = []
    front: list[tuple[float, float, int]] = []
    for k, number in enumerate(numbers.tolist()):
        a, b = starts[k], starts[k + 1]
        if b > a:
            keep = _not_dominated(front, cost[a:b], merit[a:b])
            front = extend_front(front, list(zip(cost[a:b][keep].tolist(), (-merit[a:b][keep]).tolist(),
                                                 [ids[i] for i in order[a:b][keep].tolist()])))
        count = int(networks[k])
        generations.append({
            "generation": int(number), "networks": count, "early": int(early[k]), "epochs_trained": float(trained[k]),
            "epochs_budget": per_network * count if per_network else None,
            "epochs_saved": queries.epochs_saved(float(trained[k]), count, per_network),
            "front_size": len(front),
            "hypervolume": _area(front, reference) if reference else None,
        })
    return SearchView(columns, accuracy, plottable, sorted(p[2] for p in front), generations, reference, per_network)


class _CollectorPause:
    """Pauses Python's cyclic garbage collector while any thread is inside (see :func:`collector_paused`)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._inside = 0
        self._was_enabled = False

    @contextmanager
    def __call__(self) -> Iterator[None]:
        with self._lock:
            if self._inside == 0:
                self._was_enabled = gc.isenabled()
                gc.disable()
            self._inside += 1
        try:
            yield
        finally:
            with self._lock:
                self._inside -= 1
                if self._inside == 0 and self._was_enabled:
                    gc.enable()


#: Reading a search allocates some 400,000 objects (tuples of numbers and strings, none in a
#: reference cycle), and every 700 allocations start a collection, some of which walk the whole
#: heap of the server (FastAPI, SQLAlchemy, pandas...): 150-250 ms added to one read in four,
#: measured on the benchmark's 33,000-network search. Nothing they allocate needs the collector,
#: so it waits until they are done (reference counting still frees everything as usual).
collector_paused = _CollectorPause()

_VIEWS: "OrderedDict[tuple[Any, ...], SearchView]" = OrderedDict()
_VIEWS_LOCK = threading.Lock()
_VIEWS_KEPT = 16


def search_view(database: Database, search_id: int, metric: Metric) -> SearchView:
    """:func:`_view`, cached until the search's networks change (a page's two requests share one)."""
    arrived = time.monotonic()
    with database.engine.connect() as connection:
        _require_search(connection, search_id)
        with _VIEWS_LOCK:  # one computation at a time: a page's second request waits and reuses the first's
            with collector_paused():
                columns = _read(connection, database, search_id, arrived)
                key = (id(database), search_id, metric, columns.serial)
                if key in _VIEWS:
                    _VIEWS.move_to_end(key)
                    return _VIEWS[key]
                view = _view(database, columns, search_id, metric)
            _VIEWS[key] = view
            while len(_VIEWS) > _VIEWS_KEPT:
                _VIEWS.popitem(last=False)
    return view


def hypervolume(front: list[dict[str, Any]], reference_flops: float) -> float:
    """pymoo's hypervolume of ``front`` in (100 − accuracy, MFLOPs) from the point (100, ``reference_flops``).

    The same indicator (and the same kind of reference point) as ``benchmarks/search_ab_seeds.py``;
    computed in closed form (:func:`_area`) because a search page needs it for hundreds of
    generations, which pymoo's general algorithm takes a millisecond each for.
    """
    points = [(float(p["flops"]), -float(p["accuracy"]), 0) for p in front]
    return _area(extend_front([], points), reference_flops)


def _json(payload: Any) -> bytes:
    """Compact JSON, as FastAPI's response would be, without its per-value encoder (thousands of rows)."""
    return json.dumps(payload, separators=(",", ":"), allow_nan=False, ensure_ascii=False).encode()


def _json_response(body: bytes) -> Response:
    return Response(body, media_type="application/json")


@router.get("/searches/{search_id}/generations", responses=ERRORS,
            summary="Per generation: networks, epochs trained vs budget, front size and hypervolume so far",
            description="Hypervolume of the front of all networks up to that generation, in (100 − accuracy %, "
                        "MFLOPs), reference point (100, 1.1 × the search's largest MFLOPs); `metric` ranks as "
                        "`/searches/{id}/pareto` does (default: the fitness the NAS saw). Epochs saved use the "
                        "search's epoch budget per network, as `/searches/{id}`.")
def search_generations(search_id: Id, metric: Metric = "fitness", database: Database = Depends(get_database)) -> Any:
    view = search_view(database, search_id, metric)
    if "generations" not in view.bodies:
        view.bodies["generations"] = _json({
            "search_id": search_id, "metric": metric, "reference_point": [100.0, view.reference_flops],
            "epochs_per_network": view.epochs_per_network, "generations": view.generations})
    return _json_response(view.bodies["generations"])


@router.get("/searches/{search_id}/points", responses=ERRORS,
            summary="Every network of a search as a scatter point (accuracy, MFLOPs), front marked",
            description=f"More than {MAX_POINTS} networks are thinned to an even sample; front members are always "
                        "included. `total` counts all networks; `metric` as `/searches/{id}/pareto`. `rows` are "
                        "arrays in the order of `columns`.")
def search_points(search_id: Id, metric: Metric = "fitness", database: Database = Depends(get_database)) -> Any:
    view = search_view(database, search_id, metric)
    key = ("points", MAX_POINTS)
    if key not in view.bodies:
        with collector_paused():
            view.bodies[key] = _json(_points(view, search_id, metric, MAX_POINTS))
    return _json_response(view.bodies[key])


def _points(view: SearchView, search_id: int, metric: Metric, limit: int) -> dict[str, Any]:
    c = view.columns
    chosen = view.plottable
    if len(chosen) > limit:
        keep = np.isin(np.array(c["id"], dtype=np.int64)[chosen], view.front_ids)
        keep[np.linspace(0, len(chosen) - 1, max(limit - len(view.front_ids), 0)).astype(int)] = True
        chosen = chosen[keep]
    picked = chosen.tolist()

    def take(name: str) -> list[Any]:
        column = c[name]
        return [column[i] for i in picked]

    def numbers(name: str) -> list[Any]:  # JSON has no NaN or infinity: those (and NULL) as null
        values, finite = take(name), np.isfinite(c.floats(name)[chosen]).tolist()
        return values if all(finite) else [v if ok else None for v, ok in zip(values, finite)]

    early = np.array(take("terminated_early"), dtype=bool).tolist()
    rows = list(zip(take("id"), take("generation"), take("index"), view.accuracy[chosen].tolist(), take("flops"),
                    take("status"), early, numbers("epochs_trained"), numbers("stop_epoch")))
    return {"search_id": search_id, "metric": metric, "total": len(c["id"]), "plottable": len(view.plottable),
            "shown": len(rows), "front": view.front_ids, "columns": list(COLUMNS), "rows": rows}


def _nodes_for(bits: str, config: dict[str, Any]) -> int:
    """Nodes per phase: the search's setting, else what makes three whole phases of the genome's length."""
    from a4nn.search.encoding import DEFAULT_NODES, bits_per_phase

    configured = config.get("n_nodes") or config.get("nodes")
    if isinstance(configured, int) and not isinstance(configured, bool) and 1 <= configured <= 32:
        return configured
    for n_nodes in range(2, 33):
        if len(bits) == 3 * bits_per_phase(n_nodes):
            return n_nodes
    return DEFAULT_NODES


@lru_cache(maxsize=512)
def _architecture_svg(bits: str, n_nodes: int) -> bytes:
    """The analyzer's drawing of a genome (depends only on the genome, hence cached)."""
    from a4nn.commons.analyzer.architecture import architecture_figure

    figure = architecture_figure(bits, n_nodes)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="svg")
    return buffer.getvalue()


def _genome_of(database: Database, model_id: int) -> tuple[str, int]:
    """A model's genome bits and nodes per phase, or the HTTP error saying why there is nothing to draw."""
    with database.engine.connect() as connection:
        row = connection.execute(select(Genome.bits, Genome.encoding, Search.config)
                                 .select_from(Architecture).join(Search, Search.id == Architecture.search_id)
                                 .outerjoin(Genome, Genome.id == Architecture.genome_id)
                                 .where(Architecture.id == model_id)).first()
    if row is None:
        raise HTTPException(404, f"no model with id {model_id}")
    if not row.bits:
        raise HTTPException(404, f"model {model_id} has no genome to draw")
    if not (row.encoding or "").startswith("nsga-net-macro"):
        raise HTTPException(404, f"model {model_id}'s genome ({row.encoding}) is not an NSGA-Net macro genome")
    return row.bits, _nodes_for(row.bits, row.config or {})


@router.get("/models/{model_id}/architecture", responses=ERRORS,
            summary="A model's decoded network as the analyzer lays it out: nodes with positions, edges, skips",
            description="The graph and layout of `a4nn.commons.analyzer.architecture` (isolated nodes dropped, "
                        "empty phases removed, pooling between phases); the explorer draws it in the browser. "
                        "`/models/{id}/architecture.svg` is the analyzer's own figure.")
def model_architecture_graph(model_id: Id, database: Database = Depends(get_database)) -> Any:
    from a4nn.commons.analyzer.architecture import ROLE_COLOURS, architecture_graph, architecture_positions

    bits, n_nodes = _genome_of(database, model_id)
    graph = architecture_graph(bits, n_nodes)
    positions = architecture_positions(graph, n_nodes)
    name = {node: "-".join(str(part) for part in node) for node in graph}
    return {"model": model_id, "genome": bits, "n_nodes": n_nodes, "colours": ROLE_COLOURS,
            "nodes": [{"id": name[node], "phase": node[1] if node[0] == "pool" else node[0],
                       "role": data["role"], "label": data["label"], "x": positions[node][0], "y": positions[node][1]}
                      for node, data in graph.nodes(data=True)],
            "edges": [{"source": name[a], "target": name[b], "skip": bool(data.get("skip", False))}
                      for a, b, data in graph.edges(data=True)]}


@router.get("/models/{model_id}/architecture.svg", response_class=Response,
            responses={**ERRORS, 200: {"content": {"image/svg+xml": {}}, "description": "the drawing"}},
            summary="The analyzer's drawing of a model's decoded genome (phases, nodes, skip connections)")
def model_architecture(model_id: Id, database: Database = Depends(get_database)) -> Response:
    svg = _architecture_svg(*_genome_of(database, model_id))
    return Response(svg, media_type="image/svg+xml", headers={"Cache-Control": "max-age=3600"})


@router.get("/export/models", response_class=Response,
            responses={400: {"model": ErrorBody},
                       200: {"content": {"text/csv": {}, PARQUET: {}}, "description": "every matching model"}},
            summary="Every model a /models filter selects, as one CSV or Parquet file",
            description=f"Same grammar as `/models` (`sort` honoured, `limit` and `cursor` ignored); "
                        f"`format=csv` (default) or `parquet`; at most {MAX_EXPORT_ROWS} rows.")
def export_models(request: Request, database: Database = Depends(get_database)) -> Response:
    kept = [part for part in request.url.query.split("&")
            if part and not part.startswith(("limit=", "cursor=", "format="))]
    query = parse_filter(request.url.query)  # validates the whole string, format included
    if query.output_format == "json":
        raise FilterError("/export/models writes format=csv (the default) or format=parquet; "
                          "JSON comes page by page from /models")
    output = query.output_format or "csv"
    base = "&".join([*kept, f"limit={MAX_LIMIT}"])
    items: list[dict[str, Any]] = []
    with database.engine.connect() as connection:
        page = find_models(connection, parse_filter(base))
        while True:
            items.extend(summary(row) for row in page.items)
            if len(items) > MAX_EXPORT_ROWS:
                raise FilterError(f"the filter selects more than {MAX_EXPORT_ROWS} models; narrow it "
                                  "or export a bundle (`a4nn-commons export --filter ...`)")
            if not page.next_cursor:
                break
            page = find_models(connection, parse_filter(f"{base}&cursor={page.next_cursor}"))
    response = tabular(items, output, SUMMARY_KEYS)
    response.headers["Content-Disposition"] = f'attachment; filename="models.{output}"'
    return response
