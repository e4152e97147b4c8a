"""The analyzer's input: four uniform pandas frames, loaded from a database or an export bundle.

Every figure, table and similarity function takes an :class:`AnalysisData` rather than a
database, so a scientist who only downloaded a bundle (Parquet) sees the same plots as
one holding the lineage database. Frames:

``searches``  one row per search: ``search`` (name), ``nas``, ``beam``, ``dataset``,
              ``engine`` (True when an engine configuration was attached), ``budget``
              (epochs a network may train), ``config`` (dict).
``models``    one row per architecture: ``model_id``, ``search``, ``generation``, ``index``,
              ``status``, ``fate``, ``genome_bits``, ``flops``, ``final_acc``, ``predicted_acc``,
              ``fitness``, ``fitness_seen``, ``epochs_trained``, ``terminated_early``, ``stop_epoch``,
              ``wall_seconds``, ``beam``, ``dataset``. ``fitness_seen`` is what every front and
              "best" ranks by (:func:`a4nn.lineage.queries.fitness_seen`: the fitness the NAS saw,
              NaN for a network on no front).
``epochs``    ``model_id``, ``epoch``, ``val_acc``, ``train_acc``, ``val_loss``, ``train_loss``, ``seconds``.
``predictions`` ``model_id``, ``epoch``, ``target_epoch``, ``value``, ``function``, ``params``, ``converged``.

``model_id`` is the database id; a bundle has no ids, so its networks are numbered
1..n in (search, generation, index) order.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import pandas as pd
from sqlalchemy import select

from a4nn.errors import A4nnError, InputFormatError
from a4nn.lineage.database import Database
from a4nn.lineage.frames import architectures_frame, epochs_frame, predictions_frame
from a4nn.lineage.models import Dataset, EngineConfig, Search
from a4nn.lineage.queries import epoch_budget, fitness_seen, resolve_search
from a4nn.lineage.status import ArchitectureStatus

#: how a network ended, in legend order; colours are fixed so every figure agrees
FATES = ("stopped early", "ran full", "failed", "unfinished")
FATE_COLOURS = {"stopped early": "#1f77b4", "ran full": "#2ca02c", "failed": "#d62728", "unfinished": "#7f7f7f"}
MODEL_COLUMNS = ["model_id", "search", "generation", "index", "status", "fate", "genome_bits", "flops", "n_params",
                 "final_acc", "predicted_acc", "fitness", "fitness_seen", "epochs_trained", "terminated_early", "stop_epoch",
                 "wall_seconds", "beam", "dataset", "error"]
EPOCH_COLUMNS = ["model_id", "epoch", "val_acc", "train_acc", "val_loss", "train_loss", "seconds"]
PREDICTION_COLUMNS = ["model_id", "epoch", "target_epoch", "value", "function", "params", "converged"]
SEARCH_COLUMNS = ["search", "search_id", "nas", "beam", "dataset", "engine", "budget", "status", "config"]


@dataclass
class AnalysisData:
    """The frames every analyzer function reads (see the module docstring for the columns)."""

    searches: pd.DataFrame
    models: pd.DataFrame
    epochs: pd.DataFrame
    predictions: pd.DataFrame
    #: re-evaluations of the models (``a4nn-commons model evaluate``); None when not loaded
    evaluations: pd.DataFrame | None = None

    def model(self, model_id: int) -> pd.Series:
        """One model's row; an unknown id is a clear :class:`A4nnError`."""
        rows = self.models[self.models["model_id"] == int(model_id)]
        if rows.empty:
            raise A4nnError(f"no model with id {model_id} in the loaded data ({len(self.models)} models)")
        return rows.iloc[0]

    def for_searches(self, names: Iterable[str]) -> "AnalysisData":
        """The subset belonging to the searches called ``names``."""
        names = list(names)
        unknown = sorted(set(names) - set(self.searches["search"]))
        if unknown:
            raise A4nnError(f"unknown search(es) {', '.join(unknown)}; loaded: {', '.join(self.searches['search'])}")
        models = self.models[self.models["search"].isin(names)]
        ids = set(models["model_id"])
        return AnalysisData(self.searches[self.searches["search"].isin(names)].reset_index(drop=True),
                            models.reset_index(drop=True),
                            self.epochs[self.epochs["model_id"].isin(ids)].reset_index(drop=True),
                            self.predictions[self.predictions["model_id"].isin(ids)].reset_index(drop=True),
                            None if self.evaluations is None else
                            self.evaluations[self.evaluations["model_id"].isin(ids)].reset_index(drop=True))


