"""NSGA-Net macro genome: bits <-> per-phase connectivity lists, repair rules, hashing.

A genome has ``N_PHASES`` phases of ``n`` nodes. Each phase is ``n(n-1)/2 + 1`` bits:
for node k (k = 2..n) the bits say which earlier nodes feed it, and the last bit is
the phase's skip connection (input -> output). This is the encoding of Lu et al.,
"NSGA-Net" (GECCO 2019), macro search space, and the layout of the ``genome`` and
``architecture`` columns of the published A4NN logs.
"""
from __future__ import annotations

import hashlib
from typing import Sequence

import numpy as np

N_PHASES = 3
DEFAULT_NODES = 4
ENCODING = "nsga-net-macro/v1"


def bits_per_phase(n_nodes: int = DEFAULT_NODES) -> int:
    return n_nodes * (n_nodes - 1) // 2 + 1


def genome_length(n_nodes: int = DEFAULT_NODES, n_phases: int = N_PHASES) -> int:
    return n_phases * bits_per_phase(n_nodes)


def flatten_genome(bits: Sequence[int] | Sequence[Sequence[int]] | np.ndarray) -> np.ndarray:
    """A flat 0/1 int array from a flat or per-phase nested genome."""
    flat: list[int] = []
    for item in bits:
        if isinstance(item, (list, tuple, np.ndarray)):
            flat.extend(int(b) for b in item)
        else:
            flat.append(int(item))
    array = np.asarray(flat, dtype=np.int64)
    if array.size == 0 or not np.isin(array, (0, 1)).all():
        raise ValueError(f"a genome is a non-empty sequence of 0/1 bits, got {list(bits)!r}")
    return array


def split_phases(bits: Sequence[int] | np.ndarray, n_nodes: int = DEFAULT_NODES) -> list[list[int]]:
    """Per-phase bit lists (the ``genome`` column format)."""
    flat = flatten_genome(bits)
    size = bits_per_phase(n_nodes)
    if flat.size % size:
        raise ValueError(f"genome of {flat.size} bits is not a whole number of {size}-bit phases")
    return [flat[i:i + size].tolist() for i in range(0, flat.size, size)]


def phase_connectivity(phase_bits: Sequence[int], n_nodes: int = DEFAULT_NODES) -> list[list[int]]:
    """One phase's bits as NSGA-Net's lists: inputs of node 2..n, then ``[skip]``."""
    lists, position = [], 0
    for node in range(1, n_nodes):
        lists.append([int(b) for b in phase_bits[position:position + node]])
        position += node
    lists.append([int(phase_bits[position])])
    return lists


def decode_genome(bits: Sequence[int] | np.ndarray, n_nodes: int = DEFAULT_NODES) -> list[list[list[int]]]:
    """The ``architecture`` column format: per phase, per node, its input bits, then the skip bit."""
    return [phase_connectivity(phase, n_nodes) for phase in split_phases(bits, n_nodes)]


def is_empty_phase(connectivity: list[list[int]]) -> bool:
    """A phase with no connection at all (no edge, no skip) is removed from the network."""
    return not any(any(bits) for bits in connectivity)


def dependency_graph(connectivity: list[list[int]]) -> dict[int, list[int]]:
    """Inputs of every node of a phase after NSGA-Net's repair rules.

    Node 0 is the phase input, nodes 1..n the convolution nodes, n+1 the output.
    Repairs: a node with outputs but no inputs takes the phase input; a node with
    inputs but no outputs feeds the phase output; an isolated node keeps no inputs
    and is dropped by the decoder.
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


def active_phases(bits: Sequence[int] | np.ndarray, n_nodes: int = DEFAULT_NODES) -> list[list[list[int]]]:
    """The decoded phases that survive the empty-phase rule."""
    return [phase for phase in decode_genome(bits, n_nodes) if not is_empty_phase(phase)]


def bits_to_string(bits: Sequence[int] | Sequence[Sequence[int]] | np.ndarray) -> str:
    return "".join(str(int(b)) for b in flatten_genome(bits))


def string_to_bits(text: str) -> np.ndarray:
    if not text or set(text) - {"0", "1"}:
        raise ValueError(f"not a bit string: {text!r}")
    return np.array([int(c) for c in text], dtype=np.int64)


def genome_hash(bits: Sequence[int] | np.ndarray, encoding: str = ENCODING) -> str:
    """sha256 of ``encoding:bits`` — the same key the lineage database deduplicates on."""
    return hashlib.sha256(f"{encoding}:{bits_to_string(bits)}".encode()).hexdigest()
