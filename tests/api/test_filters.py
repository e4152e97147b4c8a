"""The filter grammar and keyset query builder, below HTTP (shared by the API and the CLI)."""
from __future__ import annotations

import base64
import json

import pytest

from a4nn.lineage import filters
from a4nn.lineage.filters import FilterError, build_filter, find_models, parse_filter


@pytest.fixture
def models(recorder):
    """Two searches; some networks failed (no accuracy) so sorting meets NULLs; accuracy ties."""
    low = recorder.register_dataset("d-low", "xfel-sim", {"beam": "low"})
    medium = recorder.register_dataset("d-medium", "xfel-sim", {"beam": "medium"})
    engine = recorder.register_engine_config("pow3", 3, 25, 3, 0.5)
    ids: dict[str, list[int]] = {"a": [], "b": []}
    for name, dataset, config in (("a", low, engine), ("b", medium, None)):
        search = recorder.start_search(name, "nsga-net-macro", dataset, config, {"epochs": 4})
        for i in range(7):
            arch = recorder.start_architecture(search, index=i, generation=i % 2, flops=10.0 * (i + 1), n_params=1000 * i)
            if i == 6:
                recorder.finish_architecture(arch, "failed", error="CUDA out of memory")
            else:
                recorder.finish_architecture(arch, final_acc=90.0 + min(i, 4), predicted_acc=float("nan") if i == 1 else 91.0,
                                             terminated_early=i % 2 == 0, epochs_trained=4)
            ids[name].append(arch)
    return ids


def _all(database, text: str) -> list[dict]:
    rows, cursor = [], None
    while True:
        query = parse_filter(text + (f"&cursor={cursor}" if cursor else ""))
        with database.engine.connect() as connection:
            page = find_models(connection, query)
        rows.extend(page.items)
        cursor = page.next_cursor
        if cursor is None:
            return rows


@pytest.mark.parametrize("sort", ["acc", "-acc", "pred", "-pred", "flops", "-id", "generation", "-params"])
@pytest.mark.parametrize("limit", [1, 3, 50])
def test_every_row_once_in_order_with_nulls_last(database, models, sort: str, limit: int) -> None:
    rows = _all(database, f"sort={sort}&limit={limit}")
    assert sorted(r["id"] for r in rows) == sorted(models["a"] + models["b"])
    key = {"acc": "final_acc", "pred": "predicted_acc", "flops": "flops", "id": "id", "generation": "generation",
           "params": "n_params"}[sort.lstrip("-")]
    valued = [r for r in rows if r[key] is not None]
    tail = rows[len(valued):]
    assert all(r[key] is None for r in tail), "rows without a value come after every valued row"
    descending = sort.startswith("-")
    expected = sorted(valued, key=lambda r: (r[key], r["id"]), reverse=descending)
    assert [r["id"] for r in valued] == [r["id"] for r in expected]
    assert [r["id"] for r in tail] == sorted((r["id"] for r in tail), reverse=descending)


def test_search_terms_by_name_id_beam_and_function(database, models) -> None:
    assert {r["id"] for r in _all(database, "beam=low")} == set(models["a"])
    assert {r["id"] for r in _all(database, "beam=low,medium&status=failed")} == {models["a"][6], models["b"][6]}
    assert {r["id"] for r in _all(database, "function=pow3&acc>=94")} == set(models["a"][4:6])
    assert {r["id"] for r in _all(database, "search!=a")} == set(models["b"])
    first = _all(database, "search=a")[0]["search_id"]
    assert {r["id"] for r in _all(database, f"search={first}")} == set(models["a"])
    assert _all(database, "dataset=nope") == []
    assert {r["id"] for r in _all(database, "early=false&acc<92")} == {models["a"][1], models["b"][1]}
    assert {r["id"] for r in _all(database, "params=1000,2000")} == {models["a"][1], models["a"][2],
                                                                      models["b"][1], models["b"][2]}


def test_both_scan_strategies_give_the_same_page(database, models, monkeypatch) -> None:
    expected = [r["id"] for r in _all(database, "beam=low&sort=-acc&limit=2")]
    monkeypatch.setattr(filters, "SELECTIVE_ROWS", 0)  # force the sort-index scan with the search-id index hidden
    assert [r["id"] for r in _all(database, "beam=low&sort=-acc&limit=2")] == expected


def _tamper(token: str, **changes) -> str:
    payload = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    payload.update(changes)
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


def test_cursor_is_tied_to_its_query_and_checked(database, models) -> None:
    query = parse_filter("sort=-acc&limit=2")
    with database.engine.connect() as connection:
        token = find_models(connection, query).next_cursor
    assert token
    parse_filter(f"sort=-acc&limit=5&cursor={token}")  # another page size is fine
    for bad in (f"sort=acc&cursor={token}", f"sort=-acc&beam=low&cursor={token}", f"sort=-acc&cursor={token[:-2]}",
                f"sort=-acc&cursor={_tamper(token, v='x')}", f"sort=-acc&cursor={_tamper(token, i=2**70)}",
                "sort=-acc&cursor=%00%01", "sort=-acc&cursor=" + "A" * 600):
        with pytest.raises(FilterError, match="bad cursor"):
            parse_filter(bad)


