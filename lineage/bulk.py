"""The bulk path of the Recorder: many rows per statement inside one importer transaction.

Importers (the 6000-NN tables: thousands of files, hundreds of thousands of epoch
rows) cannot afford the Recorder's one-upsert-per-call path, but must obey the same
rules: natural keys, NaN/inf as NULL plus a ``nonfinite`` flag
(:func:`a4nn.lineage.nonfinite.split_nonfinite`), finished architectures carrying the
denormalized columns ``/models`` filters on. :class:`BulkLoader` is that path. It is
reached as ``Recorder.bulk`` and writes on the connection of the Recorder's open
:meth:`~a4nn.lineage.recorder.Recorder.transaction`, so a file stays all or nothing.

Statements are compiled once per loader (not in module-level caches), and epoch rows
go to the DB-API driver as plain tuples: SQLAlchemy's per-row parameter processing
would cost more than the insert itself on a large ingest.
"""
from __future__ import annotations

import json
import math
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Mapping

from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import Connection

from a4nn.lineage.models import Architecture, Epoch, Prediction, Search
from a4nn.lineage.nonfinite import split_nonfinite

if TYPE_CHECKING:  # pragma: no cover
    from a4nn.lineage.recorder import Recorder

#: the columns of an epoch row handed to :meth:`BulkLoader.insert_epochs`, after ``architecture_id``
EPOCH_FIELDS = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "seconds")
_EPOCH_METRICS = EPOCH_FIELDS[1:]
_EPOCH_COLUMNS = ("architecture_id", *EPOCH_FIELDS, "nonfinite")
_ARCHITECTURE_METRICS = ("final_acc", "predicted_acc", "fitness", "flops", "wall_seconds")
_PREDICTION_COLUMNS = ("architecture_id", "epoch", "target_epoch", "value", "function", "params", "converged",
                       "seconds", "nonfinite")
EpochRow = tuple  # (epoch, train_loss, train_acc, val_loss, val_acc, seconds)


def _all_finite(values: Iterable[Any]) -> bool:
    """True when no value is NaN/inf (None counts as finite: it is stored as NULL anyway).

    One sum instead of a test per value: NaN and inf survive addition (inf - inf is NaN),
    and ``None or 0.0`` is 0.0 while NaN and inf are truthy.
    """
    total = 0.0
    for value in values:
        total += value or 0.0
    return math.isfinite(total)


