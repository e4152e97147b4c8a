"""Residual decoder: an NSGA-Net macro genome becomes a torch ``nn.Module``.

Per phase: an entry convolution (3x3 without padding in phase 0, 1x1 later) when the
channel count changes, Conv3x3-BN-ReLU nodes wired by the repaired dependency graph,
1x1 convolutions after concatenations, BN-ReLU at the phase output; MaxPool 2x2
between phases; global average pooling and a linear head. Channels per phase are
``[(in, C), (C, 2C), (2C, 4C)]`` as in NSGA-Net's macro search.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from a4nn.search.encoding import DEFAULT_NODES, active_phases, bits_to_string, decode_genome, dependency_graph, is_empty_phase


class ConvNode(nn.Module):
    """Conv3x3-BN-ReLU, the operation of every node."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(channels), nn.ReLU(inplace=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class ResidualPhase(nn.Module):
    """One phase of the macro network, wired by :func:`dependency_graph`."""

    def __init__(self, connectivity: list[list[int]], in_channels: int, out_channels: int, index: int):
        super().__init__()
        self.graph = dependency_graph(connectivity)
        self.n_nodes = len(connectivity)
        self.entry = (nn.Conv2d(in_channels, out_channels, 3 if index == 0 else 1, bias=False)
                      if in_channels != out_channels else nn.Identity())
        self.nodes = nn.ModuleList(ConvNode(out_channels) if self.graph[i + 1] else nn.Identity()
                                   for i in range(self.n_nodes))
        self.merges = nn.ModuleDict({
            str(node): nn.Conv2d(len(inputs) * out_channels, out_channels, 1, bias=False)
            for node, inputs in self.graph.items() if len(inputs) > 1
        })
        self.out = nn.Sequential(nn.BatchNorm2d(out_channels), nn.ReLU(inplace=False))

    def _gather(self, node: int, outputs: list[torch.Tensor | None]) -> torch.Tensor:
        inputs = [outputs[i] for i in self.graph[node]]
        merged = inputs[0] if len(inputs) == 1 else torch.cat(inputs, dim=1)  # type: ignore[arg-type]
        return self.merges[str(node)](merged) if str(node) in self.merges else merged

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outputs: list[torch.Tensor | None] = [self.entry(x)]
        for node in range(1, self.n_nodes + 1):
            outputs.append(self.nodes[node - 1](self._gather(node, outputs)) if self.graph[node] else None)
        return self.out(self._gather(self.n_nodes + 1, outputs))


class MacroNetwork(nn.Module):
    """Phases separated by max pooling, then global average pooling and a linear head."""

    def __init__(self, bits: Sequence[int], n_nodes: int, channels: int, in_channels: int, n_classes: int):
        super().__init__()
        phases = active_phases(bits, n_nodes)
        widths = [(in_channels, channels), (channels, 2 * channels), (2 * channels, 4 * channels)]
        layers: list[nn.Module] = []
        out_channels = in_channels
        for index, (connectivity, (c_in, c_out)) in enumerate(zip(phases, widths)):
            if index > 0:
                layers.append(nn.MaxPool2d(2, 2))
            layers.append(ResidualPhase(connectivity, c_in, c_out, index))
            out_channels = c_out
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(out_channels, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.flatten(self.pool(self.features(x)), 1))


def build_network(bits: Sequence[int] | np.ndarray, *, n_nodes: int = DEFAULT_NODES, channels: int = 24,
                  in_channels: int = 1, n_classes: int = 2) -> nn.Module:
    """The torch model of a genome."""
    return MacroNetwork(list(np.asarray(bits).ravel()), n_nodes, channels, in_channels, n_classes)


def describe_network(bits: Sequence[int] | np.ndarray, n_nodes: int = DEFAULT_NODES) -> dict[str, Any]:
    """A JSON description stored in ``architectures.arch``: phases, active nodes, edges, skip."""
    phases = []
    for connectivity in decode_genome(bits, n_nodes):
        if is_empty_phase(connectivity):
            phases.append({"removed": True, "connectivity": connectivity})
            continue
        graph = dependency_graph(connectivity)
        phases.append({
            "removed": False,
            "connectivity": connectivity,
            "active_nodes": [node for node in range(1, n_nodes + 1) if graph[node]],
            "edges": [[src, dst] for dst, inputs in sorted(graph.items()) for src in inputs],
            "skip": bool(connectivity[-1][0]),
        })
    return {"encoding": "nsga-net-macro/v1", "bits": bits_to_string(bits), "n_nodes": n_nodes, "phases": phases}
