"""The error budget veto: stops spend a mean expected fitness error that the search's finished networks pay for."""
from __future__ import annotations

import math

import numpy as np
import pytest

from a4nn.engine import PredictionEngine
from a4nn.engine.population import Population
from a4nn.engine.rules import Curve, ErrorBudget, ErrorBudgetSettings, Verdict, VerdictKind
from a4nn.engine.strategies import Strategy


def _population(complete: int, length: int = 5) -> Population:
    population = Population(length=length)
    for i in range(complete):
        population.add_curve([50.0 + i] * length)
    return population


def _ask(veto: ErrorBudget, population: Population, error: float) -> Verdict | None:
    curve = Curve(length=5, proposal=Verdict(VerdictKind.STOP, "hopeless", 60.0, error))
    return veto.decide(curve, population)


def test_a_stop_goes_through_while_the_mean_expected_error_stays_within_the_target() -> None:
    veto = ErrorBudget(ErrorBudgetSettings(target=0.5, safety=2.0))
    population = _population(9)
    # 2 x 2.5 points over 10 networks = 0.5: exactly the target
    assert _ask(veto, population, 2.5) is None
    kept = _ask(veto, population, 2.6)  # 5.2 / 10 > 0.5
    assert kept is not None and kept.kind is VerdictKind.KEEP and kept.rule == "error-budget"
    assert _ask(veto, population, math.inf).kind is VerdictKind.KEEP  # an unknown error is never accepted


def test_spent_errors_count_until_the_network_completes() -> None:
    population = _population(9)
    population.record_fitness(100, 61.0, error=4.0)  # a stopped network: 4 points expected
    veto = ErrorBudget(ErrorBudgetSettings(target=0.5, safety=1.0))
    assert population.expected_error() == 4.0
    assert _ask(veto, population, 1.6).kind is VerdictKind.KEEP  # (4 + 1.6) / 11 = 0.509 > 0.5
    assert _ask(veto, population, 1.4) is None  # 5.4 / 11 = 0.491
    population.add_curve([61.0] * 5, key=100)  # it trained to the end after all: measured, no error
    assert population.expected_error() == 0.0


def test_stopped_networks_read_back_without_their_error_count_the_stated_value() -> None:
    population = _population(3)
    population.add_fitness(55.0)  # from a database: the error it was stopped with is not stored
    assert population.expected_error() == 0.0 and population.expected_error(unknown=0.5) == 0.5
    veto = ErrorBudget(ErrorBudgetSettings(target=0.5, safety=1.0))  # unknown counts the target
    assert _ask(veto, population, 2.1).kind is VerdictKind.KEEP  # (0.5 + 2.1) / 5 = 0.52
    assert _ask(veto, population, 1.9) is None  # (0.5 + 1.9) / 5 = 0.48


class _StopAtThree:
    """Stops at epoch 3 with the last value and a 1-point expected error."""

    name = "at-three"
    settings = None
    uses_population = False

    def decide(self, curve: Curve, population: Population | None) -> Verdict | None:
        return Verdict(VerdictKind.STOP, self.name, float(curve.values[-1]), 1.0) if curve.t >= 3 else None


def test_the_engine_charges_each_stop_to_the_population() -> None:
    """A composition whose one rule stops at epoch 3 with a 1-point error: the ledger holds 2 x 1 per stop."""
    population = _population(20, length=6)
    strategy = Strategy("three", fit="a4nn", stops=(_StopAtThree(),),
                        vetoes=(ErrorBudget(ErrorBudgetSettings(target=0.5, safety=2.0, calibrate=False)),))
    stopped = 0
    for _ in range(10):
        engine = PredictionEngine(strategy=strategy, population=population, e_pred=6)
        engine.reset()
        decisions = [engine.observe(t, 70.0) for t in range(1, 7)]
        if any(d.stop for d in decisions):
            stopped += 1
        else:
            assert engine.complete()
    # each stop charges 2 points and must keep the mean over the finished networks <= 0.5: the first 6
    # stop (12 / 26), the 7th would make 14 / 27 and completes, which lets the 8th stop (14 / 28);
    # the last two (16 / 29, 16 / 31) complete
    assert stopped == 7 and len(population.curves) == 23
    assert population.expected_error(scale=2.0) == pytest.approx(14.0)
    assert population.expected_error(scale=2.0) / population.finished <= 0.5