def fate_of(status: str, terminated_early: Any) -> str:
    """Map the recorder's status to the three fates the figures colour by (plus unfinished)."""
    if status == ArchitectureStatus.FAILED:
        return "failed"
    if bool(terminated_early) or status == ArchitectureStatus.STOPPED:
        return "stopped early"
    if status == ArchitectureStatus.COMPLETED:
        return "ran full"
    return "unfinished"


def _budget(config: dict[str, Any] | None, engine: dict[str, Any] | None, train_epochs: pd.Series,
            trained: pd.Series) -> float | None:
    """Epochs a network of this search may train: the one rule of :func:`a4nn.lineage.queries.epoch_budget`."""
    return epoch_budget(config, train_epochs.tolist(), (engine or {}).get("e_pred"), trained.tolist())


def _train_epochs(params: pd.Series) -> pd.Series:
    return params.map(lambda p: (p or {}).get("epochs") if isinstance(p, dict) else None)


def _finish(models: pd.DataFrame) -> pd.DataFrame:
    models = models.copy()
    models["fate"] = [fate_of(s, t) for s, t in zip(models["status"], models["terminated_early"])]
    models["terminated_early"] = models["terminated_early"].fillna(False).astype(bool)
    for column in MODEL_COLUMNS:
        if column not in models.columns:
            models[column] = None
    numeric = ["flops", "final_acc", "predicted_acc", "fitness", "epochs_trained", "stop_epoch", "wall_seconds"]
    models[numeric] = models[numeric].apply(pd.to_numeric, errors="coerce")
    models["fitness_seen"] = [fitness_seen(f, a, s) for f, a, s in
                              zip(models["fitness"], models["final_acc"], models["status"])]
    return models[MODEL_COLUMNS].reset_index(drop=True)


def load_database(database: Database, searches: Iterable[int | str] | None = None) -> AnalysisData:
    """Read searches (ids or names; all when None) and their trails from a lineage database."""
    ids = None if searches is None else [resolve_search(database, s) for s in searches]
    statement = (select(Search.id, Search.name, Search.nas, Search.status, Search.config, Search.engine_config_id,
                        Dataset.name.label("dataset"), Dataset.beam)
                 .outerjoin(Dataset, Dataset.id == Search.dataset_id).order_by(Search.id))
    if ids is not None:
        statement = statement.where(Search.id.in_(ids))
    with database.engine.connect() as connection:
        search_rows = connection.execute(statement).all()
        engines = {row.id: {"e_pred": row.e_pred} for row in connection.execute(select(EngineConfig.id, EngineConfig.e_pred))}
    architectures = architectures_frame(database, ids) if ids is not None else architectures_frame(database)
    architectures = architectures.rename(columns={"id": "model_id", "search_name": "search"})
    train_epochs = _train_epochs(architectures["train_params"]) if len(architectures) else pd.Series(dtype=float)
    search_records = []
    for row in search_rows:
        mine = architectures["search_id"] == row.id
        engine = engines.get(row.engine_config_id) if row.engine_config_id is not None else None
        search_records.append({"search": row.name, "search_id": row.id, "nas": row.nas, "beam": row.beam,
                               "dataset": row.dataset, "engine": engine is not None,
                               "budget": _budget(row.config, engine, train_epochs[mine] if len(architectures) else train_epochs,
                                                 architectures.loc[mine, "epochs_trained"]),
                               "status": row.status, "config": dict(row.config or {})})
    model_ids = architectures["model_id"].tolist()
    epochs = epochs_frame(database, architecture_ids=model_ids) if model_ids else pd.DataFrame(columns=EPOCH_COLUMNS)
    predictions = predictions_frame(database, architecture_ids=model_ids) if model_ids else pd.DataFrame(columns=PREDICTION_COLUMNS)
    epochs = epochs.rename(columns={"architecture_id": "model_id"})
    predictions = predictions.rename(columns={"architecture_id": "model_id"})
    from a4nn.commons.models.bundled import analysis_frame

    return AnalysisData(pd.DataFrame(search_records, columns=SEARCH_COLUMNS), _finish(architectures),
                        _columns(epochs, EPOCH_COLUMNS), _columns(predictions, PREDICTION_COLUMNS),
                        analysis_frame(database, [int(i) for i in model_ids]))


