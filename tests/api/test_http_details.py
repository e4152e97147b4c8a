"""HTTP details of the query service: HEAD, content negotiation with q, the format enum, short
error messages, the page count vs the total, and enumerated filter values (issues 22.6, 24.7)."""
from __future__ import annotations

import io

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from a4nn.api.app import create_app
from a4nn.api.responses import negotiate


@pytest.fixture
def client(recorder, tmp_path):
    low = recorder.register_dataset("sim-low", "xfel-sim", {"beam": "low"})
    high = recorder.register_dataset("sim-high", "xfel-sim", {"beam": "high"})
    for dataset, name in ((low, "s-low"), (high, "s-high")):
        search = recorder.start_search(name, "nsga-net-macro", dataset, None, {"epochs": 3})
        for i in range(7):
            arch = recorder.start_architecture(search, index=i, flops=100.0 + i)
            recorder.log_epoch(arch, 1, val_acc=90.0 + i)
            recorder.finish_architecture(arch, final_acc=90.0 + i, fitness=90.0 + i, epochs_trained=1)
    return TestClient(create_app(database=recorder.database, checkpoint_roots=[tmp_path]))


GET_ROUTES = ["/health", "/models", "/models?beam=low&acc>92", "/models/1", "/models/1/epochs", "/models/1/predictions",
              "/models/1/lineage", "/models/1/checkpoints", "/searches", "/searches/1", "/searches/1/pareto",
              "/datasets", "/openapi.json", "/models/99999"]


@pytest.mark.parametrize("path", GET_ROUTES)
def test_head_answers_like_get_without_a_body(client, path: str) -> None:
    get, head = client.get(path), client.head(path)
    assert head.status_code == get.status_code and head.status_code != 405
    assert head.content == b""
    assert head.headers["content-type"] == get.headers["content-type"]
    assert head.headers["content-length"] == str(len(get.content))


def test_head_on_an_undeclared_method_route_is_still_405(client) -> None:
    assert client.post("/health").status_code == 405
    assert "GET" in client.post("/health").headers["allow"]


@pytest.mark.parametrize("accept, expected", [
    ("text/csv;q=0, application/json", "json"),
    ("text/csv;q=0.5, application/json;q=0.4", "csv"),
    ("text/csv", "csv"),
    ("application/vnd.apache.parquet", "parquet"),
    ("*/*", "json"),
    ("text/*", "csv"),
    ("application/*;q=0.9, text/csv;q=0.1", "json"),
    ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", "json"),
    ("*/*;q=0.1, text/csv", "csv"),
    ("", "json"),
    ("application/json;q=abc, text/csv", "csv"),  # a malformed q drops that range
])
def test_accept_is_negotiated_with_quality_values(accept: str, expected: str) -> None:
    assert negotiate(accept) == expected


def test_accept_q0_on_csv_gives_json_and_nothing_acceptable_gives_406(client) -> None:
    response = client.get("/models", headers={"Accept": "text/csv;q=0, application/json"})
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/json")
    csv = client.get("/searches", headers={"Accept": "text/csv"})
    assert csv.headers["content-type"].startswith("text/csv") and len(pd.read_csv(io.StringIO(csv.text))) == 2
    for path in ("/models", "/searches", "/datasets", "/models/1/epochs"):
        refused = client.get(path, headers={"Accept": "image/png, application/json;q=0"})
        assert refused.status_code == 406, path
        assert "image/png" in refused.json()["detail"] and "text/csv" in refused.json()["detail"]
    # an explicit format wins over the header
    assert client.get("/models?format=csv", headers={"Accept": "application/json"}).headers["content-type"].startswith("text/csv")


def test_format_is_an_enum_in_the_schema_and_empty_means_default(client) -> None:
    document = client.get("/openapi.json").json()
    seen = 0
    for path, operations in document["paths"].items():
        for parameter in operations.get("get", {}).get("parameters", []):
            if parameter["name"] == "format":
                schema = parameter["schema"]
                enum = schema.get("enum") or next(s["enum"] for s in schema["anyOf"] if "enum" in s)
                assert {"json", "csv", "parquet"} <= set(enum) and set(enum) <= {"json", "csv", "parquet", ""}, path
                seen += 1
    assert seen >= 7
    for path in ("/models", "/searches", "/datasets", "/models/1/epochs", "/searches/1/pareto"):
        response = client.get(f"{path}?format=")
        assert response.status_code == 200 and response.headers["content-type"].startswith("application/json"), path
        assert client.get(f"{path}?format=xml").status_code == 400


