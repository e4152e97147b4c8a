"""The faithful mode reproduces PENGUIN's logged predictions and converged flags."""
from __future__ import annotations

import math

import pandas as pd

from a4nn.engine import PredictionEngine

ARCHS_PER_FILE = 12  # a slice of every published early-termination run keeps the test under a minute


def test_faithful_mode_reproduces_published_logs(icpp23_dir) -> None:
    files = sorted(icpp23_dir.glob("*/early_termination/*.csv"))
    assert files, f"no early-termination logs under {icpp23_dir}"
    rows = prediction_ok = converged_ok = 0
    for path in files:
        frame = pd.read_csv(path)
        for arch in frame["arch"].drop_duplicates().head(ARCHS_PER_FILE):
            engine = PredictionEngine(strategy="penguin", c_min=3, e_pred=25, n=3, r=0.5)
            for row in frame[frame["arch"] == arch].sort_values("epoch").itertuples():
                decision = engine.observe(row.epoch + 1, row.val_accs)
                logged = float(row.predictions)
                rows += 1
                same = (math.isinf(logged) and math.isinf(decision.prediction)) or abs(logged - decision.prediction) <= 0.01
                prediction_ok += same
                converged_ok += decision.converged == (str(row.converged) == "True")
    assert rows > 1000
    assert prediction_ok / rows >= 0.99, f"predictions reproduced on {prediction_ok / rows:.4f} of {rows} rows"
    assert converged_ok / rows >= 0.99, f"converged flags reproduced on {converged_ok / rows:.4f} of {rows} rows"
