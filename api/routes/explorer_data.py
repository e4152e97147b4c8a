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
from functools import lru_cache
from typing import Any, Literal

import numpy as np
from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import Response
from sqlalchemy import select
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


def _networks(connection: Connection, search_id: int, metric: Metric) -> list[dict[str, Any]]:
    """Every network of the search, with ``accuracy``: the value ``metric`` ranks it by (NaN when none)."""
    rows = connection.execute(
        select(Architecture.id, Architecture.generation, Architecture.index, Architecture.final_acc,
               Architecture.fitness, Architecture.predicted_acc, Architecture.flops, Architecture.status,
               Architecture.terminated_early, Architecture.epochs_trained, Architecture.stop_epoch)
        .where(Architecture.search_id == search_id).order_by(Architecture.generation, Architecture.id)
    ).mappings().all()
    networks = []
    for row in rows:
        network = dict(row)
        if metric == "fitness":
            network["accuracy"] = queries.fitness_seen(row["fitness"], row["final_acc"], row["status"])
        else:
            value = row[RAW[metric]]
            network["accuracy"] = value if _usable(value) else math.nan
        networks.append(network)
    return networks


def _front(networks: list[dict[str, Any]], metric: Metric) -> list[dict[str, Any]]:
    """The networks on the front, as ``/searches/{id}/pareto`` ranks them (lineage.queries / lineage.pareto)."""
    if metric == "fitness":
        by_id = {n["id"]: n for n in networks}
        return [by_id[row["id"]] for row in queries.front_rows(networks)]
    return pareto_front([n for n in networks if _usable(n["accuracy"])], accuracy="accuracy", cost="flops")


def _usable(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


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
    with database.engine.connect() as connection:
        _require_search(connection, search_id)
        networks = _networks(connection, search_id, metric)
    per_network = queries.search_epoch_budget(database, search_id)
    costs = [n["flops"] for n in networks if _usable(n["flops"])]
    reference = 1.1 * max(costs) if costs else None
    by_generation: dict[int, list[dict[str, Any]]] = {}
    for network in networks:
        by_generation.setdefault(network["generation"], []).append(network)
    front: list[dict[str, Any]] = []
    out = []
    for generation in sorted(by_generation):
        members = by_generation[generation]
        front = _front(front + members, metric)  # a dominated network stays dominated: the front carries over
        trained = float(sum(n["epochs_trained"] or 0 for n in members))
        out.append({
            "generation": generation, "networks": len(members),
            "early": sum(1 for n in members if n["terminated_early"]),
            "epochs_trained": trained,
            "epochs_budget": per_network * len(members) if per_network else None,
            "epochs_saved": queries.epochs_saved(trained, len(members), per_network),
            "front_size": len(front),
            "hypervolume": hypervolume(front, reference) if reference else None,
        })
    return {"search_id": search_id, "metric": metric, "reference_point": [100.0, reference],
            "epochs_per_network": per_network, "generations": out}


@router.get("/searches/{search_id}/points", responses=ERRORS,
            summary="Every network of a search as a scatter point (accuracy, MFLOPs), front marked",
            description=f"More than {MAX_POINTS} networks are thinned to an even sample; front members are always "
                        "included. `total` counts all networks; `metric` as `/searches/{id}/pareto`.")
def search_points(search_id: Id, metric: Metric = "fitness", database: Database = Depends(get_database)) -> Any:
    with database.engine.connect() as connection:
        _require_search(connection, search_id)
        networks = _networks(connection, search_id, metric)
    front_ids = {n["id"] for n in _front(networks, metric)}
    plotted = [n for n in networks if _usable(n["accuracy"]) and _usable(n["flops"])]
    plottable = len(plotted)
    if plottable > MAX_POINTS:
        keep = set(np.linspace(0, plottable - 1, max(MAX_POINTS - len(front_ids), 0)).astype(int).tolist())
        plotted = [n for i, n in enumerate(plotted) if i in keep or n["id"] in front_ids]
    columns = ("id", "generation", "index", "accuracy", "flops", "status", "terminated_early", "epochs_trained",
               "stop_epoch")
    return {"search_id": search_id, "metric": metric, "total": len(networks), "plottable": plottable,
            "shown": len(plotted), "front": sorted(front_ids), "columns": list(columns),
            "rows": [[n[c] for c in columns] for n in plotted]}


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


@router.get("/models/{model_id}/architecture.svg", response_class=Response,
            responses={**ERRORS, 200: {"content": {"image/svg+xml": {}}, "description": "the drawing"}},
            summary="The analyzer's drawing of a model's decoded genome (phases, nodes, skip connections)")
def model_architecture(model_id: Id, database: Database = Depends(get_database)) -> Response:
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
    svg = _architecture_svg(row.bits, _nodes_for(row.bits, row.config or {}))
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
    output = query.output_format if query.output_format in ("csv", "parquet") else "csv"
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