@pytest.mark.parametrize("query", ["acc=" + "9" * 20000, "beam=" + "x" * 20000, "x" * 20000 + "=1",
                                   "sort=" + "y" * 20000, "q" * 20000],
                         ids=["number", "enum", "field", "sort", "term"])
def test_400_messages_cut_long_values(client, query: str) -> None:
    response = client.get(f"/models?{query}")
    assert response.status_code == 400
    detail = response.json()["detail"]
    assert len(detail) < 600 and "..." in detail


def test_count_is_the_page_size_and_total_counts_every_match_on_request(client) -> None:
    page = client.get("/models?beam=low&limit=3").json()
    assert page["count"] == 3 and page["total"] is None and page["next"]
    counted = client.get("/models?beam=low&limit=3&total=true").json()
    assert counted["count"] == 3 and counted["total"] == 7
    assert client.get("/models?acc>=95&total=true").json()["total"] == 4  # 95, 96 in each search
    following = client.get(counted["next"]).json()
    assert following["total"] == 7 and following["count"] == 3
    assert client.get("/models?search=nothing&total=true").json()["total"] == 0
    assert client.get("/models?total=maybe").status_code == 400


@pytest.mark.parametrize("query, valid", [("beam=ultra", "low, medium, high"), ("beam=low,ultra", "low, medium, high"),
                                          ("status=exploded", "running, completed, stopped, failed")])
def test_unknown_values_of_enumerated_fields_are_400_listing_the_valid_ones(client, query: str, valid: str) -> None:
    response = client.get(f"/models?{query}")
    assert response.status_code == 400 and valid in response.json()["detail"]
    assert client.get("/models?beam=low,high").json()["count"] == 14


HOSTILE = [
    "/models?" + "&".join(f"acc>{i}" for i in range(60)),            # too many terms
    "/models?search=" + ",".join(str(i) for i in range(150)),          # too many IN values
    "/models?acc>1e999", "/models?acc>nan", "/models?params>99999999999999999999", "/models?id=-0x10",
    "/models?search=%00", "/models?beam=%00low", "/models?status=" + "s" * 300, "/models?sort=--acc",
    "/models?limit=0", "/models?limit=1001", "/models?limit=1e3", "/models?cursor=" + "A" * 600,
    "/models?cursor=eyJ2IjoxLCJpIjoxfQ", "/models?%ZZ=1", "/models?=", "/models/-1", "/models/99999999999", "/models/abc", "/models/1/lineage?hops=0",
    "/models/1/lineage?hops=51", "/models/1/lineage?direction=sideways", "/models/1/checkpoints/nan",
    "/models/1/checkpoints/inf", "/models/1/checkpoints/1e400", "/searches/abc/pareto", "/searches/1/pareto?metric=x",
    "/searches/99999999999", "/datasets?format=%00", "/../../etc/passwd", "/models/..%2F..%2Fetc%2Fpasswd",
]


@pytest.mark.parametrize("path", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_requests_get_a_4xx_with_a_short_message_never_a_5xx(client, path: str) -> None:
    for method in ("GET", "HEAD"):
        response = client.request(method, path)
        assert 400 <= response.status_code < 500, (method, path, response.status_code, response.text[:200])
    detail = client.get(path).json().get("detail")
    assert detail and len(str(detail)) < 600


@pytest.mark.parametrize("path", ["/models?acc%3E99", "/models?&&&", "/models?format=csv&format=parquet"])
def test_odd_but_valid_queries_are_answered(client, path: str) -> None:
    assert client.get(path).status_code == 200  # an encoded operator, empty terms, the last format wins


@pytest.mark.parametrize("headers", [{"Accept": "text/csv;q=2"}, {"Accept": ";;;,,,"}, {"Accept": "*/csv"},
                                     {"Accept": "x" * 8000}, {"Accept": "text/csv;q=nan"}])
def test_odd_accept_headers_never_fail(client, headers: dict[str, str]) -> None:
    response = client.get("/models", headers=headers)
    assert response.status_code in (200, 406)
