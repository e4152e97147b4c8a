"""``benchmarks/search_ab.py`` runs its searches through the search library (no CLI runner) into its own folder."""
from __future__ import annotations

import argparse
import os
from pathlib import Path

import pytest
from _scripts import BENCHMARKS as ROOT, load_benchmark


@pytest.fixture(scope="module")
def search_ab():
    yield from load_benchmark("search_ab")


def test_run_search_records_a_search_in_the_run_folder(search_ab, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("A4NN_DATA_DIR", raising=False)
    monkeypatch.chdir(tmp_path)  # a default cache folder would appear here
    args = argparse.Namespace(seed=0, pop=2, offspring=1, generations=1, epochs=2, n_images=40, image_size=16,
                              channels=4, r=1.0, prior_curves=6, keep_engine_db=None)
    (tmp_path / "ab").mkdir()  # the benchmark's temporary folder
    run = search_ab.run_search("high", "none", args, tmp_path / "ab")
    assert run["networks"] == 2 and run["epochs"] == 4 and run["stopped_early"] == 0 and run["wall_seconds"] > 0
    assert (tmp_path / "ab" / "data").is_dir()           # the data were cached in the benchmark's folder ...
    assert not (tmp_path / "a4nn-data").exists()         # ... not in a default one
    assert "A4NN_DATA_DIR" not in os.environ             # and nothing was set for the rest of the process
    assert "CliRunner" not in (ROOT / "search_ab.py").read_text()
