"""The replay benchmark's reference points: the online oracle and the forecast limit."""
from __future__ import annotations

from types import ModuleType
from typing import Iterator

import numpy as np
import pytest
from _scripts import load_benchmark


@pytest.fixture(scope="module")
def replay() -> Iterator[ModuleType]:
    yield from load_benchmark("engine_replay")


def _saturating(levels: np.ndarray, length: int) -> list[list[float]]:
    epochs = np.arange(1, length + 1)
    return [list(level - 20.0 * np.exp(-epochs / 2.0)) for level in levels]


def test_the_forecast_limit_stops_every_network_outside_the_top_where_the_final_value_is_predictable(replay) -> None:
    # 40 noise-free curves of one shape at different levels: the nearest neighbours' drift tells every
    # final value exactly, so all 36 networks outside the top 10 % may stop at the first epoch allowed
    curves = _saturating(np.linspace(60, 95, 40), 20)
    limit = replay.forecast_limit(curves, 20)
    assert limit["forecast_mae"] < 0.05 and limit["epoch"] == 4 and limit["stops"] == 36
    assert limit["epochs_saved"] == pytest.approx(36 * 16 / (40 * 20))


def test_noise_on_the_final_epoch_caps_the_forecast_limit(replay) -> None:
    rng = np.random.default_rng(0)
    curves = np.array(_saturating(np.linspace(60, 95, 40), 20))
    curves += rng.normal(0, 3.0, curves.shape)  # one epoch's accuracy on a small validation set
    limit = replay.forecast_limit(curves.tolist(), 20)
    assert limit["forecast_mae"] > 1.5  # about the noise's mean absolute deviation, 2.4
    assert limit["stops"] < 0.5 * 40 / 1.5 and limit["epochs_saved"] < 0.35
    clean = replay.forecast_limit(_saturating(np.linspace(60, 95, 40), 20), 20)
    assert limit["epochs_saved"] < clean["epochs_saved"] / 2


def test_other_orders_replay_the_same_curves_reproducibly(replay) -> None:
    rng = np.random.default_rng(1)
    curves = np.array(_saturating(rng.uniform(60, 95, 30), 12)) + rng.normal(0, 0.3, (30, 12))
    collection = {"curves": curves.tolist(), "flops": None, "n_classes": 2, "n_val": None}
    spread = replay.in_other_orders(collection, 12, orders=3)
    again = replay.in_other_orders(collection, 12, orders=3)
    assert spread == again and spread["orders"] == 3  # seeded: the same orders, the same replays
    for key in ("epochs_saved", "mae", "recall"):
        assert spread[key]["min"] <= spread[key]["mean"] <= spread[key]["max"]
    assert 0.0 < spread["epochs_saved"]["max"] < 1.0  # clean curves: the default stops some networks
    assert spread != replay.in_other_orders(collection, 12, orders=3, seed=8)  # other orders, other decisions


def test_a_peer_dominates_on_savings_and_recall_and_the_filter_keeps_those_within_the_error(replay) -> None:
    ours = {"epochs_saved": 0.20, "recall": 1.0, "mae": 0.3}
    peers = {"p": [{"setting": {"x": 1}, "epochs_saved": 0.40, "recall": 1.0, "mae": 2.0},   # saves more, worse fitness
                   {"setting": {"x": 2}, "epochs_saved": 0.25, "recall": 1.0, "mae": 0.4},   # better, within the error
                   {"setting": {"x": 3}, "epochs_saved": 0.20, "recall": 1.0, "mae": 0.1},   # a tie is no win
                   {"setting": {"x": 4}, "epochs_saved": 0.50, "recall": 0.9, "mae": 0.1}]}  # loses recall
    assert replay.dominated_by(ours, peers) == ["p {'x': 1}", "p {'x': 2}"]
    assert replay.dominated_by(ours, peers, max_mae=0.5) == ["p {'x': 2}"]
