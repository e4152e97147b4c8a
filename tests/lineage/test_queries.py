"""One definition of "best", the Pareto front and the epoch budget, and every output agreeing on them.

The scenario is the one a new user met (issue 24): a network stopped at epoch 6 on a
lucky 82.5 % (predicted 76.3 %) must not be "best" or on the front ahead of networks
trained to the end, and it must be shown as stopped wherever it appears.
"""
from __future__ import annotations

import math
from pathlib import Path

import click
import numpy as np
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from a4nn.api.app import create_app
from a4nn.cli.search import print_summary
from a4nn.commons import analyzer
from a4nn.commons.analyzer.report import report_html
from a4nn.commons.bundle import export_bundle
from a4nn.engine.metrics import pareto_front as engine_pareto_front
from a4nn.lineage import queries
from a4nn.lineage.status import ArchitectureStatus, SearchStatus

#: (generation, index, final_acc, fitness, MFLOPs, epochs, stopped early, status)
NETWORKS = [
    (0, 0, 81.7, 81.7, 2.3, 20, False, "completed"),   # trained to the end: on the front, best
    (0, 1, 82.5, 76.3, 2.6, 6, True, "stopped"),       # lucky early value, predicted lower: not best, not on front
    (0, 2, 78.3, None, 2.2, 20, False, "completed"),   # no fitness recorded: its accuracy stands in (cheapest)
    (1, 0, 84.0, 84.0, 9.0, 20, False, "completed"),   # dearer and better: on the front
    (1, 1, 90.0, None, 1.0, 1, False, "failed"),       # failed: on no front whatever its numbers
    (1, 2, 79.0, 83.0, 3.0, 7, True, "stopped"),       # stopped, predicted onto the front: marked as stopped
]
FRONT = [(0, 2), (0, 0), (1, 2), (1, 0)]   # (generation, index), cheapest first
BEST = (1, 0)


@pytest.fixture
def search(recorder):
    search_id = recorder.start_search("lucky", "nsga-net-macro", config={"epochs": 20})
    ids = {}
    for generation, index, acc, fitness, flops, epochs, early, status in NETWORKS:
        genome = recorder.register_genome(format(generation * 8 + index, "021b"))
        arch = recorder.start_architecture(search_id, index=index, generation=generation, genome_id=genome,
                                           flops=flops)
        for epoch in range(1, epochs + 1):
            recorder.log_epoch(arch, epoch, val_acc=acc - (epochs - epoch) * 0.1)
        recorder.finish_architecture(arch, status, final_acc=acc, fitness=fitness, epochs_trained=epochs,
                                     terminated_early=early, stop_epoch=epochs if early else None)
        ids[(generation, index)] = arch
    recorder.finish_search(search_id)
    return search_id, ids


def test_the_front_ranks_by_the_fitness_seen(database, search) -> None:
    search_id, ids = search
    summary = queries.search_summary(database, "lucky")
    assert [row["id"] for row in summary.front] == [ids[key] for key in FRONT]
    assert summary.best["id"] == ids[BEST]
    stopped = {row["id"]: row["terminated_early"] for row in summary.front}
    assert stopped[ids[(1, 2)]] is True and stopped[ids[(0, 0)]] is False
    assert ids[(0, 1)] not in stopped  # 82.5 % measured at epoch 6 is not what the NAS saw


def test_summary_counts_against_one_budget(database, search) -> None:
    summary = queries.search_summary(database, search[0])
    trained = sum(n[5] for n in NETWORKS)
    assert summary.networks == len(NETWORKS) and summary.failed == 1 and summary.stopped_early == 2
    assert summary.budget_per_network == 20 and summary.epochs_budget == 20 * len(NETWORKS)
    assert summary.epochs_saved == pytest.approx(1 - trained / (20 * len(NETWORKS)))
    assert summary.status == SearchStatus.COMPLETED == "completed"


