"""The contender vetoes: networks that can still make the top-k keep training.

Also: the population the rules read is fed in replay order only (no look-ahead), the
prior's support guard, and the bookkeeping of the population's fitness.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from a4nn.engine import Population, PredictionEngine, Strategy, VerdictKind, replay_curves
from a4nn.engine.rules import Hopeless, HopelessSettings, PriorAgreement, PriorSettings

from tests.engine.test_engine_prior import prior_strategy


def noisy_curve(final: float, seed: int, length: int = 25) -> list[float]:
    """Noise collapses at epoch 12, as in the A4NN runs after the learning-rate drop."""
    rng = np.random.default_rng(seed)
    x = np.arange(length)
    noise = np.where(x < 12, rng.normal(0, 3.0, length), rng.normal(0, 0.05, length))
    return list(np.minimum(100.0, final - 20 * 0.6 ** x + noise))


def population(n: int = 20, low: float = 85.0, step: float = 0.2) -> Population:
    """A population of ``n`` complete curves with finals spread over [low, low + 9 * step]."""
    pop = Population(length=25)
    for seed in range(n):
        assert pop.add_curve(noisy_curve(low + step * (seed % 10), seed))
    return pop


def run(engine: PredictionEngine, curve: list[float]):
    decisions = []
    for epoch, value in enumerate(curve, start=1):
        decisions.append(engine.observe(epoch, value))
        if decisions[-1].stop:
            break
    return decisions


def test_a_contender_keeps_training_and_a_hopeless_network_stops() -> None:
    prior = population()
    threshold = prior.threshold(10)
    assert 85.8 < threshold < 86.2  # the 10th best of finals 85.0 ... 86.8, twice each

    top = noisy_curve(86.8, 1234)  # would be the best network so far
    decisions = run(PredictionEngine(strategy=prior_strategy(), population=prior), top)
    assert not any(d.stop for d in decisions), [d.reason for d in decisions if d.stop]
    assert any(d.kind is VerdictKind.KEEP and d.rule == "top-contender" for d in decisions)

    # the same curve without the contender veto is stopped: the veto is what keeps it training
    ungated = run(PredictionEngine(strategy=prior_strategy(k=None), population=population()), top)
    assert ungated[-1].stop and len(ungated) < 25

    bottom = noisy_curve(85.0, 4321)
    engine = PredictionEngine(strategy=prior_strategy(), population=prior)
    decisions = run(engine, bottom)
    assert decisions[-1].stop and len(decisions) < 20
    assert abs(decisions[-1].prediction - bottom[-1]) < 0.5
    assert prior.fitness[engine._key] == pytest.approx(decisions[-1].prediction)


def test_everyone_is_a_contender_until_k_networks_are_known() -> None:
    prior = population(n=14)
    decisions = run(PredictionEngine(strategy=prior_strategy(k=15), population=prior), noisy_curve(85.0, 77))
    assert not any(d.stop for d in decisions)
    assert any(d.rule == "top-contender" and "top-15 not known yet" in d.reason for d in decisions)
    decisions = run(PredictionEngine(strategy=prior_strategy(k=3), population=prior), noisy_curve(85.0, 77))
    assert decisions[-1].stop


def test_loss_contender_compares_the_other_way() -> None:
    prior = Population(length=25)
    for seed in range(20):
        final = 0.10 + 0.02 * (seed % 10)
        rng = np.random.default_rng(seed)
        prior.add_curve(list(final + 2.0 * 0.6 ** np.arange(25) + rng.normal(0, 0.002, 25)))
    assert prior.threshold(10, maximize=False) == pytest.approx(0.18, abs=0.01)
    engine = PredictionEngine(metric="loss", strategy=prior_strategy(r=0.05), population=prior, r=0.05)
    best = list(0.09 + 2.0 * 0.6 ** np.arange(25))
    assert not any(d.stop for d in run(engine, best))


def test_replay_has_no_look_ahead() -> None:
    """A network's decision only depends on the networks recorded before it."""
    rng = np.random.default_rng(5)
    curves = [noisy_curve(float(rng.uniform(84, 88)), i) for i in range(36)]
    kwargs = {"strategy": "a4nn", "e_pred": 25}
    full = replay_curves(curves, kwargs, population=True)
    assert any(o.stopped for o in full) and not all(o.stopped for o in full[10:])
    for cut in (12, 25):
        prefix = replay_curves(curves[:cut], kwargs, population=True)
        assert [(o.epochs_used, o.fitness) for o in prefix] == [(o.epochs_used, o.fitness) for o in full[:cut]]
    # a changed future cannot change the past: replace every later curve by a better one
    altered = curves[:20] + [noisy_curve(99.0, 1000 + i) for i in range(16)]
    changed = replay_curves(altered, kwargs, population=True)
    assert [(o.epochs_used, o.fitness) for o in changed[:20]] == [(o.epochs_used, o.fitness) for o in full[:20]]


