"""SQLAlchemy 2 models of the lineage database: the hub every sub-system writes to.

The schema is fixed by DESIGN.md. Conventions kept here so that Alembic autogenerate
and hand-written migrations agree on names across SQLite and PostgreSQL:

* plural snake_case tables with an integer ``id`` surrogate key;
* every constraint and index is named through :data:`NAMING_CONVENTION`;
* timestamps are timezone-aware UTC;
* NaN/inf never reach a column: the value is stored as NULL and the ``nonfinite``
  JSON column records which field held ``"nan"``, ``"inf"`` or ``"-inf"``
  (see :mod:`a4nn.lineage.nonfinite`).
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Optional

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    """Timezone-aware 'now' so SQLite and PostgreSQL rows compare the same way."""
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    """Declarative base carrying the naming convention and the JSON type map."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class Dataset(Base):
    """A training data set; ``beam`` is lifted out of ``attributes`` so /models can filter on it."""

    __tablename__ = "datasets"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    kind: Mapped[str] = mapped_column(String(64))
    beam: Mapped[Optional[str]] = mapped_column(String(16), index=True)
    attributes: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class EngineConfig(Base):
    """One distinct prediction-engine setting, deduplicated by the hash of its content."""

    __tablename__ = "engine_configs"

    id: Mapped[int] = mapped_column(primary_key=True)
    function: Mapped[str] = mapped_column(String(128))
    c_min: Mapped[int] = mapped_column(Integer)
    e_pred: Mapped[float] = mapped_column(Float)
    n: Mapped[int] = mapped_column(Integer)
    r: Mapped[float] = mapped_column(Float)
    bounds: Mapped[list[Any]] = mapped_column(default=list)
    extra: Mapped[dict[str, Any]] = mapped_column(default=dict)
    content_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Search(Base):
    """A NAS run or an imported collection; ``name`` is the natural key that makes imports idempotent."""

    __tablename__ = "searches"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    nas: Mapped[str] = mapped_column(String(64), index=True)
    dataset_id: Mapped[Optional[int]] = mapped_column(ForeignKey("datasets.id"), index=True)
    engine_config_id: Mapped[Optional[int]] = mapped_column(ForeignKey("engine_configs.id"), index=True)
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    seed: Mapped[Optional[int]] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(32), default="running")
    # NULL: not recorded (the ICPP'23 logs carry no dates; revision 0004)
    started_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True))
    code_version: Mapped[Optional[str]] = mapped_column(String(64))
    host: Mapped[Optional[str]] = mapped_column(String(255))

    dataset: Mapped[Optional[Dataset]] = relationship()
    engine_config: Mapped[Optional[EngineConfig]] = relationship()
    architectures: Mapped[list["Architecture"]] = relationship(back_populates="search")


class Genome(Base):
    """A distinct genome, shared by every architecture (in any search) that decodes from it."""

    __tablename__ = "genomes"

    id: Mapped[int] = mapped_column(primary_key=True)
    encoding: Mapped[str] = mapped_column(String(64))
    bits: Mapped[str] = mapped_column(String(1024))
    hash: Mapped[str] = mapped_column(String(64), unique=True)


