"""The population prior and the a4nn default strategy built on it."""
from __future__ import annotations

import math

import numpy as np
import pytest

from a4nn.engine import CurvePrior, PredictionEngine, replay_curves
from a4nn.engine.metrics import strategy_report, top_k_recall_with_ties


def noisy_curve(final: float, seed: int, length: int = 25) -> list[float]:
    """A learning curve whose noise collapses at epoch 12, like the A4NN runs after the LR drop."""
    rng = np.random.default_rng(seed)
    x = np.arange(length)
    noise = np.where(x < 12, rng.normal(0, 3.0, length), rng.normal(0, 0.05, length))
    return list(np.minimum(100.0, final - 20 * 0.6 ** x + noise))


def test_prior_needs_min_curves_and_ignores_incomplete_ones() -> None:
    prior = CurvePrior(length=25, min_curves=3)
    assert prior.predict(noisy_curve(90, 0)[:8]) == (math.inf, math.inf)
    assert not prior.add_curve(noisy_curve(90, 0)[:20])          # too short
    assert not prior.add_curve(noisy_curve(90, 0)[:24] + [math.nan])  # no final value
    for seed in range(3):
        assert prior.add_curve(noisy_curve(85 + 3 * seed, seed))
    assert prior.ready


def test_prior_learns_the_final_value_of_the_population() -> None:
    prior = CurvePrior(length=25, min_curves=10)
    for seed in range(40):
        prior.add_curve(noisy_curve(85 + (seed % 10), seed))
    errors = []
    for seed in range(100, 120):
        final = 85 + (seed % 10)
        curve = noisy_curve(final, seed)
        guess, held_out = prior.predict(curve[:14])
        errors.append(abs(guess - curve[-1]))
        assert math.isfinite(held_out)
    assert np.mean(errors) < 0.5


def test_engine_with_prior_trains_the_first_networks_fully_then_stops_early() -> None:
    """Warm-up networks train fully; later ones that cannot make the top-10 stop early, contenders do not."""
    finals = [85 + 0.2 * (i % 10) for i in range(40)]
    curves = [noisy_curve(final, i) for i, final in enumerate(finals)]
    outcomes = replay_curves(curves, {"strategy": "a4nn", "e_pred": 25, "plateau_n": 99}, prior=True)
    assert all(o.epochs_used == 25 for o in outcomes[:10])  # the prior's warm-up
    # once 20 networks are known, the bottom half of each cycle is clearly out of the top-10
    hopeless = [o for i, o in enumerate(outcomes) if i >= 20 and i % 10 < 5]
    assert np.mean([o.epochs_used for o in hopeless]) < 17
    truth = np.array([c[-1] for c in curves])
    top10 = np.argsort(-truth)[:10]
    assert all(outcomes[i].epochs_used == 25 for i in top10)  # their fitness is exact
    assert np.mean([abs(o.fitness - t) for o, t in zip(outcomes, truth)]) < 0.5


def test_prior_decision_is_reported_and_config_names_it() -> None:
    prior = CurvePrior(length=25, min_curves=5)
    for seed in range(30):
        prior.add_curve(noisy_curve(85 + (seed % 10), seed))
    engine = PredictionEngine(prior=prior, plateau_n=99)
    decision = None
    for epoch, value in enumerate(noisy_curve(86, 999)):  # far below the top-10 (92-94): not a contender
        decision = engine.observe(epoch, value)
        if decision.stop:
            break
    assert decision is not None and decision.stop and decision.function == "prior"
    assert 0 <= decision.prediction <= 100
    settings = engine.settings()
    assert settings["extra"]["strategy"] == "a4nn"
    assert settings["extra"]["prior"]["min_curves"] == 5


def test_prior_warm_up_forbids_stopping_even_on_a_plateau() -> None:
    engine = PredictionEngine(prior=CurvePrior(length=25, min_curves=2))
    decisions = [engine.observe(e, 90.0) for e in range(25)]
    assert not any(d.stop for d in decisions)
    assert "warming up" in decisions[-1].reason
    assert engine.complete() and len(engine.prior.curves) == 1


def test_plateau_rule_hands_over_the_best_tail_value() -> None:
    engine = PredictionEngine(strategy="a4nn")
    values = [60, 75, 80, 90.0, 90.1, 90.2, 90.15]
    decisions = [engine.observe(e, v) for e, v in enumerate(values)]
    assert decisions[-1].stop and decisions[-1].reason == "plateau"
    assert decisions[-1].prediction == pytest.approx(90.2)


def test_recall_with_ties_counts_equal_true_values() -> None:
    truth = np.array([100.0] * 12 + [90.0] * 8)
    fitness = np.arange(20, dtype=float)[::-1]  # picks 0..9, all at 100
    assert top_k_recall_with_ties(fitness, truth) == 1.0
    assert top_k_recall_with_ties(-fitness, truth) == pytest.approx(0.2)  # picks 10..19: two at 100
    report = strategy_report(list(fitness), list(truth), [25] * 20, 25)
    assert report["top10_recall_ties"] == 1.0
