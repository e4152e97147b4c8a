"""The residual decoder: structure follows NSGA-Net's macro decoder, models run on any image size."""
from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from a4nn.search.encoding import GenomeError
from a4nn.search.flops import count_parameters
from a4nn.search.network import ResidualPhase, build_network, describe_network, phase_channels

ARCH_68 = [[0, 0, 0, 1, 1, 0, 1], [0, 0, 0, 0, 0, 1, 0], [0, 0, 1, 0, 1, 1, 0]]


def test_channels_double_per_phase() -> None:
    assert phase_channels(24, 1, 3) == [(1, 24), (24, 48), (48, 96)]


def test_structure_of_a_published_genome() -> None:
    model = build_network(ARCH_68, channels=24)
    phases = [m for m in model.features if isinstance(m, ResidualPhase)]
    pools = [m for m in model.features if isinstance(m, nn.MaxPool2d)]
    assert len(phases) == 3 and len(pools) == 2
    assert phases[0].entry.kernel_size == (3, 3) and phases[0].entry.padding == (0, 0)
    assert phases[1].entry.kernel_size == (1, 1) and phases[2].entry.kernel_size == (1, 1)
    assert [p.entry.out_channels for p in phases] == [24, 48, 96]
    # phase 0 = [[0], [0, 0], [1, 1, 0], [1]]: nodes 1, 2 -> 4 -> out (+ skip); node 3 dropped
    assert sorted(phases[0].nodes.keys()) == ["1", "2", "4"]
    assert sorted(phases[0].merges.keys()) == ["4", "5"]  # concatenations then 1x1 convolution
    assert phases[0].merges["4"].in_channels == 48 and phases[0].merges["4"].kernel_size == (1, 1)
    node = phases[0].nodes["1"].body
    assert isinstance(node[0], nn.Conv2d) and node[0].kernel_size == (3, 3) and node[0].padding == (1, 1)
    assert isinstance(node[1], nn.BatchNorm2d) and isinstance(node[2], nn.ReLU)
    assert model.head.in_features == 96 and model.head.out_features == 2


@pytest.mark.parametrize("size", [16, 32, 127])
def test_forward_shapes(size: int) -> None:
    model = build_network(ARCH_68, channels=4, in_channels=2, n_classes=3)
    assert model(torch.randn(2, 2, size, size)).shape == (2, 3)


def test_inactive_phases_are_removed_and_channels_shift() -> None:
    bits = [0] * 6 + [1] + [1, 1, 0, 1, 1, 0, 1] + [0] * 7  # phase 1 keeps only a skip bit -> removed
    model = build_network(bits, channels=4)
    phases = [m for m in model.features if isinstance(m, ResidualPhase)]
    assert len(phases) == 1 and phases[0].entry.kernel_size == (3, 3) and phases[0].entry.out_channels == 4
    assert not any(isinstance(m, nn.MaxPool2d) for m in model.features)
    description = describe_network(bits, channels=4)
    assert [p["removed"] for p in description["phases"]] == [True, False, True]
    assert description["phases"][1]["channels"] == [1, 4] and description["n_active_phases"] == 1


def test_genome_without_active_phase_is_pooling_and_head() -> None:
    model = build_network([0] * 21, channels=8)
    assert isinstance(model.features, nn.Identity) and model.head.in_features == 1
    assert model(torch.randn(3, 1, 20, 20)).shape == (3, 2)


def test_describe_network_is_json_and_names_the_graph() -> None:
    description = describe_network(ARCH_68)
    assert json.loads(json.dumps(description)) == description
    phase = description["phases"][0]
    assert phase["active_nodes"] == [1, 2, 4] and phase["skip"] is True
    assert phase["edges"] == [[0, 1], [0, 2], [1, 4], [2, 4], [0, 5], [4, 5]]
    assert description["bits"] == "000110100000100010110" and description["encoding"] == "nsga-net-macro/v1"


def test_parameters_grow_with_connections_and_backward_runs() -> None:
    dense, sparse = build_network([1] * 21, channels=4), build_network([0, 0, 0, 0, 0, 1, 0] * 3, channels=4)
    assert count_parameters(dense) > count_parameters(sparse) > 0
    loss = dense(torch.randn(2, 1, 16, 16)).sum()
    loss.backward()
    assert all(p.grad is not None for p in dense.parameters())


def test_bad_arguments() -> None:
    with pytest.raises(GenomeError):
        build_network([1, 0], channels=4)
    with pytest.raises(GenomeError):
        build_network([1] * 21, channels=0)
