"""How fast each explorer page is ready on a large lineage database.

1. Builds the database of ``benchmarks/api.py`` (its ``fill``: 100,000 architectures in
   three searches of ~33,000 networks and 333 generations each, 500,000 epoch rows), then
   gives ``--annotated`` of the models that have epochs what a search records besides:
   a genome each (all distinct), crossover parents, three engine predictions and a
   checkpoint row.
2. Serves it with the installed ``a4nn-commons serve`` (one uvicorn worker) on 127.0.0.1.
3. For every page (searches, a search, models, models with a filter, the next page of a
   filter, a model, compare 8 models), ``--samples`` times with different ids, times

   * ``server_ms``: the page's HTML, its script and stylesheet, then every request the
     page's JavaScript makes (the same URLs ``api/ui/static/app.js`` fetches), one after another on one keep-alive connection. The browser sends
     the independent ones together, so this is an upper bound on the network part;
   * ``browser_ms`` (where Playwright and chromium exist): headless chromium's own clock
     (``performance.now()``, whose origin is the start of the navigation, before the HTML is
     requested) when the page has drawn everything from its data (``body[data-ready]``) and
     the frame after it has been laid out and painted; for the next page of a filter, from
     the click on "Next page" to that frame. ``browser_wall_ms`` is Playwright's wall clock
     around the same (``goto`` waits for the load event, then the wait for the selector is a
     round trip to the driver): it adds the automation's own latency, which no user sees.

   A search page's first visit computes its scatter, front and per-generation numbers
   (later visits reuse them until the search changes), so ``search_changed`` adds one
   finished network to the search before every sample, as a running search does between
   two refreshes of its page; ``search`` is the ordinary mix of first and later visits.

   Target: p95 <= 300 ms for every page in ``server_ms`` and ``browser_ms``.

The machine is shared, so the result records its load average before, during (at the end
of each page) and after the run.

Run under the CPU lock (the database fill takes a few CPU-minutes)::

    flock /tmp/a4nn-cpu.lock python benchmarks/explorer.py

Writes benchmarks/results/explorer.json.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import wait_for_service, write_result  # noqa: E402
from api import EPOCHS, fill, free_port, percentiles  # noqa: E402

from a4nn.lineage.database import Database
from a4nn.lineage.models import Architecture, Search
from a4nn.lineage.recorder import Recorder

TARGET_MS = 300.0
CHROMIUM = os.environ.get("A4NN_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
FILTER = "beam=low&acc>99&sort=-acc"


def annotate(url: str, count: int, folder: Path) -> list[int]:
    """Genomes, parents, predictions and a checkpoint for ``count`` models that have epochs."""
    from sqlalchemy import select, update

    database = Database.open(url)
    recorder = Recorder(database)
    rng = np.random.default_rng(1)
    with database.engine.connect() as connection:
        search_id = connection.execute(select(Search.id).order_by(Search.id).limit(1)).scalar()
    ids = annotated_ids(url, count)
    genomes = []
    for n, model_id in enumerate(ids):
        bits = format(n * 7919 + 1, "021b")[-21:]
        genome = recorder.register_genome(bits)
        genomes.append(genome)
        with database.engine.begin() as connection:
            connection.execute(update(Architecture).where(Architecture.id == model_id).values(genome_id=genome))
        if n >= 2:
            for parent in rng.choice(genomes[:-1], 2, replace=False):
                recorder.add_genome_parent(genome, int(parent), "crossover", search_id)
        for epoch in (4, 5, 6):
            recorder.log_prediction(model_id, epoch, EPOCHS, float(95 + rng.normal(0, 1)), "a-b^(c-x)",
                                    [95.0, 2.0, 0.5], epoch == 6, 0.01)
        state = folder / f"m{model_id}.pt"
        state.write_bytes(b"state" * 20)
        recorder.log_checkpoint(model_id, EPOCHS, state)
    database.dispose()
    return ids


def annotated_ids(url: str, count: int) -> list[int]:
    """Every 37th of the first models: all of them have epochs (``fill`` gives the first 20,000 epochs)."""
    from sqlalchemy import select

    database = Database.open(url)
    with database.engine.connect() as connection:
        first = connection.execute(select(Architecture.id).order_by(Architecture.id).limit(1)).scalar()
    database.dispose()
    return [first + i * 37 for i in range(count)]


def page_requests(client: httpx.Client, path: str) -> list[str]:
    """The URLs the explorer's script fetches for ``path`` (mirrors app.js)."""
    if path in ("/ui/", "/ui/searches"):
        return ["/searches", *(f"/searches/{s['id']}" for s in client.get("/searches").json())]
    if path.startswith("/ui/searches/"):
        search = path.rsplit("/", 1)[1]
        return [f"/searches/{search}", f"/searches/{search}/points?metric=fitness", f"/searches/{search}/generations?metric=fitness"]
    if path.startswith("/ui/models/"):
        model = path.rsplit("/", 1)[1]
        return [f"/models/{model}", f"/models/{model}/epochs", f"/models/{model}/predictions",
                f"/models/{model}/lineage?direction=up&hops=1", f"/models/{model}/lineage?direction=down&hops=1",
                f"/models/{model}/checkpoints", f"/models/{model}/architecture"]
    if path.startswith("/ui/compare?ids="):
        ids = path.split("=", 1)[1].split(",")
        return [u for i in ids for u in (f"/models/{i}", f"/models/{i}/epochs")]
    raise ValueError(path)


