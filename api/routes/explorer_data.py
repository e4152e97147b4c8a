"""JSON (and SVG) the web explorer needs beyond the list and detail routes.

A search page plots every network of a search at once, which the paginated ``/models``
cannot give in one request; its per-generation hypervolume and savings, the drawing of a
network's architecture and a whole-filter download are computed here. Fronts come from
:func:`a4nn.lineage.pareto.pareto_front` and the epoch budget from the same rule as
``/searches/{id}`` (:func:`a4nn.api.routes.searches.epoch_budget`), so the explorer shows
the numbers the API and the CLI report.
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
from a4nn.api.routes.searches import METRICS, epoch_budget
from a4nn.api.schemas import ErrorBody
from a4nn.lineage.database import Database
from a4nn.lineage.filters import FilterError, MAX_LIMIT, find_models, parse_filter
from a4nn.lineage.models import Architecture, Genome, Search
from a4nn.lineage.pareto import pareto_front

router = APIRouter(tags=["explorer"])
ERRORS: dict[int | str, dict[str, Any]] = {400: {"model": ErrorBody}, 404: {"model": ErrorBody}}
#: a scatter of more networks than this is drawn from a sample (plus the whole front): a browser
#: draws a few thousand SVG marks smoothly, not a hundred thousand
MAX_POINTS = 4000
#: whole-filter downloads stop here (a bigger table is a bundle export's job)
MAX_EXPORT_ROWS = 200_000
Metric = Literal["acc", "fitness", "pred"]


def _require_search(connection: Connection, search_id: int) -> dict[str, Any]:
    row = connection.execute(select(Search.id, Search.config, Search.status).where(Search.id == search_id)).first()
    if row is None:
        raise HTTPException(404, f"no search with id {search_id}")
    return {"id": row.id, "config": row.config or {}, "status": row.status}


def _networks(connection: Connection, search_id: int, metric: Metric) -> list[dict[str, Any]]:
    column = METRICS[metric]
    rows = connection.execute(
        select(Architecture.id, Architecture.generation, Architecture.index, column.label("accuracy"),
               Architecture.flops, Architecture.status, Architecture.terminated_early, Architecture.epochs_trained,
               Architecture.stop_epoch)
        .where(Architecture.search_id == search_id).order_by(Architecture.generation, Architecture.id)
    ).mappings().all()
    return [dict(row) for row in rows]


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
                        "MFLOPs), reference point (100, 1.1 × the search's largest MFLOPs); `metric` picks the "
                        "accuracy (as `/searches/{id}/pareto`).")
def search_generations(search_id: Id, metric: Metric = "acc", database: Database = Depends(get_database)) -> Any:
    with database.engine.connect() as connection:
        search = _require_search(connection, search_id)
        networks = _networks(connection, search_id, metric)
    costs = [n["flops"] for n in networks if _usable(n["flops"])]
    reference = 1.1 * max(costs) if costs else None
    by_generation: dict[int, list[dict[str, Any]]] = {}
    for network in networks:
        by_generation.setdefault(network["generation"], []).append(network)
    front: list[dict[str, Any]] = []
    out = []
    for generation in sorted(by_generation):
        members = by_generation[generation]
        front = pareto_front(front + members, accuracy="accuracy", cost="flops")  # the front is what survives
        trained = float(sum(n["epochs_trained"] or 0 for n in members))
        budget = epoch_budget(search["config"], len(members))
        out.append({
            "generation": generation, "networks": len(members),
            "early": sum(1 for n in members if n["terminated_early"]),
            "epochs_trained": trained, "epochs_budget": budget,
            "epochs_saved": (1 - trained / budget) if budget else None,
            "front_size": len(front),
            "hypervolume": hypervolume(front, reference) if reference else None,
        })
    return {"search_id": search_id, "metric": metric, "reference_point": [100.0, reference], "status": search["status"],
            "generations": out}


@router.get("/searches/{search_id}/points", responses=ERRORS,
            summary="Every network of a search as a scatter point (accuracy, MFLOPs), front marked",
            description=f"More than {MAX_POINTS} networks are thinned to an even sample; front members are always "
                        "included. `total` counts all networks.")
def search_points(search_id: Id, metric: Metric = "acc", database: Database = Depends(get_database)) -> Any:
    with database.engine.connect() as connection:
        _require_search(connection, search_id)
        networks = _networks(connection, search_id, metric)
    front_ids = {p["id"] for p in pareto_front(networks, accuracy="accuracy", cost="flops")}
    plotted = [n for n in networks if _usable(n["accuracy"]) and _usable(n["flops"])]
    if len(plotted) > MAX_POINTS:
        keep = set(np.linspace(0, len(plotted) - 1, MAX_POINTS - len(front_ids)).astype(int).tolist())
        plotted = [n for i, n in enumerate(plotted) if i in keep or n["id"] in front_ids]
    columns = ("id", "generation", "index", "accuracy", "flops", "status", "terminated_early", "epochs_trained",
               "stop_epoch")
    return {"search_id": search_id, "metric": metric, "total": len(networks),
            "plottable": sum(1 for n in networks if _usable(n["accuracy"]) and _usable(n["flops"])),
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
