"""One prediction engine per network, all engines of a search sharing one population prior.

The default ``a4nn`` strategy learns from the networks of the same search that trained
to the end (:class:`~a4nn.engine.prior.CurvePrior`): the factory owns that prior, hands
it to every engine it makes, and the supervisor reports each complete curve back with
``engine.complete()``. On ``--resume`` the prior is refilled from the database
(:func:`prior_curves_from_database`, and the fitness of the networks the engine
stopped, :func:`stopped_fitness_from_database`, which the contender rule ranks
against), so a resumed search decides as the uninterrupted one would have.
"""
from __future__ import annotations

import inspect
from typing import Any, Iterable, Sequence

from a4nn.engine.prior import CurvePrior

#: complete curves the prior needs before it may stop a network (engine default: 10)
DEFAULT_PRIOR_CURVES = 10
#: the engine's c_min (points before the first fit); the never-learns guard is c_min + n epochs
ENGINE_C_MIN = 3


def search_knobs(epochs: int, n_val: int | None = None) -> dict[str, Any]:
    """Engine knobs that follow from a search's epoch budget and validation-set size.

    Measured on the quick preset's standalone curves (simulated XFEL, 120 validation
    images, 20 epochs):

    * ``n``: the a4nn engine drops a network at chance level after ``c_min + n`` epochs
      there, and its population prior starts then. Networks routinely sit at exactly
      50 % for 5-8 epochs before they learn (one reached 84 % after 7 such epochs, and
      the engine's 6-epoch guard dropped it), so the guard is half the budget (``n`` never
      below the engine's 3).
    * ``plateau_r``: validation accuracy moves in steps of one image, ``100 / n_val``
      points (0.83 on 120 images). With the engine's 0.25 a plateau needs ``plateau_n``
      *identical* values, which a converged network on a small validation set rarely
      gives; the radius is one step, so values within one image of their median count.
    * ``prior_tolerance``: the prior is trusted when its held-out error is at most this
      many points; the engine's 0.8 is less than one image here, which no regression
      reaches before the last epoch. Two steps, never below the engine's 0.8.

    On a large validation set (the paper preset: 400 images, 0.25-point steps) the two
    radii are the engine's own defaults.
    """
    knobs: dict[str, Any] = {"n": max(3, epochs // 2 - ENGINE_C_MIN)}
    if n_val:
        step = 100.0 / n_val
        knobs["plateau_r"] = max(0.25, step * (1 + 1e-9))  # a value exactly one step away counts
        knobs["prior_tolerance"] = max(0.8, 2 * step)
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
            extra.update({k: v for k, v in search_knobs(self.epochs, self.n_val).items() if k in accepted})
        return PredictionEngine(strategy=self.strategy, e_pred=self.epochs, r=self.r, **extra)

    def teach(self, curves: Iterable[Sequence[float]], stopped_fitness: Iterable[float] = ()) -> int:
        """Give the prior what an earlier run of the search knew (resume); returns how many curves it took.

        ``curves``: the complete curves; ``stopped_fitness``: the fitness of the networks
        the engine stopped early (the population the contender rule ranks a network in).
        """
        if self.prior is None:
            return 0
        taken = sum(bool(self.prior.add_curve(curve)) for curve in curves)
        for fitness in stopped_fitness:
            self.prior.add_fitness(fitness)
        return taken


def chance_band(data: Any) -> tuple[float, float] | None:
    """Accuracies (%) of always predicting the rarest / the commonest validation class (binary data only)."""
    import torch

    counts = torch.bincount(data.val_y, minlength=2).double()
    if len(counts) != 2 or counts.sum() == 0:
        return None
    fractions = 100.0 * counts / counts.sum()
    return float(fractions.min()), float(fractions.max())


def prior_curves_from_database(database: Any, search_id: int, epochs: int) -> list[list[float]]:
    """Validation curves of the search's networks that trained the full ``epochs``, in training order."""
    from sqlalchemy import select

    from a4nn.lineage.models import Architecture, Epoch

    with database.session() as session:
        ids = session.scalars(select(Architecture.id).where(
            Architecture.search_id == search_id, Architecture.status == "completed",
            Architecture.epochs_trained >= epochs).order_by(Architecture.id)).all()
        curves = []
        for architecture_id in ids:
            values = session.scalars(select(Epoch.val_acc).where(Epoch.architecture_id == architecture_id)
                                     .order_by(Epoch.epoch)).all()
            curves.append([float("nan") if v is None else float(v) for v in values])
    return curves


def stopped_fitness_from_database(database: Any, search_id: int) -> list[float]:
    """The fitness the NAS saw for the search's networks the engine stopped early, in training order."""
    from sqlalchemy import select

    from a4nn.lineage.models import Architecture

    with database.session() as session:
        return [float(v) for v in session.scalars(select(Architecture.fitness).where(
            Architecture.search_id == search_id, Architecture.terminated_early.is_(True),
            Architecture.fitness.is_not(None)).order_by(Architecture.id)).all()]