def time_server(client: httpx.Client, path: str, data: list[str]) -> float:
    begin = time.perf_counter()
    for url in ["/ui/static/app.js", "/ui/static/style.css", *data]:
        client.get(url).raise_for_status()
    return (time.perf_counter() - begin) * 1000


def grow(url: str, search_id: int) -> Callable[[], None]:
    """A callable that records one more finished network in ``search_id`` (the search changes).

    It joins the search's last generation after its last index, as a running search's next
    network would (and a kept ``--db`` can be measured again).
    """
    from sqlalchemy import func, select

    database = Database.open(url)
    recorder = Recorder(database)
    with database.engine.connect() as connection:
        generation = connection.execute(select(func.max(Architecture.generation))
                                        .where(Architecture.search_id == search_id)).scalar() or 0
        last = connection.execute(select(func.max(Architecture.index)).where(
            Architecture.search_id == search_id, Architecture.generation == generation)).scalar()
    counter = iter(range(-1 if last is None else last, 10**9))

    def add() -> None:
        index = next(counter) + 1
        arch = recorder.start_architecture(search_id, index, generation, None, {}, {}, flops=100.0 + index % 1000,
                                           n_params=10)
        recorder.finish_architecture(arch, "completed", final_acc=90.0, fitness=90.0, epochs_trained=EPOCHS)

    return add


#: installed in every page before its scripts: the browser's clock when ``body[data-ready]`` appears, and when
#: the frame after it has been painted (a task queued from that frame's animation callback runs after its paint)
READY_CLOCK = """
new MutationObserver((_, observer) => {
  if (document.body && document.body.dataset.ready === '1') {
    observer.disconnect();
    window.__readyAt = performance.now();
    requestAnimationFrame(() => setTimeout(() => { window.__drawnAt = performance.now(); }, 0));
  }
}).observe(document, { subtree: true, attributes: true, attributeFilter: ['data-ready'] });
"""
#: the next page of the models table, timed in the page: from the click to the frame after the new rows
NEXT_PAGE = """() => new Promise((resolve) => {
  const table = document.getElementById('models-table');
  const before = table.querySelector('tbody tr').dataset.id;
  const observer = new MutationObserver(() => {
    const row = table.querySelector('tbody tr');
    if (row && row.dataset.id !== before) {
      observer.disconnect();
      requestAnimationFrame(() => setTimeout(() => resolve(performance.now() - begin), 0));
    }
  });
  observer.observe(table, { childList: true, subtree: true });
  const begin = performance.now();
  document.getElementById('next-page').click();
})"""


