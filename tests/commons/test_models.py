"""load_network from a database, a bundle and the query service; NSGA-Net's layout; evaluations; bad input."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from torch import nn

from models_fixture import Recorded, record_search

from a4nn.commons.models import (CheckpointError, ModelNotFoundError, from_nsga_net, load_network, to_nsga_net)
from a4nn.commons.models.evaluate import (DatasetMismatchError, dataset_description, evaluate_network, evaluations_of,
                                          record_evaluation)
from a4nn.lineage.models import Checkpoint
from a4nn.search.data import load_npz
from a4nn.search.encoding import dependency_graph, decode_genome, phase_active
from a4nn.search.network import build_network


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Recorded:
    return record_search(tmp_path_factory.mktemp("reuse"))


def _checkpoints(recorded: Recorded, model_id: int) -> list[Checkpoint]:
    from sqlalchemy import select

    with recorded.database.session() as session:
        rows = session.scalars(select(Checkpoint).where(Checkpoint.architecture_id == model_id)
                               .order_by(Checkpoint.epoch)).all()
        session.expunge_all()
        return rows


def _images(n: int = 5) -> torch.Tensor:
    return torch.randn(n, 1, 16, 16, generator=torch.Generator().manual_seed(3))


def test_database_load_equals_the_checkpoint_it_names(recorded: Recorded) -> None:
    model_id = recorded.model_ids[1]
    rows = _checkpoints(recorded, model_id)
    assert [r.epoch for r in rows] == [1.0, 2.0, 3.0]
    loaded = load_network(recorded.database, model_id)
    assert loaded.epoch == 3.0 and loaded.sha256 == rows[-1].sha256 and loaded.layout == "a4nn"
    # an independent rebuild: the file as the trainer wrote it, our decoder with the search's settings
    saved = torch.load(Path(rows[-1].uri.removeprefix("file://")), weights_only=True)
    reference = build_network(saved["bits"], n_nodes=4, channels=4, in_channels=1, n_classes=2)
    reference.load_state_dict(saved["state_dict"])
    reference.eval()
    x = _images()
    with torch.no_grad():
        assert torch.equal(loaded.predict(x), reference(x))
    first = load_network(recorded.database, model_id, epoch=1)
    assert first.epoch == 1.0 and not torch.equal(first.predict(x), loaded.predict(x))


def test_tampered_missing_and_unknown(recorded: Recorded, tmp_path: Path) -> None:
    model_id = recorded.model_ids[0]
    with pytest.raises(CheckpointError, match=r"no checkpoint at epoch 7; recorded epochs: 1, 2, 3"):
        load_network(recorded.database, model_id, epoch=7)
    with pytest.raises(ModelNotFoundError, match="no model with id 999"):
        load_network(recorded.database, 999)
    path = Path(_checkpoints(recorded, model_id)[0].uri.removeprefix("file://"))
    backup = tmp_path / "backup.pt"
    shutil.copy(path, backup)
    try:
        path.write_bytes(path.read_bytes() + b"x")
        expected = _checkpoints(recorded, model_id)[0].sha256
        with pytest.raises(CheckpointError, match=f"{path.name}.*expected {expected}"):
            load_network(recorded.database, model_id, epoch=1)
        path.unlink()
        with pytest.raises(CheckpointError, match=f"{path.name}.*missing.*{expected}"):
            load_network(recorded.database, model_id, epoch=1)
    finally:
        shutil.copy(backup, path)
    assert load_network(recorded.database, model_id, epoch=1).epoch == 1.0


# ---------------------------------------------------------------- NSGA-Net's EvoNetwork, re-declared
class _Identity(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class _ResidualNode(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.model = nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels),
                                   nn.ReLU(inplace=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class _ResidualPhase(nn.Module):
    """NSGA-Net's ``macro_decoder.ResidualPhase``: same module tree and names, same forward."""

    def __init__(self, gene: list, in_channels: int, out_channels: int, idx: int):
        super().__init__()
        self.channel_flag = in_channels != out_channels
        self.first_conv = nn.Conv2d(in_channels, out_channels, kernel_size=1 if idx != 0 else 3, stride=1, bias=False)
        self.dependency_graph = dependency_graph(gene)  # the same repair rules (checked in tests/search)
        self.nodes = nn.ModuleList([_ResidualNode(out_channels) if self.dependency_graph[i + 1] else None
                                    for i in range(len(gene))])
        conv1x1s = [_Identity()] + [_Identity() for _ in range(max(self.dependency_graph))]
        for node, inputs in self.dependency_graph.items():
            if len(inputs) > 1:
                conv1x1s[node] = nn.Conv2d(len(inputs) * out_channels, out_channels, kernel_size=1, bias=False)
        self.processors = nn.ModuleList(conv1x1s)
        self.out = nn.Sequential(nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.channel_flag:
            x = self.first_conv(x)
        outputs = [x]
        for i in range(1, len(self.nodes) + 1):
            outputs.append(self.nodes[i - 1](self._gather(i, outputs)) if self.dependency_graph[i] else None)
        return self.out(self._gather(len(self.nodes) + 1, outputs))

    def _gather(self, node: int, outputs: list) -> torch.Tensor:
        return self.processors[node](torch.cat([outputs[i] for i in self.dependency_graph[node]], dim=1))


class _EvoNetwork(nn.Module):
    """NSGA-Net's ``macro_models.EvoNetwork`` with the residual decoder: model (phases, max-pools), gap, linear."""

    def __init__(self, genome: list, channels: list, out_features: int, data_shape: tuple[int, int]):
        super().__init__()
        active = [gene for gene in genome if phase_active(gene)]
        phases = [_ResidualPhase(g, c_in, c_out, i) for i, (g, (c_in, c_out)) in enumerate(zip(active, channels))]
        if not phases:
            self.model: nn.Module = _Identity()
        else:
            layers: list[nn.Module] = []
            for phase in phases[:-1]:
                layers += [phase, nn.MaxPool2d(kernel_size=2, stride=2)]
            self.model = nn.Sequential(*layers, phases[-1])
        out = self.model(torch.zeros(1, channels[0][0], *data_shape))
        self.gap = nn.AvgPool2d(kernel_size=(out.shape[-2], out.shape[-1]), stride=1)
        self.linear = nn.Linear(out.shape[1], out_features)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, None]:
        x = self.gap(self.model(x))
        return self.linear(x.view(x.size(0), -1)), None


