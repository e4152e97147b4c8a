"""NSGA-Net macro genome: bits <-> per-phase connectivity lists, repair rules, hashing, the stored description.

Pure Python and numpy, no torch: the lineage readers, the analyzer and the importers
describe and draw genomes without loading the network decoder
(:mod:`a4nn.search.network`); ``tests/test_layers.py`` checks that this stays so.

A genome has ``N_PHASES`` phases of ``n`` nodes. Each phase is ``n(n-1)/2 + 1`` bits:
for node k (k = 2..n) the bits say which earlier nodes feed it, and the last bit is
the phase's skip connection (phase input -> phase output). This is the encoding of
Lu et al., "NSGA-Net" (GECCO 2019), macro search space, and the layout of the
``genome`` (flat bits per phase) and ``architecture`` (nested connectivity lists)
columns of the published A4NN logs.

The repair rules and the "inactive phase" rule are those of NSGA-Net's
``ResidualPhase.build_dependency_graph`` and ``phase_active``, so the graph we store
and draw is the graph the decoder builds:

* a node with outputs but no inputs takes the phase input;
* a node with inputs but no outputs feeds the phase output;
* a node with neither is dropped;
* a phase without any node-to-node connection is removed — the skip bit alone does
  not keep a phase alive (NSGA-Net ignores it when deciding whether a phase is active).
"""
from __future__ import annotations

import hashlib
from typing import Any, Sequence

import numpy as np

from a4nn.errors import A4nnError

N_PHASES = 3
DEFAULT_NODES = 4
ENCODING = "nsga-net-macro/v1"

Connectivity = list[list[int]]
GenomeLike = Sequence[int] | Sequence[Sequence[int]] | np.ndarray


class GenomeError(A4nnError, ValueError):
    """A bit sequence that is not a macro genome (non-binary, wrong length).

    It is a ``ValueError`` too, so callers that validate with ``except ValueError``
    keep working, and an :class:`A4nnError`, so the CLI prints it as one line.
    """


def bits_per_phase(n_nodes: int = DEFAULT_NODES) -> int:
    """Bits of one phase: one per possible forward edge between nodes, plus the skip bit."""
    if n_nodes < 1:
        raise GenomeError(f"a phase needs at least one node, got n_nodes={n_nodes}")
    return n_nodes * (n_nodes - 1) // 2 + 1


def genome_length(n_nodes: int = DEFAULT_NODES, n_phases: int = N_PHASES) -> int:
    """Bits of a whole genome (21 for NSGA-Net's 3 phases x 4 nodes)."""
    return n_phases * bits_per_phase(n_nodes)


def flatten_genome(bits: GenomeLike) -> np.ndarray:
    """A flat 0/1 int64 array from a flat genome or the per-phase nested ``genome`` column format."""
    flat: list[int] = []
    try:
        for item in bits:
            if isinstance(item, (list, tuple, np.ndarray)):
                flat.extend(int(b) for b in np.asarray(item).ravel())
            else:
                flat.append(int(item))
    except (TypeError, ValueError):
        raise GenomeError(f"a genome is a sequence of 0/1 bits, got {bits!r}") from None
    array = np.asarray(flat, dtype=np.int64)
    if array.size == 0 or not np.isin(array, (0, 1)).all():
        raise GenomeError(f"a genome is a non-empty sequence of 0/1 bits, got {flat!r}")
    return array


def split_phases(bits: GenomeLike, n_nodes: int = DEFAULT_NODES) -> list[list[int]]:
    """Per-phase bit lists (the ``genome`` column format ``[[0,0,0,1,1,0,1], ...]``)."""
    flat = flatten_genome(bits)
    size = bits_per_phase(n_nodes)
    if flat.size % size:
        raise GenomeError(f"genome of {flat.size} bits is not a whole number of {size}-bit phases "
                          f"({n_nodes} nodes per phase)")
    return [flat[i:i + size].tolist() for i in range(0, flat.size, size)]


def phase_connectivity(phase_bits: Sequence[int], n_nodes: int = DEFAULT_NODES) -> Connectivity:
    """One phase's bits as NSGA-Net's lists: inputs of node 2..n, then ``[skip]``."""
    if len(phase_bits) != bits_per_phase(n_nodes):
        raise GenomeError(f"a {n_nodes}-node phase has {bits_per_phase(n_nodes)} bits, got {len(phase_bits)}")
    lists, position = [], 0
    for node in range(1, n_nodes):
        lists.append([int(b) for b in phase_bits[position:position + node]])
        position += node
    lists.append([int(phase_bits[position])])
    return lists


def decode_genome(bits: GenomeLike, n_nodes: int = DEFAULT_NODES) -> list[Connectivity]:
    """The ``architecture`` column format: per phase, per node its input bits, then the skip bit.

    ``[[[0], [0, 0], [1, 1, 0], [1]], ...]`` — the element for node k (k >= 2) lists
    whether nodes 1..k-1 feed it; the last one-element list is the skip bit.
    """
    return [phase_connectivity(phase, n_nodes) for phase in split_phases(bits, n_nodes)]


