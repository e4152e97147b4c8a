"""Read helpers returning pandas DataFrames: how analysts, the exporter and tests read the trail.

Non-finite values flagged in ``nonfinite`` are restored to NaN/inf here, so a frame
shows what the trainer saw rather than the NULLs the schema stores.
"""
from __future__ import annotations

from typing import Iterable

import numpy as np
import pandas as pd
from sqlalchemy import Select, select

from a4nn.lineage.database import Database
from a4nn.lineage.models import Architecture, Dataset, Epoch, Genome, Prediction, Search


def _restore(frame: pd.DataFrame, fields: Iterable[str]) -> pd.DataFrame:
    if "nonfinite" not in frame.columns or frame.empty:
        return frame
    for position, flags in enumerate(frame["nonfinite"].tolist()):
        if not flags:
            continue
        for field, state in flags.items():
            if field in fields:
                frame.iat[position, frame.columns.get_loc(field)] = float(state)
    return frame


def _read(database: Database, statement: Select) -> pd.DataFrame:
    with database.engine.connect() as connection:
        result = connection.execute(statement)
        return pd.DataFrame(result.fetchall(), columns=list(result.keys()))


def architectures_frame(database: Database, search_id: int | Iterable[int] | None = None) -> pd.DataFrame:
    """One row per architecture with its search, dataset (beam) and genome bits."""
    statement = (
        select(Architecture.__table__, Search.name.label("search_name"), Search.nas, Dataset.name.label("dataset"),
               Dataset.beam, Genome.bits.label("genome_bits"))
        .join(Search, Search.id == Architecture.search_id)
        .outerjoin(Dataset, Dataset.id == Search.dataset_id)
        .outerjoin(Genome, Genome.id == Architecture.genome_id)
        .order_by(Architecture.id)
    )
    if search_id is not None:
        ids = [search_id] if isinstance(search_id, int) else list(search_id)
        statement = statement.where(Architecture.search_id.in_(ids))
    frame = _read(database, statement)
    return _restore(frame, ("final_acc", "predicted_acc", "fitness", "flops", "wall_seconds"))


def _child_frame(database: Database, model: type, architecture_ids: Iterable[int] | None,
                 search_id: int | None, fields: tuple[str, ...]) -> pd.DataFrame:
    statement = select(model.__table__).order_by(model.architecture_id, model.epoch)  # type: ignore[attr-defined]
    if architecture_ids is not None:
        statement = statement.where(model.architecture_id.in_(list(architecture_ids)))  # type: ignore[attr-defined]
    if search_id is not None:
        statement = statement.join(Architecture, Architecture.id == model.architecture_id).where(  # type: ignore[attr-defined]
            Architecture.search_id == search_id
        )
    return _restore(_read(database, statement), fields)


def epochs_frame(database: Database, architecture_ids: Iterable[int] | None = None,
                 search_id: int | None = None) -> pd.DataFrame:
    """Per-epoch metrics of some architectures (or of one search, or of everything)."""
    return _child_frame(database, Epoch, architecture_ids, search_id,
                        ("train_loss", "train_acc", "val_loss", "val_acc", "seconds"))


def predictions_frame(database: Database, architecture_ids: Iterable[int] | None = None,
                      search_id: int | None = None) -> pd.DataFrame:
    """Engine interactions (prediction per epoch, converged flag, fitted params)."""
    return _child_frame(database, Prediction, architecture_ids, search_id, ("value", "seconds"))


def learning_curves(database: Database, search_id: int, metric: str = "val_acc") -> pd.DataFrame:
    """A wide frame: one column per architecture id, one row per epoch (NaN where not trained)."""
    epochs = epochs_frame(database, search_id=search_id)
    if epochs.empty:
        return pd.DataFrame(dtype=np.float64)
    return epochs.pivot(index="epoch", columns="architecture_id", values=metric)
