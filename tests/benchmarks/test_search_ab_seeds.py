"""The multi-seed A/B summary: hypervolumes on one reference point per beam, averaged over seeds."""
from __future__ import annotations

import sys

import pytest
from _scripts import load_benchmark


@pytest.fixture(scope="module")
def seeds_module():
    yield from load_benchmark("search_ab_seeds")


def run(saved, engine_front, standalone_front):
    return {"epochs_saved": saved,
            "engine": {"front": [{"true_acc": a, "flops": f} for a, f in engine_front]},
            "standalone": {"front": [{"acc": a, "flops": f} for a, f in standalone_front]}}


def test_hypervolumes_share_one_reference_point_and_average_over_seeds(seeds_module):
    per_seed = {0: {"low": run(0.40, [(80.0, 1.0)], [(80.0, 1.0)])},
                1: {"low": run(0.30, [(90.0, 2.0)], [(90.0, 1.0)])}}
    row = seeds_module.summarize(per_seed)["low"]
    # one reference for both seeds: 1.1 x the largest MFLOPs of any front (2.0 in seed 1)
    assert row["reference_point"] == pytest.approx([100.0, 2.2])
    # a one-point front covers (accuracy) x (reference MFLOPs - its MFLOPs)
    assert row["hypervolume_engine"] == pytest.approx([80 * 1.2, 90 * 0.2])
    assert row["hypervolume_standalone"] == pytest.approx([80 * 1.2, 90 * 1.2])
    assert row["hypervolume_ratio_per_seed"] == pytest.approx([1.0, 1 / 6])
    assert row["hypervolume_ratio_of_means"] == pytest.approx((96 + 18) / (96 + 108))
    low, high = row["hypervolume_ratio_95ci"]
    assert low <= row["hypervolume_ratio_of_means"] <= high
    assert row["mean_epochs_saved"] == pytest.approx(0.35) and row["min_epochs_saved"] == pytest.approx(0.30)
    assert row["meets_epochs_target_on_mean"] and not row["meets_hypervolume_target_on_mean"]
    assert row["seeds_meeting_epochs_target"] == 1 and row["seeds_meeting_both"] == 1


def test_only_beams_every_seed_ran_are_summarized(seeds_module):
    one = run(0.5, [(80.0, 1.0)], [(80.0, 1.0)])
    summary = seeds_module.summarize({0: {"low": one, "high": one}, 1: {"low": one}})
    assert list(summary) == ["low"]
    assert summary["low"]["standalone_spread"]["cv"] == pytest.approx(0.0)


def test_per_seed_files_keep_the_single_seed_names(seeds_module):
    assert seeds_module.seed_result_name("search_ab", 0) == "search_ab"
    assert seeds_module.seed_result_name("search_ab", 2) == "search_ab_seed2"


def test_summarize_only_names_the_missing_per_seed_file(seeds_module, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["search_ab_seeds.py", "--summarize-only", "--seeds", "0", "3",
                                      "--name", "no_such_ab_run"])
    with pytest.raises(SystemExit, match=r"no_such_ab_run\.json: no result for seed 0"):
        seeds_module.main()