def encode_connectivity(phases: Sequence[Connectivity]) -> np.ndarray:
    """Inverse of :func:`decode_genome`: nested connectivity lists back to flat bits."""
    return flatten_genome([[b for node in phase for b in node] for phase in phases])


def phase_active(connectivity: Connectivity) -> bool:
    """NSGA-Net's rule: a phase is active when it has a node-to-node edge; the skip bit is ignored."""
    return any(any(node_bits) for node_bits in connectivity[:-1])


def is_empty_phase(connectivity: Connectivity) -> bool:
    """A phase the decoder removes (no node-to-node connection; see :func:`phase_active`)."""
    return not phase_active(connectivity)


def dependency_graph(connectivity: Connectivity) -> dict[int, list[int]]:
    """Inputs of every node of a phase after NSGA-Net's repair rules.

    Node 0 is the phase input, nodes 1..n the convolution nodes, n+1 the output.
    The output's list starts with 0 when the skip bit is set, then the repaired
    dangling nodes, in NSGA-Net's order (this order decides the concatenation order
    and so the weight layout of the 1x1 convolution). A node whose list stays empty
    is dropped by the decoder.
    """
    n_nodes = len(connectivity)
    graph: dict[int, list[int]] = {1: []}
    for i, inputs in enumerate(connectivity[:-1]):
        graph[i + 2] = [j + 1 for j, bit in enumerate(inputs) if bit]
    output = n_nodes + 1
    graph[output] = [0] if connectivity[-1][0] else []
    no_inputs = [node for node in range(1, n_nodes + 1) if not graph[node]]
    no_outputs = [node for node in range(1, n_nodes + 1)
                  if not any(node in graph[later] for later in range(node + 1, n_nodes + 2))]
    for node in no_outputs:
        if node not in no_inputs:
            graph[output].append(node)
    for node in no_inputs:
        if node not in no_outputs:
            graph[node].append(0)
    return graph


def active_phases(bits: GenomeLike, n_nodes: int = DEFAULT_NODES) -> list[Connectivity]:
    """The decoded phases that survive the inactive-phase rule, in order."""
    return [phase for phase in decode_genome(bits, n_nodes) if phase_active(phase)]


def bits_to_string(bits: GenomeLike) -> str:
    """``"0001101..."`` — the canonical text form stored in ``genomes.bits``."""
    return "".join(str(int(b)) for b in flatten_genome(bits))


def string_to_bits(text: str) -> np.ndarray:
    """Inverse of :func:`bits_to_string`."""
    if not isinstance(text, str) or not text or set(text) - {"0", "1"}:
        raise GenomeError(f"not a bit string: {text!r}")
    return np.array([int(c) for c in text], dtype=np.int64)


def genome_hash(bits: GenomeLike, encoding: str = ENCODING) -> str:
    """sha256 hex of ``"<encoding>:<bit string>"`` — the key the lineage database deduplicates on.

    The encoding name is part of the key so the same bits under another encoding
    (e.g. 5 nodes per phase) never collide.
    """
    return hashlib.sha256(f"{encoding}:{bits_to_string(bits)}".encode()).hexdigest()


def phase_channels(channels: int, in_channels: int, n_phases: int) -> list[tuple[int, int]]:
    """``[(in, C), (C, 2C), (2C, 4C), ...]``: NSGA-Net doubles the width after every pooling."""
    widths = [(in_channels, channels)]
    for _ in range(1, n_phases):
        widths.append((widths[-1][1], widths[-1][1] * 2))
    return widths



def describe_network(bits: GenomeLike, n_nodes: int = DEFAULT_NODES, channels: int | None = None,
                     in_channels: int = 1) -> dict[str, Any]:
    """A JSON description stored in ``architectures.arch``: phases, active nodes, edges, skip.

    Edges are ``[source, target]`` pairs after repair (0 = phase input, n+1 = phase
    output); ``removed`` phases are kept in the list so phase numbers match the genome.
    With ``channels`` the per-phase widths are included too.
    """
    flat = flatten_genome(bits)
    decoded = decode_genome(flat, n_nodes)
    survivors = sum(phase_active(p) for p in decoded)
    widths = iter(phase_channels(channels, in_channels, survivors)) if channels else None
    phases: list[dict[str, Any]] = []
    position = 0
    for connectivity in decoded:
        if not phase_active(connectivity):
            phases.append({"removed": True, "connectivity": connectivity, "skip": bool(connectivity[-1][0])})
            continue
        graph = dependency_graph(connectivity)
        entry: dict[str, Any] = {
            "removed": False,
            "connectivity": connectivity,
            "active_nodes": [node for node in range(1, n_nodes + 1) if graph[node]],
            "edges": [[src, dst] for dst, inputs in sorted(graph.items()) for src in inputs],
            "skip": bool(connectivity[-1][0]),
            "entry_kernel": 3 if position == 0 else 1,
        }
        if widths is not None:
            entry["channels"] = list(next(widths))
        phases.append(entry)
        position += 1
    description: dict[str, Any] = {"encoding": ENCODING, "bits": bits_to_string(flat), "n_nodes": n_nodes,
                                   "n_active_phases": survivors, "phases": phases}
    if channels:
        description["channels"] = channels
    return description
