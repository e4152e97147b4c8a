"""FLOPs in NSGA-Net's convention, checked against the published A4NN logs."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from a4nn.search.flops import count_flops, count_mflops, count_parameters
from a4nn.search.network import build_network


def test_arch_68_gives_715_41(icpp23_dir) -> None:
    frame = pd.read_csv(icpp23_dir / "1gpu" / "no_early_termination" / "1gpu_1e14_training_data.csv")
    row = frame[frame["arch"] == 68].iloc[0]
    assert row.flops == pytest.approx(715.41, abs=0.01)
    mflops = count_mflops(build_network(json.loads(row.genome), channels=24), (1, 1, 127, 127))
    assert mflops == pytest.approx(715.41, rel=0.01)
    assert mflops == pytest.approx(row.flops, abs=1e-3)  # in fact exact to the logged 4 decimals


def test_every_network_of_a_published_run(icpp23_dir) -> None:
    """All 100 networks of one run, including phase-removal corner cases, within 0.1 %."""
    frame = pd.read_csv(icpp23_dir / "1gpu" / "early_termination" / "1gpu_1e16_stopping_training_data.csv")
    frame = frame.drop_duplicates("arch")
    torch.set_num_threads(1)
    ours = np.array([count_mflops(build_network(json.loads(g), channels=24)) for g in frame["genome"]])
    published = frame["flops"].to_numpy()
    assert len(ours) == 100
    assert np.max(np.abs(ours - published) / np.maximum(published, 0.1)) < 1e-3


def test_counting_rules_by_hand() -> None:
    """Conv MACs + bias, BN x2, ReLU, pooling inputs, Linear in*out — on a model small enough to add up."""
    model = nn.Sequential(nn.Conv2d(1, 2, 3, bias=True), nn.BatchNorm2d(2), nn.ReLU(), nn.MaxPool2d(2),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2, 3))
    counts = count_flops(model, (1, 1, 6, 6))
    assert counts == {"Conv2d": 16 * 9 * 2 + 2 * 16, "BatchNorm2d": 2 * 32, "ReLU": 32,
                      "MaxPool2d": 32, "AdaptiveAvgPool2d": 8, "Linear": 6}
    assert count_mflops(model, (1, 1, 6, 6)) == pytest.approx(sum(counts.values()) / 1e6)
    # per image: a batch of 4 costs the same per image
    assert count_flops(model, (4, 1, 6, 6)) == counts


def test_counting_leaves_the_model_as_it_was() -> None:
    model = build_network([1] * 21, channels=4)
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    count_mflops(model, (1, 1, 32, 32))
    assert model.training and not model._forward_hooks
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert count_parameters(model) == sum(p.numel() for p in model.parameters())