class BulkLoader:
    """Bulk writes of architectures and epochs for one :class:`~a4nn.lineage.recorder.Recorder`."""

    def __init__(self, recorder: "Recorder"):
        self.recorder = recorder
        self._sql: dict[str, tuple[str, bool]] = {}

    @property
    def connection(self) -> Connection:
        connection = self.recorder.connection
        if connection is None:
            raise RuntimeError("BulkLoader writes inside Recorder.transaction() only")
        return connection

    # ------------------------------------------------------------------ reads the importers need
    def find_search(self, name: str) -> tuple[int, int | None, dict[str, Any]] | None:
        """(id, dataset_id, config) of the search called ``name``, or None."""
        row = self.connection.execute(select(Search.id, Search.dataset_id, Search.config).where(Search.name == name)).first()
        return None if row is None else (int(row[0]), row[1], dict(row[2] or {}))

    def architectures(self, search_id: int) -> Iterator[tuple[int, int, int, dict[str, Any], dict[str, Any]]]:
        """(id, generation, index, arch, train_params) of every architecture of a search."""
        rows = self.connection.execute(select(Architecture.id, Architecture.generation, Architecture.index,
                                              Architecture.arch, Architecture.train_params)
                                       .where(Architecture.search_id == search_id))
        for architecture_id, generation, index, arch, train_params in rows:
            yield int(architecture_id), int(generation), int(index), dict(arch or {}), dict(train_params or {})

    def count_architectures(self, search_id: int) -> int:
        return int(self.connection.execute(select(func.count()).select_from(Architecture)
                                           .where(Architecture.search_id == search_id)).scalar_one())

    # ------------------------------------------------------------------ searches
    def update_search(self, search_id: int, **values: Any) -> None:
        """Set columns of a search row (e.g. its data set once a collection turns out to mix several)."""
        self.connection.execute(update(Search).where(Search.id == search_id).values(**values))

    # ------------------------------------------------------------------ architectures
    @staticmethod
    def _architecture_values(values: Mapping[str, Any]) -> dict[str, Any]:
        """NaN/inf metrics as NULL plus the ``nonfinite`` flag, the Recorder's rule."""
        present = tuple(field for field in _ARCHITECTURE_METRICS if field in values)
        clean, flags = split_nonfinite(values, present)
        clean["nonfinite"] = flags
        return clean

    def insert_architecture(self, values: Mapping[str, Any]) -> int:
        """Insert one architecture row (search_id, generation, index and the finished columns); returns its id."""
        row = self._architecture_values(values)
        row.setdefault("created_at", datetime.now(timezone.utc))
        result = self.connection.execute(insert(Architecture.__table__), row)
        return int(result.inserted_primary_key[0])

    def update_architecture(self, architecture_id: int, values: Mapping[str, Any]) -> None:
        self.connection.execute(update(Architecture).where(Architecture.id == architecture_id)
                                .values(**self._architecture_values(values)))

    # ------------------------------------------------------------------ epochs
    def _statement(self, table: Any, columns: tuple[str, ...]) -> tuple[str, bool]:
        """An INSERT of ``columns`` compiled once for this database, and whether its driver takes positional parameters."""
        if table.name not in self._sql:
            compiled = insert(table).compile(dialect=self.connection.dialect, column_keys=list(columns))
            if compiled.positional and tuple(compiled.positiontup or ()) != columns:
                raise RuntimeError(f"unexpected {table.name} column order {compiled.positiontup}")
            self._sql[table.name] = (str(compiled), bool(compiled.positional))
        return self._sql[table.name]

    def _execute_many(self, table: Any, columns: tuple[str, ...], params: list[tuple]) -> int:
        if not params:
            return 0
        sql, positional = self._statement(table, columns)
        self.connection.exec_driver_sql(sql, params if positional else [dict(zip(columns, p)) for p in params])
        return len(params)

    def insert_epochs(self, architecture_id: int, rows: Iterable[EpochRow]) -> int:
        """Insert epoch rows ``(epoch, train_loss, train_acc, val_loss, val_acc, seconds)`` of one architecture.

        Plain INSERT: an (architecture, epoch) already stored is an integrity error,
        so callers insert a curve once (or clear it first) and never double-count.
        """
        return self.insert_epoch_rows((architecture_id, *row) for row in rows)

    def insert_epoch_rows(self, rows: Iterable[tuple]) -> int:
        """Like :meth:`insert_epochs` for rows of several architectures: ``(architecture_id, epoch, ...)``."""
        params = []
        for architecture_id, epoch, *metrics in rows:
            flags = None
            if not _all_finite(metrics):
                clean, found = split_nonfinite(dict(zip(_EPOCH_METRICS, metrics)), _EPOCH_METRICS)
                metrics = [clean[name] for name in _EPOCH_METRICS]
                flags = json.dumps(found) if found else None
            params.append((architecture_id, epoch, *metrics, flags))
        return self._execute_many(Epoch.__table__, _EPOCH_COLUMNS, params)

    # ------------------------------------------------------------------ predictions
    def insert_predictions(self, rows: Iterable[Mapping[str, Any]]) -> int:
        """Insert prediction rows (the mappings :meth:`Recorder.log_prediction` takes, with ``architecture_id``).

        The Recorder's own row rule (NaN/inf value and seconds as NULL plus flag,
        non-finite fitted parameters as null) prepares each row; plain INSERT, so an
        (architecture, epoch, function) is written once.
        """
        from a4nn.lineage.recorder import Recorder

        params = []
        for row in rows:
            p = Recorder.prediction_row(row)
            params.append((p["architecture_id"], p["epoch"], p["target_epoch"], p["value"], p["function"],
                           None if p["params"] is None else json.dumps(p["params"]), p["converged"], p["seconds"],
                           None if p["nonfinite"] is None else json.dumps(p["nonfinite"])))
        return self._execute_many(Prediction.__table__, _PREDICTION_COLUMNS, params)
