"""Every query example in README.md returns something on the data a user has.

The queries are read out of the README's code blocks (a changed example is tested as
changed) and run the way the README shows them: against a real `a4nn-commons serve`,
through the DataFrame client and through `export --filter`, on a database made the
way a user makes one, `a4nn-commons ingest` of the published ICPP'23 logs. The quick
search cannot be rerun inside the tests (minutes of training), so its side is checked
against the quick-preset searches that `benchmarks/search_ab.py` recorded: each must
have a network, trained to the end, that the examples' accuracy/MFLOPs/beam terms select.
"""
from __future__ import annotations

import json
import operator
import os
import re
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from cli_helpers import console_script, run_console

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
RESULTS = ROOT / "benchmarks" / "results"
QUICK = {"pop": 8, "offspring": 8, "generations": 5, "epochs": 20, "image_size": 24, "n_images": 600, "channels": 8}
OPERATORS = {">=": operator.ge, "<=": operator.le, "!=": operator.ne, ">": operator.gt, "<": operator.lt,
             "=": operator.eq}


def readme_queries() -> list[tuple[str, str]]:
    """(how the README runs it, filter query) for every example in a fenced code block."""
    blocks = re.findall(r"^```[a-z]*\n(.*?)^```", README.read_text(), flags=re.S | re.M)
    found: list[tuple[str, str]] = []
    for block in blocks:
        found += [("GET /models", q) for q in re.findall(r"127\.0\.0\.1:\d+/models\?([^'\"\s]+)", block)]
        found += [("Client.models", q) for q in re.findall(r"\.models\(\"([^\"]+)\"", block)]
        found += [("export --filter", q) for q in re.findall(r"--filter \"([^\"]+)\"", block)]
    return found


QUERIES = readme_queries()


def test_the_readme_has_query_examples_to_test() -> None:
    kinds = {kind for kind, _ in QUERIES}
    assert kinds == {"GET /models", "Client.models", "export --filter"}, QUERIES


@pytest.fixture(scope="module")
def icpp_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    """`a4nn-commons ingest` of the published logs, once for the module (same rule as tests/conftest.py)."""
    logs = Path(os.environ.get("A4NN_ICPP23_DIR") or ROOT.parent / "shared" / "data" / "icpp23")
    if not logs.is_dir():
        pytest.skip(f"published A4NN logs not found at {logs} (set A4NN_ICPP23_DIR)")
    url = f"sqlite:///{tmp_path_factory.mktemp('readme') / 'a4nn.db'}"
    result = run_console(["ingest", str(logs), "--db", url, "--quiet"], timeout=600)
    assert result.returncode == 0, result.stderr
    return url


@pytest.fixture(scope="module")
def served(icpp_db: str):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([console_script(), "serve", "--db", icpp_db, "--port", str(port), "--log-level",
                               "warning"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 90
        while True:
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert server.poll() is None and time.time() < deadline, "serve did not start"
            time.sleep(0.3)
        yield base
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.mark.slow
@pytest.mark.parametrize("kind, query", QUERIES, ids=[f"{k}: {q}" for k, q in QUERIES])
def test_readme_query_selects_networks_of_the_published_logs(kind: str, query: str, icpp_db: str, served: str,
                                                             tmp_path: Path) -> None:
    if kind == "GET /models":
        response = httpx.get(f"{served}/models?{query}", timeout=30)
        assert response.status_code == 200, response.text
        assert response.json()["items"], f"{query} selects nothing"
        as_csv = httpx.get(f"{served}/models?{query}", headers={"Accept": "text/csv"}, timeout=30)
        assert as_csv.status_code == 200 and len(as_csv.text.strip().splitlines()) > 1
    elif kind == "Client.models":
        from a4nn.commons.client import Client

        with Client(served) as client:
            assert len(client.models(query)) > 0, f"{query} selects nothing"
    else:
        result = run_console(["export", "--filter", query, "--out", str(tmp_path / "bundle"), "--db", icpp_db])
        assert result.returncode == 0, result.stderr
        networks = int(re.search(r": (\d+) networks", result.stdout).group(1))
        assert networks > 0, result.stdout


def _quick_runs() -> list[tuple[str, dict]]:
    """(file, low-beam result) of every recorded quick-preset A/B (engine and standalone sides)."""
    runs = []
    for path in sorted(RESULTS.glob("search_ab*.json")):
        document = json.loads(path.read_text())
        settings = document.get("settings", {})
        if any(settings.get(key) != value for key, value in QUICK.items()):
            continue
        low = document.get("results", {}).get("low")
        if low:
            runs.append((path.name, low))
    return runs


def _selects(query: str, row: dict[str, float | str]) -> bool:
    """Whether the acc / flops / beam terms of ``query`` select ``row`` (other terms are not checked here)."""
    for term in query.split("&"):
        match = re.fullmatch(r"(acc|flops|beam)(>=|<=|!=|>|<|=)(.+)", term)
        if match is None:
            continue
        field, op, raw = match.groups()
        value: float | str = raw if field == "beam" else float(raw)
        if not OPERATORS[op](row[field], value):
            return False
    return True


def test_readme_queries_select_networks_of_the_recorded_quick_searches() -> None:
    runs = _quick_runs()
    if not runs:
        pytest.skip("no quick-preset search_ab results in benchmarks/results")
    for name, low in runs:
        finished = [{"acc": row["true_acc"], "flops": row["flops"], "beam": "low"}
                    for row in low["engine"]["front"] if not row["stopped_early"] and row.get("true_acc") is not None]
        finished += [{"acc": row["acc"], "flops": row["flops"], "beam": "low"} for row in low["standalone"]["front"]]
        assert finished, name
        for _, query in QUERIES:
            assert any(_selects(query, row) for row in finished), f"{query} selects nothing of {name}'s quick search"
