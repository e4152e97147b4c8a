"""Lineage, checkpoints, Pareto front and the DataFrame client."""
from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from a4nn.api.app import create_app
from a4nn.commons.client import Client, ServiceError


@pytest.fixture
def trail(recorder, tmp_path: Path):
    search = recorder.start_search("evo", "nsga-net-macro", config={"epochs": 5})
    grandparent = recorder.register_genome("0" * 21)
    parent = recorder.register_genome("1" + "0" * 20)
    child = recorder.register_genome("11" + "0" * 19)
    recorder.add_genome_parent(parent, grandparent, "mutation", search)
    recorder.add_genome_parent(child, parent, "crossover", search)
    archs = {}
    for index, (genome, acc, flops) in enumerate([(grandparent, 80.0, 10.0), (parent, 85.0, 30.0), (child, 83.0, 50.0)]):
        arch = recorder.start_architecture(search, index=index, genome_id=genome, flops=flops)
        recorder.finish_architecture(arch, final_acc=acc, fitness=acc, epochs_trained=5)
        archs[genome] = arch
    checkpoint = tmp_path / "state.pt"
    checkpoint.write_bytes(b"\x00weights" * 50)
    digest = recorder.log_checkpoint(archs[child], 5, checkpoint)
    return search, archs, (grandparent, parent, child), checkpoint, digest


@pytest.fixture
def client(database, trail):
    return TestClient(create_app(database=database, checkpoint_roots=[trail[3].parent]))


def test_lineage_up_and_down(client, trail) -> None:
    _, archs, (grandparent, parent, child), _, _ = trail
    up = client.get(f"/models/{archs[child]}/lineage?direction=up&hops=2").json()
    assert {(e["child"], e["parent"], e["hop"]) for e in up["edges"]} == {(child, parent, 1), (parent, grandparent, 2)}
    assert {g["id"]: g["models"] for g in up["genomes"]}[grandparent] == [archs[grandparent]]
    one_hop = client.get(f"/models/{archs[child]}/lineage?direction=up&hops=1").json()
    assert len(one_hop["edges"]) == 1
    down = client.get(f"/models/{archs[grandparent]}/lineage?direction=down&hops=3").json()
    assert {e["child"] for e in down["edges"]} == {parent, child}
    assert client.get(f"/models/{archs[child]}/lineage?direction=down").json()["edges"] == []
    assert client.get(f"/models/{archs[child]}/lineage?direction=sideways").status_code == 400
    assert client.get(f"/models/{archs[child]}/lineage?hops=0").status_code == 400


def test_checkpoint_download_with_checksum(client, trail) -> None:
    _, archs, (_, _, child), path, digest = trail
    listed = client.get(f"/models/{archs[child]}/checkpoints").json()
    assert listed[0]["sha256"] == digest
    response = client.get(listed[0]["download"])
    assert response.status_code == 200 and response.content == path.read_bytes()
    assert response.headers["x-checksum-sha256"] == digest
    assert response.headers["repr-digest"].startswith("sha-256=:")
    assert client.get(f"/models/{archs[child]}/checkpoints/4").status_code == 404
    assert client.get(f"/models/{archs[child]}/checkpoints/nan").status_code == 400
    path.write_bytes(b"longer than before" * 100)
    assert client.get(listed[0]["download"]).status_code == 409
    path.unlink()
    assert client.get(listed[0]["download"]).status_code == 404


def test_checkpoint_outside_the_served_roots_is_refused(database, trail, tmp_path: Path) -> None:
    _, archs, (_, _, child), _, _ = trail
    elsewhere = tmp_path / "served"
    elsewhere.mkdir()
    client = TestClient(create_app(database=database, checkpoint_roots=[elsewhere]))
    response = client.get(f"/models/{archs[child]}/checkpoints/5")
    assert response.status_code == 403 and "--checkpoint-root" in response.json()["detail"]


def test_pareto_front(client, trail) -> None:
    search, archs, (grandparent, parent, child), _, _ = trail
    front = client.get(f"/searches/{search}/pareto").json()
    assert [m["id"] for m in front] == [archs[grandparent], archs[parent]]  # child: more flops, less accuracy
    assert front[0]["accuracy"] == 80.0 and front[0]["flops"] == 10.0
    assert client.get(f"/searches/{search}/pareto?metric=bogus").status_code == 400
    assert client.get("/searches/999/pareto").status_code == 404


def test_python_client_returns_dataframes(database, trail) -> None:
    app = create_app(database=database)
    test_client = TestClient(app)  # its transport runs the ASGI app in-process
    client = Client("http://testserver", transport=test_client._transport)
    frame = client.models("acc>=83", page_size=1)
    assert sorted(frame["final_acc"]) == [83.0, 85.0]
    assert list(client.searches()["name"]) == ["evo"]
    assert len(client.pareto(trail[0])) == 2
    assert sorted(client.models(acc=">=83", search=["evo"], page_size=1)["final_acc"]) == [83.0, 85.0]
    assert client.models(acc=">100").empty
    assert client.model(trail[1][trail[2][0]])["genome"] == "0" * 21
    assert client.search(trail[0])["epochs_saved"] == 0.0
    with pytest.raises(ServiceError, match="400") as caught:
        client.models("bogus=1")
    assert caught.value.status_code == 400
    with pytest.raises(ServiceError, match="404"):
        client.model(424242)