def _columns(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    for column in columns:
        if column not in frame.columns:
            frame[column] = None
    return frame[columns].reset_index(drop=True)


def _json_cell(value: Any) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value == "":
        return None
    return json.loads(value) if isinstance(value, str) else value


def _read_parquet(folder: Path, name: str) -> pd.DataFrame:
    path = folder / f"{name}.parquet"
    try:
        return pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several exception types for missing/damaged files
        raise InputFormatError(f"cannot read bundle table: {exc}", path=str(path)) from None


def load_bundle(folder: Path | str) -> AnalysisData:
    """Read an export bundle (see :mod:`a4nn.commons.bundle`) into the analyzer's frames."""
    folder = Path(folder)
    search_json = folder / "search.json"
    try:
        docs = json.loads(search_json.read_text())["searches"]
    except (OSError, ValueError, KeyError) as exc:
        raise InputFormatError(f"not a bundle search description ({exc.__class__.__name__}: {exc})",
                               path=str(search_json)) from None
    architectures = _read_parquet(folder, "architectures")
    genomes = _read_parquet(folder, "genomes")
    key = ["search", "generation", "index"]
    architectures = architectures.sort_values(key, kind="stable").reset_index(drop=True)
    architectures["model_id"] = range(1, len(architectures) + 1)
    architectures["train_params"] = architectures["train_params"].map(_json_cell)
    bits = dict(zip(genomes["hash"], genomes["bits"]))
    architectures["genome_bits"] = architectures["genome_hash"].map(lambda h: bits.get(h) if isinstance(h, str) else None)
    ids = architectures.set_index(key)["model_id"]

    def keyed(frame: pd.DataFrame) -> pd.DataFrame:
        joined = frame.merge(ids.reset_index(), on=key, how="inner")
        return joined

    epochs = keyed(_read_parquet(folder, "epochs"))
    predictions = keyed(_read_parquet(folder, "predictions"))
    predictions["params"] = predictions["params"].map(_json_cell)
    train_epochs = _train_epochs(architectures["train_params"])
    records = []
    for number, doc in enumerate(docs, start=1):
        mine = architectures["search"] == doc["name"]
        dataset = doc.get("dataset") or {}
        engine = doc.get("engine_config")
        records.append({"search": doc["name"], "search_id": number, "nas": doc.get("nas"), "beam": dataset.get("beam"),
                        "dataset": dataset.get("name"), "engine": engine is not None,
                        "budget": _budget(doc.get("config"), engine, train_epochs[mine],
                                          architectures.loc[mine, "epochs_trained"]),
                        "status": doc.get("status"), "config": dict(doc.get("config") or {})})
    from a4nn.commons.models.bundled import analysis_frame_from_bundle

    evaluations = analysis_frame_from_bundle(folder, {k: int(v) for k, v in ids.items()})
    return AnalysisData(pd.DataFrame(records, columns=SEARCH_COLUMNS), _finish(architectures),
                        _columns(epochs, EPOCH_COLUMNS), _columns(predictions, PREDICTION_COLUMNS), evaluations)


def load(source: Database | str | Path, searches: Iterable[int | str] | None = None) -> AnalysisData:
    """Load from an open database, a database URL, or a bundle folder (what the notebook calls)."""
    if isinstance(source, Database):
        return load_database(source, searches)
    text = str(source)
    if "://" in text:
        database = Database.open(text)
        try:
            return load_database(database, searches)
        finally:
            database.dispose()
    data = load_bundle(text)
    return data if searches is None else data.for_searches([str(s) for s in searches])
