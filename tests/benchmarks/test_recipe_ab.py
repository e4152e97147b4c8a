"""The recipe A/B's bookkeeping: distinct genomes, the two fronts, "best", one reference point per beam."""
from __future__ import annotations

import math

import pytest
from _scripts import load_benchmark


@pytest.fixture(scope="module")
def recipe_ab():
    yield from load_benchmark("recipe_ab")


def row(id, bits, final_acc, fitness, flops, epochs=20, early=False, status="completed"):
    return {"id": id, "generation": 0, "index": id, "genome_bits": bits, "final_acc": final_acc, "fitness": fitness,
            "flops": flops, "epochs_trained": epochs, "terminated_early": early, "status": status}


def test_distinct_genomes_counts_repeats_once_and_skips_missing(recipe_ab):
    assert recipe_ab.distinct_genomes(["0101", "0101", "1100", None, math.nan]) == 2
    assert recipe_ab.distinct_genomes([]) == 0


def test_run_metrics_fronts_and_best(recipe_ab):
    rows = [
        row(1, "a", 70.0, 70.0, 1.0),                       # completed, cheap
        row(2, "a", 72.0, 72.0, 1.0),                       # the same genome trained again (nsga-net recipe)
        row(3, "b", 60.0, 90.0, 2.0, epochs=5, early=True),  # stopped: the NAS saw 90 (a prediction)
        row(4, "c", 80.0, 80.0, 3.0),                       # completed, the best measured
        row(5, "d", None, None, 0.5, epochs=2, status="failed"),
    ]
    m = recipe_ab.run_metrics(rows)
    assert (m["networks"], m["failed"], m["distinct_genomes"]) == (4, 1, 3)
    assert m["epochs"] == 20 + 20 + 5 + 20 and m["stopped_early"] == 1 and m["completed"] == 3
    # seen front: by the fitness the NAS saw; the stopped network's 90 dominates the 80 at 3 MFLOPs
    assert [p["id"] for p in m["front_seen"]] == [2, 3]
    assert m["best"]["id"] == 3 and m["best_fitness_seen"] == 90.0 and m["best_acc_measured"] == 60.0
    assert m["best"]["stopped_early"]
    # completed front: measured final accuracies of networks that trained to the end only
    assert [(p["acc"], p["flops"]) for p in m["front_completed"]] == [(72.0, 1.0), (80.0, 3.0)]
    assert m["best_completed_acc"] == 80.0


def test_hypervolumes_share_one_reference_point_per_beam(recipe_ab):
    one = {"recipe": "a4nn", "seed": 0, "front_seen": [{"fitness_seen": 80.0, "flops": 1.0}],
           "front_completed": [{"acc": 80.0, "flops": 1.0}]}
    two = {"recipe": "nsga-net", "seed": 0, "front_seen": [{"fitness_seen": 90.0, "flops": 2.0}],
           "front_completed": []}
    reference = recipe_ab.add_hypervolumes([one, two])
    assert reference == pytest.approx([100.0, 2.2])  # 1.1 x the largest MFLOPs of any front of the beam
    assert one["hypervolume_seen"] == pytest.approx(80 * 1.2) and one["hypervolume_completed"] == pytest.approx(96)
    assert two["hypervolume_seen"] == pytest.approx(90 * 0.2) and two["hypervolume_completed"] == 0.0


def test_summary_per_recipe_over_seeds(recipe_ab):
    runs = [{"recipe": r, "seed": s, "epochs": e, "wall_seconds": 1.0, "best_completed_acc": None if e == 0 else e}
            for r, s, e in [("a4nn", 0, 10.0), ("a4nn", 1, 30.0), ("nsga-net", 0, 40.0), ("nsga-net", 1, 0.0)]]
    summary = recipe_ab.summarize(runs)
    assert summary["a4nn"]["seeds"] == [0, 1]
    epochs = summary["a4nn"]["epochs"]
    assert (epochs["mean"], epochs["min"], epochs["max"], epochs["n"]) == (20.0, 10.0, 30.0, 2)
    low, high = epochs["mean_95ci"]
    assert 10.0 <= low <= 20.0 <= high <= 30.0
    # a missing value (no network completed) is left out, not counted as 0
    assert summary["nsga-net"]["best_completed_acc"]["n"] == 1
    assert summary["nsga-net"]["best_completed_acc"]["mean"] == 40.0
    assert summary["nsga-net"]["networks"]["n"] == 0  # a metric no run has
