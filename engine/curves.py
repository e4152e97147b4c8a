"""Reading recorded learning curves from CSV/Parquet for replay.

Accepted layouts (``fmt="auto"`` picks by columns):

``icpp23``
    The published A4NN logs: ``arch``, ``epoch`` (0-based), ``val_accs``, optional ``flops``.
``long``
    One row per (network, epoch): a network column (``architecture_id``, ``arch``,
    ``model`` or ``id``), ``epoch`` and a value column (``val_acc``, ``value`` or
    ``acc``), optional ``flops``. An export bundle's ``epochs.parquet`` is of this kind.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from a4nn.errors import InputFormatError

NETWORK_COLUMNS = ("architecture_id", "arch", "model", "id")
VALUE_COLUMNS = ("val_accs", "val_acc", "value", "acc")


@dataclass
class CurveSet:
    """Curves of one file: ids, per-network value lists (epoch order) and optional FLOPs."""

    ids: list
    curves: list[list[float]]
    flops: np.ndarray | None
    source: str


def _first(columns, candidates, what: str, path: Path) -> str:
    for name in candidates:
        if name in columns:
            return name
    raise InputFormatError(f"no {what} column (expected one of {', '.join(candidates)}); found {', '.join(columns)}",
                           path=str(path))


def read_curves(path: Path | str, fmt: str = "auto") -> CurveSet:
    path = Path(path)
    if not path.exists():
        raise InputFormatError("file not found", path=str(path))
    try:
        frame = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        raise InputFormatError(f"cannot read curves: {exc}", path=str(path)) from None
    if fmt not in ("auto", "icpp23", "long"):
        raise ValueError("fmt must be auto, icpp23 or long")
    network = _first(frame.columns, NETWORK_COLUMNS, "network", path)
    value = _first(frame.columns, VALUE_COLUMNS, "accuracy", path)
    if "epoch" not in frame.columns:
        raise InputFormatError("no epoch column", path=str(path))
    values = pd.to_numeric(frame[value], errors="coerce")
    bad = frame.index[values.isna() & frame[value].notna()]
    if len(bad):
        raise InputFormatError(f"non-numeric {value} {frame[value].iloc[bad[0]]!r}", path=str(path), line=int(bad[0]) + 2)
    frame = frame.assign(_value=values).sort_values([network, "epoch"], kind="stable")
    ids, curves, flops = [], [], []
    for key, group in frame.groupby(network, sort=False):
        ids.append(key)
        curves.append(group["_value"].astype(float).tolist())
        flops.append(float(group["flops"].iloc[0]) if "flops" in group else np.nan)
    flops_array = np.array(flops) if "flops" in frame.columns else None
    return CurveSet(ids, curves, flops_array, str(path))


def curves_from_search(database, search_id: int) -> CurveSet:
    """The validation curves of one recorded search (every network, in training order), with MFLOPs.

    Raises :class:`~a4nn.errors.InputFormatError` when the search does not exist or has no epochs.
    """
    from sqlalchemy import select

    from a4nn.lineage.models import Architecture, Epoch, Search

    with database.session() as session:
        if session.get(Search, search_id) is None:
            raise InputFormatError(f"no search with id {search_id}", path=str(database.url))
        rows = session.execute(select(Architecture.id, Architecture.flops).where(Architecture.search_id == search_id)
                               .order_by(Architecture.id)).all()
        ids, curves, flops = [], [], []
        for row in rows:
            values = session.scalars(select(Epoch.val_acc).where(Epoch.architecture_id == row.id)
                                     .order_by(Epoch.epoch)).all()
            if values:
                ids.append(row.id)
                curves.append([math.nan if v is None else float(v) for v in values])
                flops.append(math.nan if row.flops is None else float(row.flops))
    if not curves:
        raise InputFormatError(f"search {search_id} has no recorded epochs", path=str(database.url))
    return CurveSet(ids, curves, np.array(flops), f"search {search_id}")
