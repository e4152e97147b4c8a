"""Genome decoding against the published logs, repair rules, decoder and FLOPs."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from a4nn.search.encoding import (
    bits_to_string, decode_genome, dependency_graph, flatten_genome, genome_hash, genome_length, is_empty_phase,
    split_phases, string_to_bits,
)
from a4nn.search.flops import count_mflops, count_parameters
from a4nn.search.network import build_network, describe_network


def test_lengths_and_round_trips() -> None:
    assert genome_length() == 21 and genome_length(5) == 33
    bits = np.random.default_rng(0).integers(0, 2, 21)
    assert (string_to_bits(bits_to_string(bits)) == bits).all()
    assert flatten_genome(split_phases(bits)).tolist() == bits.tolist()
    assert genome_hash(bits) == genome_hash(bits.tolist()) != genome_hash(1 - bits)
    with pytest.raises(ValueError):
        split_phases([1, 0, 1])


def test_decoding_matches_every_published_architecture(icpp23_dir) -> None:
    checked = 0
    for path in icpp23_dir.glob("*/early_termination/*.csv"):
        frame = pd.read_csv(path).drop_duplicates("arch")
        if "architecture" not in frame.columns:
            continue
        for row in frame.itertuples():
            assert decode_genome(flatten_genome(json.loads(row.genome))) == json.loads(row.architecture)
            checked += 1
    assert checked >= 300


def test_repair_rules() -> None:
    # node 3 takes node 1 only; node 1 has no inputs -> takes phase input; node 3 has no outputs -> feeds output;
    # node 2 and 4 are isolated -> dropped
    phase = [[0], [1, 0], [0, 0, 0], [0]]
    graph = dependency_graph(phase)
    assert graph[1] == [0] and graph[3] == [1] and graph[2] == [] and graph[4] == []
    assert graph[5] == [3]
    assert is_empty_phase([[0], [0, 0], [0, 0, 0], [0]])
    assert not is_empty_phase([[0], [0, 0], [0, 0, 0], [1]])


def test_empty_phase_is_removed_and_network_runs() -> None:
    bits = [0] * 7 + [1, 1, 0, 1, 1, 0, 1] + [0] * 7
    description = describe_network(bits)
    assert [p["removed"] for p in description["phases"]] == [True, False, True]
    model = build_network(bits, channels=4)
    assert model(torch.zeros(2, 1, 32, 32)).shape == (2, 2)


def test_flops_of_published_arch_68(icpp23_dir) -> None:
    frame = pd.read_csv(icpp23_dir / "1gpu" / "no_early_termination" / "1gpu_1e14_training_data.csv")
    row = frame[frame["arch"] == 68].iloc[0]
    mflops = count_mflops(build_network(flatten_genome(json.loads(row.genome)), channels=24), (1, 1, 127, 127))
    assert row.flops == pytest.approx(715.41, abs=0.01)
    # Our hook-based count of convolution + linear MACs lands 1.1 % under NSGA-Net's number
    # (707.49 vs 715.41); the remainder is unexplained, see the issue note. Keep the gap from growing.
    assert mflops == pytest.approx(row.flops, rel=0.015)


def test_flops_track_published_values_for_all_networks(icpp23_dir) -> None:
    frame = pd.read_csv(icpp23_dir / "1gpu" / "no_early_termination" / "1gpu_1e14_training_data.csv").drop_duplicates("arch")
    ours = [count_mflops(build_network(flatten_genome(json.loads(g)), channels=24)) for g in frame.genome.head(40)]
    published = frame.flops.head(40).to_numpy()
    assert np.corrcoef(ours, published)[0, 1] > 0.999
    assert np.max(np.abs(np.array(ours) / published - 1)) < 0.02


def test_parameters_are_counted() -> None:
    assert count_parameters(build_network([1] * 21, channels=4)) > count_parameters(build_network([0] * 20 + [1], channels=4))
