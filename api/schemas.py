"""Pydantic response models: what /docs shows and what clients can rely on.

Numbers that were NaN/inf in training are ``null`` here (JSON has neither); the
model detail's ``nonfinite`` dict says which field held which value.
"""
from __future__ import annotations

from typing import Any, Literal, Optional

from pydantic import BaseModel, Field


class ErrorBody(BaseModel):
    """Every 4xx answer: one line saying what was wrong and what is valid."""

    detail: str


class ModelSummary(BaseModel):
    id: int
    search_id: int
    search: str
    nas: str
    dataset: Optional[str] = None
    beam: Optional[str] = None
    generation: int
    index: int
    genome_id: Optional[int] = None
    genome: Optional[str] = Field(None, description="genome bits ('0'/'1' string)")
    flops: Optional[float] = Field(None, description="MFLOPs (multiply-accumulates / 1e6)")
    n_params: Optional[int] = None
    status: str
    epochs_trained: Optional[float] = None
    terminated_early: bool
    stop_epoch: Optional[float] = None
    final_acc: Optional[float] = None
    predicted_acc: Optional[float] = None
    fitness: Optional[float] = None
    wall_seconds: Optional[float] = None
    function: Optional[str] = Field(None, description="prediction-engine curve function of the search")


class ModelPage(BaseModel):
    items: list[ModelSummary]
    count: int = Field(description="items on this page (the page size, not the number of matches; see total)")
    total: Optional[int] = Field(None, description="models matching the filter over all pages; "
                                                   "computed only with total=true, else null")
    next: Optional[str] = Field(None, description="path of the next page (same filter, opaque cursor); null at the end")


class EngineConfigOut(BaseModel):
    id: int
    function: str
    c_min: int
    e_pred: float
    n: int
    r: float
    bounds: list[Any]
    extra: dict[str, Any]


class EvaluationRow(BaseModel):
    """A re-evaluation of the model's checkpoint on a data set (``a4nn-commons model evaluate``)."""

    id: int
    epoch: float = Field(description="checkpoint epoch that was evaluated")
    dataset: dict[str, Any] = Field(description="name, kind, split and attributes of the data set")
    metrics: dict[str, Any] = Field(description="accuracy (%), loss, confusion_matrix (rows: true class), "
                                                "latency_ms, n_images, ...")
    created: Optional[str] = Field(None, description="UTC time, ISO 8601")


class ModelDetail(ModelSummary):
    arch: dict[str, Any]
    train_params: dict[str, Any]
    error: Optional[str] = None
    device: Optional[str] = None
    nonfinite: Optional[dict[str, str]] = None
    engine_config: Optional[EngineConfigOut] = None
    dataset_attributes: Optional[dict[str, Any]] = None
    genome_encoding: Optional[str] = None
    evaluations: list[EvaluationRow] = Field(default_factory=list, description="re-evaluations, oldest first")


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


class LineageEdge(BaseModel):
    child: int = Field(description="child genome id")
    parent: int = Field(description="parent genome id")
    operator: str
    hop: int = Field(description="distance from the model's genome")
    search_id: Optional[int] = None


class LineageGenome(BaseModel):
    id: int
    bits: str
    models: list[int] = Field(description="ids of the models trained from this genome")


class Lineage(BaseModel):
    model: int
    genome_id: Optional[int] = None
    direction: Literal["up", "down"]
    hops: int
    edges: list[LineageEdge]
    genomes: list[LineageGenome]


class CheckpointRow(BaseModel):
    epoch: float
    uri: str
    sha256: str
    size_bytes: int
    format: str
    download: str = Field(description="path that downloads the file")


class SearchSummary(BaseModel):
    id: int
    name: str
    nas: str
    status: str
    seed: Optional[int] = None
    dataset_id: Optional[int] = None
    dataset: Optional[str] = None
    beam: Optional[str] = None
    engine_config_id: Optional[int] = None
    networks: int
    epochs_trained: float


class SearchDetail(SearchSummary):
    config: dict[str, Any]
    epochs_budget: Optional[float] = Field(None, description="networks × epochs each network would train without the engine")
    epochs_saved: Optional[float] = Field(None, description="1 − epochs trained / epochs budget")
    engine_config: Optional[EngineConfigOut] = None
    started_at: Optional[str] = None
    finished_at: Optional[str] = None
    code_version: Optional[str] = None
    host: Optional[str] = None


class ParetoPoint(BaseModel):
    id: int
    generation: int
    index: int
    accuracy: float = Field(description="what the front ranks by: the fitness the search saw (metric=fitness, the "
                                        "default; the engine's prediction for a network it stopped), or the raw "
                                        "acc / pred column")
    flops: float
    terminated_early: bool = Field(False, description="stopped early by the engine: its last measured accuracy is "
                                                      "an early-epoch value")


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
