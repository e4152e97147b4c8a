"""Pydantic response models: what /docs shows and what clients can rely on."""
from __future__ import annotations

from typing import Any, Optional

from pydantic import BaseModel


class ModelSummary(BaseModel):
    id: int
    search_id: int
    search: str
    nas: str
    dataset: Optional[str] = None
    beam: Optional[str] = None
    generation: int
    index: int
    genome: Optional[str] = None
    flops: Optional[float] = None
    n_params: Optional[int] = None
    status: str
    epochs_trained: Optional[float] = None
    terminated_early: bool
    stop_epoch: Optional[float] = None
    final_acc: Optional[float] = None
    predicted_acc: Optional[float] = None
    fitness: Optional[float] = None
    wall_seconds: Optional[float] = None
    function: Optional[str] = None


class ModelPage(BaseModel):
    items: list[ModelSummary]
    count: int
    next: Optional[str] = None


class ModelDetail(ModelSummary):
    arch: dict[str, Any]
    train_params: dict[str, Any]
    error: Optional[str] = None
    engine_config: Optional[dict[str, Any]] = None
    dataset_attributes: Optional[dict[str, Any]] = None


class EpochRow(BaseModel):
    epoch: float
    train_loss: Optional[float] = None
    train_acc: Optional[float] = None
    val_loss: Optional[float] = None
    val_acc: Optional[float] = None
    seconds: Optional[float] = None


class PredictionRow(BaseModel):
    epoch: float
    target_epoch: float
    value: Optional[float] = None
    function: str
    params: Optional[list[Optional[float]]] = None
    converged: bool
    seconds: Optional[float] = None


class SearchSummary(BaseModel):
    id: int
    name: str
    nas: str
    status: str
    seed: Optional[int] = None
    dataset_id: Optional[int] = None
    engine_config_id: Optional[int] = None
    networks: int
    epochs_trained: float


class SearchDetail(SearchSummary):
    config: dict[str, Any]
    epochs_budget: Optional[float] = None
    epochs_saved: Optional[float] = None
    code_version: Optional[str] = None
    host: Optional[str] = None


class DatasetRow(BaseModel):
    id: int
    name: str
    kind: str
    beam: Optional[str] = None
    attributes: dict[str, Any]


class Health(BaseModel):
    status: str
    database: str
    schema_revision: Optional[str] = None
