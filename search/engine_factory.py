"""One prediction engine per network, all engines of a search sharing one population.

The default ``a4nn`` strategy learns from the networks of the same search that
finished (:class:`~a4nn.engine.population.Population`): the factory owns that
population, hands it to every engine it makes, and the supervisor reports each
complete curve back with ``engine.complete()``. On ``--resume`` the population is
refilled from the database (:func:`population_from_database`: the complete curves and
the fitness of the networks the engine stopped, with their MFLOPs), so a resumed
search decides as the uninterrupted one would have.

When a Ray worker writes its own records (``RayEvaluator(direct_writes=True)``), the
engine runs in the worker on the snapshot of the population the factory carried when
the task was dispatched, and the driver calls :meth:`EngineFactory.learn` with the
finished network's record from the database, so the next dispatch carries it.

The strategy is built once per factory from what the search knows about its data
(:func:`a4nn.engine.strategies.a4nn`: the validation split's class shares for the
never-learns level, its size for the error budget), the same default that
``engine replay`` runs.
"""
from __future__ import annotations

from typing import Any, Iterable

from a4nn.engine.population import Population
from a4nn.engine.strategies import Strategy, build
from a4nn.lineage.queries import Population as RecordedPopulation, resume_population

#: finished networks the calibrated rules need before they may stop one (engine default: 10)
DEFAULT_PRIOR_CURVES = 10


class EngineFactory:
    """A fresh prediction engine per network (picklable, so Ray workers can receive it).

    ``chance_band`` is the accuracy range of the constant predictors on the validation
    split (e.g. 45-55 % for a 54/66 split): the never-learns rule is centred on its
    middle with a tolerance covering the whole band plus 2 points, so a network that
    only ever predicts one class is recognised even when the classes are not balanced.
    ``n_val``: the validation-set size (the prior's tolerance); ``n_classes``: used where no
    chance band is known; ``error_target``: the a4nn error budget (mean expected fitness
    error, points; default :data:`a4nn.engine.strategies.DEFAULT_ERROR_TARGET`).
    """

    def __init__(self, strategy: str | Strategy, epochs: int, r: float, chance_band: tuple[float, float] | None = None,
                 prior_curves: int = DEFAULT_PRIOR_CURVES, n_val: int | None = None, n_classes: int = 2,
                 error_target: float | None = None):
        self.epochs, self.r, self.chance_band, self.n_val = epochs, r, chance_band, n_val
        if isinstance(strategy, Strategy):
            self.strategy = strategy
        else:
            target = {} if error_target is None else {"target": error_target}
            self.strategy = build(strategy, n=3, r=r, c_min=3, n_classes=n_classes, chance_band=chance_band,
                                  n_val=n_val, min_curves=prior_curves, **target)
        self.population = Population(length=epochs) if self.strategy.uses_population else None

    @property
    def name(self) -> str:
        return self.strategy.name

    def __call__(self) -> Any:
        if self.strategy.fit is None:
            return None
        from a4nn.engine import PredictionEngine

        return PredictionEngine(strategy=self.strategy, e_pred=self.epochs, r=self.r, population=self.population)

    def teach(self, population: RecordedPopulation) -> int:
        """Give the population what an earlier run of the search knew (resume); returns how many curves it took.

        ``population`` (from :func:`population_from_database`): the complete curves and the
        fitness of the networks the engine stopped early, each with its MFLOPs (None where
        unknown).
        """
        if self.population is None:
            return 0
        taken = sum(bool(self.population.add_curve(curve, cost=cost))
                    for curve, cost in zip(population.curves, population.curve_costs))
        for fitness, cost in zip(population.stopped_fitness, population.stopped_costs):
            self.population.add_fitness(fitness, cost=cost)
        return taken

    def learn(self, database: Any, architecture_id: int, checks: Iterable[tuple[float, float]] = ()) -> bool:
        """Add one finished network, as its worker recorded it, to the driver's population.

        For direct writes: the worker's engine decided on a copy, so the driver reads the
        network's record back (a complete curve, or the fitness of a stopped network);
        ``checks`` are what the worker's copy learned of the rules' expected errors while it
        trained (:meth:`Population.add_check`), which the lineage does not keep.
        Returns whether the population changed.
        """
        if self.population is None:
            return False
        for realized, expected in checks:
            self.population.add_check(realized, expected)
        recorded = population_from_database(database, None, self.epochs, architecture_id=architecture_id)
        return self.teach(recorded) > 0 or bool(recorded.stopped_fitness)


def chance_band(data: Any) -> tuple[float, float] | None:
    """Accuracies (%) of always predicting the rarest / the commonest validation class."""
    import torch

    n_classes = int(getattr(data, "n_classes", 0) or 0)
    counts = torch.bincount(data.val_y, minlength=max(n_classes, 2)).double()
    if counts.sum() == 0:
        return None
    fractions = 100.0 * counts / counts.sum()
    return float(fractions.min()), float(fractions.max())


def population_from_database(database: Any, search_id: int | None, epochs: int,
                             architecture_id: int | None = None) -> RecordedPopulation:
    """The search's complete curves and stopped networks' fitness (:func:`resume_population`)."""
    return resume_population(database, search_id, epochs, architecture_id=architecture_id)

