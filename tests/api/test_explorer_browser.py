"""The web explorer in a real headless browser, against the installed ``a4nn-commons serve``.

Why Playwright (for Python) pointed at Debian's chromium rather than Selenium: its wheel
carries its own driver, so nothing beyond ``pip install`` is needed (Selenium would also
need Debian's ``chromium-driver`` at the exact browser version); it waits for elements
and network events by itself, which keeps these tests free of sleeps; and it can route
requests, which lets the /docs test prove that nothing leaves 127.0.0.1. The browser
bundled with Playwright is never downloaded: the tests launch ``/usr/bin/chromium`` and
skip, saying so, where it (or the playwright package) is missing.

Every page is opened the way a user does (typing, clicking, keys), and what it shows is
compared with what the JSON API answers for the same question. Screenshots go to the
test's tmp dir.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from explorer_fixture import LIVE_SEARCH, Recorded, add_live_network, record  # noqa: E402

CHROMIUM = os.environ.get("A4NN_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]

sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed "
                                                             "(pip install -e '.[test]')")
if not (Path(CHROMIUM).is_file() or shutil.which("chromium")):
    pytest.skip(f"no chromium at {CHROMIUM} (Debian: apt-get install chromium; .ci/run installs it)",
                allow_module_level=True)

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Recorded:
    return record(tmp_path_factory.mktemp("explorer"))


@pytest.fixture(scope="module")
def server(recorded: Recorded) -> Iterator[str]:
    """The installed console script serving the recorded database on a free port."""
    port = _free_port()
    command = [shutil.which("a4nn-commons") or "a4nn-commons", "serve", "--db", recorded.url, "--port", str(port),
               "--checkpoint-root", str(recorded.checkpoint_dir), "--log-level", "warning"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"a4nn-commons serve exited: {process.stdout.read()}")
        try:
            if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    else:
        process.kill()
        pytest.fail("a4nn-commons serve did not answer /health within 60 s")
    yield base
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with sync_api.sync_playwright() as playwright:
        executable = CHROMIUM if Path(CHROMIUM).is_file() else shutil.which("chromium")
        instance = playwright.chromium.launch(executable_path=executable, args=ARGS)
        yield instance
        instance.close()


@pytest.fixture
def page(browser, server: str, tmp_path: Path):
    context = browser.new_context(viewport={"width": 1280, "height": 800}, base_url=server)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda error: errors.append(str(error)))
    yield tab
    tab.screenshot(path=str(tmp_path / "last.png"), full_page=True)
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def api(server: str, path: str) -> object:
    response = httpx.get(server + path, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def ready(page) -> None:
    page.wait_for_selector("body[data-ready='1']")


def fmt(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def fits_1280(page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 1280, f"page is {width} px wide at a 1280 px viewport (horizontal scrolling)"


# ------------------------------------------------------------------------- tests
def test_searches_page_then_a_search(page, server: str, recorded: Recorded, tmp_path: Path) -> None:
    page.goto("/")  # the root redirects to the explorer
    ready(page)
    assert page.url.endswith("/ui/")
    rows = page.locator("#searches-table tbody tr")
    searches = api(server, "/searches")
    assert rows.count() == len(searches)
    for search in searches:
        detail = api(server, f"/searches/{search['id']}")
        row = page.locator(f"#searches-table tbody tr[data-id='{search['id']}']")
        assert row.locator("td").nth(5).inner_text() == f"{detail['networks']:,}"
        saved = row.locator("td.saved").inner_text()
        assert saved == ("—" if detail["epochs_saved"] is None else f"{100 * detail['epochs_saved']:.1f} %")
    fits_1280(page)
    page.screenshot(path=str(tmp_path / "searches.png"), full_page=True)

    page.get_by_role("link", name="explorer-search").click()
    ready(page)
    assert page.url.endswith(f"/ui/searches/{recorded.search_id}")
    points = api(server, f"/searches/{recorded.search_id}/points")
    generations = api(server, f"/searches/{recorded.search_id}/generations")
    rows = [dict(zip(points["columns"], row)) for row in points["rows"]]
    scatter = page.locator("#scatter")
    # marks counted as they are drawn: the canvas's and the front's SVG marks together
    assert int(scatter.get_attribute("data-points")) == points["shown"] == len(rows) > 0
    assert int(scatter.get_attribute("data-early")) == sum(r["terminated_early"] for r in rows) > 0
    on_front = page.locator("#scatter .point.on-front")
    assert sorted(int(on_front.nth(i).get_attribute("data-id")) for i in range(on_front.count())) == points["front"]
    assert page.locator("#scatter .point").count() == len(points["front"])  # the others are on the canvas
    assert page.locator("#scatter path.front").count() == 1
    # the front is the API's /pareto front for the same metric
    assert points["front"] == sorted(p["id"] for p in api(server, f"/searches/{recorded.search_id}/pareto"))
    hv = page.locator("#hypervolume .hv-point")
    assert [float(hv.nth(i).get_attribute("data-value")) for i in range(hv.count())] == \
        [g["hypervolume"] for g in generations["generations"]]
    bars = page.locator("#saved .saved-bar")
    assert [float(bars.nth(i).get_attribute("data-value")) for i in range(bars.count())] == \
        [g["epochs_saved"] for g in generations["generations"]]
    assert "c_min" in page.locator("#settings").inner_text()
    # a network off the front is painted where the axes put it, and hovering there shows it
    positions = _canvas_positions(page, rows)
    alone = max((r for r in rows if r["id"] not in points["front"]), key=lambda r: _room(positions, r["id"]))
    assert _room(positions, alone["id"]) > 12, "the fixture has no network whose mark stands alone"
    x, y = positions[alone["id"]]
    assert _opacity_near(page, x, y) > 0, f"nothing painted at model {alone['id']}'s mark"
    page.mouse.move(x, y)
    tooltip = page.locator("#tooltip")
    assert tooltip.is_visible() and tooltip.inner_text().startswith(f"model #{alone['id']} ·")
    assert f"MFLOPs: {fmt(alone['flops'])}" in tooltip.inner_text()
    empty = _emptiest_spot(page, positions)
    assert _opacity_near(page, *empty) == 0, "the canvas is painted where no network is"
    page.mouse.move(*empty)
    assert not tooltip.is_visible()
    # ... and a front member (an SVG mark) too
    first = page.locator("#scatter .point").first
    first.hover()
    assert tooltip.is_visible() and f"model #{first.get_attribute('data-id')}" in tooltip.inner_text()
    # another accuracy axis redraws from the API
    page.get_by_label("Accuracy axis").select_option("acc")
    page.wait_for_url("**metric=acc")
    ready(page)
    acc_front = api(server, f"/searches/{recorded.search_id}/points?metric=acc")["front"]
    page.wait_for_function(f"document.querySelectorAll('#scatter .point.on-front').length === {len(acc_front)}")
    fits_1280(page)
    page.screenshot(path=str(tmp_path / "search.png"), full_page=True)


def _canvas_area(page) -> dict[str, float]:
    return page.evaluate("""() => {
        const canvas = document.querySelector('#scatter canvas');
        const [x0, x1, y0, y1] = canvas.dataset.domain.split(',').map(Number);
        const area = canvas.getBoundingClientRect();
        return { x0, x1, y0, y1, left: area.left, top: area.top, width: area.width, height: area.height };
    }""")


def _canvas_positions(page, rows: list[dict]) -> dict[int, tuple[float, float]]:
    """Where the scatter's axes (the canvas's data-domain over its box on the page) put each network."""
    a = _canvas_area(page)
    return {r["id"]: (a["left"] + (r["flops"] - a["x0"]) / (a["x1"] - a["x0"]) * a["width"],
                      a["top"] + (1 - (r["accuracy"] - a["y0"]) / (a["y1"] - a["y0"])) * a["height"]) for r in rows}


def _room(positions: dict[int, tuple[float, float]], model_id: int) -> float:
    x, y = positions[model_id]
    return min(((x - u) ** 2 + (y - v) ** 2) ** 0.5 for other, (u, v) in positions.items() if other != model_id)


def _emptiest_spot(page, positions: dict[int, tuple[float, float]]) -> tuple[float, float]:
    a = _canvas_area(page)
    spots = [(a["left"] + a["width"] * (i + 0.5) / 20, a["top"] + a["height"] * (j + 0.5) / 10)
             for i in range(20) for j in range(10)]
    spot = max(spots, key=lambda s: min((s[0] - u) ** 2 + (s[1] - v) ** 2 for u, v in positions.values()))
    assert min(((spot[0] - u) ** 2 + (spot[1] - v) ** 2) ** 0.5 for u, v in positions.values()) > 15
    return spot


def _opacity_near(page, x: float, y: float) -> int:
    """The most opaque canvas pixel within 4 page pixels of (x, y) (a hollow square's centre is empty)."""
    return page.evaluate("""([x, y]) => {
        const canvas = document.querySelector('#scatter canvas');
        const area = canvas.getBoundingClientRect();
        const k = canvas.width / area.width, r = Math.ceil(4 * k);
        const cx = Math.round((x - area.left) * k), cy = Math.round((y - area.top) * k);
        const pixels = canvas.getContext('2d').getImageData(cx - r, cy - r, 2 * r + 1, 2 * r + 1).data;
        let most = 0;
        for (let i = 3; i < pixels.length; i += 4) most = Math.max(most, pixels[i]);
        return most;
    }""", [x, y])


def _row_ids(page) -> list[int]:
    rows = page.locator("#models-table tbody tr")
    return [int(rows.nth(i).get_attribute("data-id")) for i in range(rows.count())]


def _wait_rows(page, ids: list[int]) -> None:
    page.wait_for_function("ids => JSON.stringify([...document.querySelectorAll('#models-table tbody tr')]"
                           ".map(r => Number(r.dataset.id))) === JSON.stringify(ids)", arg=ids)


def test_models_filter_sort_paging_download_and_errors(page, server: str, recorded: Recorded, tmp_path: Path) -> None:
    page.goto("/ui/models")
    ready(page)
    box = page.get_by_label("Filter (the /models grammar)")
    box.fill("search=explorer-search&epochs>=4")
    box.press("Enter")
    first = api(server, "/models?search=explorer-search&epochs>=4&limit=25")
    _wait_rows(page, [m["id"] for m in first["items"]])
    row = page.locator(f"#models-table tbody tr[data-id='{first['items'][0]['id']}']")
    assert float(row.locator("td").nth(8).get_attribute("data-value")) == first["items"][0]["final_acc"]
    assert first["next"], "the fixture must fill more than one page"

    page.get_by_role("button", name="Next page →").click()
    second = api(server, first["next"])
    _wait_rows(page, [m["id"] for m in second["items"]])
    assert page.get_by_role("button", name="Next page →").is_disabled() == (second["next"] is None)
    page.get_by_role("button", name="← Previous page").click()
    _wait_rows(page, [m["id"] for m in first["items"]])

    # sorting by a column header puts sort= into the filter the box shows
    page.locator("th button[data-sort='acc']").click()
    page.wait_for_function("document.querySelector('#filter').value.endsWith('sort=-acc')")
    by_acc = api(server, "/models?search=explorer-search&epochs>=4&sort=-acc&limit=25")
    _wait_rows(page, [m["id"] for m in by_acc["items"]])
    assert page.locator("th[data-key='final_acc']").get_attribute("aria-sort") == "descending"

    # the download is the whole filter, not one page
    href = page.locator("#download-csv").get_attribute("href")
    lines = httpx.get(server + href, timeout=10).text.strip().splitlines()
    assert len(lines) - 1 == len(first["items"]) + len(second["items"])

    # a bad filter shows the API's 400 message, and the page keeps working
    bad = "search=explorer-search&acc>>80"
    detail = httpx.get(f"{server}/models?{bad}").json()["detail"]
    box.fill(bad)
    box.press("Enter")
    alert = page.get_by_role("alert")
    alert.wait_for()
    assert detail in alert.inner_text() and "400" in alert.inner_text()
    page.screenshot(path=str(tmp_path / "bad-filter.png"), full_page=True)
    box.fill("beam=low&acc>85")
    box.press("Enter")
    good = api(server, "/models?beam=low&acc>85&limit=25")
    _wait_rows(page, [m["id"] for m in good["items"]])
    assert page.get_by_role("alert").count() == 0

    # keyboard: arrows move between rows, Enter opens the focused one
    page.locator("#models-table tbody tr").first.focus()
    page.keyboard.press("ArrowDown")
    focused = page.evaluate("document.activeElement.dataset.id")
    assert int(focused) == good["items"][1]["id"]
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/ui/models/{focused}")
    ready(page)
    fits_1280(page)


def test_model_page_curve_architecture_lineage_checkpoints(page, server: str, recorded: Recorded,
                                                          tmp_path: Path) -> None:
    # generation 1, index 0: stopped early by the engine, has crossover parents and children
    model_id = recorded.model_ids[10]
    model = api(server, f"/models/{model_id}")
    assert model["terminated_early"]
    page.goto(f"/ui/models/{model_id}")
    ready(page)
    assert page.locator("[data-key='final_acc']").inner_text() == fmt(model["final_acc"])
    assert page.locator("[data-key='flops']").inner_text() == fmt(model["flops"])
    epochs = api(server, f"/models/{model_id}/epochs")
    predictions = api(server, f"/models/{model_id}/predictions")
    assert page.locator("#curve .epoch-point").count() == len([e for e in epochs if e["val_acc"] is not None])
    assert page.locator("#curve .prediction").count() == len(predictions) > 0
    assert page.locator("#curve .prediction.converged").count() == sum(p["converged"] for p in predictions)
    assert page.locator("#curve .stop-line").count() == 1
    assert f"stopped at epoch {model['stop_epoch']:.1f}" in page.locator("#curve .stop-label").text_content()
    graph = api(server, f"/models/{model_id}/architecture")
    assert page.locator("#architecture .arch-node").count() == len(graph["nodes"]) > 0
    assert page.locator("#architecture .arch-edge.skip").count() == sum(e["skip"] for e in graph["edges"])
    assert page.locator("#architecture .arch-edge").count() == len(graph["edges"])
    assert page.locator("#genome").inner_text() == model["genome"]
    checkpoints = api(server, f"/models/{model_id}/checkpoints")
    assert page.locator("#checkpoints .sha").all_inner_texts() == [c["sha256"] for c in checkpoints]
    download = httpx.get(server + page.locator("#checkpoints a").first.get_attribute("href"))
    assert download.status_code == 200 and download.headers["x-checksum-sha256"] == checkpoints[0]["sha256"]

    up = api(server, f"/models/{model_id}/lineage?direction=up&hops=1")
    owners = {g["id"]: g["models"] for g in up["genomes"]}
    expected = sorted(m for e in up["edges"] for m in owners.get(e["parent"], []) if m != model_id)
    links = page.locator("a.parent-link")
    assert sorted(int(links.nth(i).inner_text().lstrip("#")) for i in range(links.count())) == expected != []
    assert page.locator("a.child-link").count() > 0
    evaluations = model["evaluations"]
    assert evaluations, "the fixture stores one evaluation of this model"
    assert page.locator("#evaluations tbody tr").count() == len(evaluations)
    assert f"accuracy: {evaluations[0]['metrics']['accuracy']:.4f}" in page.locator("#evaluations").inner_text()
    assert evaluations[0]["dataset"]["name"] in page.locator("#evaluations").inner_text()
    fits_1280(page)
    page.screenshot(path=str(tmp_path / "model.png"), full_page=True)
    links.first.click()
    page.wait_for_url(f"**/ui/models/{expected[0]}")
    ready(page)


def test_a_prediction_outside_0_100_is_said_not_drawn(page, server: str, recorded: Recorded) -> None:
    model_id = recorded.model_ids[1]  # index 1 of generation 0: one forecast of 250 %
    predictions = api(server, f"/models/{model_id}/predictions")
    outside = [p for p in predictions if not 0 <= p["value"] <= 100]
    assert outside
    page.goto(f"/ui/models/{model_id}")
    ready(page)
    assert page.locator("#curve .prediction").count() == len(predictions) - len(outside)
    assert f"{len(outside)} prediction(s) outside 0–100 %" in page.locator("figcaption").first.inner_text()


def test_compare_two_models_from_the_table(page, server: str, recorded: Recorded, tmp_path: Path) -> None:
    page.goto("/ui/models?filter=search%3Dexplorer-search%26sort%3D-acc")
    ready(page)
    page.wait_for_selector("#models-table tbody tr")
    ids = _row_ids(page)[:2]
    for model_id in ids:
        page.get_by_label(f"select model {model_id} for comparison").check()
    page.get_by_role("button", name="Compare selected (2)").click()
    page.wait_for_url("**/ui/compare?ids=*")
    ready(page)
    assert page.locator("#compare-curves .compare-curve").count() == 2
    cells = page.locator("#compare-table tr[data-key='final_acc'] td")
    for i, model_id in enumerate(ids):
        model = api(server, f"/models/{model_id}")
        assert float(cells.nth(i).get_attribute("data-value")) == model["final_acc"]
        assert cells.nth(i).inner_text() == fmt(model["final_acc"])
    fits_1280(page)
    page.screenshot(path=str(tmp_path / "compare.png"), full_page=True)
    # nine ids is refused with a message, not a broken page
    page.goto("/ui/compare?ids=1,2,3,4,5,6,7,8,9")
    ready(page)
    assert "2 to 8" in page.get_by_role("alert").inner_text()


def test_a_running_search_updates_without_reload(page, server: str, recorded: Recorded) -> None:
    from a4nn.lineage.database import Database
    from a4nn.lineage.recorder import Recorder

    page.goto(f"/ui/searches/{recorded.live_search_id}?poll_ms=300")
    ready(page)
    before = api(server, f"/searches/{recorded.live_search_id}")
    assert before["status"] == "running" and before["name"] == LIVE_SEARCH
    assert page.locator("#scatter").get_attribute("data-points") == str(before["networks"])
    page.evaluate("window.__not_reloaded = true")
    database = Database.open(recorded.url)
    try:
        add_live_network(Recorder(database), recorded.live_search_id, before["networks"], 90.0)
    finally:
        database.dispose()
    page.wait_for_function(f"document.querySelector('#scatter').dataset.points === '{before['networks'] + 1}'",
                           timeout=15000)
    assert page.locator("[data-key='networks']").inner_text() == str(before["networks"] + 1)
    assert page.evaluate("window.__not_reloaded === true"), "the page reloaded instead of updating"
    assert "updated" in page.locator("#live").inner_text()


def test_docs_render_with_no_network(page, server: str, tmp_path: Path) -> None:
    outside: list[str] = []

    def only_local(route) -> None:
        url = route.request.url
        if url.startswith(server):
            route.continue_()
        else:
            outside.append(url)
            route.abort()

    page.route("**/*", only_local)
    page.goto("/docs")
    page.wait_for_selector(".opblock", timeout=20000)
    assert page.locator(".opblock").count() >= 10
    assert outside == [], f"/docs tried to load {outside}"
    page.screenshot(path=str(tmp_path / "docs.png"))
