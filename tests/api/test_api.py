"""The REST service: filter grammar, pagination, formats, errors (never a 500)."""
from __future__ import annotations

import io
import itertools
import math

from urllib.parse import quote

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from a4nn.api.app import create_app
from a4nn.lineage.filters import FIELDS, FilterError, parse_filter


@pytest.fixture
def filled(recorder):
    low = recorder.register_dataset("sim-low", "xfel-sim", {"beam": "low"})
    high = recorder.register_dataset("sim-high", "xfel-sim", {"beam": "high"})
    engine = recorder.register_engine_config("a-b^(c-x)", 3, 25, 3, 0.5)
    ids = {}
    for dataset, name in ((low, "s-low"), (high, "s-high")):
        search = recorder.start_search(name, "nsga-net-macro", dataset, engine, {"epochs": 10})
        for i in range(12):
            genome = recorder.register_genome(format(i * 37 + dataset, "021b"))
            arch = recorder.start_architecture(search, index=i, genome_id=genome, flops=100.0 + 50 * i)
            for epoch in range(1, 4):
                recorder.log_epoch(arch, epoch, val_acc=90 + i * 0.9 + epoch * 0.01, val_loss=float("nan") if epoch == 2 else 0.1)
            recorder.log_prediction(arch, 3, 25, float("inf") if i == 0 else 95.0, "a-b^(c-x)", [1, 2, 3], i % 2 == 0, 0.01)
            recorder.finish_architecture(arch, "stopped" if i % 3 == 0 else "completed", final_acc=90 + i * 0.9,
                                         fitness=90 + i * 0.9, terminated_early=i % 3 == 0)
            ids[(name, i)] = arch
        recorder.finish_search(search)
    return ids


@pytest.fixture
def client(database, filled):
    return TestClient(create_app(database=database))


def test_filter_as_typed(client) -> None:
    response = client.get("/models?beam=low&acc>99&sort=-acc&limit=50")
    assert response.status_code == 200, response.text
    items = response.json()["items"]
    assert items and all(i["beam"] == "low" and i["final_acc"] > 99 for i in items)
    assert [i["final_acc"] for i in items] == sorted((i["final_acc"] for i in items), reverse=True)
    encoded = client.get("/models?beam=low&acc%3E99&sort=-acc").json()["items"]
    assert [i["id"] for i in encoded] == [i["id"] for i in items]


def test_in_operator_booleans_and_strings(client) -> None:
    items = client.get("/models?beam=low,high&early=true&flops<=400").json()["items"]
    assert items and all(i["terminated_early"] and i["flops"] <= 400 for i in items)
    assert {i["beam"] for i in client.get("/models?beam!=low&limit=100").json()["items"]} == {"high"}
    assert client.get("/models?search=s-high&limit=100").json()["count"] == 12


def test_keyset_pagination_visits_every_row_once(client) -> None:
    seen, url = [], "/models?sort=-acc&limit=5"
    while url:
        page = client.get(url).json()
        seen.extend(i["id"] for i in page["items"])
        url = page["next"]
    assert len(seen) == 24 and len(set(seen)) == 24


@pytest.mark.parametrize("query, message", [
    ("colour=red", "valid fields"), ("acc>>5", "bad value"), ("beam>low", "does not apply"),
    ("acc=high", "expected a finite number"), ("limit=100000", "limit"), ("sort=beam", "cannot sort"),
    ("cursor=not-a-cursor", "bad cursor"), ("format=xml", "format"), ("acc", "cannot parse"),
])
def test_bad_filters_are_400_with_a_message(client, query: str, message: str) -> None:
    response = client.get(f"/models?{query}")
    assert response.status_code == 400, response.text
    assert message in response.json()["detail"]


def test_unknown_ids_are_404_and_bad_ids_400(client) -> None:
    for path in ("/models/999999", "/models/999999/epochs", "/models/999999/predictions", "/searches/999999",
                 "/models/999999/lineage", "/models/999999/checkpoints", "/models/999999/checkpoints/1",
                 "/searches/999999/pareto"):
        response = client.get(path)
        assert response.status_code == 404 and "999999" in response.json()["detail"], path
    for path in ("/models/abc", "/models/99999999999999999999", "/models/2147483648", "/models/-1", "/searches/1e3",
                 "/searches/9223372036854775807/pareto",
                 "/models/1/epochs?format=xml"):
        response = client.get(path)
        assert response.status_code in (400, 404) and response.json()["detail"], path
    assert client.get("/models/1/epochs?format=xml").status_code in (400, 404)


def test_model_detail_epochs_predictions(client, filled) -> None:
    arch = filled[("s-low", 0)]
    detail = client.get(f"/models/{arch}").json()
    assert detail["engine_config"]["function"] == "a-b^(c-x)" and detail["dataset_attributes"]["beam"] == "low"
    epochs = client.get(f"/models/{arch}/epochs").json()
    assert [e["epoch"] for e in epochs] == [1, 2, 3] and epochs[1]["val_loss"] is None
    predictions = client.get(f"/models/{arch}/predictions").json()
    assert predictions[0]["value"] is None and predictions[0]["converged"] is True


