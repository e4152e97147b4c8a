"""Replay: run a strategy over many recorded learning curves, in parallel processes.

This is the batch API of the engine: fits are independent per curve, so a process
pool over curves gives near-linear speed-up without vectorizing scipy's optimizer.
With a shared :class:`~a4nn.engine.population.Population` the curves are no longer
independent, since each finished one teaches the rules deciding the next, so they are
replayed in recorded order in one process, as a search would have met them. A
network's engine records its fitness when it stops, and
:meth:`PredictionEngine.complete` adds the curve of a network that ran to the end, so
curve ``i`` is decided on curves ``0 .. i-1`` only (no look-ahead;
tests/engine/test_engine_contender.py checks it).
"""
from __future__ import annotations

import math
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from a4nn.engine.prediction import PredictionEngine
from a4nn.engine.population import Population


@dataclass(frozen=True)
class ReplayOutcome:
    """What happened to one curve under a strategy."""

    epochs_used: int          # observations consumed before stopping (or all)
    stopped: bool
    converged: bool
    fitness: float            # handed to the NAS: prediction when converged, else last value
    predictions: tuple[float, ...]
    fit_seconds: float
    observe_seconds: tuple[float, ...] = ()  # wall time of each observe() call


def replay_curve(values: Sequence[float], engine_kwargs: dict[str, Any], population: Population | None = None,
                 cost: float | None = None) -> ReplayOutcome:
    """Feed one curve epoch by epoch until the engine stops it.

    With a ``population``, a curve that runs to the end is added to it afterwards; ``cost``
    (the network's MFLOPs) is what a Pareto contender veto ranks it by.
    """
    engine = PredictionEngine(**engine_kwargs, population=population)
    engine.reset(cost=cost)
    fit_seconds = 0.0
    decision = None
    used = 0
    timings = []
    for index, value in enumerate(values):
        start = time.perf_counter()
        decision = engine.observe(index + 1, value)
        timings.append(time.perf_counter() - start)
        fit_seconds += decision.fit_seconds
        used = index + 1
        if decision.stop:
            break
    finite = [float(v) for v in values[:used] if v is not None and math.isfinite(float(v))]
    last = finite[-1] if finite else math.nan
    converged = bool(decision and decision.converged)
    if population is not None and not (decision and decision.stop):
        engine.complete()
    fitness = decision.prediction if converged else last
    return ReplayOutcome(used, bool(decision and decision.stop), converged, float(fitness),
                         tuple(engine.predictions), fit_seconds, tuple(timings))


def _replay_chunk(args: tuple[list[list[float]], dict[str, Any]]) -> list[ReplayOutcome]:
    curves, kwargs = args
    return [replay_curve(curve, kwargs) for curve in curves]


def replay_curves(curves: Sequence[Sequence[float]], engine_kwargs: dict[str, Any] | None = None,
                  processes: int | None = None, progress: bool = False,
                  population: Population | bool | None = None,
                  costs: Sequence[float] | None = None) -> list[ReplayOutcome]:
    """Replay many curves; ``processes`` > 1 spreads them over a process pool (order kept).

    ``population=True`` gives the engines one fresh shared :class:`Population` (length =
    ``e_pred``); a Population instance is used (and extended) as is. Either forces a
    sequential replay in the given order. ``costs`` (one per curve, e.g. MFLOPs) go to the
    engines of such a replay, for the Pareto contender veto.
    """
    kwargs = dict(engine_kwargs or {})
    curves = [list(map(float, curve)) for curve in curves]
    if population is True:
        population = Population(length=int(kwargs.get("e_pred", 25)))
    if isinstance(population, Population):
        iterator = curves
        if progress:
            from a4nn.progress import progress_bar

            iterator = progress_bar(curves, desc="replay with a population", unit="curve")
        cost_of = list(costs) if costs is not None else [None] * len(curves)
        if len(cost_of) != len(curves):
            raise ValueError(f"{len(cost_of)} costs for {len(curves)} curves")
        return [replay_curve(curve, kwargs, population, cost) for curve, cost in zip(iterator, cost_of)]
    processes = processes or min(len(curves), os.cpu_count() or 1)
    if processes <= 1 or len(curves) < 4:
        iterator = curves
        if progress:
            from a4nn.progress import progress_bar

            iterator = progress_bar(curves, desc="replay", unit="curve")
        return [replay_curve(curve, kwargs) for curve in iterator]
    chunks = [curves[i::processes * 4] for i in range(processes * 4)]
    with ProcessPoolExecutor(max_workers=processes) as pool:
        results = list(pool.map(_replay_chunk, [(chunk, kwargs) for chunk in chunks]))
    ordered: list[ReplayOutcome | None] = [None] * len(curves)
    for i, chunk_results in enumerate(results):
        for j, outcome in enumerate(chunk_results):
            ordered[i + j * processes * 4] = outcome
    return [o for o in ordered if o is not None]


def epochs_saved(outcomes: Sequence[ReplayOutcome], budget: int) -> float:
    """Share of the epoch budget (``budget`` per curve) the strategy did not spend."""
    if not outcomes:
        return 0.0
    return 1.0 - sum(o.epochs_used for o in outcomes) / (budget * len(outcomes))


def as_array(outcomes: Sequence[ReplayOutcome]) -> np.ndarray:
    return np.array([o.fitness for o in outcomes], dtype=float)
