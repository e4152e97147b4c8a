"""The decoded graph of an NSGA-Net macro genome, as a networkx graph and as a figure.

Decoding uses :mod:`a4nn.search.encoding` (the connectivity lists of the ``architecture``
column in the published logs, plus NSGA-Net's repair rules), so the picture shows the
network the decoder actually builds: isolated nodes dropped, dangling nodes wired to the
phase input/output, empty phases removed, max pooling between phases.
"""
from __future__ import annotations

from typing import Sequence

import networkx as nx
import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch

from a4nn.commons.analyzer.plotting import new_figure
from a4nn.errors import A4nnError
from a4nn.search.encoding import (DEFAULT_NODES, bits_per_phase, decode_genome, dependency_graph, flatten_genome,
                                  is_empty_phase, string_to_bits)

ROLE_COLOURS = {"input": "#9ecae1", "conv": "#fdae6b", "output": "#a1d99b", "pool": "#d9d9d9"}


def genome_bits(genome: str | Sequence[int] | Sequence[Sequence[int]]) -> np.ndarray:
    """A flat 0/1 array from a bit string, a flat list or per-phase lists; bad input is an A4nnError."""
    try:
        return string_to_bits(genome) if isinstance(genome, str) else flatten_genome(genome)
    except ValueError as exc:
        raise A4nnError(f"not a genome: {exc}") from None


def phase_graph(connectivity: list[list[int]], phase: int = 0) -> nx.DiGraph:
    """One phase after repair: nodes ``(phase, k)`` with a ``role`` (input, conv, output); skip edges flagged."""
    n_nodes = len(connectivity)
    graph = nx.DiGraph()
    inputs = dependency_graph(connectivity)
    output = n_nodes + 1
    graph.add_node((phase, 0), role="input", label="in")
    graph.add_node((phase, output), role="output", label="out")
    for node in range(1, n_nodes + 1):
        if inputs[node]:
            graph.add_node((phase, node), role="conv", label=str(node))
    for target, sources in inputs.items():
        for source in sources:
            if (phase, source) in graph and (phase, target) in graph:
                graph.add_edge((phase, source), (phase, target), skip=(source == 0 and target == output))
    return graph


def architecture_graph(genome: str | Sequence[int] | Sequence[Sequence[int]], n_nodes: int = DEFAULT_NODES) -> nx.DiGraph:
    """The whole network: active phases chained output → pool → next input.

    Removed (empty) phases are absent; node attributes ``role`` and ``label`` let graph
    edit distance compare operations rather than node names.
    """
    bits = genome_bits(genome)
    if bits.size % bits_per_phase(n_nodes):
        raise A4nnError(f"genome of {bits.size} bits is not a whole number of {bits_per_phase(n_nodes)}-bit phases")
    graph = nx.DiGraph()
    previous = None
    for phase, connectivity in enumerate(decode_genome(bits, n_nodes)):
        if is_empty_phase(connectivity):
            continue
        graph.update(phase_graph(connectivity, phase))
        if previous is not None:
            pool = ("pool", phase)
            graph.add_node(pool, role="pool", label="pool")
            graph.add_edge(previous, pool, skip=False)
            graph.add_edge(pool, (phase, 0), skip=False)
        previous = (phase, n_nodes + 1)
    return graph


def _positions(graph: nx.DiGraph, n_nodes: int) -> dict:
    """Phases left to right; inside a phase, nodes by index with the input at the left, output at the right."""
    positions = {}
    column = 0.0
    phases = sorted({node[0] for node in graph if node[0] != "pool"})
    for phase in phases:
        for k in range(n_nodes + 2):
            if (phase, k) in graph:
                offset = 0.0 if k in (0, n_nodes + 1) else (0.6 if k % 2 else -0.6)
                positions[(phase, k)] = (column + k, offset)
        column += n_nodes + 2
        nxt = [p for p in phases if p > phase]
        if nxt and ("pool", nxt[0]) in graph:
            positions[("pool", nxt[0])] = (column, 0.0)
            column += 1.0
    return positions


def architecture_positions(graph: nx.DiGraph, n_nodes: int = DEFAULT_NODES) -> dict:
    """The (x, y) of every node of :func:`architecture_graph` as :func:`architecture_figure` places it.

    Public so that another renderer (the web explorer draws it in the browser) shows the same picture.
    """
    return _positions(graph, n_nodes)


def architecture_figure(genome: str | Sequence[int] | Sequence[Sequence[int]], n_nodes: int = DEFAULT_NODES,
                        title: str | None = None) -> Figure:
    """Draw phases, convolution nodes, edges and (dashed, curved) skip connections of one genome."""
    bits = genome_bits(genome)
    graph = architecture_graph(bits, n_nodes)
    figure = new_figure(max(7.0, 0.55 * len(graph) + 2), 3.4)
    axes = figure.add_subplot()
    axes.axis("off")
    if not len(graph):
        axes.text(0.5, 0.5, "every phase is empty: the network is input → pooling → classifier", ha="center")
        return figure
    positions = _positions(graph, n_nodes)
    for source, target, attributes in graph.edges(data=True):
        (x0, y0), (x1, y1) = positions[source], positions[target]
        skip = attributes.get("skip", False)
        # a skip runs straight along the phase's middle line, where no convolution node sits;
        # bent, it passed through node 1 and read as an input → 1 skip
        bend = 0.0 if skip else (0.25 if abs(x1 - x0) > 1.5 else 0.0)
        axes.add_patch(FancyArrowPatch((x0, y0), (x1, y1), connectionstyle=f"arc3,rad={bend}", arrowstyle="-|>",
                                       mutation_scale=12, shrinkA=12, shrinkB=12, linewidth=1.3,
                                       linestyle="--" if skip else "-", color="tab:purple" if skip else "black"))
    for node, attributes in graph.nodes(data=True):
        x, y = positions[node]
        axes.scatter([x], [y], s=650, color=ROLE_COLOURS[attributes["role"]], edgecolors="black", zorder=3)
        axes.text(x, y, attributes["label"], ha="center", va="center", fontsize=8, zorder=4)
    phases = sorted({node[0] for node in graph if node[0] != "pool"})
    for phase in phases:
        xs = [positions[node][0] for node in graph if node[0] == phase]
        axes.text((min(xs) + max(xs)) / 2, 1.35, f"phase {phase + 1}", ha="center", fontsize=10, fontweight="bold")
    xs = [p[0] for p in positions.values()]
    axes.set_xlim(min(xs) - 0.8, max(xs) + 0.8)
    axes.set_ylim(-1.6, 1.7)
    removed = [str(phase + 1) for phase, connectivity in enumerate(decode_genome(bits, n_nodes))
               if is_empty_phase(connectivity)]
    if removed:  # say so, or a reader looks for the missing phase numbers in vain
        axes.text(min(xs) - 0.6, -1.5, f"empty phase{'s' if len(removed) > 1 else ''} {', '.join(removed)} "
                  "removed (no connections)", fontsize=8, color="dimgrey", va="bottom")
    axes.plot([], [], "--", color="tab:purple", label="skip connection")
    axes.legend(loc="lower right", fontsize=8, frameon=False)
    text = "".join(str(int(b)) for b in bits)
    axes.set_title(title or f"genome {text}", fontsize=10)
    return figure