def test_csv_and_parquet(client) -> None:
    csv = client.get("/models?beam=high", headers={"Accept": "text/csv"})
    assert csv.headers["content-type"].startswith("text/csv")
    assert len(pd.read_csv(io.StringIO(csv.text))) == 12
    parquet = client.get("/models?beam=high&format=parquet")
    assert len(pd.read_parquet(io.BytesIO(parquet.content))) == 12


def test_searches_datasets_health(client) -> None:
    searches = client.get("/searches").json()
    assert {s["name"] for s in searches} == {"s-low", "s-high"}
    detail = client.get(f"/searches/{searches[0]['id']}").json()
    assert detail["epochs_budget"] == 120 and math.isclose(detail["epochs_saved"], 1 - 36 / 120)
    assert len(client.get("/datasets").json()) == 2
    assert client.get("/health").json()["status"] == "ok"
    assert "/models" in client.get("/openapi.json").json()["paths"]


def test_a_search_without_a_start_time_reads_as_null(recorder, database) -> None:
    """An import whose source has no dates (ICPP'23) stores started_at NULL: every reader answers, null in JSON."""
    dataset = recorder.register_dataset("ef2-low", "xfel-tiff", {"beam": "low"})
    undated = recorder.start_search("undated", "icpp23-import", dataset, None, {"epochs": 25, "started_at": None},
                                    status="completed", started_at=None)
    arch = recorder.start_architecture(undated, index=0, flops=120.0)
    recorder.log_epoch(arch, 1, val_acc=70.0)
    recorder.finish_architecture(arch, "completed", final_acc=70.0, fitness=70.0)
    dated = recorder.start_search("dated", "nsga-net-macro", dataset, None, {"epochs": 25})
    client = TestClient(create_app(database=database))

    listing = client.get("/searches")
    assert listing.status_code == 200, listing.text
    assert [s["name"] for s in listing.json()] == ["undated", "dated"]
    assert client.get("/searches?format=csv").status_code == 200
    detail = client.get(f"/searches/{undated}")
    assert detail.status_code == 200, detail.text
    assert detail.json()["started_at"] is None and detail.json()["networks"] == 1
    assert client.get(f"/searches/{dated}").json()["started_at"] is not None
    for path in (f"/searches/{undated}/pareto", f"/searches/{undated}/points", f"/searches/{undated}/generations",
                 f"/models?search={undated}", f"/models/{arch}", "/ui/searches", f"/ui/searches/{undated}"):
        assert client.get(path).status_code == 200, path


INJECTIONS = ["1 OR 1=1", "'; DROP TABLE architectures; --", "low' OR '1'='1", "1); DELETE FROM epochs; --",
              "%27", "%00", "\\x00", "1/**/OR/**/1=1", "low%27%20UNION%20SELECT%20name%20FROM%20sqlite_master--",
              "99999999999999999999999", "2147483648", "9223372036854775807", "-1e400", "%C2%B2", "x" * 300]


@pytest.mark.parametrize("field", sorted(FIELDS))
def test_sql_injection_strings_are_inert(client, field: str) -> None:
    for operator, payload in itertools.product(["=", "!=", ">", "<="], INJECTIONS):
        response = client.get(f"/models?{field}{operator}{payload}")
        assert response.status_code in (200, 400), (field, payload, response.text)
        if response.status_code == 200 and operator == "=":
            assert response.json()["count"] == 0, "an injected condition matched rows"
    assert client.get("/models?limit=100").json()["count"] == 24
    assert len(client.get("/searches").json()) == 2


TERMS = st.builds(lambda f, o, v: f"{f}{o}{v}", st.sampled_from([*FIELDS, "sort", "limit", "cursor", "format", "x"]),
                  st.sampled_from(["=", "!=", ">", ">=", "<", "<=", "=="]),
                  st.one_of(st.text(max_size=12).map(lambda t: quote(t, safe="%,")), st.integers().map(str), st.floats().map(str),
                            st.sampled_from(["low", "-acc", "true", "1,2", "%00", "%ff", "%2C", "1e309"])))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.one_of(st.lists(TERMS, max_size=4).map("&".join),
                 st.text(alphabet=st.sampled_from(list("abcdefgilmnoprstuyw_=<>!&,.-%0123456789")), max_size=40)))
def test_no_query_string_causes_a_500(client, query: str) -> None:
    response = client.get(f"/models?{query}")
    assert response.status_code in (200, 400), (query, response.text)


def test_parse_filter_unit() -> None:
    parsed = parse_filter("acc>=90&params<1000&sort=-pred&limit=7")
    assert parsed.sort_field == "pred" and parsed.descending and parsed.limit == 7 and len(parsed.conditions) == 2
    with pytest.raises(FilterError, match="valid fields"):
        parse_filter("nope=1")