def test_cli_api_analyzer_bundle_and_engine_agree(database, search, tmp_path: Path) -> None:
    """Every output that shows a front or a best network shows the same ones."""
    search_id, ids = search
    expected = [ids[key] for key in FRONT]
    by_slot = {arch: key for key, arch in ids.items()}

    # the CLI's final table
    @click.command()
    def show() -> None:
        print_summary(queries.search_summary(database, search_id))

    table = CliRunner().invoke(show).output.split("early\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert [int(line.split()[0]) for line in table] == expected
    assert {int(line.split()[0]): line.split()[-1] for line in table}[ids[(1, 2)]] == "yes"

    # the API, by name as the CLI takes it, and by id
    client = TestClient(create_app(database=database))
    for key in ("lucky", str(search_id)):
        answer = client.get(f"/searches/{key}/pareto")
        assert answer.status_code == 200, answer.text
        assert [p["id"] for p in answer.json()] == expected
        assert [p["terminated_early"] for p in answer.json()] == [by_slot[i] in ((1, 2),) for i in expected]
    assert client.get("/searches/nothere/pareto").status_code == 404
    detail = client.get(f"/searches/{search_id}").json()
    summary = queries.search_summary(database, search_id)
    assert detail["epochs_saved"] == pytest.approx(summary.epochs_saved)
    assert detail["epochs_budget"] == summary.epochs_budget

    # the analyzer on the database: front, best network, the report's numbers
    data = analyzer.load(database, ["lucky"])
    assert analyzer.pareto_front(data.models)["model_id"].tolist() == expected
    assert int(analyzer.best_models(data.models).iloc[0].model_id) == ids[BEST]
    assert analyzer.epochs_saved(data)["epochs_saved"].iloc[0] == pytest.approx(summary.epochs_saved)
    assert analyzer.search_summary(data)["best model"].iloc[0] == ids[BEST]
    assert f"Best network (model {ids[BEST]}," in report_html(data, "lucky")

    # the analyzer on an export bundle (networks are numbered anew there: compare by slot)
    export_bundle(database, search_id, tmp_path / "bundle")
    bundled = analyzer.load_bundle(tmp_path / "bundle")
    front = analyzer.pareto_front(bundled.models)
    assert list(zip(front["generation"], front["index"])) == FRONT
    best = analyzer.best_models(bundled.models).iloc[0]
    assert (best.generation, best["index"]) == BEST

    # the engine's replay metrics and the analyzer's figure mask on the same fitness
    models = data.models
    seen = models["fitness_seen"].to_numpy(float)
    assert sorted(models["model_id"].iloc[sorted(engine_pareto_front(seen, models["flops"].to_numpy(float)))]) \
        == sorted(expected)


def test_fitness_seen_and_rank_value() -> None:
    assert queries.rank_value(76.3, 82.5) == 76.3
    assert queries.rank_value(None, 78.3) == 78.3 and queries.rank_value(math.inf, 78.3) == 78.3
    assert math.isnan(queries.rank_value(None, None))
    assert math.isnan(queries.fitness_seen(90.0, 90.0, ArchitectureStatus.FAILED))
    assert math.isnan(queries.fitness_seen(90.0, None))


def test_epoch_budget_rule() -> None:
    assert queries.epoch_budget({"epochs": 25}, [40], 30, [12]) == 25
    assert queries.epoch_budget({}, [40, None, "x"], 30, [12]) == 40
    assert queries.epoch_budget(None, [], 30, [12]) == 30
    assert queries.epoch_budget({"epochs": True}, [], None, [12, 7.5]) == 12
    assert queries.epoch_budget({}, [], None, []) is None
    assert queries.epochs_saved(50, 10, 10) == 0.5 and queries.epochs_saved(5, 0, 10) is None


def test_resolve_search_by_id_or_name(database, search) -> None:
    search_id, _ = search
    assert queries.resolve_search(database, search_id) == search_id
    assert queries.resolve_search(database, "lucky") == search_id
    assert queries.find_search(database, "9223372036854775807") is None  # too large for an id: only a name
    with pytest.raises(queries.SearchNotFoundError, match="'nope'"):
        queries.resolve_search(database, "nope")


def test_the_lineage_front_is_the_engine_front() -> None:
    """The array form the engine's replay metrics use equals the dominance definition, ties included."""
    rng = np.random.default_rng(0)
    for _ in range(200):
        n = int(rng.integers(0, 25))
        accuracy = rng.integers(0, 8, n).astype(float)
        flops = rng.integers(0, 8, n).astype(float)
        accuracy[rng.random(n) < 0.1] = np.nan
        front = engine_pareto_front(accuracy, flops)
        for i in range(n):
            dominated = any(accuracy[j] >= accuracy[i] and flops[j] <= flops[i]
                            and (accuracy[j] > accuracy[i] or flops[j] < flops[i]) for j in range(n))
            assert (i in front) == (np.isfinite(accuracy[i]) and not dominated)


def test_model_detail_and_lineage(database, search, recorder) -> None:
    search_id, ids = search
    detail = queries.model_detail(database, ids[(0, 1)])
    assert detail["search"] == "lucky" and detail["terminated_early"] is True
    assert detail["fitness_seen"] == pytest.approx(76.3) and detail["final_acc"] == pytest.approx(82.5)
    assert queries.model_detail(database, 424242) is None
    child, parent = detail["genome_id"], queries.model_detail(database, ids[(0, 0)])["genome_id"]
    recorder.add_genome_parent(child, parent, "mutation", search_id)
    up = queries.genome_lineage(database, ids[(0, 1)], "up", 3)
    assert [(e["child"], e["parent"], e["hop"]) for e in up["edges"]] == [(child, parent, 1)]
    assert {g["id"]: g["models"] for g in up["genomes"]}[parent] == [ids[(0, 0)]]
    assert queries.genome_lineage(database, 424242) is None
