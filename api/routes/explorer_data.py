"""JSON (and SVG) the web explorer needs beyond the list and detail routes.

A search page plots every network of a search at once, which the paginated ``/models``
cannot give in one request; its per-generation hypervolume and savings, the drawing of a
network's architecture and a whole-filter download are computed here. What a network is
ranked by, the Pareto front and the epoch budget come from :mod:`a4nn.lineage.queries`
(the one definition the CLI, ``/searches/{id}/pareto`` and the report use), so the
explorer shows the numbers they report.
"""
from __future__ import annotations

import io
import math
import threading
from collections import OrderedDict
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

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
from a4nn.lineage.pareto import pareto_front

router = APIRouter(tags=["explorer"])
ERRORS: dict[int | str, dict[str, Any]] = {400: {"model": ErrorBody}, 404: {"model": ErrorBody}}
#: a scatter of more networks than this is drawn from a sample (plus the whole front): a browser
#: draws a few thousand SVG marks smoothly, not a hundred thousand
MAX_POINTS = 4000
#: whole-filter downloads stop here (a bigger table is a bundle export's job)
MAX_EXPORT_ROWS = 200_000
#: as ``/searches/{id}/pareto``: ``fitness`` is the fitness the NAS saw (queries.rank_value), the others raw columns
Metric = Literal["fitness", "acc", "pred"]
RAW = {"acc": "final_acc", "pred": "predicted_acc"}


def _require_search(connection: Connection, search_id: int) -> None:
    if connection.execute(select(Search.id).where(Search.id == search_id)).first() is None:
        raise HTTPException(404, f"no search with id {search_id}")


