"""The self-contained HTML report, checked as text and (where Chromium exists) rendered headless."""
from __future__ import annotations

import base64
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from click.testing import CliRunner

from analyzer_fixture import ENGINE_SEARCH, fill_analyzer_trail

from a4nn.commons import analyzer
from a4nn.commons.analyzer.report import report_html


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


@pytest.fixture
def report_file(database, database_url, recorder, tmp_path: Path) -> Path:
    from a4nn.cli.analyze import report

    fill_analyzer_trail(recorder)
    out = tmp_path / "report.html"
    result = CliRunner().invoke(report, [ENGINE_SEARCH, "--db", database_url, "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


def test_report_is_self_contained(report_file: Path):
    text = report_file.read_text(encoding="utf-8")
    parser = _Collector()
    parser.feed(text)
    images = [attrs for tag, attrs in parser.tags if tag == "img"]
    assert len(images) >= 7  # curves, best model, Pareto, saved, stops, wall time, architecture, matching
    for attrs in images:
        assert attrs["src"].startswith("data:image/png;base64,")
        assert base64.b64decode(attrs["src"].split(",", 1)[1])[:4] == b"\x89PNG"
    assert sum(1 for tag, _ in parser.tags if tag == "table") >= 5
    for tag, attrs in parser.tags:  # nothing is fetched or linked from elsewhere
        assert tag not in ("script", "link", "iframe")
        for name in ("src", "href"):
            assert not re.match(r"^(https?:)?//", attrs.get(name) or ""), (tag, attrs)
    assert "http://" not in text and "https://" not in text
    assert ENGINE_SEARCH in text and "loss became inf" in text  # the failed network is listed with its error


def test_report_leaves_out_other_searches(database, recorder):
    fill_analyzer_trail(recorder)
    text = report_html(analyzer.load(database), ENGINE_SEARCH)
    assert "analyzer-standalone-low" not in text


def test_report_unknown_search_is_a_clear_error(database_url, tmp_path: Path):
    from a4nn.cli.analyze import report

    result = CliRunner().invoke(report, ["no-such-search", "--db", database_url, "--out", str(tmp_path / "r.html")])
    assert result.exit_code != 0 and "no-such-search" in str(result.exception)


@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium not on PATH")
def test_report_renders_in_headless_chromium(report_file: Path, tmp_path: Path):
    shot = tmp_path / "shot.png"
    completed = subprocess.run(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--window-size=1200,3000",
         f"--screenshot={shot}", report_file.resolve().as_uri()],
        capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr
    assert shot.stat().st_size > 10_000
    dom = subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom",
                          report_file.resolve().as_uri()], capture_output=True, text=True, timeout=120)
    assert dom.stdout.count("<img") >= 7 and "<table" in dom.stdout
