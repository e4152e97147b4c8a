"""Genome distances, the similar-models ranking and the `similar` command."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

from analyzer_fixture import GENOMES, build_database

from a4nn.commons import analyzer
from a4nn.commons.analyzer.architecture import architecture_graph
from a4nn.commons.analyzer.similarity import (graph_edit_distance, hamming, longest_common_run,
                                              longest_common_substring, matching_figure, similar_models)
from a4nn.errors import A4nnError


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    return build_database(tmp_path_factory.mktemp("similar"))


def test_hamming_and_runs():
    assert hamming("0000000", "0000000") == 0
    assert hamming("0101010", "1101011") == 2
    assert longest_common_run("1110001", "1100001") == (4, 3)  # positions 3..6 agree
    assert longest_common_run("01", "10") == (0, -1)
    assert longest_common_substring("1110000", "0001110") == (4, 0, 3)  # "1110" at 0 and at 3
    with pytest.raises(A4nnError, match="different lengths"):
        hamming("01", "011")
    with pytest.raises(A4nnError, match="not a genome"):
        hamming("01x", "011")


def test_graph_edit_distance_sees_the_decoded_network():
    a = GENOMES[0]
    assert graph_edit_distance(a, a).distance == 0
    # the skip bit of phase 3 adds one edge (input -> output): one edit
    b = a[:-1] + ("0" if a[-1] == "1" else "1")
    result = graph_edit_distance(a, b)
    assert result.distance == 1 and result.exact
    # an empty phase is removed entirely: distance = its nodes + edges in the other genome
    empty_first = "0" * 7 + a[7:]
    phase = architecture_graph(a[:7] + "0" * 14)
    assert graph_edit_distance(a, empty_first).distance == len(phase) + phase.number_of_edges()


def test_architecture_graph_phases_and_skips():
    graph = architecture_graph("1" * 21)
    roles = [attributes["role"] for _, attributes in graph.nodes(data=True)]
    assert roles.count("input") == 3 and roles.count("pool") == 2 and roles.count("conv") == 12
    assert sum(1 for *_, skip in graph.edges(data="skip") if skip) == 3
    assert len(architecture_graph("0" * 21)) == 0


def test_similar_models_ranks_by_hamming(shared):
    url, trail = shared
    data = analyzer.load(url)
    reference = trail.models["analyzer-engine-low"][0]  # genome GENOMES[0]
    frame = similar_models(data, reference, top=5)
    assert len(frame) == 5 and reference not in frame["model_id"].tolist()
    assert frame["hamming"].is_monotonic_increasing
    assert frame["hamming"].iloc[0] == 0  # the same genome trained in the other searches
    assert set(frame.columns) >= {"hamming", "common_run", "ged", "ged_exact"}
    assert (frame.loc[frame["hamming"] == 0, "ged"] == 0).all()


def test_similar_cli_prints_a_table(shared):
    from a4nn.cli.analyze import similar

    url, trail = shared
    model = trail.models["analyzer-engine-low"][0]
    result = CliRunner().invoke(similar, [str(model), "--db", url, "--top", "3"])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert lines[1].split()[:4] == ["model", "hamming", "run", "ged"]
    assert len(lines) == 2 + 3
    result = CliRunner().invoke(similar, ["9999", "--db", url])
    assert result.exit_code != 0 and "no model with id 9999" in str(result.exception)


def test_matching_figure_outlines_shared_bits(shared, tmp_path):
    data = analyzer.load(shared[0])
    figure = matching_figure(data, top=4)
    title = figure.axes[0].get_title()
    assert "4 most accurate" in title and "bits shared" in title
    analyzer.save_figure(figure, tmp_path / "matching.png")