def measure(base: str, pages: dict[str, list[str]], models_data: Callable[[httpx.Client, str], list[str]],
            browser: Any | None, before: dict[str, Callable[[], None]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with httpx.Client(base_url=base, timeout=30) as client:
        for name, paths in pages.items():
            server, in_browser, wall = [], [], []
            for path in paths:
                if name in before:
                    before[name]()
                shell_begin = time.perf_counter()
                client.get(path).raise_for_status()
                shell = (time.perf_counter() - shell_begin) * 1000
                data = models_data(client, path) if name.startswith("models") else page_requests(client, path)
                server.append(shell + time_server(client, path, data))
            if browser is not None:
                tab = browser.new_page(viewport={"width": 1280, "height": 800})
                tab.add_init_script(READY_CLOCK)
                tab.goto(base + paths[0])  # warm: the script and stylesheet come from the browser's cache after
                tab.wait_for_selector("body[data-ready='1']", timeout=60000)
                for path in paths:
                    if name in before:
                        before[name]()
                    begin = time.perf_counter()
                    tab.goto(base + path)
                    tab.wait_for_selector("body[data-ready='1']", timeout=60000)
                    if name == "models_next_page":  # the next page is a click, not a navigation
                        tab.wait_for_selector("#models-table tbody tr")
                        begin = time.perf_counter()
                        in_browser.append(tab.evaluate(NEXT_PAGE))
                    else:
                        tab.wait_for_function("window.__drawnAt !== undefined", timeout=60000)
                        in_browser.append(tab.evaluate("window.__drawnAt"))
                    wall.append((time.perf_counter() - begin) * 1000)
                tab.close()
            out[name] = {"samples": len(paths), "example": paths[0], "server_ms": percentiles(server),
                         **({"browser_ms": percentiles(in_browser), "browser_wall_ms": percentiles(wall)}
                            if in_browser else {}),
                         "load_average": os.getloadavg()}
            verdict = [out[name]["server_ms"]["p95"]] + ([out[name]["browser_ms"]["p95"]] if in_browser else [])
            out[name]["meets_target"] = max(verdict) <= TARGET_MS
            print(f"{name:18s} server p95 {out[name]['server_ms']['p95']:7.1f} ms"
                  + (f"   browser p95 {out[name]['browser_ms']['p95']:7.1f} ms (wall {out[name]['browser_wall_ms']['p95']:7.1f})"
                     if in_browser else "") + f"   load {os.getloadavg()[0]:.2f}", flush=True)
    return out


def models_data(client: httpx.Client, path: str) -> list[str]:
    from urllib.parse import parse_qs, urlparse

    query = parse_qs(urlparse(path).query).get("filter", [""])[0]
    first = f"/models?{query + '&' if query else ''}limit=25"
    if "page=2" in path:  # the next page: the first page's `next` link
        return [first, client.get(first).json()["next"]]
    return [first]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--architectures", type=int, default=100_000)
    parser.add_argument("--with-epochs", type=int, default=20_000)
    parser.add_argument("--annotated", type=int, default=40, help="models given genomes, parents, predictions")
    parser.add_argument("--samples", type=int, default=20, help="loads per page")
    parser.add_argument("--db", type=Path, default=None, help="reuse (or keep) the database file here")
    parser.add_argument("--no-browser", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        db_path = args.db or Path(scratch) / "lineage.db"
        url = f"sqlite:///{db_path}"
        result: dict[str, Any] = {"architectures": args.architectures, "epoch_rows": args.with_epochs * EPOCHS,
                                  "annotated_models": args.annotated, "target_p95_ms": TARGET_MS, "workers": 1}
        result["load_average_before"] = os.getloadavg()
        begin = time.perf_counter()
        fresh = not db_path.exists()
        if fresh:
            fill(url, args.architectures, args.with_epochs)
            ids = annotate(url, args.annotated, Path(scratch))
        else:  # a kept database (--db) was annotated when it was built
            ids = annotated_ids(url, args.annotated)
        result["fill_seconds"] = time.perf_counter() - begin
        port = free_port()
        command = [shutil.which("a4nn-commons") or "a4nn-commons", "serve", "--db", url, "--port", str(port),
                   "--checkpoint-root", scratch, "--log-level", "warning"]
        server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}"
        try:
            wait_for_service(base, server)
            searches = [s["id"] for s in httpx.get(base + "/searches").json()]
            n = args.samples
            rng = np.random.default_rng(0)
            pages = {
                "searches": ["/ui/searches"] * n,
                "search": [f"/ui/searches/{searches[i % len(searches)]}" for i in range(n)],
                "search_changed": [f"/ui/searches/{searches[0]}"] * n,
                "models": ["/ui/models"] * n,
                "models_filtered": [f"/ui/models?filter={FILTER.replace('&', '%26')}"] * n,
                "models_next_page": [f"/ui/models?filter={FILTER.replace('&', '%26')}&page=2"] * n,
                "model": [f"/ui/models/{ids[i % len(ids)]}" for i in range(n)],
                "compare_8": [f"/ui/compare?ids={','.join(str(x) for x in rng.choice(ids, 8, replace=False))}"
                              for _ in range(n)],
            }
            result["searches_sizes"] = [s["networks"] for s in httpx.get(base + "/searches").json()]
            browser, playwright = None, None
            if not args.no_browser:
                try:
                    from playwright.sync_api import sync_playwright

                    if Path(CHROMIUM).is_file():
                        playwright = sync_playwright().start()
                        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                        result["browser"] = f"chromium {browser.version} (headless)"
                except ImportError:
                    result["browser"] = "skipped: playwright not installed"
            try:
                result["pages"] = measure(base, pages, models_data, browser, {"search_changed": grow(url, searches[0])})
            finally:
                if browser is not None:
                    browser.close()
                    playwright.stop()
        finally:
            server.terminate()
            server.wait(timeout=30)
        result["meets_target"] = all(p["meets_target"] for p in result["pages"].values())
        result["load_average_after"] = os.getloadavg()
    path = write_result("explorer", result)
    print(f"-> {path}")


if __name__ == "__main__":
    main()