def _run(strategy: Strategy, population: Population, curve: list[float]) -> bool:
    """One network through an engine: whether it stopped (a complete one is handed to the population)."""
    engine = PredictionEngine(strategy=strategy, population=population, e_pred=len(curve))
    engine.reset()
    if any(engine.observe(t + 1, v).stop for t, v in enumerate(curve)):
        return True
    assert engine.complete()
    return False


def test_a_stop_the_budget_overruled_is_checked_against_the_final_value() -> None:
    """The first stop the rules may propose (epoch 4, past c_min) is at 72 and overruled; the network ends at 76,
    so that stop would have missed by 4."""
    population = _population(3, length=6)
    strict = Strategy("three", fit="a4nn", stops=(_StopAtThree(),),
                      vetoes=(ErrorBudget(ErrorBudgetSettings(target=0.1, safety=2.0)),))
    assert not _run(strict, population, [60.0, 65.0, 70.0, 72.0, 74.0, 76.0])
    assert population.checks == [(4.0, 1.0)]  # the first overruled proposal, not the later ones
    # 4 points missed where 1 was expected, shrunk toward the start of 2 by 2 pseudo-checks: (4 + 2 x 2) / (1 + 2)
    assert population.error_ratio(2.0) == pytest.approx(8.0 / 3.0)
    assert strict.vetoes[0].safety(population) == pytest.approx(8.0 / 3.0)
    assert ErrorBudget(ErrorBudgetSettings(calibrate=False)).safety(population) == 3.0


def test_the_learned_safety_follows_how_far_checked_stops_missed() -> None:
    honest = Population(length=6)
    for _ in range(20):
        honest.add_check(0.0, 1.0)  # stops that would have been exact
    assert honest.error_ratio(2.0) == 1.0  # (0 + 2 x 2) / (20 + 2) = 0.18, never below the floor
    assert honest.error_ratio(2.0, floor=0.1) == pytest.approx(4.0 / 22.0)
    bold = Population(length=6)
    for _ in range(20):
        bold.add_check(3.0, 1.0)  # the rules promised a third of what they missed by
    assert bold.error_ratio(2.0) == pytest.approx((60.0 + 4.0) / 22.0)
    assert Population(length=6).error_ratio(2.0) == 2.0  # nothing checked yet: the start
    bold.add_check(math.nan, 1.0)  # a check without a final value is not one
    assert len(bold.checks) == 20


def test_a_search_whose_rules_are_honest_stops_more_than_with_a_fixed_factor() -> None:
    """Flat curves: every overruled stop would have been exact, so the learned factor falls to 1 and
    the same budget pays for more stops than at the fixed 2."""
    stopped = {}
    for calibrate in (False, True):
        population = _population(20, length=6)
        strategy = Strategy("three", fit="a4nn", stops=(_StopAtThree(),), vetoes=(
            ErrorBudget(ErrorBudgetSettings(target=0.5, safety=2.0, calibrate=calibrate)),))
        stopped[calibrate] = sum(_run(strategy, population, [70.0] * 6) for _ in range(30))
        ratio = strategy.vetoes[0].safety(population)
        assert population.expected_error(scale=ratio) / population.finished <= 0.5 + 1e-9
    assert stopped[True] > stopped[False]


