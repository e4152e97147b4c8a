"""The population prior (a regression over a Population) and the rules built on it."""
from __future__ import annotations

import math

import numpy as np
import pytest

from a4nn.engine import CurvePrior, Population, PredictionEngine, Strategy, VerdictKind, replay_curves
from a4nn.engine.rules import Plateau, PlateauSettings, PriorAgreement, PriorSettings, TopContender, TopContenderSettings
from a4nn.engine.metrics import strategy_report, top_k_recall_with_ties


def noisy_curve(final: float, seed: int, length: int = 25) -> list[float]:
    """A learning curve whose noise collapses at epoch 12, like the A4NN runs after the LR drop."""
    rng = np.random.default_rng(seed)
    x = np.arange(length)
    noise = np.where(x < 12, rng.normal(0, 3.0, length), rng.normal(0, 0.05, length))
    return list(np.minimum(100.0, final - 20 * 0.6 ** x + noise))


def prior_strategy(min_curves: int = 10, k: int | None = 10, z: float = 1.5, tolerance: float = 0.8,
                   **prior: object) -> Strategy:
    """The population prior alone, with the top-k contender veto the a4nn default ranked by before."""
    vetoes = (TopContender(TopContenderSettings(k=k, z=z, with_cost=True)),) if k else ()
    return Strategy("prior-only", stops=(PriorAgreement(PriorSettings(min_curves=min_curves, tolerance=tolerance,
                                                                      **prior)),), vetoes=vetoes)


def test_prior_needs_min_curves_and_ignores_incomplete_ones() -> None:
    prior, population = CurvePrior(min_curves=3), Population(length=25)
    assert prior.predict(population, noisy_curve(90, 0)[:8]) == (math.inf, math.inf)
    assert not population.add_curve(noisy_curve(90, 0)[:20])          # too short
    assert not population.add_curve(noisy_curve(90, 0)[:24] + [math.nan])  # no final value
    for seed in range(3):
        assert population.add_curve(noisy_curve(85 + 3 * seed, seed))
    assert prior.ready(population)


def test_prior_learns_the_final_value_of_the_population() -> None:
    prior, population = CurvePrior(min_curves=10), Population(length=25)
    for seed in range(40):
        population.add_curve(noisy_curve(85 + (seed % 10), seed))
    errors = []
    for seed in range(100, 120):
        final = 85 + (seed % 10)
        curve = noisy_curve(final, seed)
        guess, held_out = prior.predict(population, curve[:14])
        errors.append(abs(guess - curve[-1]))
        assert math.isfinite(held_out)
    assert np.mean(errors) < 0.5


def test_engine_with_prior_trains_the_first_networks_fully_then_stops_early() -> None:
    """Warm-up networks train fully; later ones that cannot make the top-10 stop early, contenders do not."""
    finals = [85 + 0.2 * (i % 10) for i in range(40)]
    curves = [noisy_curve(final, i) for i, final in enumerate(finals)]
    outcomes = replay_curves(curves, {"strategy": prior_strategy(), "e_pred": 25}, population=True)
    assert all(o.epochs_used == 25 for o in outcomes[:10])  # the prior's warm-up
    # once 20 networks are known, the bottom half of each cycle is clearly out of the top-10
    hopeless = [o for i, o in enumerate(outcomes) if i >= 20 and i % 10 < 5]
    assert np.mean([o.epochs_used for o in hopeless]) < 17
    truth = np.array([c[-1] for c in curves])
    top10 = np.argsort(-truth)[:10]
    assert all(outcomes[i].epochs_used == 25 for i in top10)  # their fitness is exact
    assert np.mean([abs(o.fitness - t) for o, t in zip(outcomes, truth)]) < 0.5


def test_prior_decision_is_reported_and_config_names_it() -> None:
    population = Population(length=25)
    for seed in range(30):
        population.add_curve(noisy_curve(85 + (seed % 10), seed))
    engine = PredictionEngine(strategy=prior_strategy(min_curves=5), population=population)
    decision = None
    for epoch, value in enumerate(noisy_curve(86, 999)):  # far below the top-10 (92-94): not a contender
        decision = engine.observe(epoch, value)
        if decision.stop:
            break
    assert decision is not None and decision.stop and decision.function == "prior" and decision.rule == "prior"
    assert decision.kind is VerdictKind.STOP and 0 <= decision.prediction <= 100
    settings = engine.settings()
    assert settings["extra"]["strategy"] == "prior-only"
    assert settings["extra"]["stops"][0]["rule"] == "prior" and settings["extra"]["stops"][0]["min_curves"] == 5


def test_warm_up_forbids_stopping_even_on_a_plateau() -> None:
    """Until min_curves networks finished, a calibrated rule's error is unknown and the veto keeps training."""
    from a4nn.engine.strategies import a4nn

    from dataclasses import replace

    from a4nn.engine.rules import Plateau, PlateauSettings

    population = Population(length=25)
    default = a4nn(min_curves=2)
    with_plateau = replace(default, stops=default.stops + (Plateau(PlateauSettings(calibrate=False)),))
    engine = PredictionEngine(strategy=with_plateau, population=population)
    decisions = [engine.observe(e, 90.0) for e in range(25)]
    assert not any(d.stop for d in decisions)
    assert decisions[-1].kind is VerdictKind.KEEP and decisions[-1].rule == "top-contender"
    assert engine.complete() and len(population.curves) == 1


def test_plateau_rule_hands_over_the_best_tail_value() -> None:
    from a4nn.engine.rules import Plateau, PlateauSettings
    from a4nn.engine.strategies import Strategy

    engine = PredictionEngine(strategy=Strategy("plateau", stops=(Plateau(PlateauSettings(calibrate=False)),)))
    values = [60, 75, 80, 90.0, 90.1, 90.2, 90.15]
    decisions = [engine.observe(e, v) for e, v in enumerate(values)]
    assert decisions[-1].stop and decisions[-1].rule == "plateau"
    assert decisions[-1].prediction == pytest.approx(90.2)


def test_a_calibrated_plateau_widens_its_radius_only_within_the_error_budget() -> None:
    """Finished curves that wobble by ±0.6 around their final value: a radius of 1.2 is within a budget of 0.5?"""
    rng = np.random.default_rng(3)
    population = Population(length=25)
    for i in range(12):
        final = 80.0 + i
        population.add_curve(list(final - 30 * 0.5 ** np.arange(25) + rng.uniform(-0.6, 0.6, 25) * (np.arange(25) > 6)))
    tight = Plateau(PlateauSettings(radius=0.25, budget=0.5, min_curves=10)).calibration(population, True)
    loose = Plateau(PlateauSettings(radius=0.25, budget=2.0, min_curves=10)).calibration(population, True)
    assert loose is not None and loose.error <= 2.0
    assert tight is None or (tight.error <= 0.5 and tight.saved <= loose.saved)


def test_recall_with_ties_counts_equal_true_values() -> None:
    truth = np.array([100.0] * 12 + [90.0] * 8)
    fitness = np.arange(20, dtype=float)[::-1]  # picks 0..9, all at 100
    assert top_k_recall_with_ties(fitness, truth) == 1.0
    assert top_k_recall_with_ties(-fitness, truth) == pytest.approx(0.2)  # picks 10..19: two at 100
    report = strategy_report(list(fitness), list(truth), [25] * 20, 25)
    assert report["top10_recall_ties"] == 1.0
