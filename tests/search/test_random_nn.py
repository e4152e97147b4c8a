"""The random-CNN generator: valid draws, the published taxonomies build, generate -> ingest -> export round trip."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from sqlalchemy import select

from a4nn.cli.ingest import generate
from a4nn.commons.ingest import ingest_paths
from a4nn.commons.random_nn_export import export_random_nn
from a4nn.commons.random_nn_format import COLUMNS, numeric_content, parse_table, read_table
from a4nn.lineage.models import Architecture, Search
from a4nn.search.random_nn import RandomNNRanges, build_network, new_network_id, sample_metadata

torch.set_num_threads(1)


@pytest.mark.parametrize("ranges, image_size", [(RandomNNRanges().scaled_down(), 12), (RandomNNRanges(), 32)])
def test_every_draw_builds_a_network_for_the_input(ranges: RandomNNRanges, image_size: int) -> None:
    rng = np.random.default_rng(7)
    for _ in range(12):
        meta = sample_metadata(rng, image_size=image_size, n_classes=3, dataset="toy", ranges=ranges, network_id="x")
        n_pool = sum(1 for code in meta["layer_types"] if code & 2)
        assert len(meta["poolKernels"]) == n_pool and len(meta["convFilters"]) == len(meta["layer_types"])
        assert len(meta["FC_dropout_layers"]) == len(meta["FCFilters"]) - 1 and meta["FCFilters"][-1] == 3
        assert ranges.conv_filters[0] <= min(meta["convFilters"]) <= max(meta["convFilters"]) <= ranges.conv_filters[1]
        if not meta["dropout_rate"]:
            assert all(not code & 4 for code in meta["layer_types"])
        with torch.no_grad():
            out = build_network(meta, 1, (image_size, image_size))(torch.zeros(2, 1, image_size, image_size))
        assert out.shape == (2, 3)


def test_published_taxonomies_build_on_cifar_sized_inputs() -> None:
    """The structures of two published CIFAR100 tables decode to networks that run on 3x32x32."""
    published = [
        dict(layer_types=[3, 3, 1], dropout_rate=0, convKernels=[24, 2, 2], convStrides=[12, 2, 1],
             convPaddings=[4, 2, 2], poolKernels=[1, 1], poolStrides=[1, 1], poolPaddings=[0, 0],
             convFilters=[30, 29, 34], FC_dropout_rate=0.45, FC_dropout_layers=[], FCFilters=[100]),
        dict(layer_types=[5, 3, 7], dropout_rate=0.4, convKernels=[11, 1, 1], convStrides=[5, 1, 1],
             convPaddings=[5, 1, 1], poolKernels=[1, 10], poolStrides=[1, 4], poolPaddings=[0, 4],
             convFilters=[32, 6, 38], FC_dropout_rate=0, FC_dropout_layers=[0, 0], FCFilters=[35, 34, 100]),
    ]
    for meta in published:
        with torch.no_grad():
            assert build_network(meta, 3, (32, 32))(torch.zeros(1, 3, 32, 32)).shape == (1, 100)


def test_network_ids_look_published_and_stay_unique() -> None:
    existing: set[str] = set()
    ids = [new_network_id(existing) for _ in range(50)]
    assert len(set(ids)) == 50 and all(len(i.split("_")) == 7 for i in ids)


@pytest.mark.slow
def test_generate_ingest_export_round_trip(database, tmp_path: Path) -> None:
    out = tmp_path / "grown"
    result = CliRunner().invoke(generate, [
        "random-nn", "--n", "2", "--epochs", "2", "--out", str(out), "--image-size", "12", "--n-images", "40",
        "--scale-down", "--seed", "3", "--cache-dir", str(tmp_path / "cache"), "--quiet"])
    assert result.exit_code == 0, result.output
    tables = sorted(out.glob("*.txt"))
    assert len(tables) == 2
    for path in tables:
        lines = path.read_text().splitlines()
        assert lines[0].split(" ") == list(COLUMNS) and len(lines) == 1 + 4
        assert all(len(line.split(" ")) == 28 for line in lines)
        table = read_table(path)
        assert [row[0] for row in table.curve] == [0.5, 1.0, 1.5, 2.0]
        assert table.metadata["optimizer"] == "SGD" and table.metadata["loss_fn"] == "CrossEntropyLoss"
        assert table.metadata["dataset"].startswith("xfel-sim-low-12px")

    summary = ingest_paths(database, [out], progress=False)
    assert summary.ok and (summary.networks, summary.rows) == (2, 8)
    with database.session() as session:
        search_id = session.scalars(select(Search.id).where(Search.name == "random-nn:grown")).one()
        assert session.scalars(select(Architecture.status)).all() == ["completed", "completed"]

    exported = export_random_nn(database, search_id, tmp_path / "back")
    assert sorted(p.name for p in exported) == [p.name for p in tables]
    for path in tables:
        original, back = path.read_text(), (tmp_path / "back" / path.name).read_text()
        assert numeric_content(back) == numeric_content(original)
        assert back.encode() == original.encode()
        assert parse_table(back, "back").curve == read_table(path).curve