def test_the_variable_projection_fit_recovers_a_clean_saturating_curve() -> None:
    from a4nn.engine.families import get_family
    from a4nn.engine.fitting import fit_curve, fit_saturating_exponential

    family = get_family("a-b^(c-x)")
    x = np.arange(12, dtype=float)
    y = family(x, 90.0, 1.4, 8.0)
    fit = fit_saturating_exponential(x, y)
    assert fit.ok and fit.residual < 0.05
    assert fit.predict(family, 25) == pytest.approx(float(family(np.array([25.0]), 90.0, 1.4, 8.0)[0]), abs=0.3)
    # at least as good as the iterative solver from the engine's old start
    trf = fit_curve(family, x, y, initial=np.array([89.0, 1.5, 1.0]), max_nfev=10)
    assert fit.residual <= trf.residual + 1e-6
    # a falling curve is outside the family (c >= 0, so a - y0 >= 1): the fit stays inside the bounds
    falling = fit_saturating_exponential(x, 80.0 - x)
    a, b, c = falling.params
    assert falling.ok and 0.5 <= a <= 200 and b >= 1 and c >= 0
    assert not fit_saturating_exponential(x[:2], y[:2]).ok and not fit_saturating_exponential(x, y * np.nan).ok


def test_a_price_refuses_a_dear_stop_that_saves_few_epochs() -> None:
    """price x target x the share of the epochs saved caps each stop's charge, however much budget is left."""
    population = _population(99)  # room for 100 x 0.5 = 50 points
    veto = ErrorBudget(ErrorBudgetSettings(target=0.5, safety=2.0, price=8.0))

    def ask(error: float, t: int) -> Verdict | None:
        curve = Curve(length=20, proposal=Verdict(VerdictKind.STOP, "hopeless", 60.0, error))
        curve.values = [60.0] * t
        return veto.decide(curve, population)
    assert ask(1.0, 5) is None  # 2 points for 75 % of the epochs: within 8 x 0.5 x 0.75 = 3
    dear = ask(1.0, 17)  # 2 points for 15 %: more than 0.6
    assert dear is not None and dear.kind is VerdictKind.KEEP and dear.rule == "error-budget"
    assert ask(0.25, 17) is None  # 0.5 points for the last 3 epochs is fine
    # without a price only the budget counts
    assert ErrorBudget(ErrorBudgetSettings(target=0.5, safety=2.0)).decide(
        Curve(length=20, values=[60.0] * 17, proposal=Verdict(VerdictKind.STOP, "hopeless", 60.0, 1.0)),
        population) is None


def test_a_stop_is_charged_at_the_factor_of_checks_as_sure_as_it() -> None:
    """Checked stops that expected 4 points were honest, those that expected 0.5 missed by 4 times that:
    over all checks the factor is 1.4, but a stop expecting 0.5 points is charged 3.7 times."""
    population = _population(9, length=20)
    for _ in range(10):
        population.add_check(4.0, 4.0)
    for _ in range(4):
        population.add_check(2.0, 0.5)
    # sums 48 realized / 42 expected, shrunk toward the start of 3 by 2 pseudo-checks at the mean of 3
    assert population.error_ratio(3.0) == pytest.approx((48.0 + 3.0 * 6.0) / (42.0 + 6.0))
    # the four that expected 0.25-1 points: 8 / 2, two pseudo-checks at 0.5
    assert population.error_ratio(3.0, near=0.5) == pytest.approx((8.0 + 3.0 * 1.0) / (2.0 + 1.0))
    assert population.error_ratio(3.0, near=4.0) == pytest.approx((40.0 + 3.0 * 8.0) / (40.0 + 8.0))
    assert population.error_ratio(3.0, near=1.5) == 3.0  # no check expected 0.75-3 points: the start

    def ask(width: float | None) -> Verdict | None:
        veto = ErrorBudget(ErrorBudgetSettings(target=0.5, width=width))
        curve = Curve(length=20, proposal=Verdict(VerdictKind.STOP, "hopeless", 60.0, 0.5))
        curve.values = [60.0] * 5
        return veto.decide(curve, population)
    assert ask(None) is None and ask(2.0) is None  # 10 networks, room for 5 points
    # an earlier stop's 3 points are counted at the factor over all checks (1.375): 4.125 of the 5.5 points
    population.record_fitness(101, 60.0, error=3.0)
    assert ask(None) is None  # (4.125 + 0.5 x 1.375) / 11 = 0.44
    kept = ask(2.0)  # (4.125 + 0.5 x 3.667) / 11 = 0.54 > 0.5
    assert kept is not None and kept.kind is VerdictKind.KEEP and "safety 3.67" in kept.reason
