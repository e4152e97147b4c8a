"""One prediction engine per network, all engines of a search sharing one population prior.

The default ``a4nn`` strategy learns from the networks of the same search that trained
to the end (:class:`~a4nn.engine.prior.CurvePrior`): the factory owns that prior, hands
it to every engine it makes, and the supervisor reports each complete curve back with
``engine.complete()``. On ``--resume`` the prior is refilled from the database
(:func:`population_from_database`: the complete curves and the fitness of the
networks the engine stopped, which the contender rule ranks against, with their
MFLOPs), so a resumed search decides as the uninterrupted one would have.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any

from a4nn.engine.prior import CurvePrior

#: complete curves the prior needs before it may stop a network (engine default: 10)
DEFAULT_PRIOR_CURVES = 10


def search_knobs(n_val: int | None = None) -> dict[str, Any]:
    """Engine knobs for a search: the contender rule in both objectives, radii from the validation-set size.

    Measured on the quick preset's standalone curves (simulated XFEL, 120 validation
    images, 20 epochs, precise BatchNorm; replayed offline, then checked by
    ``benchmarks/search_ab.py``):

    * ``pareto_contenders`` with ``contender_k = 1``: the NAS minimises MFLOPs beside the
      error, so the networks whose fitness must be exact are those that could join the
      Pareto front, not the 10 most accurate (10 of a 24-network search is 40 % of it,
      and with 10 the engine saved 4-5 % of the epochs there). A network that one cheaper
      finished network beats even at its optimistic accuracy may stop.
    * ``contender_z = 1.0``: the optimistic value a contender is judged by is the prior's
      estimate plus one held-out MAE (the engine's 1.5 is for a top-10 by accuracy alone).
      With k = 1 a margin of 1.5 MAE (2-2.5 points until epoch 16 here) kept nearly every
      network cheaper than the front's members training. Replayed over the nine standalone
      quick-preset searches of seeds 0-2, 1.0 saved 41.3 / 43.8 / 45.8 % of the epochs on
      the low / medium / high beams instead of 39.1 / 37.6 / 39.8 %, and the front chosen
      from the same networks kept at least 0.987 of the true front's hypervolume (0.991
      with 1.5). Real searches (``benchmarks/search_ab_seeds.py``, seeds 0-6) saved
      39.5 / 42.6 / 43.2 % (37.8 / 34.3 / 33.3 % with 1.5, seeds 0-2). The price shows on
      the published 100-network curves: the front chosen there matches the true one less
      well (Jaccard 0.43 / 0.70 / 0.56 against 0.64 / 0.90 / 0.50, ``engine_replay.py``).
    * ``hopeless_tolerance``: such a non-contender stops on a supported prior estimate
      whose held-out error is up to twice ``prior_tolerance``: its fitness only has to
      keep it off the front, and the contender margin already adds ``contender_z`` times
      that error. On these curves the prior's held-out error stays near the spread of the
      final accuracies (about 2 points on the low beam) until epoch 14, so a network that
      needs the fine estimate waits for epoch 14-16, while a hopeless one stops at 6-8.
    * ``plateau_r``: validation accuracy moves in steps of one image, ``100 / n_val``
      points (0.83 on 120 images). With the engine's 0.25 a plateau needs ``plateau_n``
      *identical* values, which a converged network on a small validation set rarely
      gives; the radius is one step, so values within one image of their median count.
    * ``prior_tolerance``: the prior is trusted when its held-out error is at most this
      many points; the engine's 0.8 is less than one image here, which no regression
      reaches before the last epoch. Two steps, never below the engine's 0.8.

    The never-learns guard keeps the engine's ``c_min + n`` = 6 epochs: with precise
    BatchNorm no network sits at chance level for long (without it, running statistics
    that lagged the weights kept networks at exactly 50 % for 5-8 epochs, and the guard
    had to span half the budget).

    On a large validation set (the paper preset: 400 images, 0.25-point steps) the two
    radii are the engine's own defaults.
    """
    tolerance = 0.8
    knobs: dict[str, Any] = {"pareto_contenders": True, "contender_k": 1, "contender_z": 1.0}
    if n_val:
        step = 100.0 / n_val
        knobs["plateau_r"] = max(0.25, step * (1 + 1e-9))  # a value exactly one step away counts
        tolerance = max(tolerance, 2 * step)
        knobs["prior_tolerance"] = tolerance
    knobs["hopeless_tolerance"] = 2 * tolerance
    return knobs


class EngineFactory:
    """A fresh prediction engine per network (picklable, so Ray workers can receive it).

    ``chance_band`` is the accuracy range of the constant predictors on the validation
    split (e.g. 45-55 % for a 54/66 split): the engine's never-learns rule is centred on
    its middle with a tolerance covering the whole band plus 2 points, so a network that
    only ever predicts one class is recognised even when the classes are not exactly
    balanced.
    """

    def __init__(self, strategy: str, epochs: int, r: float, chance_band: tuple[float, float] | None = None,
                 prior_curves: int = DEFAULT_PRIOR_CURVES, n_val: int | None = None):
        self.strategy, self.epochs, self.r, self.chance_band = strategy, epochs, r, chance_band
        self.n_val = n_val
        self.prior = CurvePrior(length=epochs, min_curves=prior_curves) if strategy == "a4nn" else None

    def __call__(self) -> Any:
        if self.strategy == "none":
            return None
        from a4nn.engine import PredictionEngine

        extra: dict[str, Any] = {}
        if self.chance_band is not None:
            low, high = self.chance_band
            extra = {"chance_level": (low + high) / 2, "chance_tolerance": (high - low) / 2 + 2.0}
        if self.prior is not None:
            extra["prior"] = self.prior
        if self.strategy == "a4nn":
            accepted = inspect.signature(PredictionEngine).parameters
            extra.update({k: v for k, v in search_knobs(self.n_val).items() if k in accepted})
        return PredictionEngine(strategy=self.strategy, e_pred=self.epochs, r=self.r, **extra)

    def teach(self, population: Population) -> int:
        """Give the prior what an earlier run of the search knew (resume); returns how many curves it took.

        ``population`` (from :func:`population_from_database`): the complete curves and the
        fitness of the networks the engine stopped early (the population the contender rule
        ranks a network in), each with its MFLOPs (None where unknown).
        """
        if self.prior is None:
            return 0
        taken = sum(bool(self.prior.add_curve(curve, cost=cost))
                    for curve, cost in zip(population.curves, population.curve_costs))
        for fitness, cost in zip(population.stopped_fitness, population.stopped_costs):
            self.prior.add_fitness(fitness, cost=cost)
        return taken


def chance_band(data: Any) -> tuple[float, float] | None:
    """Accuracies (%) of always predicting the rarest / the commonest validation class (binary data only)."""
    import torch

    counts = torch.bincount(data.val_y, minlength=2).double()
    if len(counts) != 2 or counts.sum() == 0:
        return None
    fractions = 100.0 * counts / counts.sum()
    return float(fractions.min()), float(fractions.max())


@dataclass
class Population:
    """What a search's engines knew, read back for ``--resume``, in training order.

    ``curves`` / ``curve_costs``: validation curves and MFLOPs of the networks that trained
    the full budget; ``stopped_fitness`` / ``stopped_costs``: fitness the NAS saw and MFLOPs
    of the networks the engine stopped early (the population the contender rule ranks in).
    """

    curves: list[list[float]]
    curve_costs: list[float | None]
    stopped_fitness: list[float]
    stopped_costs: list[float | None]


def population_from_database(database: Any, search_id: int, epochs: int) -> Population:
    """The search's complete curves and stopped networks' fitness, each with the network's MFLOPs."""
    from sqlalchemy import select

    from a4nn.lineage.models import Architecture, Epoch

    def cost(value: Any) -> float | None:
        return None if value is None else float(value)

    with database.session() as session:
        complete = session.execute(select(Architecture.id, Architecture.flops).where(
            Architecture.search_id == search_id, Architecture.status == "completed",
            Architecture.epochs_trained >= epochs).order_by(Architecture.id)).all()
        curves = []
        for row in complete:
            values = session.scalars(select(Epoch.val_acc).where(Epoch.architecture_id == row.id)
                                     .order_by(Epoch.epoch)).all()
            curves.append([float("nan") if v is None else float(v) for v in values])
        stopped = session.execute(select(Architecture.fitness, Architecture.flops).where(
            Architecture.search_id == search_id, Architecture.terminated_early.is_(True),
            Architecture.fitness.is_not(None)).order_by(Architecture.id)).all()
    return Population(curves, [cost(row.flops) for row in complete],
                      [float(row.fitness) for row in stopped], [cost(row.flops) for row in stopped])