GENOMES = ["0001101" "1011011" "0110000", "1111111" "0000000" "1000001", "0000000" * 3, "1101001" * 3]


def _randomized(module: nn.Module, seed: int) -> nn.Module:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in module.state_dict().items():
            if tensor.dtype.is_floating_point:
                values = torch.rand(tensor.shape, generator=generator) + 0.5 if "running_var" in name else \
                    torch.randn(tensor.shape, generator=generator) * 0.3
                tensor.copy_(values)
    return module.eval()


@pytest.mark.parametrize("bits", GENOMES)
def test_nsga_net_layout_loads_into_our_decoder_with_equal_outputs(bits: str) -> None:
    ours = _randomized(build_network([int(b) for b in bits], channels=4, in_channels=1, n_classes=3), seed=1)
    genome = decode_genome([int(b) for b in bits])
    theirs = _EvoNetwork(genome, [(1, 4), (4, 8), (8, 16)], 3, (16, 16)).eval()
    state = to_nsga_net(ours.state_dict())
    # NSGA-Net also builds (unused) entry convolutions where the channels do not change
    for key, tensor in theirs.state_dict().items():
        state.setdefault(key, torch.zeros_like(tensor))
    theirs.load_state_dict(state, strict=True)
    x = torch.randn(4, 1, 16, 16, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        expected = ours(x)
        assert torch.allclose(theirs(x)[0], expected, atol=1e-6)
        # and back: the EvoNetwork state_dict loads into a fresh network of ours
        fresh = build_network([int(b) for b in bits], channels=4, in_channels=1, n_classes=3).eval()
        fresh.load_state_dict(from_nsga_net(theirs.state_dict(), fresh.state_dict()), strict=True)
        assert torch.allclose(fresh(x), expected, atol=1e-6)


def test_load_network_reads_an_evonetwork_checkpoint(recorded: Recorded, tmp_path: Path) -> None:
    """A checkpoint written in NSGA-Net's layout (state_dict only) loads through load_network."""
    from a4nn.lineage.recorder import Recorder

    model_id = recorded.model_ids[2]
    ours = load_network(recorded.database, model_id)
    state = to_nsga_net(ours.module.state_dict())
    path = tmp_path / "evonetwork.pt"
    torch.save(state, path)
    Recorder(recorded.database).log_checkpoint(model_id, 99, path)
    theirs = load_network(recorded.database, model_id, epoch=99)
    assert theirs.layout == "nsga-net"
    x = _images()
    assert torch.equal(theirs.predict(x), ours.predict(x))
    with recorded.database.engine.begin() as connection:
        connection.execute(Checkpoint.__table__.delete().where(Checkpoint.epoch == 99))


def test_bundle_and_service_load_the_same_network(recorded: Recorded, tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from a4nn.api.app import create_app
    from a4nn.commons.bundle import export_bundle
    from a4nn.commons.client import Client

    model_id = recorded.model_ids[3]
    direct = load_network(recorded.database, model_id)
    export_bundle(recorded.database, recorded.search_id, tmp_path / "bundle", "final", record=False)
    x = _images()
    by_key = load_network(tmp_path / "bundle", f"reuse:{direct.record.generation}:{direct.record.index}")
    by_id = load_network(tmp_path / "bundle", model_id)
    assert by_key.sha256 == by_id.sha256 == direct.sha256
    assert torch.equal(by_key.predict(x), direct.predict(x))
    with pytest.raises(CheckpointError, match="does not carry the checkpoint.*--with-checkpoints"):
        load_network(tmp_path / "bundle", model_id, epoch=1)
    app = create_app(database=recorded.database, checkpoint_roots=[recorded.run_dir])
    with TestClient(app) as http:
        client = Client("http://testserver", transport=http._transport)
        served = load_network(client, model_id, epoch=2)
        assert served.sha256 == _checkpoints(recorded, model_id)[1].sha256
        assert torch.equal(served.predict(x), load_network(recorded.database, model_id, epoch=2).predict(x))
        with pytest.raises(ModelNotFoundError):
            load_network(client, 4242)


def test_evaluation_is_stored_and_shown_in_the_model_detail(recorded: Recorded) -> None:
    from fastapi.testclient import TestClient

    from a4nn.api.app import create_app

    model_id = recorded.model_ids[0]
    loaded = load_network(recorded.database, model_id)
    data = load_npz(recorded.npz)
    metrics = evaluate_network(loaded, data)
    n = len(data.val_y)
    assert metrics["n_images"] == n and sum(map(sum, metrics["confusion_matrix"])) == n
    correct = metrics["confusion_matrix"][0][0] + metrics["confusion_matrix"][1][1]
    assert metrics["accuracy"] == pytest.approx(100.0 * correct / n)
    # the stored validation accuracy of the last epoch is the same measurement (precise BN ran before it)
    assert metrics["accuracy"] == pytest.approx(loaded.record.final_acc)
    evaluation_id = record_evaluation(recorded.database, model_id, loaded.epoch, loaded.sha256,
                                      dataset_description(data, "val"), metrics)
    assert [e["id"] for e in evaluations_of(recorded.database, model_id)][-1] == evaluation_id
    with TestClient(create_app(database=recorded.database)) as http:
        detail = http.get(f"/models/{model_id}").json()
    entry = detail["evaluations"][-1]
    assert entry["id"] == evaluation_id and entry["epoch"] == loaded.epoch and entry["dataset"]["name"] == data.name
    assert entry["metrics"]["confusion_matrix"] == metrics["confusion_matrix"] and entry["created"]


def test_data_set_that_does_not_fit_is_refused(recorded: Recorded, tmp_path: Path) -> None:
    from models_fixture import write_npz

    loaded = load_network(recorded.database, recorded.model_ids[0])
    other = load_npz(write_npz(tmp_path / "big.npz", size=20, channels=2))
    with pytest.raises(DatasetMismatchError, match=r"channels: expected 1, got 2; image size: expected 16x16, got 20x20"):
        evaluate_network(loaded, other)


def test_evaluations_travel_in_bundles_and_show_in_the_report(recorded: Recorded, tmp_path: Path) -> None:
    from a4nn.commons.analyzer.data import load_bundle, load_database
    from a4nn.commons.analyzer.report import report_html
    from a4nn.commons.bundle import export_bundle, import_bundle
    from a4nn.lineage.database import Database
    from a4nn.migrations.runner import upgrade_database

    model_id = recorded.model_ids[4]
    loaded = load_network(recorded.database, model_id, epoch=2)
    data = load_npz(recorded.npz)
    metrics = evaluate_network(loaded, data, "all")
    record_evaluation(recorded.database, model_id, 2, loaded.sha256, dataset_description(data, "all"), metrics)
    mine = [e for e in evaluations_of(recorded.database, model_id) if e["epoch"] == 2]
    export_bundle(recorded.database, recorded.search_id, tmp_path / "b", record=False)
    target = f"sqlite:///{tmp_path / 'target.db'}"
    upgrade_database(target)
    other = Database.open(target)
    result = import_bundle(other, tmp_path / "b")
    import_bundle(other, tmp_path / "b")  # twice: nothing added
    from sqlalchemy import select

    from a4nn.lineage.models import Architecture, Evaluation
    from a4nn.lineage.public import public_value

    with other.session() as session:
        new_id = session.scalar(select(Architecture.id).where(
            Architecture.search_id == result.search_ids["reuse"], Architecture.generation == loaded.record.generation,
            Architecture.index == loaded.record.index))
        rows = session.scalars(select(Evaluation).where(Evaluation.architecture_id == new_id)).all()
        # bundles carry the public form of the data set description (no host paths; issue 23)
        assert [(r.epoch, r.metrics, r.dataset, r.checkpoint_sha256) for r in rows] == [
            (e["epoch"], e["metrics"], public_value(e["dataset"]), loaded.sha256) for e in mine]
    other.dispose()
    page = report_html(load_database(recorded.database), "reuse")
    assert "Re-evaluations" in page and f"{metrics['accuracy']:.2f}" in page
    from_bundle = load_bundle(tmp_path / "b")
    assert len(from_bundle.evaluations) == len(load_database(recorded.database).evaluations) >= 1
