"""Search recipes: how a search breeds and trains networks, as one named, recorded object.

Two recipes exist:

``a4nn`` (the default): the choices this project made. Each deviates from NSGA-Net for a reason:

* mutation: pymoo's bit flip at 1/n per bit. On 0/1 integers the original's polynomial
  mutation flips far fewer bits (see :func:`polynomial_mutation_int`), so few offspring differ
  from a parent; a small search (the quick preset's 40 networks) needs the stronger variation
  to explore at all.
* crossover probability 0.9 (pymoo's NSGA-II default): a tenth of the offspring are pure
  mutants of one parent, which keeps good parents' genomes intact.
* a genome trained earlier in the search is not trained again: its stored result is reused.
  The original retrains it (a different seed of the same network), which spends epochs on
  a network already measured; the engine's point is to save epochs.
* initial population de-duplicated: a repeated random genome is a wasted training.
* batch size from the preset (paper preset 64): the simulated sets are small (1600
  training images), so 64 gives more optimizer steps per epoch than 128.
* data reshuffled every epoch (seeded): the standard SGD practice; without it every epoch
  sees the same batches in the same order.
* input ``log1p`` then standardised on the training split (``a4nn.search.data.loaders``):
  diffraction intensities span orders of magnitude, and raw floats put most pixels near 0.
* precise BatchNorm (``TrainSettings.precise_bn``): smooth validation curves the engine
  can predict.
* the fitness of a network the engine stopped is the engine's prediction (of its final
  accuracy): the NAS then ranks it by what it would have reached, the point of A4NN.

``nsga-net``: the original, to reproduce the published search. Checked against the sources:

* operators: ``nsganet()`` in ``nsganet/models/ian_whale_nsganet.py`` of
  github:TauferLab/A4NN_workflow (``search/nsganet.py`` in github:ianwhale/nsga-net):
  ``PointCrossover(n_points=2)`` (pymoo 0.3.0 applies it to every mating, no probability)
  and ``PolynomialMutation(eta=3, var_type=int)`` whose ``prob`` defaults to
  ``1 / problem.n_var`` (``pymoo/operators/mutation/polynomial_mutation.py`` in the fork);
  ``RandomSampling(var_type=int)`` for the first population.
* duplicates: ``search/evolution_search.py`` (ianwhale/nsga-net) trains every individual
  pymoo asks for, with no memory of earlier generations; pymoo 0.3.0's ``RandomSampling``
  does not de-duplicate the first population.
* training: the fork's ``nsganet/train_scripts/train_classification_search.py``
  (``search/train_search.py`` upstream): ``batch_size = 128``; loaders from
  ``nsganet/misc/utils.py`` ``return_dataloaders`` without shuffling, over the fork's
  ``datasets/pd_dataset.py`` (raw float TIFFs, no normalisation); plain ``model.eval()``
  validation (running BatchNorm statistics). A retrained repeat starts from a fresh random
  initialisation there; here its weights are seeded per trained network
  (``TrainSettings.init_per_network``: the architecture id enters the seed), so the repeat
  differs as the original's does and a resumed search still reproduces it.
* stopped networks: the same script returns ``valid_acc``, the last measured validation
  accuracy, whether or not PENGUIN converged and stopped the training.
* FLOPs: the same script stores ``np.round(compute_average_flops_cost() / 1e6, 4)``; the
  recipe uses that rounded value as the objective and stores it as ``flops_nsganet`` in
  the architecture JSON (the ``flops`` column stays exact).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from a4nn.errors import A4nnError


class RecipeError(A4nnError, ValueError):
    """An unknown recipe name."""


@dataclass(frozen=True)
class Recipe:
    """Operators, duplicate handling and training choices of a search (stored in ``searches.config``)."""

    name: str
    mutation: str                 # "bitflip" (1/n per bit) | "polynomial" (pymoo 0.3.0, eta 3, on integers)
    mutation_eta: float
    crossover_prob: float         # two-point crossover probability per mating
    reuse_trained: bool           # a genome trained earlier in the search gets its stored result
    dedup_initial: bool           # the first population has no repeated genome
    batch_size: int | None        # None: the preset's
    shuffle: bool                 # reshuffle the training split every epoch
    input_transform: str          # "log1p-standardise" | "raw"
    precise_bn: bool              # TrainSettings.precise_bn
    stopped_fitness: str          # fitness of a stopped network: "prediction" | "last" (last measured accuracy)
    flops_decimals: int | None    # MFLOPs objective rounded to this many decimals (None: exact)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


RECIPES: dict[str, Recipe] = {
    "a4nn": Recipe("a4nn", mutation="bitflip", mutation_eta=0.0, crossover_prob=0.9, reuse_trained=True,
                   dedup_initial=True, batch_size=None, shuffle=True, input_transform="log1p-standardise",
                   precise_bn=True, stopped_fitness="prediction", flops_decimals=None),
    "nsga-net": Recipe("nsga-net", mutation="polynomial", mutation_eta=3.0, crossover_prob=1.0, reuse_trained=False,
                       dedup_initial=False, batch_size=128, shuffle=False, input_transform="raw",
                       precise_bn=False, stopped_fitness="last", flops_decimals=4),
}
DEFAULT_RECIPE = "a4nn"


def get_recipe(name: str | None) -> Recipe:
    """The named recipe (``None``: the default; a search stored before recipes existed used it)."""
    name = name or DEFAULT_RECIPE
    if name not in RECIPES:
        raise RecipeError(f"unknown recipe {name!r}; use one of {', '.join(RECIPES)}")
    return RECIPES[name]


def polynomial_mutation_int(X: np.ndarray, xl: np.ndarray, xu: np.ndarray, eta: float, prob: float,
                            random_state: np.random.Generator) -> np.ndarray:
    """pymoo 0.3.0's ``PolynomialMutation(var_type=int)``, step for step (the fork's copy, see the module).

    Each variable mutates with ``prob``; its bounds are widened by 0.5 so that rounding
    back lands on an integer in range. With eta 3 the polynomial perturbation is usually
    small, so a 0/1 variable chosen for mutation rounds back to itself most of the time:
    that is why the per-bit flip rate is far below ``prob``.
    """
    X = np.asarray(X, dtype=float)
    Y = X.copy()
    do = random_state.random(X.shape) < prob
    lo = np.repeat(np.asarray(xl, dtype=float)[None, :], len(X), axis=0)[do] - 0.5
    hi = np.repeat(np.asarray(xu, dtype=float)[None, :], len(X), axis=0)[do] + (0.5 - 1e-16)
    x = X[do]
    delta1, delta2 = (x - lo) / (hi - lo), (hi - x) / (hi - lo)
    power = 1.0 / (eta + 1.0)
    rand = random_state.random(x.shape)
    low_side = rand <= 0.5
    deltaq = np.zeros(x.shape)
    value = 2.0 * rand + (1.0 - 2.0 * rand) * np.power(1.0 - delta1, eta + 1.0)
    deltaq[low_side] = (np.power(value, power) - 1.0)[low_side]
    value = 2.0 * (1.0 - rand) + 2.0 * (rand - 0.5) * np.power(1.0 - delta2, eta + 1.0)
    deltaq[~low_side] = (1.0 - np.power(value, power))[~low_side]
    mutated = np.clip(x + deltaq * (hi - lo), lo, hi)
    Y[do] = mutated
    Y = np.rint(Y).astype(int)
    return np.clip(Y, np.asarray(xl, dtype=int), np.asarray(xu, dtype=int))  # the fork's OutOfBoundsRepair


def round_flops(mflops: float | None, recipe: Recipe) -> float | None:
    """MFLOPs as the recipe reports them (NSGA-Net: 4 decimals)."""
    if mflops is None or recipe.flops_decimals is None:
        return mflops
    return round(float(mflops), recipe.flops_decimals)
