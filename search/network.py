"""Residual decoder: an NSGA-Net macro genome becomes a torch ``nn.Module``.

This follows NSGA-Net's ``ResidualGenomeDecoder`` / ``ResidualPhase`` / ``EvoNetwork``
(macro search space) so that accuracies and FLOPs are comparable with the published
A4NN logs:

* inactive phases (no node-to-node edge) are removed first; the surviving phases take
  the first channel pairs of ``[(in, C), (C, 2C), (2C, 4C)]`` in order;
* a phase whose channel count changes starts with an entry convolution, 3x3 *without
  padding* for the first surviving phase and 1x1 for later ones (no bias);
* every active node is Conv3x3(pad 1, no bias)-BN-ReLU; a node (or the phase output)
  with several inputs concatenates them along channels and applies a 1x1 convolution;
* the phase output goes through BN-ReLU; MaxPool 2x2 separates phases;
* global average pooling and a linear head close the network.

A genome with no active phase is the identity followed by the pooling and the head,
exactly as NSGA-Net builds it.
"""
from __future__ import annotations

import torch
from torch import nn

# describe_network and phase_channels live in the torch-free encoding (readers describe genomes without torch);
# they are re-exported here for the callers that build networks too
from a4nn.search.encoding import (DEFAULT_NODES, Connectivity, GenomeError, GenomeLike, decode_genome,  # noqa: F401
                                  dependency_graph, describe_network, phase_active, phase_channels)


class ConvNode(nn.Module):
    """Conv3x3-BN-ReLU, the operation of every node (NSGA-Net's ``ResidualNode``)."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(channels), nn.ReLU(inplace=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class ResidualPhase(nn.Module):
    """One phase of the macro network, wired by :func:`~a4nn.search.encoding.dependency_graph`."""

    def __init__(self, connectivity: Connectivity, in_channels: int, out_channels: int, index: int):
        super().__init__()
        self.graph = dependency_graph(connectivity)
        self.n_nodes = len(connectivity)
        self.entry: nn.Module = (nn.Conv2d(in_channels, out_channels, 3 if index == 0 else 1, bias=False)
                                 if in_channels != out_channels else nn.Identity())
        # Only active nodes get modules; keys are the node numbers 1..n (strings for ModuleDict).
        self.nodes = nn.ModuleDict({str(node): ConvNode(out_channels)
                                    for node in range(1, self.n_nodes + 1) if self.graph[node]})
        self.merges = nn.ModuleDict({str(node): nn.Conv2d(len(inputs) * out_channels, out_channels, 1, bias=False)
                                     for node, inputs in self.graph.items() if len(inputs) > 1})
        self.out = nn.Sequential(nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))

    def _gather(self, node: int, outputs: dict[int, torch.Tensor]) -> torch.Tensor:
        inputs = [outputs[i] for i in self.graph[node]]
        if len(inputs) == 1:
            return inputs[0]
        return self.merges[str(node)](torch.cat(inputs, dim=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outputs: dict[int, torch.Tensor] = {0: self.entry(x)}
        for node in range(1, self.n_nodes + 1):
            if self.graph[node]:
                outputs[node] = self.nodes[str(node)](self._gather(node, outputs))
        return self.out(self._gather(self.n_nodes + 1, outputs))


class MacroNetwork(nn.Module):
    """Active phases separated by max pooling, then global average pooling and a linear head."""

    def __init__(self, phases: list[Connectivity], channels: int, in_channels: int, n_classes: int):
        super().__init__()
        layers: list[nn.Module] = []
        out_channels = in_channels
        for index, (connectivity, (c_in, c_out)) in enumerate(zip(phases, phase_channels(channels, in_channels,
                                                                                           len(phases)))):
            if index > 0:
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            layers.append(ResidualPhase(connectivity, c_in, c_out, index))
            out_channels = c_out
        self.features = nn.Sequential(*layers) if layers else nn.Identity()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(out_channels, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.flatten(self.pool(self.features(x)), 1))


def build_network(bits: GenomeLike, *, n_nodes: int = DEFAULT_NODES, channels: int = 24, in_channels: int = 1,
                  n_classes: int = 2) -> nn.Module:
    """The torch model of a genome (flat bits or the per-phase nested form)."""
    if channels < 1 or in_channels < 1 or n_classes < 1:
        raise GenomeError(f"channels, in_channels and n_classes must be positive, got {channels}, {in_channels}, "
                          f"{n_classes}")
    phases = [phase for phase in decode_genome(bits, n_nodes) if phase_active(phase)]
    return MacroNetwork(phases, channels, in_channels, n_classes)
