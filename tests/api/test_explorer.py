"""The explorer's server side without a browser: data routes, offline docs, shipped files.

These run everywhere (no chromium needed); ``test_explorer_browser.py`` drives the pages.
"""
from __future__ import annotations

import fnmatch
import io
import math
import re
import sys
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from a4nn.api.app import create_app
from a4nn.api.routes import explorer_data
from a4nn.lineage.pareto import pareto_front

sys.path.insert(0, str(Path(__file__).resolve().parent))
from explorer_fixture import EPOCHS, GENERATIONS, PER_GENERATION, Recorded, add_live_network, record  # noqa: E402

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


def test_hypervolume_is_pymoos() -> None:
    """The closed form equals pymoo's indicator, on fronts with ties, duplicates, 0 % and points past the reference."""
    from pymoo.indicators.hv import HV

    rng = np.random.default_rng(5)
    for trial in range(200):
        n = int(rng.integers(1, 40))
        accuracy = np.round(rng.uniform(-5, 100, n), int(rng.integers(0, 3)))
        flops = np.round(rng.uniform(0, 120, n), int(rng.integers(0, 2)))
        front = pareto_front([{"accuracy": float(a), "flops": float(f)} for a, f in zip(accuracy, flops)],
                             accuracy="accuracy", cost="flops")
        reference = float(rng.uniform(50, 130))
        inside = np.array([[100 - p["accuracy"], p["flops"]] for p in front
                           if 100 - p["accuracy"] < 100 and p["flops"] < reference]).reshape(-1, 2)
        expected = float(HV(ref_point=np.array([100.0, reference]))(inside)) if len(inside) else 0.0
        assert explorer_data.hypervolume(front, reference) == pytest.approx(expected, rel=1e-9, abs=1e-9), trial


def test_a_search_front_grows_as_pareto_front_says() -> None:
    """Each generation's front (the newcomers no member of the front so far dominates, then ``extend_front``, as
    the search view does) is ``pareto_front`` of every network so far, duplicates of a front point included."""
    rng = np.random.default_rng(7)
    seen: list[dict] = []
    front: list[tuple[float, float, int]] = []
    for generation in range(60):
        cost = np.array([rng.choice([10.0, 20.0, 30.0, rng.uniform(0, 50)]) for _ in range(12)])
        accuracy = np.array([rng.choice([90.0, 95.0, rng.uniform(80, 99)]) for _ in range(12)])
        ids = np.arange(len(seen), len(seen) + 12)
        seen += [{"id": int(i), "acc": float(a), "flops": float(f)} for f, a, i in zip(cost, accuracy, ids)]
        keep = explorer_data._not_dominated(front, cost, accuracy)
        front = explorer_data.extend_front(front, list(zip(cost[keep].tolist(), (-accuracy[keep]).tolist(),
                                                           ids[keep].tolist())))
        expected = sorted(p["id"] for p in pareto_front(seen))
        assert sorted(i for _, _, i in front) == expected, generation
        assert not keep.all() or generation == 0  # the filter rejects networks (it is not a pass-through)


def test_ranked_values_are_fitness_seen(client: TestClient, recorded: Recorded) -> None:
    """The search view's vectorised ranking equals ``queries.fitness_seen`` / the raw columns, network by network."""
    from a4nn.lineage.database import Database
    from a4nn.lineage.queries import fitness_seen

    database = Database.open(recorded.url)
    try:
        for metric, expected in (("fitness", lambda c, i: fitness_seen(c["fitness"][i], c["final_acc"][i], c["status"][i])),
                                 ("acc", lambda c, i: c["final_acc"][i]), ("pred", lambda c, i: c["predicted_acc"][i])):
            view = explorer_data.search_view(database, recorded.search_id, metric)
            values = [expected(view.columns, i) for i in range(len(view.columns["id"]))]
            values = [math.nan if v is None else v for v in values]
            assert np.array_equal(view.accuracy, np.array(values, dtype=float), equal_nan=True), metric
            assert np.isnan(view.accuracy).any() and np.isfinite(view.accuracy).any(), metric
    finally:
        database.dispose()


def test_a_changed_search_reads_only_what_changed_and_equals_a_full_read(client: TestClient, recorded: Recorded,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """A running search's page after a network starts, one finishes, one is added, and after a finished row is
    rewritten (seen at the next check against the search's summary): each time the points and generations equal
    a full computation with no cache, and only the new and unfinished networks are read again."""
    from sqlalchemy import update

    from a4nn.lineage.database import Database
    from a4nn.lineage.models import Architecture
    from a4nn.lineage.recorder import Recorder

    fetched: list[int] = []
    fetch = explorer_data._fetch

    def counting(connection, search_id, since=None, ids=None):  # type: ignore[no-untyped-def]
        rows = fetch(connection, search_id, since, ids)
        fetched.append(len(rows))
        return rows

    monkeypatch.setattr(explorer_data, "_fetch", counting)
    live = recorded.live_search_id
    uncached = TestClient(create_app(recorded.url, checkpoint_roots=[recorded.checkpoint_dir]))

    def same_as_a_full_read() -> None:
        answers = {path: client.get(f"/searches/{live}/{path}").json() for path in ("points", "generations")}
        explorer_data._VIEWS.clear()
        explorer_data._KNOWN.clear()
        for path, answer in answers.items():
            assert uncached.get(f"/searches/{live}/{path}").json() == answer, path

    database = Database.open(recorded.url)
    recorder = Recorder(database)
    try:
        same_as_a_full_read()
        running = recorder.start_architecture(live, 50, 1, None, {}, {}, flops=75.0, n_params=10)
        fetched.clear()
        same_as_a_full_read()
        points = client.get(f"/searches/{live}/points").json()
        networks = points["total"]
        assert fetched[0] == networks and points["plottable"] == networks - 1  # one full read; the running one
        fetched.clear()
        assert client.get(f"/searches/{live}/points").json() == points
        assert fetched == [1]  # unchanged: only the running network is read again
        recorder.finish_architecture(running, "stopped", final_acc=99.5, fitness=99.5, epochs_trained=2.0)
        add_live_network(recorder, live, 51, 60.0)
        fetched.clear()
        points = client.get(f"/searches/{live}/points").json()
        assert fetched == [1, 1]  # the new network, then the running one again: not the whole search
        assert running in points["front"] and points["total"] == networks + 1
        same_as_a_full_read()
        client.get(f"/searches/{live}/points")  # read and cached again
        monkeypatch.setattr(explorer_data, "RECHECK_S", 0.0)  # check against the summary on every request
        with database.engine.begin() as connection:  # a finished row rewritten: the cached rows do not add up
            connection.execute(update(Architecture).where(Architecture.id == running).values(final_acc=10.0, fitness=10.0))
        fetched.clear()
        points = client.get(f"/searches/{live}/points").json()
        assert fetched == [networks + 1] and running not in points["front"]
        same_as_a_full_read()
    finally:
        database.dispose()


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
