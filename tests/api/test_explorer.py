"""The explorer's server side without a browser: data routes, offline docs, shipped files.

These run everywhere (no chromium needed); ``test_explorer_browser.py`` drives the pages.
"""
from __future__ import annotations

import fnmatch
import io
import re
import sys
import tomllib
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from a4nn.api.app import create_app
from a4nn.api.routes import explorer_data

sys.path.insert(0, str(Path(__file__).resolve().parent))
from explorer_fixture import EPOCHS, GENERATIONS, PER_GENERATION, Recorded, record  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Recorded:
    return record(tmp_path_factory.mktemp("explorer-data"))


@pytest.fixture(scope="module")
def client(recorded: Recorded) -> TestClient:
    return TestClient(create_app(recorded.url, checkpoint_roots=[recorded.checkpoint_dir]))


def test_docs_load_only_files_of_the_package(client: TestClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert assets and all(asset.startswith("/ui/static/vendor/swagger-ui/") for asset in assets), assets
    for asset in assets:
        response = client.get(asset)
        assert response.status_code == 200 and len(response.content) > 100, asset
    assert "openapi.json" in page.text
    assert client.get("/redoc").status_code == 404  # ReDoc would come from a CDN; it is not offered
    assert "Apache License" in client.get("/ui/static/vendor/swagger-ui/LICENSE").text  # the licence ships too


def test_every_explorer_url_answers_the_page_shell(client: TestClient, recorded: Recorded) -> None:
    root = client.get("/", follow_redirects=False)
    assert root.status_code in (302, 307) and root.headers["location"] == "/ui/"
    for path in ("/ui/", "/ui/searches", f"/ui/searches/{recorded.search_id}", "/ui/models",
                 f"/ui/models/{recorded.model_ids[0]}", "/ui/compare?ids=1,2"):
        response = client.get(path)
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/html"), path
        assert '<script src="/ui/static/app.js"' in response.text
    assert "/ui/" not in client.get("/openapi.json").text  # the pages are not API routes


def test_generations_add_up_to_the_search(client: TestClient, recorded: Recorded) -> None:
    detail = client.get(f"/searches/{recorded.search_id}").json()
    data = client.get(f"/searches/{recorded.search_id}/generations").json()
    rows = data["generations"]
    assert [g["generation"] for g in rows] == list(range(GENERATIONS))
    assert sum(g["networks"] for g in rows) == detail["networks"] == GENERATIONS * PER_GENERATION
    assert sum(g["epochs_trained"] for g in rows) == pytest.approx(detail["epochs_trained"])
    assert all(g["epochs_budget"] == EPOCHS * g["networks"] for g in rows)
    hypervolumes = [g["hypervolume"] for g in rows]
    assert hypervolumes == sorted(hypervolumes) and hypervolumes[0] > 0  # a front only grows
    front = client.get(f"/searches/{recorded.search_id}/pareto").json()
    assert rows[-1]["front_size"] == len(front)
    points = client.get(f"/searches/{recorded.search_id}/points").json()
    assert points["front"] == sorted(p["id"] for p in front)
    assert points["total"] == detail["networks"] and points["plottable"] == points["total"] - 1  # one failed
    for metric in ("fitness", "pred"):
        pareto = client.get(f"/searches/{recorded.search_id}/pareto?metric={metric}").json()
        assert client.get(f"/searches/{recorded.search_id}/points?metric={metric}").json()["front"] == \
            sorted(p["id"] for p in pareto)
    assert client.get("/searches/999/generations").status_code == 404
    assert client.get(f"/searches/{recorded.search_id}/points?metric=bogus").status_code == 400


def test_hypervolume_of_a_known_front() -> None:
    # (error, MFLOPs) = (10, 10) and (5, 20) from reference (100, 30): 90*20 + 95*10 - 90*10
    front = [{"accuracy": 90.0, "flops": 10.0}, {"accuracy": 95.0, "flops": 20.0}]
    assert explorer_data.hypervolume(front, 30.0) == pytest.approx(1850.0)
    assert explorer_data.hypervolume([], 30.0) == 0.0


def test_a_large_search_is_thinned_but_keeps_its_front(client: TestClient, recorded: Recorded,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(explorer_data, "MAX_POINTS", 8)
    points = client.get(f"/searches/{recorded.search_id}/points").json()
    ids = {row[0] for row in points["rows"]}
    assert points["shown"] == len(ids) <= 8 and set(points["front"]) <= ids
    assert points["total"] == GENERATIONS * PER_GENERATION


def test_export_is_the_whole_filter(client: TestClient) -> None:
    query = "search=explorer-search&epochs>=4&sort=-acc"
    ids, path = [], f"/models?{query}&limit=7"
    while path:
        page = client.get(path).json()
        ids += [m["id"] for m in page["items"]]
        path = page["next"]
    csv = client.get(f"/export/models?{query}&format=csv")
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    assert pd.read_csv(io.StringIO(csv.text))["id"].tolist() == ids
    parquet = client.get(f"/export/models?{query}&format=parquet&limit=3")
    assert pd.read_parquet(io.BytesIO(parquet.content))["id"].tolist() == ids  # limit is ignored
    bad = client.get("/export/models?acc>>80")
    assert bad.status_code == 400 and "acc" in bad.json()["detail"]


def test_architecture_drawing(client: TestClient, recorded: Recorded) -> None:
    from a4nn.commons.analyzer.architecture import architecture_graph

    model = client.get(f"/models/{recorded.model_ids[0]}").json()
    graph = client.get(f"/models/{recorded.model_ids[0]}/architecture").json()
    expected = architecture_graph(model["genome"], 4)
    assert len(graph["nodes"]) == expected.number_of_nodes() and len(graph["edges"]) == expected.number_of_edges()
    assert all(isinstance(node["x"], float) and node["role"] in graph["colours"] for node in graph["nodes"])
    names = {node["id"] for node in graph["nodes"]}
    assert all(edge["source"] in names and edge["target"] in names for edge in graph["edges"])
    response = client.get(f"/models/{recorded.model_ids[0]}/architecture.svg")
    assert response.status_code == 200 and response.headers["content-type"].startswith("image/svg+xml")
    assert b"<svg" in response.content and b"phase" in response.content
    for path in ("/models/99999/architecture.svg", "/models/99999/architecture"):
        missing = client.get(path)
        assert missing.status_code == 404 and "99999" in missing.json()["detail"]


def test_package_data_ships_every_static_file() -> None:
    """A wheel carries only what ``package-data`` names; every file the pages load must match it."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["a4nn.api.ui"]
    static = ROOT / "api" / "ui"
    files = [path.relative_to(static).as_posix() for path in (static / "static").rglob("*") if path.is_file()]
    assert "static/app.js" in files and "static/vendor/swagger-ui/LICENSE" in files
    missed = [f for f in files if not any(fnmatch.fnmatch(f, p) and f.count("/") == p.count("/") for p in patterns)]
    assert not missed, f"not shipped in the wheel: {missed}"
