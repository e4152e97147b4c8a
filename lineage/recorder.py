"""The Recorder: the one write path into the lineage database.

Trainers, the Ray driver and importers all write through this class, so that the
rules of the record trail live in one place:

* natural keys make every registration idempotent (datasets by name, engine configs
  and genomes by content hash, searches by name, architectures by
  (search, generation, index), epochs by (architecture, epoch), ...);
* re-logging a row replaces its values instead of adding a duplicate, which is what
  a retried Ray task or a resumed search needs;
* NaN/inf become NULL plus a ``nonfinite`` flag (:mod:`a4nn.lineage.nonfinite`);
* finishing an architecture fills the denormalized columns ``/models`` filters on.

Writes use SQLAlchemy Core upserts (``INSERT .. ON CONFLICT``) on both SQLite and
PostgreSQL: one statement, one short transaction per call, which keeps per-epoch
latency low and avoids read-modify-write races between processes.
"""
from __future__ import annotations

import hashlib
import json
import math
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Literal, Mapping, Sequence

from sqlalchemy import Table, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from a4nn.lineage.database import Database
from a4nn.lineage.models import (
    Architecture,
    Checkpoint,
    Dataset,
    EngineConfig,
    Epoch,
    Genome,
    GenomeParent,
    Prediction,
    Publication,
    Search,
)
from a4nn.lineage.nonfinite import split_nonfinite
from a4nn.lineage.status import FINISHED, ArchitectureStatus, SearchStatus

if TYPE_CHECKING:  # pragma: no cover
    from a4nn.lineage.bulk import BulkLoader

EPOCH_METRICS = ("train_loss", "train_acc", "val_loss", "val_acc", "seconds")
ARCHITECTURE_METRICS = ("final_acc", "predicted_acc", "fitness", "flops", "wall_seconds")
FINISHED_STATUSES = tuple(status.value for status in FINISHED)  # plain strings: messages and bundles
BULK_CHUNK = 20_000


def content_hash(payload: Any) -> str:
    """sha256 of canonical JSON, the dedup key of engine configs."""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def genome_key(bits: str, encoding: str) -> str:
    """The dedup key of a genome: sha256 of ``encoding:bits``."""
    return hashlib.sha256(f"{encoding}:{bits}".encode()).hexdigest()


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _bits_text(bits: str | Sequence[int] | Sequence[Sequence[int]]) -> str:
    """Genomes are stored as a flat '0'/'1' string whatever shape the caller holds."""
    if isinstance(bits, str):
        text = bits
    else:
        flat: list[int] = []
        for item in bits:
            if isinstance(item, (list, tuple)) or hasattr(item, "__len__"):
                flat.extend(int(b) for b in item)  # type: ignore[union-attr]
            else:
                flat.append(int(item))
        text = "".join(str(b) for b in flat)
    if not text or set(text) - {"0", "1"}:
        raise ValueError(f"a genome must be a non-empty bit string, got {text!r}")
    return text


