"""The model filter grammar and query builder shared by the REST API and the CLI.

``beam=low&acc>99&flops<=500&sort=-acc&limit=50`` is parsed from the *raw* query
string, so ``acc>99`` works as typed (a standard parser would see a key ``acc>99``
with no value). Terms are joined with AND; ``field=a,b`` means IN and
``field!=a,b`` NOT IN. Every problem (unknown field, bad operator, bad value, bad
cursor, limit over the cap) raises :class:`FilterError`, whose message names what
is valid; the API answers 400 with it.

Pagination is keyset-based: the cursor is an opaque token holding the last row's
sort value and id, so pages stay stable while rows are added and deep pages cost
as little as the first. Rows whose sort value is NULL (a failed network has no
accuracy) are not dropped: they follow the valued rows, ordered by id.

Query execution (:func:`find_models`) is tuned for SQLite without planner
statistics: search-level terms (search, dataset, beam, nas, function) are first
resolved to search ids on the small tables, then one single-table statement over
``architectures`` lets the sort column's index drive a top-N scan. See
:func:`_search_scope` for why the search-id index is sometimes hidden.

Every value a filter carries is a bound parameter, so queries that differ only in
their values (``acc>99`` and ``acc>98``, one cursor and the next) share one
statement: :func:`_cached` builds each statement shape once per process and later
queries only bind their values. Building SQLAlchemy expressions cost more than
running the query on a large database (``benchmarks/api.py``; its numbers are in the README).
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping
from urllib.parse import quote, unquote_plus

from sqlalchemy import ColumnElement, Integer, Select, and_, bindparam, false, func, literal, or_, select
from sqlalchemy.engine import Connection

from a4nn.errors import A4nnError
from a4nn.lineage.models import Architecture, Dataset, EngineConfig, Genome, Search
from a4nn.lineage.status import ArchitectureStatus
from a4nn.lineage.urls import display_url

OPERATORS = ("=", "!=", ">", ">=", "<", "<=")
RESERVED = ("sort", "limit", "cursor", "format", "total")
FORMATS = ("json", "csv", "parquet")
DEFAULT_LIMIT = 50
MAX_LIMIT = 1000
MAX_TERMS = 50
MAX_IN_VALUES = 100
#: the lineage ids and counts are SQL INTEGER (32-bit on PostgreSQL): larger values would overflow the bind cast
INT32 = (-(2**31), 2**31 - 1)
#: below this many architectures in the selected searches, sorting them beats scanning the sort index
SELECTIVE_ROWS = 2000
TERM = re.compile(r"^([A-Za-z_]+)(<=|>=|!=|=|<|>)(.*)$", re.DOTALL)
#: how much of a rejected value a message repeats (a 64 kB value must not come back whole)
SHOWN_CHARS = 80
BEAMS = ("low", "medium", "high")


def shown(text: str, limit: int = SHOWN_CHARS) -> str:
    """``repr`` of ``text`` cut to ``limit`` characters (then ``...``), for error messages."""
    return repr(text) if len(text) <= limit else repr(text[:limit]) + "..."


class FilterError(A4nnError):
    """A filter the grammar cannot accept; the message says what would be valid."""


# ----------------------------------------------------------------- value parsers
def _number(text: str) -> float:
    value = float(text.strip())
    if not math.isfinite(value):
        raise ValueError(text)
    return value


def _integer(text: str) -> int:
    text = text.strip()
    if not re.fullmatch(r"[+-]?[0-9]{1,10}", text):
        raise ValueError(text)
    value = int(text)
    if not INT32[0] <= value <= INT32[1]:
        raise ValueError(text)
    return value


def _boolean(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise ValueError(text)


def _text(text: str) -> str:
    # PostgreSQL rejects NUL in text; over-long values cannot match a String(255) column
    if not text or len(text) > 255 or "\x00" in text:
        raise ValueError(text)
    return text


EXPECTED = {_number: "a finite number", _integer: f"an integer from {INT32[0]} to {INT32[1]}", _boolean: "true or false",
            _text: "a non-empty text of at most 255 characters"}


@dataclass(frozen=True)
class Field:
    """One filterable name: the column it reads, how its values parse, whether it is ordered."""

    column: Any
    parse: Callable[[str], Any]
    ordered: bool  # supports < <= > >= and sorting
    on_search: bool = False  # a property of the search (resolved to search ids first)
    help: str = ""
    choices: tuple[str, ...] = ()  # the only values the field can hold (checked, listed in the message)


FIELDS: dict[str, Field] = {
    "acc": Field(Architecture.final_acc, _number, True, help="final validation accuracy (%)"),
    "pred": Field(Architecture.predicted_acc, _number, True, help="accuracy predicted by the engine (%)"),
    "fitness": Field(Architecture.fitness, _number, True, help="fitness handed to the NAS"),
    "flops": Field(Architecture.flops, _number, True, help="MFLOPs (multiply-accumulates / 1e6)"),
    "params": Field(Architecture.n_params, _integer, True, help="number of trainable parameters"),
    "epochs": Field(Architecture.epochs_trained, _number, True, help="epochs actually trained"),
    "generation": Field(Architecture.generation, _integer, True, help="NAS generation"),
    "id": Field(Architecture.id, _integer, True, help="model id"),
    "early": Field(Architecture.terminated_early, _boolean, False, help="terminated early by the engine"),
    "status": Field(Architecture.status, _text, False, help="running, completed, stopped or failed",
                    choices=tuple(s.value for s in ArchitectureStatus)),
    "search": Field(Search.id, _text, False, True, help="search id or name"),
    "dataset": Field(Dataset.name, _text, False, True, help="dataset name"),
    "beam": Field(Dataset.beam, _text, False, True, help="beam intensity: low, medium or high", choices=BEAMS),
    "nas": Field(Search.nas, _text, False, True, help="NAS kind, e.g. nsga-net-macro"),
    "function": Field(EngineConfig.function, _text, False, True, help="engine curve function, e.g. a-b^(c-x)"),
}
SORTABLE = tuple(name for name, spec in FIELDS.items() if spec.ordered)

#: the architecture columns a model list shows; the JSON blobs (arch, train_params) stay in the table
SUMMARY_COLUMNS = tuple(Architecture.__table__.c[name] for name in (
    "id", "search_id", "generation", "index", "genome_id", "flops", "n_params", "status", "epochs_trained",
    "terminated_early", "stop_epoch", "final_acc", "predicted_acc", "fitness", "wall_seconds"))
#: what a list row carries about the model's search (looked up once per page)
SEARCH_COLUMNS = (Search.id.label("search_id"), Search.name.label("search_name"), Search.nas,
                  Dataset.name.label("dataset_name"), Dataset.beam, EngineConfig.function)


def grammar_help() -> str:
    """One line per field, for --help texts and the OpenAPI description."""
    lines = [f"{name}: {spec.help}" for name, spec in FIELDS.items()]
    return "; ".join(lines)


# ------------------------------------------------------------------- the query
@dataclass
class ModelQuery:
    """A parsed filter: conditions, sort, page size and the keyset position."""

    conditions: list[Any] = field(default_factory=list)
    search_conditions: list[Any] = field(default_factory=list)
    filtered_fields: set[str] = field(default_factory=set)
    sort_field: str = "id"
    descending: bool = False
    limit: int = DEFAULT_LIMIT
    after: tuple[Any, int] | None = None
    output_format: str | None = None
    #: ``total=true``: also count every matching model (costs a scan of the matches, so only on request)
    want_total: bool = False
    terms: list[str] = field(default_factory=list)
    #: bound values of the terms, by parameter name (``a0, a1, ...`` architecture-level, ``s0, ...`` search-level);
    #: the conditions' parameters carry no values, so a statement run without them fails instead of reusing stale ones
    params: dict[str, Any] = field(default_factory=dict)
    #: (field, operator, is-a-list) per architecture-level / search-level term: what a cached statement depends on
    shape: list[tuple[str, str, bool]] = field(default_factory=list)
    search_shape: list[tuple[str, str, bool]] = field(default_factory=list)

    @property
    def sort_column(self) -> Any:
        return FIELDS[self.sort_field].column

    def fingerprint(self) -> str:
        """Ties a cursor to the filter and order it was made for."""
        canonical = "&".join(sorted(self.terms)) + f"|{self.sort_field}|{int(self.descending)}"
        return hashlib.sha256(canonical.encode()).hexdigest()[:12]

    def cursor_for(self, row: Mapping[str, Any]) -> str:
        """The opaque position after ``row`` (a mapping with ``id`` and the sort column)."""
        value = row[self.sort_column.key]
        payload = {"v": value, "i": int(row["id"]), "f": self.fingerprint()}
        text = json.dumps(payload, separators=(",", ":"), sort_keys=True)
        payload["c"] = hashlib.sha256(text.encode()).hexdigest()[:8]
        return base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode().rstrip("=")

    def _keyset_kind(self, nulls: bool) -> str:
        """Which keyset condition a page needs: none, by id only, or by (sort value, id)."""
        if self.after is None:
            return "none"
        value, _last_id = self.after
        if self.sort_field == "id":
            return "id"
        if nulls:
            # a NULL-valued cursor continues inside the NULL tail; a valued one starts it from the top
            return "id" if value is None else "none"
        return "behind-null" if value is None else "value"  # the valued rows are all behind a NULL-valued cursor

    def statement(self, scope: "SearchScope | None" = None, *, nulls: bool = False) -> Select:
        """One page of architecture summary columns, joined with search/dataset/genome/engine names.

        ``nulls=True`` selects the tail of rows whose sort value is NULL. The page is
        chosen in a sub-query over ``architectures`` alone so the sort index can
        drive it; the joins only decorate the chosen rows. Values are bound
        parameters (see :meth:`bind`); the statement is shared by every query of
        the same shape.
        """
        scope = scope or SearchScope.everything()
        key = ("page", tuple(self.shape), self.sort_field, self.descending, self._keyset_kind(nulls), nulls,
               scope.kind)
        return _cached(key, lambda: self._build_statement(scope, nulls))

    def bind(self, scope: "SearchScope | None" = None, *, limit: int | None = None) -> dict[str, Any]:
        """The parameter values of :meth:`statement` for this query (``limit``: rows to fetch)."""
        values = dict(self.params)
        values["page_limit"] = self.limit + 1 if limit is None else limit
        if scope is not None and scope.kind in ("in", "in-hidden"):
            values["search_ids"] = list(scope.ids)
        if self.after is not None:
            values["after_value"], values["after_id"] = self.after
        return values

    def _build_statement(self, scope: "SearchScope", nulls: bool) -> Select:
        column, ordered_by_id = self.sort_column, self.sort_field == "id"
        where = [*self.conditions, *scope.conditions()]
        id_order = Architecture.id.desc() if self.descending else Architecture.id.asc()
        if ordered_by_id:
            order = [id_order]
        elif nulls:
            where.append(column.is_(None))
            order = [id_order]
        else:
            where.append(column.is_not(None))
            order = [column.desc() if self.descending else column.asc(), id_order]
        where.extend(self._keyset(nulls))
        page = (select(*SUMMARY_COLUMNS).where(*where).order_by(*order)
                .limit(bindparam("page_limit", type_=Integer)).subquery("page"))
        decorated = (
            select(*page.c, Search.name.label("search_name"), Search.nas, Dataset.name.label("dataset_name"),
                   Dataset.beam, Genome.bits.label("genome_bits"), EngineConfig.function)
            .join(Search, Search.id == page.c.search_id)
            .outerjoin(Dataset, Dataset.id == Search.dataset_id)
            .outerjoin(Genome, Genome.id == page.c.genome_id)
            .outerjoin(EngineConfig, EngineConfig.id == Search.engine_config_id)
        )
        sort_key = page.c[column.key]
        page_id = page.c.id.desc() if self.descending else page.c.id.asc()
        if ordered_by_id or nulls:
            return decorated.order_by(page_id)
        return decorated.order_by(sort_key.desc() if self.descending else sort_key.asc(), page_id)

    def _keyset(self, nulls: bool) -> list[Any]:
        kind = self._keyset_kind(nulls)
        if kind == "none":
            return []
        last_id = bindparam("after_id", type_=Integer)
        after_id = Architecture.id < last_id if self.descending else Architecture.id > last_id
        if kind == "id":
            return [after_id]
        if kind == "behind-null":
            return [false()]
        column = self.sort_column
        value = bindparam("after_value", type_=column.type)
        beyond = column < value if self.descending else column > value
        return [or_(beyond, and_(column == value, after_id))]


#: statements by shape; bounded so that a client sending endless new shapes cannot grow it
_STATEMENTS: dict[tuple[Any, ...], Any] = {}
_STATEMENT_CACHE_SIZE = 512


def _cached(key: tuple[Any, ...], build: Callable[[], Any]) -> Any:
    """The statement for ``key``, built once (a race only builds it twice)."""
    statement = _STATEMENTS.get(key)
    if statement is None:
        if len(_STATEMENTS) >= _STATEMENT_CACHE_SIZE:
            _STATEMENTS.clear()
        statement = _STATEMENTS[key] = build()
    return statement


@dataclass(frozen=True)
class SearchScope:
    """Which searches a page may come from, and how the statement restricts them.

    ``kind``: ``all`` (no search-level term), ``none`` (terms matched no search),
    ``in`` (``search_id IN ids``, the search-id index may drive the scan) or
    ``in-hidden`` (``search_id + 0 IN ids``: the sort index drives it).
    """

    kind: str
    ids: tuple[int, ...] = ()

    @classmethod
    def everything(cls) -> "SearchScope":
        return cls("all")

    def conditions(self) -> list[Any]:
        if self.kind == "all":
            return []
        if self.kind == "none":
            return [false()]
        column = Architecture.search_id + 0 if self.kind == "in-hidden" else Architecture.search_id
        return [column.in_(bindparam("search_ids", expanding=True))]


@dataclass
class ModelPage:
    """One page of models: plain dict rows and the cursor of the next page (None at the end)."""

    items: list[dict[str, Any]]
    next_cursor: str | None


def _search_scope(connection: Connection, query: ModelQuery) -> SearchScope:
    """Resolve the search-level terms to the ids of the searches they select.

    Without planner statistics SQLite always prefers an equality index, so
    ``search_id IN (1)`` would make it fetch every network of the search and sort
    them, even when the sort column's index (which carries ``search_id``, revision
    0002) could stop after a few rows. When the selected searches hold many
    networks the search-id index is hidden (``+ 0``) and the sort index drives the
    scan; when they hold few, the search-id index wins. Searches only grow, so a
    set of searches once found large is remembered (for the life of the process)
    and not counted again; the two plans return the same rows either way.
    """
    if not query.search_conditions:
        return SearchScope.everything()
    resolve = _cached(("search-ids", tuple(query.search_shape)), lambda: (
        select(Search.id)
        .outerjoin(Dataset, Dataset.id == Search.dataset_id)
        .outerjoin(EngineConfig, EngineConfig.id == Search.engine_config_id)
        .where(*query.search_conditions)))
    ids = tuple(connection.execute(resolve, query.params).scalars())
    if not ids:
        return SearchScope("none")
    if connection.dialect.name != "sqlite" or query.sort_field == "id":
        return SearchScope("in", ids)
    # keyed by the display form: the same database whatever its password, and no secret kept in memory
    remembered = (display_url(connection.engine.url), ids)
    if remembered in _LARGE_SCOPES:
        return SearchScope("in-hidden", ids)
    probe = _cached(("search-size",), lambda: select(func.count()).select_from(
        select(literal(1)).where(Architecture.search_id.in_(bindparam("search_ids", expanding=True)))
        .limit(bindparam("probe_limit", type_=Integer)).subquery()))
    held = connection.execute(probe, {"search_ids": list(ids), "probe_limit": SELECTIVE_ROWS + 1}).scalar_one()
    if held <= SELECTIVE_ROWS:
        return SearchScope("in", ids)
    if len(_LARGE_SCOPES) >= _STATEMENT_CACHE_SIZE:
        _LARGE_SCOPES.clear()
    _LARGE_SCOPES.add(remembered)
    return SearchScope("in-hidden", ids)


#: (database URL, search ids) found to hold more than SELECTIVE_ROWS networks
_LARGE_SCOPES: set[tuple[str, tuple[int, ...]]] = set()


def count_models(connection: Connection, query: ModelQuery) -> int:
    """How many models match ``query`` over all pages (its cursor and limit aside)."""
    scope = _search_scope(connection, query)
    statement = _cached(("count", tuple(query.shape), scope.kind), lambda: (
        select(func.count()).select_from(Architecture).where(*query.conditions, *scope.conditions())))
    values = dict(query.params)
    if scope.kind in ("in", "in-hidden"):
        values["search_ids"] = list(scope.ids)
    return int(connection.execute(statement, values).scalar_one())


def find_models(connection: Connection, query: ModelQuery) -> ModelPage:
    """Run ``query``: one page of model summaries plus the next cursor."""
    scope = _search_scope(connection, query)
    rows: list[Any] = []
    by_id = query.sort_field == "id"
    in_null_tail = query.after is not None and query.after[0] is None and not by_id
    if not in_null_tail:
        rows = connection.execute(query.statement(scope), query.bind(scope)).all()
    # any term on the sort field rejects NULLs, so only unfiltered sort fields have a NULL tail
    if not by_id and len(rows) <= query.limit and query.sort_field not in query.filtered_fields:
        rows += connection.execute(query.statement(scope, nulls=True),
                                   query.bind(scope, limit=query.limit + 1 - len(rows))).all()
    page = [row._asdict() for row in rows[: query.limit]]
    more = len(rows) > query.limit
    return ModelPage(page, query.cursor_for(page[-1]) if more and page else None)


# ------------------------------------------------------------------- parsing
def _valid_fields() -> str:
    return ", ".join(FIELDS)


def _condition(name: str, operator: str, raw: str, key: str) -> tuple[Any, dict[str, Any], bool]:
    """(SQL condition with bound parameters named after ``key``, their values, whether it is a list).

    The parameters are required (no value inside the expression): callers execute
    with :attr:`ModelQuery.params`.
    """
    spec = FIELDS[name]
    if operator not in ("=", "!=") and not spec.ordered:
        raise FilterError(f"operator {operator!r} does not apply to {name!r}; use = or != (or {name}=a,b for IN)")
    values = raw.split(",") if operator in ("=", "!=") else [raw]
    if len(values) > MAX_IN_VALUES:
        raise FilterError(f"too many values for {name!r}: at most {MAX_IN_VALUES}")
    try:
        parsed = [spec.parse(value) for value in values]
    except ValueError:
        raise FilterError(f"bad value {shown(raw)} for {name!r}: expected {EXPECTED[spec.parse]}"
                          + (" (or a comma-separated list)" if operator in ("=", "!=") else "")) from None
    if spec.choices:
        unknown = [value for value in parsed if value not in spec.choices]
        if unknown:
            raise FilterError(f"bad value {shown(unknown[0])} for {name!r}: expected one of {', '.join(spec.choices)}"
                              f" (or a comma-separated list of them)")
    if name == "search":
        # a search is named by id or by name; both lists are always bound so the shape does not depend on which
        ids = [int(v) for v in parsed if v.isascii() and v.isdigit() and int(v) <= INT32[1]]
        bound = {f"{key}_ids": ids, f"{key}_names": parsed}
        matches = or_(Search.id.in_(bindparam(f"{key}_ids", expanding=True)),
                      Search.name.in_(bindparam(f"{key}_names", expanding=True)))
        return (~matches if operator == "!=" else matches), bound, True
    column = spec.column
    if len(parsed) > 1:
        values_param = bindparam(key, expanding=True, type_=column.type)
        return (column.not_in(values_param) if operator == "!=" else column.in_(values_param)), {key: parsed}, True
    value = bindparam(key, type_=column.type)
    comparisons: dict[str, Callable[[Any], ColumnElement[bool]]] = {
        "=": column.__eq__, "!=": column.__ne__, "<": column.__lt__, "<=": column.__le__,
        ">": column.__gt__, ">=": column.__ge__}
    return comparisons[operator](value), {key: parsed[0]}, False


def _decode_cursor(token: str, query: ModelQuery) -> tuple[Any, int]:
    bad = FilterError("bad cursor: pass the 'next' link of the previous page unchanged, "
                      "with the same filter and sort")
    try:
        if len(token) > 512:
            raise ValueError(token)
        padded = token + "=" * (-len(token) % 4)
        payload = json.loads(base64.urlsafe_b64decode(padded.encode()))
        checksum = payload.pop("c")
        value, last_id, fingerprint = payload["v"], payload["i"], payload["f"]
    except (ValueError, binascii.Error, TypeError, UnicodeDecodeError, KeyError, AttributeError):
        raise bad from None
    text = json.dumps(payload, separators=(",", ":"), sort_keys=True)
    if checksum != hashlib.sha256(text.encode()).hexdigest()[:8] or fingerprint != query.fingerprint():
        raise bad
    if isinstance(last_id, bool) or not isinstance(last_id, int) or not INT32[0] <= last_id <= INT32[1]:
        raise bad
    if value is not None:
        parse = FIELDS[query.sort_field].parse
        numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not numeric or (parse is _integer and not isinstance(value, int)) or not math.isfinite(value) \
                or (isinstance(value, int) and not INT32[0] <= value <= INT32[1]):
            raise bad
    elif query.sort_field == "id":
        raise bad
    return value, last_id


def _reserved(query: ModelQuery, name: str, operator: str, value: str, max_limit: int) -> str | None:
    """Apply sort/limit/format; returns the cursor token when ``name`` is ``cursor``."""
    if operator != "=":
        raise FilterError(f"{name} takes '=', not {operator!r}")
    if name == "sort":
        key = value[1:] if value[:1] in ("-", "+") else value
        if key not in FIELDS or not FIELDS[key].ordered:
            raise FilterError(f"cannot sort by {shown(key)}; sortable fields: {', '.join(SORTABLE)} (prefix - for descending)")
        query.sort_field, query.descending = key, value.startswith("-")
    elif name == "limit":
        if not (value.isascii() and value.isdigit() and len(value) <= 9 and 1 <= int(value) <= max_limit):
            raise FilterError(f"limit must be an integer from 1 to {max_limit}")
        query.limit = int(value)
    elif name == "cursor":
        return value
    elif name == "total":
        if value not in ("true", "false"):
            raise FilterError("total must be true or false")
        query.want_total = value == "true"
    else:
        if value and value not in FORMATS:
            raise FilterError(f"format must be one of {', '.join(FORMATS)} (or empty for the default)")
        query.output_format = value or None
    return None


def parse_filter(query_string: str, max_limit: int = MAX_LIMIT) -> ModelQuery:
    """Parse a raw query string such as ``beam=low&acc>99&sort=-acc&limit=50``."""
    query = ModelQuery()
    cursor: str | None = None
    parts = [part for part in (query_string or "").split("&") if part]
    if len(parts) > MAX_TERMS:
        raise FilterError(f"too many terms: at most {MAX_TERMS}")
    for part in parts:
        term = unquote_plus(part)
        match = TERM.match(term)
        if not match:
            raise FilterError(f"cannot parse {shown(term)}: write FIELD OP VALUE with OP one of "
                              f"{' '.join(OPERATORS)}; fields: {_valid_fields()}")
        name, operator, value = match.groups()
        if name in RESERVED:
            token = _reserved(query, name, operator, value, max_limit)
            cursor = token if token is not None else cursor
            continue
        if name not in FIELDS:
            raise FilterError(f"unknown field {shown(name)}; valid fields: {_valid_fields()}; also sort, limit, cursor, format, total")
        on_search = FIELDS[name].on_search
        # parameters are named by position within their shape, so equal shapes bind equal names
        key = f"s{len(query.search_shape)}" if on_search else f"a{len(query.shape)}"
        condition, bound, is_list = _condition(name, operator, value, key)
        (query.search_conditions if on_search else query.conditions).append(condition)
        (query.search_shape if on_search else query.shape).append((name, operator, is_list))
        query.params.update(bound)
        query.filtered_fields.add(name)
        query.terms.append(f"{name}{operator}{value}")
    if cursor is not None:
        query.after = _decode_cursor(cursor, query)
    return query


def build_filter(filter: str = "", **terms: Any) -> str:
    """A filter string from Python values: ``build_filter(beam="low", acc=">99", search=[1, 2])``.

    A string value may start with an operator (``">99"``, ``"!=low"``); lists and
    tuples become IN; booleans become ``true``/``false``. Values are URL-quoted so
    that names with ``&`` or spaces survive the trip.
    """
    parts = [filter] if filter else []
    for name, value in terms.items():
        operator = "="
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, (list, tuple, set)):
            text = ",".join(quote(str(v), safe="") for v in value)
        else:
            text = str(value)
            for candidate in ("<=", ">=", "!=", "=", "<", ">"):
                if text.startswith(candidate):
                    operator, text = candidate, text[len(candidate):]
                    break
            text = quote(text, safe=",")
        parts.append(f"{name}{operator}{text}")
    return "&".join(parts)