@pytest.mark.parametrize("text, message", [
    ("acc>", "bad value"), ("acc=1e999", "finite"), ("params<1.5", "an integer from"),
    ("params>2147483648", "an integer from"), ("generation=99999999999999999999", "an integer from"), ("early=maybe", "true or false"),
    ("beam=" + "x" * 300, "at most 255"), ("beam<low", "does not apply"), ("sort=-beam", "sortable fields"),
    ("limit=0", "limit"), ("limit=1001", "limit"), ("sort>acc", "takes '='"), ("&".join(["acc>1"] * 51), "too many"),
    ("acc=" + ",".join(["1"] * 101), "too many values"), ("weight>3", "valid fields: acc, pred"),
])
def test_errors_name_what_is_valid(text: str, message: str) -> None:
    with pytest.raises(FilterError, match=message):
        parse_filter(text)


def test_build_filter_round_trips_python_values() -> None:
    text = build_filter("sort=-acc", beam=["low", "high"], acc=">99", early=True, search="a&b c")
    assert text == "sort=-acc&beam=low,high&acc>99&early=true&search=a%26b%20c"
    parsed = parse_filter(text)
    assert parsed.terms == ["beam=low,high", "acc>99", "early=true", "search=a&b c"]


def test_queries_of_one_shape_bind_their_own_values(database, models) -> None:
    """Statements are cached by shape: a later query of the same shape must not see an earlier one's values."""
    assert {r["id"] for r in _all(database, "acc>=94")} == {models["a"][4], models["a"][5], models["b"][4], models["b"][5]}
    assert {r["id"] for r in _all(database, "acc>=93")} == {m[i] for m in models.values() for i in (3, 4, 5)}
    assert {r["id"] for r in _all(database, "beam=low&acc>92&sort=-acc")} == set(models["a"][3:6])
    assert {r["id"] for r in _all(database, "beam=medium&acc>93&sort=-acc")} == set(models["b"][4:6])
    # the same terms in another order, with the search term first
    assert {r["id"] for r in _all(database, "acc>93&beam=low&sort=-acc")} == set(models["a"][4:6])
    assert {r["id"] for r in _all(database, "search=b&params=1000,2000")} == set(models["b"][1:3])
    assert {r["id"] for r in _all(database, "search=a&params=3000,4000")} == set(models["a"][3:5])


def test_a_condition_run_without_its_values_fails_loudly(database, models) -> None:
    """The filter's parameters carry no values of their own, so a caller that forgets to bind cannot reuse stale ones."""
    from sqlalchemy import select
    from sqlalchemy.exc import StatementError

    from a4nn.lineage.models import Architecture

    query = parse_filter("acc>93")
    statement = select(Architecture.id).where(*query.conditions)
    with database.engine.connect() as connection:
        assert len(connection.execute(statement, query.params).all()) == 4
        with pytest.raises(StatementError, match="a0"):
            connection.execute(statement).all()


def test_beam_page_walks_the_covering_sort_index(database, recorder, monkeypatch) -> None:
    """Revision 0002's (final_acc, id, search_id) index serves ``beam=...&acc>...&sort=-acc`` without a sort."""
    if database.engine.dialect.name != "sqlite":
        pytest.skip("query plans are SQLite's")
    monkeypatch.setattr(filters, "SELECTIVE_ROWS", 2)
    for beam in ("low", "high"):
        search = recorder.start_search(f"s-{beam}", "nsga-net-macro",
                                       recorder.register_dataset(f"d-{beam}", "xfel-sim", {"beam": beam}), None, {})
        for i in range(5):
            arch = recorder.start_architecture(search, index=i, generation=0)
            recorder.finish_architecture(arch, final_acc=95.0 + i, epochs_trained=4)
    query = parse_filter("beam=low&acc>96&sort=-acc&limit=2")
    with database.engine.connect() as connection:
        scope = filters._search_scope(connection, query)
        assert scope.kind == "in-hidden"
        bound = query.statement(scope).params(**query.bind(scope))
        sql = str(bound.compile(dialect=connection.dialect, compile_kwargs={"literal_binds": True}))
        plan = " ".join(str(row[3]) for row in connection.exec_driver_sql("EXPLAIN QUERY PLAN " + sql))
        page = find_models(connection, query)
    assert "ix_architectures_final_acc_id_search_id" in plan
    assert [r["final_acc"] for r in page.items] == [99.0, 98.0] and {r["beam"] for r in page.items} == {"low"}
