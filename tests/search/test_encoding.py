"""NSGA-Net macro genome encoding: layout, decoding against the published logs, repair rules, hashing."""
from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd
import pytest

from a4nn.errors import A4nnError
from a4nn.search.encoding import (
    DEFAULT_NODES, N_PHASES, GenomeError, active_phases, bits_per_phase, bits_to_string, decode_genome,
    dependency_graph, encode_connectivity, flatten_genome, genome_hash, genome_length, is_empty_phase, phase_active,
    split_phases, string_to_bits,
)

ARCH_68 = [[0, 0, 0, 1, 1, 0, 1], [0, 0, 0, 0, 0, 1, 0], [0, 0, 1, 0, 1, 1, 0]]


def test_lengths() -> None:
    assert (N_PHASES, DEFAULT_NODES) == (3, 4)
    assert bits_per_phase(4) == 7 and bits_per_phase(5) == 11 and bits_per_phase(1) == 1
    assert genome_length() == 21 and genome_length(5) == 33 and genome_length(4, 2) == 14


def test_round_trips() -> None:
    rng = np.random.default_rng(0)
    for _ in range(20):
        bits = rng.integers(0, 2, 21)
        assert (string_to_bits(bits_to_string(bits)) == bits).all()
        assert flatten_genome(split_phases(bits)).tolist() == bits.tolist()
        assert encode_connectivity(decode_genome(bits)).tolist() == bits.tolist()
    assert split_phases(flatten_genome(ARCH_68)) == ARCH_68
    assert bits_to_string(ARCH_68) == "000110100000100010110"


def test_decode_layout_of_one_phase() -> None:
    # node 2 <- [1]; node 3 <- [1, 2]; node 4 <- [1, 2, 3]; skip
    assert decode_genome([1, 0, 1, 1, 0, 0, 1] * 3)[0] == [[1], [0, 1], [1, 0, 0], [1]]


def test_decoding_matches_every_published_architecture(icpp23_dir) -> None:
    checked = 0
    for path in sorted(icpp23_dir.glob("*/*/*.csv")):
        frame = pd.read_csv(path)
        if "architecture" not in frame.columns:
            continue
        for genome, architecture in zip(frame["genome"], frame["architecture"]):
            assert decode_genome(json.loads(genome)) == json.loads(architecture), (path.name, genome)
            checked += 1
    assert checked > 5000  # every row of the three 1-GPU early-termination logs


def test_hash_is_sha256_of_encoding_and_bits() -> None:
    bits = flatten_genome(ARCH_68)
    expected = hashlib.sha256(b"nsga-net-macro/v1:000110100000100010110").hexdigest()
    assert genome_hash(bits) == genome_hash(bits.tolist()) == genome_hash(ARCH_68) == expected
    assert genome_hash(bits) != genome_hash(1 - bits)
    assert genome_hash(bits) != genome_hash(bits, encoding="nsga-net-macro/v2")


def test_repair_rules_follow_nsga_net() -> None:
    # node 3 <- node 1; node 1 has an output but no input -> takes the phase input (0);
    # node 3 has an input but no output -> feeds the output (5); nodes 2 and 4 are isolated -> dropped
    graph = dependency_graph([[0], [1, 0], [0, 0, 0], [0]])
    assert graph == {1: [0], 2: [], 3: [1], 4: [], 5: [3]}
    # skip bit: the output takes the phase input first, then the dangling nodes in order
    graph = dependency_graph([[1], [0, 0], [0, 1, 0], [1]])
    assert graph == {1: [0], 2: [1], 3: [], 4: [2], 5: [0, 4]}
    # two sources and two sinks
    graph = dependency_graph([[0], [0, 0], [1, 1, 0], [0]])
    assert graph[1] == [0] and graph[2] == [0] and graph[4] == [1, 2] and graph[5] == [4]


def test_phase_with_only_the_skip_bit_is_removed() -> None:
    """NSGA-Net's phase_active ignores the skip bit; the published FLOPs confirm it (see test_flops)."""
    assert is_empty_phase([[0], [0, 0], [0, 0, 0], [0]])
    assert is_empty_phase([[0], [0, 0], [0, 0, 0], [1]]) and not phase_active([[0], [0, 0], [0, 0, 0], [1]])
    assert phase_active([[1], [0, 0], [0, 0, 0], [0]])
    bits = [0] * 6 + [1] + [1, 0, 0, 0, 0, 0, 0] + [0] * 7
    assert active_phases(bits) == [[[1], [0, 0], [0, 0, 0], [0]]]


@pytest.mark.parametrize("bad", [[1, 0, 1], [0, 2] + [0] * 19, [], "0101", [[0, 1], ["x"]]])
def test_bad_genomes_are_clear_errors(bad) -> None:
    with pytest.raises(GenomeError) as caught:
        decode_genome(bad)
    assert isinstance(caught.value, A4nnError) and isinstance(caught.value, ValueError)
    with pytest.raises(GenomeError, match="not a bit string"):
        string_to_bits("01a")