class GenomeParent(Base):
    """An evolution edge: ``child`` was produced from ``parent`` by ``operator``."""

    __tablename__ = "genome_parents"
    __table_args__ = (UniqueConstraint("child_id", "parent_id", "operator"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    child_id: Mapped[int] = mapped_column(ForeignKey("genomes.id", ondelete="CASCADE"), index=True)
    parent_id: Mapped[int] = mapped_column(ForeignKey("genomes.id", ondelete="CASCADE"), index=True)
    operator: Mapped[str] = mapped_column(String(32))
    search_id: Mapped[Optional[int]] = mapped_column(ForeignKey("searches.id", ondelete="SET NULL"))


#: the columns /models can sort on (besides id); each has a covering index
SORT_INDEXED = ("final_acc", "predicted_acc", "fitness", "flops", "n_params", "epochs_trained", "generation")


class Architecture(Base):
    """A trained network (a "model"), with the denormalized columns /models filters on."""

    __tablename__ = "architectures"
    __table_args__ = (
        UniqueConstraint("search_id", "generation", "index"),
        # one index per sortable column, carrying id (keyset order) and search_id (the
        # beam/search filter is checked in the index, without a table lookup); revision 0002
        *(Index(f"ix_architectures_{column}_id_search_id", column, "id", "search_id") for column in SORT_INDEXED),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    search_id: Mapped[int] = mapped_column(ForeignKey("searches.id", ondelete="CASCADE"), index=True)
    genome_id: Mapped[Optional[int]] = mapped_column(ForeignKey("genomes.id"), index=True)
    generation: Mapped[int] = mapped_column(Integer, default=0)
    index: Mapped[int] = mapped_column("index", Integer)
    arch: Mapped[dict[str, Any]] = mapped_column(default=dict)
    train_params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    flops: Mapped[Optional[float]] = mapped_column(Float)
    n_params: Mapped[Optional[int]] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(32), default="running", index=True)
    epochs_trained: Mapped[Optional[float]] = mapped_column(Float)
    terminated_early: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    stop_epoch: Mapped[Optional[float]] = mapped_column(Float)
    final_acc: Mapped[Optional[float]] = mapped_column(Float)
    predicted_acc: Mapped[Optional[float]] = mapped_column(Float)
    fitness: Mapped[Optional[float]] = mapped_column(Float)
    wall_seconds: Mapped[Optional[float]] = mapped_column(Float)
    device: Mapped[Optional[str]] = mapped_column(String(64))
    error: Mapped[Optional[str]] = mapped_column(Text)
    nonfinite: Mapped[Optional[dict[str, Any]]] = mapped_column(JSON(none_as_null=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True))

    search: Mapped[Search] = relationship(back_populates="architectures")
    genome: Mapped[Optional[Genome]] = relationship()


class Epoch(Base):
    """One (architecture, epoch) measurement; epochs are REAL so half epochs fit."""

    __tablename__ = "epochs"
    __table_args__ = (UniqueConstraint("architecture_id", "epoch"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    architecture_id: Mapped[int] = mapped_column(ForeignKey("architectures.id", ondelete="CASCADE"))
    epoch: Mapped[float] = mapped_column(Float)
    train_loss: Mapped[Optional[float]] = mapped_column(Float)
    train_acc: Mapped[Optional[float]] = mapped_column(Float)
    val_loss: Mapped[Optional[float]] = mapped_column(Float)
    val_acc: Mapped[Optional[float]] = mapped_column(Float)
    seconds: Mapped[Optional[float]] = mapped_column(Float)
    nonfinite: Mapped[Optional[dict[str, Any]]] = mapped_column(JSON(none_as_null=True))


class Prediction(Base):
    """One interaction with the prediction engine: the fitted curve's value at ``target_epoch``."""

    __tablename__ = "predictions"
    __table_args__ = (UniqueConstraint("architecture_id", "epoch", "function"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    architecture_id: Mapped[int] = mapped_column(ForeignKey("architectures.id", ondelete="CASCADE"))
    epoch: Mapped[float] = mapped_column(Float)
    target_epoch: Mapped[float] = mapped_column(Float)
    value: Mapped[Optional[float]] = mapped_column(Float)
    function: Mapped[str] = mapped_column(String(128))
    params: Mapped[Optional[list[Any]]] = mapped_column(JSON(none_as_null=True))
    converged: Mapped[bool] = mapped_column(Boolean, default=False)
    seconds: Mapped[Optional[float]] = mapped_column(Float)
    nonfinite: Mapped[Optional[dict[str, Any]]] = mapped_column(JSON(none_as_null=True))


class Checkpoint(Base):
    """A saved model state, addressed by URI and pinned by its sha256."""

    __tablename__ = "checkpoints"
    __table_args__ = (UniqueConstraint("architecture_id", "epoch"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    architecture_id: Mapped[int] = mapped_column(ForeignKey("architectures.id", ondelete="CASCADE"))
    epoch: Mapped[float] = mapped_column(Float)
    uri: Mapped[str] = mapped_column(String(2048))
    sha256: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(Integer)
    format: Mapped[str] = mapped_column(String(32), default="torch")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Publication(Base):
    """An export or publish event of a search (bundle on disk, Dataverse dataset)."""

    __tablename__ = "publications"

    id: Mapped[int] = mapped_column(primary_key=True)
    search_id: Mapped[Optional[int]] = mapped_column(ForeignKey("searches.id", ondelete="SET NULL"), index=True)
    target: Mapped[str] = mapped_column(String(32))
    persistent_id: Mapped[Optional[str]] = mapped_column(String(255))
    url: Mapped[Optional[str]] = mapped_column(String(2048))
    manifest: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ArchitectureParent(Base):
    """A lineage edge between trained networks (revision 0003): ``child`` continues ``parent`` by ``operator``.

    ``refine`` is the operator of ``a4nn-commons refine``: the child starts from the
    parent's last checkpoint and trains on. genome_parents cannot carry this edge: a
    refined network has its parent's genome, and a genome -> same genome edge (unique per
    operator) would name neither which trained network was continued nor a second
    refinement of the same genome in another search.
    """

    __tablename__ = "architecture_parents"
    __table_args__ = (UniqueConstraint("child_id", "parent_id", "operator"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    child_id: Mapped[int] = mapped_column(ForeignKey("architectures.id", ondelete="CASCADE"), index=True)
    parent_id: Mapped[int] = mapped_column(ForeignKey("architectures.id", ondelete="CASCADE"), index=True)
    operator: Mapped[str] = mapped_column(String(32))
    epoch: Mapped[Optional[float]] = mapped_column(Float)  # the parent's checkpoint epoch the child started from
    search_id: Mapped[Optional[int]] = mapped_column(ForeignKey("searches.id", ondelete="SET NULL"))


class Evaluation(Base):
    """One re-evaluation of a recorded network's checkpoint on a data set (revision 0003).

    ``dataset`` describes the data the metrics were measured on (name, kind, attributes)
    even when it is not a training set of this database; ``dataset_id`` links it when it
    is registered. ``metrics`` holds accuracy, loss, the confusion matrix and latency.
    """

    __tablename__ = "evaluations"
    __table_args__ = (Index("ix_evaluations_architecture_id_epoch", "architecture_id", "epoch"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    architecture_id: Mapped[int] = mapped_column(ForeignKey("architectures.id", ondelete="CASCADE"))
    epoch: Mapped[float] = mapped_column(Float)
    dataset_id: Mapped[Optional[int]] = mapped_column(ForeignKey("datasets.id", ondelete="SET NULL"), index=True)
    dataset: Mapped[dict[str, Any]] = mapped_column(default=dict)
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    checkpoint_sha256: Mapped[Optional[str]] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
