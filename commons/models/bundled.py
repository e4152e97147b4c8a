"""The ``evaluations`` table of an export bundle: written beside the other tables, re-imported idempotently.

Rows are keyed by the network's natural key (search, generation, index), like every
bundle table; ``dataset`` and ``metrics`` are JSON text. Evaluations carry no natural
key of their own, so a re-import skips a row whose network, epoch, checkpoint sha256
and creation time are already there (importing a bundle twice adds nothing).
"""
from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Mapping

import pandas as pd
from sqlalchemy import select

from a4nn.errors import InputFormatError
from a4nn.lineage.database import Database
from a4nn.lineage.models import Dataset, Evaluation
from a4nn.lineage.recorder import Recorder
from a4nn.lineage.public import public_value

NAME = "evaluations"
COLUMNS = ["search", "generation", "index", "epoch", "dataset", "metrics", "checkpoint_sha256", "created"]


def evaluations_frame(database: Database, keys: Mapping[int, tuple[str, int, int]]) -> pd.DataFrame:
    """The evaluations of the exported networks, keyed naturally, JSON as text."""
    with database.engine.connect() as connection:
        rows = connection.execute(select(Evaluation.__table__).where(Evaluation.architecture_id.in_(sorted(keys)))
                                  .order_by(Evaluation.id)).mappings().all() if keys else []
    records = []
    for row in rows:
        search, generation, index = keys[row["architecture_id"]]
        records.append({"search": search, "generation": generation, "index": index, "epoch": row["epoch"],
                        "dataset": json.dumps(public_value(row["dataset"] or {}), sort_keys=True, default=str),
                        "metrics": json.dumps(row["metrics"] or {}, sort_keys=True, default=str),
                        "checkpoint_sha256": row["checkpoint_sha256"],
                        "created": row["created_at"].isoformat() if row["created_at"] else None})
    return pd.DataFrame(records, columns=COLUMNS)


def import_evaluations(recorder: Recorder, folder: Path, owner: Callable[[Mapping[str, Any]], int]) -> int:
    """Import ``evaluations.parquet`` when the bundle has one (older bundles do not); returns rows added."""
    path = Path(folder) / f"{NAME}.parquet"
    if not path.is_file():
        return 0
    try:
        frame = pd.read_parquet(path)
    except Exception as exc:  # noqa: BLE001 - pyarrow raises several types for a damaged file
        raise InputFormatError(f"cannot read Parquet table: {exc}", path=str(path)) from None
    added = 0
    with recorder._begin() as connection:  # noqa: SLF001 - joins the import's transaction
        for row in frame.astype(object).where(frame.notna(), None).to_dict("records"):
            try:
                dataset, metrics = json.loads(row["dataset"] or "{}"), json.loads(row["metrics"] or "{}")
                created = datetime.fromisoformat(row["created"]) if row["created"] else None
            except (TypeError, ValueError) as exc:
                raise InputFormatError(f"bad evaluation row ({exc})", path=str(path)) from None
            architecture_id = owner(row)
            table = Evaluation.__table__
            same = connection.execute(select(table.c.id).where(
                table.c.architecture_id == architecture_id, table.c.epoch == float(row["epoch"]),
                table.c.created_at == created, table.c.checkpoint_sha256 == row["checkpoint_sha256"])).first()
            if same is not None:
                continue
            dataset_id = connection.execute(select(Dataset.id).where(Dataset.name == dataset.get("name"))).scalar()
            connection.execute(table.insert().values(architecture_id=architecture_id, epoch=float(row["epoch"]),
                                                     dataset_id=dataset_id, dataset=dataset, metrics=metrics,
                                                     checkpoint_sha256=row["checkpoint_sha256"], created_at=created))
            added += 1
    return added


#: the analyzer's evaluations frame (one row per stored evaluation)
ANALYSIS_COLUMNS = ["model_id", "epoch", "dataset", "split", "n_images", "accuracy", "loss", "latency_ms", "created"]


def _analysis_row(model_id: int, epoch: float, dataset: Mapping[str, Any], metrics: Mapping[str, Any],
                  created: Any) -> dict[str, Any]:
    latency = metrics.get("latency_ms")
    return {"model_id": int(model_id), "epoch": float(epoch), "dataset": dataset.get("name"),
            "split": dataset.get("split"), "n_images": metrics.get("n_images"), "accuracy": metrics.get("accuracy"),
            "loss": metrics.get("loss"), "latency_ms": latency.get("median") if isinstance(latency, dict) else latency,
            "created": str(created) if created is not None else None}


def analysis_frame(database: Database, model_ids: list[int]) -> pd.DataFrame:
    """Evaluations of ``model_ids`` from a database, flattened for tables (report, notebook)."""
    with database.engine.connect() as connection:
        rows = connection.execute(select(Evaluation.__table__).where(Evaluation.architecture_id.in_(model_ids))
                                  .order_by(Evaluation.id)).mappings().all() if model_ids else []
    return pd.DataFrame([_analysis_row(r["architecture_id"], r["epoch"], r["dataset"] or {}, r["metrics"] or {},
                                       r["created_at"]) for r in rows], columns=ANALYSIS_COLUMNS)


def analysis_frame_from_bundle(folder: Path, model_id_of: Mapping[tuple[str, int, int], int]) -> pd.DataFrame:
    """The same frame from a bundle's ``evaluations.parquet`` (empty when the bundle has none)."""
    path = Path(folder) / f"{NAME}.parquet"
    if not path.is_file():
        return pd.DataFrame(columns=ANALYSIS_COLUMNS)
    frame = pd.read_parquet(path)
    rows = []
    for row in frame.to_dict("records"):
        key = (row["search"], int(row["generation"]), int(row["index"]))
        if key in model_id_of:
            rows.append(_analysis_row(model_id_of[key], row["epoch"], json.loads(row["dataset"] or "{}"),
                                      json.loads(row["metrics"] or "{}"), row["created"]))
    return pd.DataFrame(rows, columns=ANALYSIS_COLUMNS)
