"""The model filter grammar shared by the REST API and the CLI.

``beam=low&acc>99&flops<=500&sort=-acc&limit=50`` is parsed from the *raw* query
string, so ``acc>99`` works as typed (a standard parser would see a key ``acc>99``
with no value). Terms are joined with AND; ``field=a,b`` means IN. Every problem
(unknown field, bad operator, bad value, bad cursor, limit over the cap) raises
:class:`FilterError` with a message that names what is valid; the API answers 400.

Pagination is keyset-based: the cursor is an opaque token of the last row's sort
value and id, so pages stay stable while rows are added.
"""
from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass, field
from typing import Any, Callable
from urllib.parse import unquote_plus

from sqlalchemy import Select, and_, or_, select

from a4nn.errors import A4nnError
from a4nn.lineage.models import Architecture, Dataset, EngineConfig, Genome, Search

OPERATORS = ("<=", ">=", "!=", "=", "<", ">")
RESERVED = ("sort", "limit", "cursor", "format")
DEFAULT_LIMIT = 50
MAX_LIMIT = 1000
TERM = re.compile(r"^([A-Za-z_]+)(<=|>=|!=|=|<|>)(.*)$", re.DOTALL)


class FilterError(A4nnError):
    """A filter the grammar cannot accept; the message says what would be valid."""


def _number(text: str) -> float:
    value = float(text)
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(text)
    return value


def _integer(text: str) -> int:
    return int(text)


def _boolean(text: str) -> bool:
    lowered = text.lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise ValueError(text)


def _text(text: str) -> str:
    if not text or len(text) > 255:
        raise ValueError(text)
    return text


@dataclass(frozen=True)
class Field:
    column: Any
    parse: Callable[[str], Any]
    ordered: bool  # supports < <= > >= and sorting


FIELDS: dict[str, Field] = {
    "acc": Field(Architecture.final_acc, _number, True),
    "pred": Field(Architecture.predicted_acc, _number, True),
    "fitness": Field(Architecture.fitness, _number, True),
    "flops": Field(Architecture.flops, _number, True),
    "params": Field(Architecture.n_params, _integer, True),
    "epochs": Field(Architecture.epochs_trained, _number, True),
    "generation": Field(Architecture.generation, _integer, True),
    "id": Field(Architecture.id, _integer, True),
    "search": Field(Search.id, _text, False),  # an id or a name, resolved in _condition
    "dataset": Field(Dataset.name, _text, False),
    "beam": Field(Dataset.beam, _text, False),
    "nas": Field(Search.nas, _text, False),
    "early": Field(Architecture.terminated_early, _boolean, False),
    "function": Field(EngineConfig.function, _text, False),
    "status": Field(Architecture.status, _text, False),
}


#: the architecture columns a model list shows; the JSON blobs (arch, train_params) stay in the table
SUMMARY_COLUMNS = tuple(Architecture.__table__.c[name] for name in (
    "id", "search_id", "generation", "index", "genome_id", "flops", "n_params", "status", "epochs_trained",
    "terminated_early", "stop_epoch", "final_acc", "predicted_acc", "fitness", "wall_seconds"))


@dataclass
class ModelQuery:
    """A parsed filter: conditions, sort, page size and the keyset position."""

    conditions: list[Any] = field(default_factory=list)
    sort_field: str = "id"
    descending: bool = False
    limit: int = DEFAULT_LIMIT
    after: tuple[Any, int] | None = None
    output_format: str | None = None
    terms: list[str] = field(default_factory=list)

    def statement(self) -> Select:
        """SELECT of architectures joined with search, dataset, genome and engine config."""
        column = FIELDS[self.sort_field].column
        statement = (
            select(*SUMMARY_COLUMNS, Search.name.label("search_name"), Search.nas, Dataset.name.label("dataset_name"),
                   Dataset.beam, Genome.bits.label("genome_bits"), EngineConfig.function)
            .join(Search, Search.id == Architecture.search_id)
            .outerjoin(Dataset, Dataset.id == Search.dataset_id)
            .outerjoin(Genome, Genome.id == Architecture.genome_id)
            .outerjoin(EngineConfig, EngineConfig.id == Search.engine_config_id)
            .where(*self.conditions)
        )
        if self.sort_field != "id":
            statement = statement.where(column.is_not(None))  # keyset pages need a value to compare
        if self.after is not None:
            value, last_id = self.after
            if self.sort_field == "id":
                statement = statement.where(Architecture.id < last_id if self.descending else Architecture.id > last_id)
            elif self.descending:
                statement = statement.where(or_(column < value, and_(column == value, Architecture.id < last_id)))
            else:
                statement = statement.where(or_(column > value, and_(column == value, Architecture.id > last_id)))
        if self.descending:
            order = [column.desc(), Architecture.id.desc()] if self.sort_field != "id" else [Architecture.id.desc()]
        else:
            order = [column.asc(), Architecture.id.asc()] if self.sort_field != "id" else [Architecture.id.asc()]
        return statement.order_by(*order).limit(self.limit + 1)

    def cursor_for(self, row: Any) -> str:
        """The opaque position after ``row`` (a result row of :meth:`statement`)."""
        values = row._mapping
        value = values[FIELDS[self.sort_field].column.key]
        payload = json.dumps([self.sort_field, self.descending, value, values["id"]]).encode()
        return base64.urlsafe_b64encode(payload).decode().rstrip("=")