def test_population_bookkeeping_stop_then_complete_replaces_the_fitness() -> None:
    prior = population()
    before = len(prior.fitness)
    engine = PredictionEngine(strategy=prior_strategy(), population=prior)
    curve = noisy_curve(85.0, 99)
    # a trainer that ignores the stop (as the search does at the last epoch) and then reports the network complete
    decisions = [engine.observe(epoch, value) for epoch, value in enumerate(curve, start=1)]
    assert any(d.stop for d in decisions) and len(prior.fitness) == before + 1
    key = engine._key
    assert prior.fitness[key] == pytest.approx(next(d.prediction for d in reversed(decisions) if d.stop))
    assert engine.complete()
    assert len(prior.fitness) == before + 1 and prior.fitness[key] == engine.values[-1]
    engine.reset()
    assert engine._key is None
    assert prior.add_fitness(math.nan) not in prior.fitness
    assert prior.threshold(10, exclude=key) <= prior.threshold(10) + 1e-12


def test_support_guard_needs_complete_curves_that_ended_nearby() -> None:
    """No complete curve ended near 90 (they ended near 85 or 95): the prior may not decide there."""
    prior = Population(length=25)
    for seed in range(20):
        prior.add_curve(noisy_curve(85.0 if seed % 2 else 95.0, seed))
    curve = noisy_curve(90.0, 555)
    regression = PriorAgreement().prior
    guess, held_out = regression.predict(prior, curve[:16])
    assert abs(guess - 90.0) < 2 and regression.support(prior, 16, guess, max(3 * held_out, 0.5)) == 0
    guarded = run(PredictionEngine(strategy=prior_strategy(k=None), population=prior), curve)
    assert not any(d.function == "prior" for d in guarded)
    trusting = run(PredictionEngine(strategy=prior_strategy(k=None, support=0), population=prior), curve)
    assert trusting[-1].stop and trusting[-1].function == "prior"


def test_leverage_guard_is_opt_in_and_refuses_to_extrapolate() -> None:
    """Complete curves that were all near 95 % cannot vouch for a prefix at 80 %.

    The ridge shrinks such a prefix towards the population mean (95 %) with a small
    held-out error; only its leverage shows that the prior is extrapolating.
    """
    prior = Population(length=25)
    for seed in range(20):
        prior.add_curve(noisy_curve(95.0 + 0.1 * (seed % 10), seed))
    curve = list(80.0 - 20 * 0.6 ** np.arange(25))
    regression = PriorAgreement().prior
    assert not regression.inside(prior, curve[:8]) and regression.inside(prior, noisy_curve(95.3, 808)[:8], 2.0)
    default = run(PredictionEngine(strategy=prior_strategy(k=None), population=prior), curve)
    assert default[-1].stop and default[-1].prediction > 90  # the failure the guard exists for
    guarded = run(PredictionEngine(strategy=prior_strategy(k=None, leverage_slack=1.0), population=prior), curve)
    assert not any(d.stop and d.prediction > 90 for d in guarded)


def test_hopeless_rule_stops_a_network_that_cannot_catch_up() -> None:
    """The most any finished curve gained after epoch t bounds what this one can still reach."""
    curve = noisy_curve(80.0, 31)  # 5 points below every finished network
    without = run(PredictionEngine(strategy=prior_strategy(), population=population(low=85.0, step=0.5)), curve)
    pop = population(low=85.0, step=0.5)
    prior = PriorAgreement(PriorSettings(tolerance=0.8))
    hopeless = Strategy("prior+hopeless", stops=(prior, Hopeless(HopelessSettings(), prior)),
                        vetoes=prior_strategy().vetoes)
    eager = run(PredictionEngine(strategy=hopeless, population=pop), curve)
    assert eager[-1].stop and eager[-1].rule == "hopeless" and len(eager) < len(without)
    # a network near the top is never hopeless: its bound reaches the 10th best
    top = run(PredictionEngine(strategy=hopeless, population=population(low=85.0, step=0.5)), noisy_curve(89.5, 7))
    assert not any(d.stop for d in top)