def _usable(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


COLUMNS = ("id", "generation", "index", "accuracy", "flops", "status", "terminated_early", "epochs_trained",
           "stop_epoch")


@dataclass
class SearchView:
    """What a search page plots, computed once per state of the search and metric.

    ``accuracy`` is what ``metric`` ranks a network by: for ``fitness`` the fitness seen
    (:func:`a4nn.lineage.queries.fitness_seen`, NaN for failed networks and those without a
    final accuracy), else the raw column. The front is :func:`a4nn.lineage.pareto.pareto_front`
    over the finite ones, which is what ``queries.front_rows`` / ``/searches/{id}/pareto``
    compute (a test compares the two), without building their full rows for 30,000 networks.
    """

    rows: list[tuple[Any, ...]]  # COLUMNS, ordered by id
    plottable: list[int]  # positions in ``rows`` with a finite accuracy and MFLOPs
    front_ids: list[int]
    generations: list[dict[str, Any]]
    reference_flops: float | None
    epochs_per_network: float | None


def _view(database: Database, connection: Connection, search_id: int, metric: Metric) -> SearchView:
    statement = (select(Architecture.id, Architecture.generation, Architecture.index, Architecture.final_acc,
                        Architecture.fitness, Architecture.predicted_acc, Architecture.flops, Architecture.status,
                        Architecture.terminated_early, Architecture.epochs_trained, Architecture.stop_epoch)
                 .where(Architecture.search_id == int(search_id)).order_by(Architecture.id))  # the search_id index
    # plain driver rows: these columns need no result processing, which costs more than the query on
    # 30,000 networks (the only bound value is the integer id, inlined by the dialect's compiler)
    sql = str(statement.compile(dialect=connection.dialect, compile_kwargs={"literal_binds": True}))
    result = connection.exec_driver_sql(sql).all()
    if metric == "fitness":
        seen = queries.fitness_seen
        rows = [(r[0], r[1], r[2], seen(r[4], r[3], r[7]), r[6], r[7], bool(r[8]), r[9], r[10]) for r in result]
    else:
        column = 3 if RAW[metric] == "final_acc" else 5
        rows = [(r[0], r[1], r[2], r[column] if _usable(r[column]) else math.nan, r[6], r[7], bool(r[8]), r[9], r[10])
                for r in result]
    isfinite = math.isfinite
    plottable = [i for i, r in enumerate(rows) if isfinite(r[3]) and r[4] is not None and isfinite(r[4])]
    points = [{"id": rows[i][0], "accuracy": rows[i][3], "flops": rows[i][4], "generation": rows[i][1]}
              for i in plottable]
    costs = [p["flops"] for p in points]
    reference = 1.1 * max(costs) if costs else None
    per_network = queries.search_epoch_budget(database, search_id)
    generations: list[dict[str, Any]] = []
    front: list[dict[str, Any]] = []
    by_generation: dict[int, list[dict[str, Any]]] = {}
    for point in points:
        by_generation.setdefault(point["generation"], []).append(point)
    counts: dict[int, list[Any]] = {}
    for r in rows:
        entry = counts.setdefault(r[1], [0, 0, 0.0])
        entry[0] += 1
        entry[1] += r[6]
        entry[2] += float(r[7] or 0)
    for generation in sorted(counts):
        networks, early, trained = counts[generation]
        # a dominated network stays dominated, so the front so far carries over
        front = pareto_front(front + by_generation.get(generation, []), accuracy="accuracy", cost="flops")
        generations.append({
            "generation": generation, "networks": networks, "early": early, "epochs_trained": trained,
            "epochs_budget": per_network * networks if per_network else None,
            "epochs_saved": queries.epochs_saved(trained, networks, per_network),
            "front_size": len(front),
            "hypervolume": hypervolume(front, reference) if reference else None,
        })
    return SearchView(rows, plottable, sorted(p["id"] for p in front), generations, reference, per_network)


_VIEWS: "OrderedDict[tuple[Any, ...], SearchView]" = OrderedDict()
_VIEWS_LOCK = threading.Lock()
_VIEWS_KEPT = 16


def search_view(database: Database, search_id: int, metric: Metric) -> SearchView:
    """:func:`_view`, cached until the search's networks change (a page's two requests share one)."""
    with database.engine.connect() as connection:
        _require_search(connection, search_id)
        state = tuple(connection.execute(
            select(func.count(Architecture.id), func.max(Architecture.id), func.sum(Architecture.epochs_trained),
                   func.count(Architecture.final_acc), func.sum(Architecture.final_acc),
                   func.sum(Architecture.fitness), func.sum(Architecture.predicted_acc))
            .where(Architecture.search_id == search_id)).one())
        key = (id(database), search_id, metric, state)
        with _VIEWS_LOCK:  # one computation at a time: a page's second request waits and reuses the first's
            if key in _VIEWS:
                _VIEWS.move_to_end(key)
                return _VIEWS[key]
            view = _view(database, connection, search_id, metric)
            _VIEWS[key] = view
            while len(_VIEWS) > _VIEWS_KEPT:
                _VIEWS.popitem(last=False)
    return view


def hypervolume(front: list[dict[str, Any]], reference_flops: float) -> float:
    """pymoo's hypervolume of ``front`` in (100 − accuracy, MFLOPs) from the point (100, ``reference_flops``).

    The same indicator (and the same kind of reference point) as ``benchmarks/search_ab_seeds.py``.
    """
    from pymoo.indicators.hv import HV

    if not front:
        return 0.0
    points = np.array([[100.0 - p["accuracy"], p["flops"]] for p in front], dtype=float)
    return float(HV(ref_point=np.array([100.0, reference_flops]))(points))


@router.get("/searches/{search_id}/generations", responses=ERRORS,
            summary="Per generation: networks, epochs trained vs budget, front size and hypervolume so far",
            description="Hypervolume of the front of all networks up to that generation, in (100 − accuracy %, "
                        "MFLOPs), reference point (100, 1.1 × the search's largest MFLOPs); `metric` ranks as "
                        "`/searches/{id}/pareto` does (default: the fitness the NAS saw). Epochs saved use the "
                        "search's epoch budget per network, as `/searches/{id}`.")
def search_generations(search_id: Id, metric: Metric = "fitness", database: Database = Depends(get_database)) -> Any:
    view = search_view(database, search_id, metric)
    return {"search_id": search_id, "metric": metric, "reference_point": [100.0, view.reference_flops],
            "epochs_per_network": view.epochs_per_network, "generations": view.generations}


@router.get("/searches/{search_id}/points", responses=ERRORS,
            summary="Every network of a search as a scatter point (accuracy, MFLOPs), front marked",
            description=f"More than {MAX_POINTS} networks are thinned to an even sample; front members are always "
                        "included. `total` counts all networks; `metric` as `/searches/{id}/pareto`.")
def search_points(search_id: Id, metric: Metric = "fitness", database: Database = Depends(get_database)) -> Any:
    view = search_view(database, search_id, metric)
    chosen = view.plottable
    if len(chosen) > MAX_POINTS:
        front = set(view.front_ids)
        keep = set(np.linspace(0, len(chosen) - 1, max(MAX_POINTS - len(front), 0)).astype(int).tolist())
        chosen = [i for n, i in enumerate(chosen) if n in keep or view.rows[i][0] in front]
    return {"search_id": search_id, "metric": metric, "total": len(view.rows), "plottable": len(view.plottable),
            "shown": len(chosen), "front": view.front_ids, "columns": list(COLUMNS),
            "rows": [view.rows[i] for i in chosen]}


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
