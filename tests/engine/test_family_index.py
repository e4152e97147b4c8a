"""The index of parametric families: curve classes, per-family errors, the result folder and its command."""
from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd

from a4nn.engine.family_index import classify, index_families, summarize

X = np.arange(30)
FAST = list(60 + 30 * (1 - 0.8 ** X))
LATE = list(np.where(X < 18, 50.0, 50 + 40 * (1 - 0.7 ** (X - 17))))
FLAT = list(np.minimum(80.0, 50 + 20 * X))
NEVER = list(50 + 0.5 * np.sin(X))
DIVERGES = list(np.where(X < 15, 50 + 2.5 * X, 50.0))


def test_each_class_is_detected_by_its_rule() -> None:
    assert classify(FAST) == "learns-fast"
    assert classify(LATE) == "learns-late"
    assert classify(FLAT) == "plateaus"
    assert classify(NEVER) == "never-learns"
    assert classify(DIVERGES) == "diverges"
    assert classify(list(10 + 0.5 * np.sin(X)), n_classes=10) == "never-learns"
    assert classify(list(50 + 0.5 * np.sin(X)), n_classes=10) != "never-learns"


def test_errors_shrink_with_more_epochs_and_failures_are_counted() -> None:
    rows = index_families([FAST, LATE], families=["a-b^(c-x)", "pow3"], fractions=(0.1, 0.5))
    summary = summarize(rows)
    fast = summary[summary["curve_class"] == "learns-fast"].set_index(["family", "fraction"])["mae"]
    assert fast[("a-b^(c-x)", 0.1)] < 1e-6  # FAST is an a-b^(c-x) curve: its own family predicts it exactly
    assert fast[("pow3", 0.5)] > 1.0  # a power law misses an exponential approach to its ceiling
    from a4nn.engine.family_index import best_family
    assert best_family(summary)["learns-fast"] == {"0.1": "a-b^(c-x)", "0.5": "a-b^(c-x)"}
    assert set(summary["curve_class"]) == {"learns-fast", "learns-late"}
    assert all(r.failed == (not np.isfinite(r.error)) for r in rows)


def test_the_command_writes_a_verifiable_result_folder(tmp_path: Path) -> None:
    rows = [{"model": m, "epoch": e + 1, "val_acc": c[e]} for m, c in enumerate([FAST, LATE, NEVER]) for e in range(30)]
    path = tmp_path / "curves.parquet"
    pd.DataFrame(rows).to_parquet(path)
    out = tmp_path / "index"
    result = subprocess.run(["a4nn-commons", "engine", "families", str(path), "--out", str(out), "--family", "pow3",
                             "--fraction", "0.25"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "3 curves" in result.stdout
    manifest = json.loads((out / "MANIFEST.json").read_text())
    assert set(manifest) == {"fits.parquet", "summary.csv", "summary.json", "families.png"}
    for name, entry in manifest.items():
        assert hashlib.sha256((out / name).read_bytes()).hexdigest() == entry["sha256"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["classes"] == {"learns-fast": 1, "learns-late": 1, "never-learns": 1}
    assert summary["best_family"]["learns-fast"]["0.25"] == "pow3"


def test_the_command_refuses_both_or_neither_source(tmp_path: Path) -> None:
    result = subprocess.run(["a4nn-commons", "engine", "families", "--out", str(tmp_path / "x")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "--search" in result.stderr and "Traceback" not in result.stderr
    result = subprocess.run(["a4nn-commons", "engine", "families", str(tmp_path / "missing.csv"), "--out",
                             str(tmp_path / "x")], capture_output=True, text=True, timeout=120)
    assert result.returncode != 0 and "missing.csv" in result.stderr and "Traceback" not in result.stderr