def _valid_fields() -> str:
    return ", ".join(FIELDS)


def _condition(name: str, operator: str, raw: str) -> Any:
    spec = FIELDS[name]
    values = raw.split(",") if operator in ("=", "!=") and "," in raw else [raw]
    if operator not in ("=", "!=") and not spec.ordered:
        raise FilterError(f"operator {operator!r} does not apply to {name!r}; use = or != (or {name}=a,b)")
    try:
        parsed = [spec.parse(value) for value in values]
    except ValueError:
        kind = {_number: "a number", _integer: "an integer", _boolean: "true or false", _text: "a non-empty text"}[spec.parse]
        raise FilterError(f"bad value {raw!r} for {name!r}: expected {kind}") from None
    column = spec.column
    if name == "search":
        ids = [int(v) for v in parsed if v.isdigit()]
        names = [v for v in parsed if not v.isdigit()]
        matches = or_(Search.id.in_(ids), Search.name.in_(names))
        return ~matches if operator == "!=" else matches
    if len(parsed) > 1:
        return column.not_in(parsed) if operator == "!=" else column.in_(parsed)
    value = parsed[0]
    comparisons = {"=": column.__eq__, "!=": column.__ne__, "<": column.__lt__, "<=": column.__le__,
                   ">": column.__gt__, ">=": column.__ge__}
    return comparisons[operator](value)


def _decode_cursor(token: str, query: ModelQuery) -> tuple[Any, int]:
    try:
        padded = token + "=" * (-len(token) % 4)
        sort_field, descending, value, last_id = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, binascii.Error, TypeError, UnicodeDecodeError):
        raise FilterError("bad cursor: pass the 'next' link of the previous page unchanged") from None
    if sort_field != query.sort_field or descending != query.descending or not isinstance(last_id, int) \
            or not (value is None or isinstance(value, (int, float, str))):
        raise FilterError("bad cursor: it belongs to a different sort order or was altered")
    return value, last_id


def parse_filter(query_string: str, max_limit: int = MAX_LIMIT) -> ModelQuery:
    """Parse a raw query string such as ``beam=low&acc>99&sort=-acc&limit=50``."""
    query = ModelQuery()
    cursor: str | None = None
    for part in filter(None, (query_string or "").split("&")):
        term = unquote_plus(part)
        match = TERM.match(term)
        if not match:
            raise FilterError(f"cannot parse {term!r}: write FIELD OP VALUE with OP one of {' '.join(OPERATORS)}; "
                              f"fields: {_valid_fields()}")
        name, operator, value = match.groups()
        if name in RESERVED:
            if operator != "=":
                raise FilterError(f"{name} takes '=', not {operator!r}")
            if name == "sort":
                descending = value.startswith("-")
                key = value.lstrip("-+")
                if key not in FIELDS or not FIELDS[key].ordered:
                    raise FilterError(f"cannot sort by {key!r}; sortable fields: "
                                      f"{', '.join(k for k, f in FIELDS.items() if f.ordered)}")
                query.sort_field, query.descending = key, descending
            elif name == "limit":
                if not value.isdigit() or not 1 <= int(value) <= max_limit:
                    raise FilterError(f"limit must be an integer from 1 to {max_limit}")
                query.limit = int(value)
            elif name == "cursor":
                cursor = value
            else:
                if value not in ("json", "csv", "parquet"):
                    raise FilterError("format must be json, csv or parquet")
                query.output_format = value
            continue
        if name not in FIELDS:
            raise FilterError(f"unknown field {name!r}; valid fields: {_valid_fields()}; "
                              f"also sort, limit, cursor, format")
        query.conditions.append(_condition(name, operator, value))
        query.terms.append(part)
    if cursor is not None:
        query.after = _decode_cursor(cursor, query)
    return query