def _finite_or_none(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


class Recorder:
    """Idempotent writes of the record trail of searches, networks and their training."""

    def __init__(self, database: Database):
        self.database = database
        self._insert = postgresql.insert if database.dialect == "postgresql" else sqlite.insert
        self._bound: Connection | None = None
        self._bulk_loader: "BulkLoader | None" = None

    @property
    def bulk(self) -> "BulkLoader":
        """The bulk path (:class:`a4nn.lineage.bulk.BulkLoader`) for importers, writing inside :meth:`transaction`."""
        if self._bulk_loader is None:
            from a4nn.lineage.bulk import BulkLoader

            self._bulk_loader = BulkLoader(self)
        return self._bulk_loader

    @contextmanager
    def transaction(self) -> Iterator["Recorder"]:
        """Make every write inside the block one transaction (an importer's file is all or nothing)."""
        if self._bound is not None:
            yield self
            return
        with self.database.engine.begin() as connection:
            self._bound = connection
            try:
                yield self
            finally:
                self._bound = None

    @property
    def connection(self) -> Connection | None:
        """The connection of the open :meth:`transaction` (None outside one), for bulk writers."""
        return self._bound

    @contextmanager
    def _begin(self) -> Iterator[Connection]:
        if self._bound is not None:
            yield self._bound
        else:
            with self.database.engine.begin() as connection:
                yield connection

    # ------------------------------------------------------------------ helpers
    def _table(self, model: type) -> Table:
        return model.__table__  # type: ignore[attr-defined]

    def _insert_ignore(self, connection: Connection, model: type, values: Mapping[str, Any], keys: Sequence[str]) -> None:
        statement = self._insert(self._table(model)).values(**values).on_conflict_do_nothing(index_elements=list(keys))
        connection.execute(statement)

    def _get_or_create(self, model: type, values: Mapping[str, Any], keys: Sequence[str]) -> int:
        table = self._table(model)
        with self._begin() as connection:
            self._insert_ignore(connection, model, values, keys)
            where = [table.c[key] == values[key] for key in keys]
            return int(connection.execute(select(table.c.id).where(*where)).scalar_one())

    def _upsert_many(self, model: type, rows: list[dict[str, Any]], keys: Sequence[str], connection: Connection) -> None:
        if not rows:
            return
        table = self._table(model)
        statement = self._insert(table)
        replaced = {column: statement.excluded[column] for column in rows[0] if column not in keys}
        statement = statement.on_conflict_do_update(index_elements=list(keys), set_=replaced)
        connection.execute(statement, rows)

    # ------------------------------------------------------------ registrations
    def register_dataset(self, name: str, kind: str, attributes: Mapping[str, Any] | None = None) -> int:
        """The id of the data set called ``name``, created on first use (beam lifted from attributes)."""
        attributes = dict(attributes or {})
        values = {"name": name, "kind": kind, "attributes": attributes, "beam": attributes.get("beam"),
                  "created_at": datetime.now(timezone.utc)}
        return self._get_or_create(Dataset, values, ["name"])

    def register_engine_config(
        self,
        function: str,
        c_min: int,
        e_pred: float,
        n: int,
        r: float,
        bounds: Sequence[float] = (0.0, 100.0),
        extra: Mapping[str, Any] | None = None,
    ) -> int:
        """The id of this engine setting, shared by every search that used exactly it."""
        payload = {"function": function, "c_min": int(c_min), "e_pred": float(e_pred), "n": int(n), "r": float(r),
                   "bounds": [float(b) for b in bounds], "extra": dict(extra or {})}
        values = dict(payload, content_hash=content_hash(payload), created_at=datetime.now(timezone.utc))
        return self._get_or_create(EngineConfig, values, ["content_hash"])

    def register_genome(self, bits: str | Sequence[int] | Sequence[Sequence[int]], encoding: str = "nsga-net-macro/v1") -> int:
        """The id of a genome, deduplicated by ``sha256(encoding:bits)`` across all searches."""
        text = _bits_text(bits)
        return self._get_or_create(Genome, {"encoding": encoding, "bits": text, "hash": genome_key(text, encoding)}, ["hash"])

    def add_genome_parent(self, child_id: int, parent_id: int, operator: str, search_id: int | None = None) -> None:
        """Record an evolution edge (idempotent)."""
        with self._begin() as connection:
            self._insert_ignore(connection, GenomeParent,
                                {"child_id": child_id, "parent_id": parent_id, "operator": operator, "search_id": search_id},
                                ["child_id", "parent_id", "operator"])

    # ------------------------------------------------------------------ searches
    def start_search(
        self,
        name: str,
        nas: str,
        dataset_id: int | None = None,
        engine_config_id: int | None = None,
        config: Mapping[str, Any] | None = None,
        seed: int | None = None,
        code_version: str | None = None,
        host: str | None = None,
        status: str = SearchStatus.RUNNING,
        started_at: datetime | None | Literal["now"] = "now",
    ) -> int:
        """The id of the search called ``name``; an existing one is reused (resume, re-import).

        ``started_at`` is the time of this call unless given; None records none (an
        import whose source carries no dates).
        """
        values = {"name": name, "nas": nas, "dataset_id": dataset_id, "engine_config_id": engine_config_id,
                  "config": dict(config or {}), "seed": seed, "code_version": code_version, "host": host,
                  "status": status, "started_at": datetime.now(timezone.utc) if started_at == "now" else started_at}
        return self._get_or_create(Search, values, ["name"])

    def set_search_status(self, search_id: int, status: str) -> None:
        with self._begin() as connection:
            connection.execute(update(self._table(Search)).where(Search.id == search_id).values(status=status))

    def finish_search(self, search_id: int, status: str = SearchStatus.COMPLETED) -> None:
        with self._begin() as connection:
            connection.execute(
                update(self._table(Search)).where(Search.id == search_id)
                .values(status=status, finished_at=datetime.now(timezone.utc))
            )

    # ------------------------------------------------------------- architectures
    def start_architecture(
        self,
        search_id: int,
        index: int,
        generation: int = 0,
        genome_id: int | None = None,
        arch: Mapping[str, Any] | None = None,
        train_params: Mapping[str, Any] | None = None,
        flops: float | None = None,
        n_params: int | None = None,
        device: str | None = None,
    ) -> int:
        """The id of architecture (search, generation, index); an existing row is reused untouched."""
        values = {"search_id": search_id, "generation": generation, "index": index, "genome_id": genome_id,
                  "arch": dict(arch or {}), "train_params": dict(train_params or {}), "flops": _finite_or_none(flops),
                  "n_params": n_params, "device": device, "status": ArchitectureStatus.RUNNING,
                  "terminated_early": False, "created_at": datetime.now(timezone.utc)}
        return self._get_or_create(Architecture, values, ["search_id", "generation", "index"])

    def clear_architecture_trail(self, architecture_id: int) -> None:
        """Forget epochs, predictions and checkpoints of an unfinished architecture before retraining it.

        A search killed mid-training resumes by training that network again from
        scratch; clearing first guarantees no stale epoch survives past the new stop.
        """
        with self._begin() as connection:
            for model in (Epoch, Prediction, Checkpoint):
                connection.execute(delete(self._table(model)).where(model.architecture_id == architecture_id))
            connection.execute(update(self._table(Architecture)).where(Architecture.id == architecture_id)
                               .values(status=ArchitectureStatus.RUNNING, error=None))

    def architecture_status(self, architecture_id: int) -> str:
        with self.database.engine.connect() as connection:
            return connection.execute(select(Architecture.status).where(Architecture.id == architecture_id)).scalar_one()

    def finish_architecture(
        self,
        architecture_id: int,
        status: str = ArchitectureStatus.COMPLETED,
        final_acc: float | None = None,
        predicted_acc: float | None = None,
        fitness: float | None = None,
        terminated_early: bool = False,
        stop_epoch: float | None = None,
        wall_seconds: float | None = None,
        error: str | None = None,
        epochs_trained: float | None = None,
    ) -> None:
        """Close an architecture and fill the denormalized columns ``/models`` filters on.

        ``epochs_trained`` defaults to the highest epoch logged for it.
        """
        if status not in FINISHED_STATUSES:
            raise ValueError(f"status must be one of {FINISHED_STATUSES}, got {status!r}")
        metrics, flags = split_nonfinite(
            {"final_acc": final_acc, "predicted_acc": predicted_acc, "fitness": fitness, "wall_seconds": wall_seconds},
            ARCHITECTURE_METRICS,
        )
        with self._begin() as connection:
            if epochs_trained is None:
                epochs_trained = connection.execute(
                    select(Epoch.epoch).where(Epoch.architecture_id == architecture_id).order_by(Epoch.epoch.desc()).limit(1)
                ).scalar()
            connection.execute(
                update(self._table(Architecture)).where(Architecture.id == architecture_id).values(
                    status=status, terminated_early=bool(terminated_early), stop_epoch=stop_epoch,
                    epochs_trained=epochs_trained, error=error, nonfinite=flags,
                    finished_at=datetime.now(timezone.utc), **metrics,
                )
            )

    # -------------------------------------------------------------------- epochs
    @staticmethod
    def _epoch_row(architecture_id: int, epoch: float, metrics: Mapping[str, Any]) -> dict[str, Any]:
        clean, flags = split_nonfinite({key: metrics.get(key) for key in EPOCH_METRICS}, EPOCH_METRICS)
        return {"architecture_id": int(architecture_id), "epoch": float(epoch), **clean, "nonfinite": flags}

    def log_epoch(
        self,
        architecture_id: int,
        epoch: float,
        train_loss: float | None = None,
        train_acc: float | None = None,
        val_loss: float | None = None,
        val_acc: float | None = None,
        seconds: float | None = None,
    ) -> None:
        """Record one epoch; logging the same (architecture, epoch) again replaces it."""
        row = self._epoch_row(architecture_id, epoch, locals())
        with self._begin() as connection:
            self._upsert_many(Epoch, [row], ["architecture_id", "epoch"], connection)

    def bulk_epochs(self, rows: Iterable[Mapping[str, Any]], connection: Connection | None = None) -> int:
        """Insert or replace many epoch rows (each a mapping with architecture_id, epoch, metrics).

        Pass ``connection`` to make the rows part of a caller's transaction (per-file
        ingest); otherwise each call is its own transaction.
        """
        prepared = [self._epoch_row(row["architecture_id"], row["epoch"], row) for row in rows]
        return self._bulk(Epoch, prepared, ["architecture_id", "epoch"], connection)

    def _bulk(self, model: type, rows: list[dict[str, Any]], keys: Sequence[str], connection: Connection | None) -> int:
        if connection is None:
            with self._begin() as own:
                return self._bulk(model, rows, keys, own)
        for start in range(0, len(rows), BULK_CHUNK):
            self._upsert_many(model, rows[start:start + BULK_CHUNK], keys, connection)
        return len(rows)

    # --------------------------------------------------------------- predictions
    @staticmethod
    def prediction_row(row: Mapping[str, Any]) -> dict[str, Any]:
        """A prediction row as stored (NaN/inf as NULL plus flag); shared with the bulk loader."""
        return Recorder._prediction_row(row)

    @staticmethod
    def _prediction_row(row: Mapping[str, Any]) -> dict[str, Any]:
        clean, flags = split_nonfinite({"value": row.get("value"), "seconds": row.get("seconds")}, ("value", "seconds"))
        params = row.get("params")
        if params is not None:
            params = [None if p is None or not math.isfinite(float(p)) else float(p) for p in params]
        return {"architecture_id": int(row["architecture_id"]), "epoch": float(row["epoch"]),
                "target_epoch": float(row["target_epoch"]), "function": str(row["function"]),
                "params": params, "converged": bool(row.get("converged", False)), **clean, "nonfinite": flags}

    def log_prediction(
        self,
        architecture_id: int,
        epoch: float,
        target_epoch: float,
        value: float | None,
        function: str,
        params: Sequence[float] | None = None,
        converged: bool = False,
        seconds: float | None = None,
    ) -> None:
        """Record one engine interaction; the same (architecture, epoch, function) replaces the old row."""
        self.bulk_predictions([locals()])

    def bulk_predictions(self, rows: Iterable[Mapping[str, Any]], connection: Connection | None = None) -> int:
        prepared = [self._prediction_row(row) for row in rows]
        return self._bulk(Prediction, prepared, ["architecture_id", "epoch", "function"], connection)

    # --------------------------------------------------------------- checkpoints
    def log_checkpoint(self, architecture_id: int, epoch: float, path: str | Path, format: str = "torch") -> str:
        """Record a saved model state with its sha256 and size; returns the sha256."""
        path = Path(path)
        digest = file_sha256(path)
        row = {"architecture_id": architecture_id, "epoch": float(epoch), "uri": path.resolve().as_uri(),
               "sha256": digest, "size_bytes": path.stat().st_size, "format": format,
               "created_at": datetime.now(timezone.utc)}
        with self._begin() as connection:
            self._upsert_many(Checkpoint, [row], ["architecture_id", "epoch"], connection)
        return digest

    # -------------------------------------------------------------- publications
    def log_publication(self, search_id: int | None, target: str, manifest: Mapping[str, Any],
                        persistent_id: str | None = None, url: str | None = None) -> int:
        """Record an export or publish event; returns its id."""
        with self._begin() as connection:
            result = connection.execute(
                self._insert(self._table(Publication)).values(
                    search_id=search_id, target=target, manifest=dict(manifest), persistent_id=persistent_id,
                    url=url, created_at=datetime.now(timezone.utc),
                ).returning(Publication.id)
            )
            return int(result.scalar_one())
