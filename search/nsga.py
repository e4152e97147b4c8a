"""NSGA-Net macro search on pymoo 0.6, driven by ask/tell so our evaluator trains each generation.

Objectives are ``[100 - fitness, MFLOPs]`` (both minimized); a failed network gets
``[100, FAILED_MFLOPS]`` so it can never sit on the Pareto front.

Resume after ``kill -9``
    The state file (``nsga_state.pkl`` in the run folder, path stored in
    ``searches.config``) is written atomically twice per generation: right after
    ``ask`` (the algorithm with its advanced random generator plus the asked
    offspring, ``pending``) and right after ``tell``. A resumed search therefore
    evaluates exactly the offspring it had asked for. The architectures table is
    the trained-genome cache: a network whose row is finished is read back, never
    retrained; an unfinished one has its partial trail cleared and is trained from
    scratch, so no epoch row is lost or duplicated. A genome that was already
    trained earlier in the same search (pymoo only removes duplicates against the
    current population) is not trained again: its recorded result is reused.

Parents
    pymoo does not hand parents to ``ask``'s caller. :class:`RecordingCrossover`
    remembers, for every child it makes, the two parent genomes (pymoo orders the
    children offspring-major, so child ``k`` comes from mating ``k mod n_matings``),
    and :class:`RecordingMutation` - which pymoo's Mating applies to exactly that
    batch, in order - adds the child's bits after mutation. Every offspring is then
    looked up *exactly* by its final bits. Edges: both parents with ``crossover``
    when the crossover changed the genome (mutation may follow), the one parent it
    copies with ``mutation`` when the crossover was skipped or produced a copy.
"""
from __future__ import annotations

import logging
import pickle
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
from pymoo.algorithms.moo.nsga2 import NSGA2
from pymoo.core.evaluator import Evaluator as PymooEvaluator
from pymoo.core.problem import Problem
from pymoo.operators.crossover.pntx import TwoPointCrossover
from pymoo.operators.mutation.bitflip import BitflipMutation
from pymoo.operators.sampling.rnd import BinaryRandomSampling
from pymoo.problems.static import StaticProblem
from sqlalchemy import select

from a4nn.errors import A4nnError
from a4nn.lineage.models import Architecture
from a4nn.lineage.recorder import Recorder
from a4nn.lineage.status import TRAINED, ArchitectureStatus
from a4nn.search.encoding import ENCODING, genome_length
from a4nn.search.evaluation import Candidate, CandidateResult, Evaluator

log = logging.getLogger(__name__)

STATE_FILE = "nsga_state.pkl"
FAILED_MFLOPS = 1e9  # objective of a failed network: dominated by every trained one


class ResumeError(A4nnError):
    """The saved search state does not match the database (different folder, edited rows)."""


@dataclass
class Offspring:
    """One child made by the crossover: its bits before/after mutation and its parents."""

    crossed: np.ndarray
    parent_a: np.ndarray
    parent_b: np.ndarray
    mutated: np.ndarray | None = None

    def edges(self) -> list[tuple[np.ndarray, str]]:
        """(parent bits, operator) pairs for genome_parents."""
        for parent in (self.parent_a, self.parent_b):
            if np.array_equal(self.crossed, parent):  # crossover skipped or produced a copy
                return [(parent, "mutation")]
        return [(self.parent_a, "crossover"), (self.parent_b, "crossover")]


class RecordingCrossover(TwoPointCrossover):
    """Two-point crossover that remembers every child's parents (see the module docstring)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.children: list[Offspring] = []

    def do(self, problem, pop, parents=None, *args, **kwargs):  # noqa: ANN001 - pymoo signature
        offspring = super().do(problem, pop, parents, *args, **kwargs)
        matings = [pop[mating] for mating in parents] if parents is not None else pop
        parent_bits = [[np.asarray(individual.get("X"), dtype=int) for individual in mating] for mating in matings]
        for k, child in enumerate(offspring.get("X")):
            a, b = parent_bits[k % len(parent_bits)][:2]
            self.children.append(Offspring(np.asarray(child, dtype=int).copy(), a, b))
        return offspring

    def lookup(self, bits: np.ndarray) -> Offspring | None:
        """The child whose final bits are ``bits`` (newest first), else the nearest one."""
        bits = np.asarray(bits, dtype=int)
        for child in reversed(self.children):
            final = child.mutated if child.mutated is not None else child.crossed
            if np.array_equal(final, bits):
                return child
        if not self.children:
            return None
        # not expected with pymoo's Mating; kept so a custom pipeline still gets edges
        return min(self.children, key=lambda c: int(np.sum(c.crossed != bits)))


class RecordingMutation(BitflipMutation):
    """Bit-flip mutation that writes each child's mutated bits back into the crossover's record."""

    def __init__(self, crossover: RecordingCrossover, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.crossover = crossover

    def do(self, problem, pop, *args, **kwargs):  # noqa: ANN001 - pymoo signature
        mutated = super().do(problem, pop, *args, **kwargs)
        batch = self.crossover.children[-len(mutated):] if len(mutated) else []
        if len(batch) == len(mutated):
            for child, bits in zip(batch, mutated.get("X")):
                child.mutated = np.asarray(bits, dtype=int).copy()
        return mutated


class RecordingPolynomialMutation(RecordingMutation):
    """NSGA-Net's mutation (pymoo 0.3.0 ``PolynomialMutation(eta=3, var_type=int)``), recorded like the bit flip.

    See :func:`a4nn.search.recipes.polynomial_mutation_int`; the per-variable probability is
    ``1 / n_var`` as in the original.
    """

    def __init__(self, crossover: RecordingCrossover, eta: float = 3.0, **kwargs: Any) -> None:
        super().__init__(crossover, **kwargs)
        self.eta = float(eta)

    def _do(self, problem, X, random_state=None, **kwargs):  # noqa: ANN001 - pymoo signature
        from a4nn.search.recipes import polynomial_mutation_int

        Y = polynomial_mutation_int(np.asarray(X).astype(int), problem.xl, problem.xu, self.eta, 1.0 / problem.n_var,
                                    random_state)
        return Y.astype(np.asarray(X).dtype)


@dataclass
class SearchState:
    """What is pickled: the algorithm (its random generator included) and where the loop stands."""

    algorithm: Any
    generation: int
    numpy_state: Any
    python_state: Any
    history: list[dict] = field(default_factory=list)
    pending: Any = None                           # offspring asked but not yet told (a pymoo Population)
    pending_edges: dict = field(default_factory=dict)  # index -> [(parent bits, operator)]


def make_algorithm(pop_size: int, n_offsprings: int, n_bits: int, seed: int, generations: int,
                   recipe: str | None = None) -> NSGA2:
    """NSGA-II with the recipe's binary operators (:mod:`a4nn.search.recipes`), seeded.

    Offspring are always de-duplicated against each other and the population (pymoo
    0.3.0 did so too, ``eliminate_duplicates=True`` in ``nsganet()``); the first
    population only where the recipe says so.
    """
    from pymoo.core.duplicate import NoDuplicateElimination

    from a4nn.search.recipes import get_recipe

    chosen = get_recipe(recipe)
    crossover = RecordingCrossover(prob=chosen.crossover_prob)
    mutation = (RecordingPolynomialMutation(crossover, eta=chosen.mutation_eta) if chosen.mutation == "polynomial"
                else RecordingMutation(crossover))
    algorithm = NSGA2(pop_size=pop_size, n_offsprings=n_offsprings, sampling=BinaryRandomSampling(),
                      crossover=crossover, mutation=mutation, eliminate_duplicates=True)
    if not chosen.dedup_initial:
        algorithm.initialization.eliminate_duplicates = NoDuplicateElimination()
    problem = Problem(n_var=n_bits, n_obj=2, xl=0, xu=1, vtype=bool)
    algorithm.setup(problem, termination=("n_gen", generations), seed=seed)
    return algorithm


@dataclass
class SearchConfig:
    """Shape of the search (stored in searches.config by the CLI)."""

    pop: int
    offspring: int
    generations: int
    n_nodes: int
    channels: int
    input_shape: tuple[int, int, int, int]
    n_classes: int
    seed: int
    recipe: str = "a4nn"   # a4nn.search.recipes name: operators, duplicate handling, FLOPs rounding


class NSGANetSearch:
    """Runs (or resumes) one search; the evaluator decides where training happens."""

    def __init__(self, recorder: Recorder, search_id: int, config: SearchConfig, evaluator: Evaluator, run_dir: Path,
                 on_generation: Callable[[int, list[CandidateResult]], None] | None = None):
        self.recorder = recorder
        self.search_id = search_id
        self.config = config
        self.evaluator = evaluator
        self.run_dir = Path(run_dir)
        self.on_generation = on_generation
        self.cached = 0  # offspring answered from the trained-genome cache

    # ---------------------------------------------------------------- state
    @property
    def state_path(self) -> Path:
        return self.run_dir / STATE_FILE

    def _save(self, state: SearchState) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        temporary = self.state_path.with_suffix(".tmp")
        with open(temporary, "wb") as handle:
            pickle.dump(state, handle)
        temporary.replace(self.state_path)  # atomic: a kill never leaves half a pickle

    def _load_or_start(self) -> SearchState:
        if self.state_path.exists():
            try:
                with open(self.state_path, "rb") as handle:
                    return pickle.load(handle)
            except (pickle.UnpicklingError, EOFError, AttributeError, ImportError) as exc:
                raise ResumeError(f"{self.state_path}: cannot read the saved search state ({exc})") from exc
        algorithm = make_algorithm(self.config.pop, self.config.offspring, genome_length(self.config.n_nodes),
                                   self.config.seed, self.config.generations, self.config.recipe)
        return SearchState(algorithm, 0, np.random.get_state(), random.getstate())

    # ------------------------------------------------------------ one network
    def _edges(self, bits: np.ndarray, crossover: RecordingCrossover) -> list[tuple[np.ndarray, str]]:
        child = crossover.lookup(bits)
        return child.edges() if child is not None else []

    def _record_edges(self, genome_id: int, edges: list[tuple[Any, str]]) -> None:
        for parent, operator in edges:
            parent_id = self.recorder.register_genome([int(b) for b in parent], ENCODING)
            if parent_id != genome_id:
                self.recorder.add_genome_parent(genome_id, parent_id, operator, self.search_id)

    def _register(self, generation: int, index: int, bits: np.ndarray, crossover: RecordingCrossover | None,
                  edges: list[tuple[Any, str]] | None = None) -> Candidate:
        """Genome, parent edges and architecture row (created once, reused on resume)."""
        from a4nn.search.flops import count_mflops, count_parameters
        from a4nn.search.network import build_network, describe_network
        from a4nn.search.recipes import get_recipe, round_flops

        bits = np.asarray(bits, dtype=int)
        genome_id = self.recorder.register_genome(bits.tolist(), ENCODING)
        if generation > 0:
            if edges is None and crossover is not None:
                edges = self._edges(bits, crossover)
            self._record_edges(genome_id, edges or [])
        try:
            model = build_network(bits, n_nodes=self.config.n_nodes, channels=self.config.channels,
                                  in_channels=self.config.input_shape[1], n_classes=self.config.n_classes)
            flops, n_params = count_mflops(model, self.config.input_shape), count_parameters(model)
        except Exception as exc:  # noqa: BLE001 - the evaluator records the failure with its error
            log.warning("genome %s cannot be built: %s", bits.tolist(), exc)
            flops, n_params = None, None
        settings = getattr(self.evaluator, "settings", None)
        arch = describe_network(bits, self.config.n_nodes)
        recipe = get_recipe(self.config.recipe)
        if recipe.flops_decimals is not None and flops is not None:
            arch["flops_nsganet"] = round_flops(flops, recipe)  # the objective this recipe's NAS sees
        architecture_id = self.recorder.start_architecture(
            self.search_id, index=index, generation=generation, genome_id=genome_id,
            arch=arch,
            train_params=settings.to_dict() if settings is not None else {},
            flops=flops, n_params=n_params)
        self._check_row(architecture_id, genome_id, generation, index)
        return Candidate(self.search_id, generation, index, tuple(int(b) for b in bits), genome_id, architecture_id,
                         flops)

    def _check_row(self, architecture_id: int, genome_id: int, generation: int, index: int) -> None:
        with self.recorder.database.session() as session:
            stored = session.scalar(select(Architecture.genome_id).where(Architecture.id == architecture_id))
        if stored != genome_id:
            raise ResumeError(f"search {self.search_id}: generation {generation} index {index} holds genome {stored} "
                              f"in the database but the saved state asks for genome {genome_id}; the run folder "
                              f"{self.run_dir} does not belong to this search")

    def _trained_genomes(self) -> dict[int, CandidateResult]:
        """genome id -> result of its finished (not failed) architecture in this search."""
        with self.recorder.database.session() as session:
            rows = session.scalars(select(Architecture).where(Architecture.search_id == self.search_id,
                                                              Architecture.status.in_(TRAINED))
                                   .order_by(Architecture.id)).all()
            cache: dict[int, CandidateResult] = {}
            for row in rows:
                candidate = Candidate(self.search_id, row.generation, row.index, (), row.genome_id, row.id)
                cache.setdefault(row.genome_id, CandidateResult(
                    candidate, row.status, row.fitness, row.final_acc, row.predicted_acc, int(row.epochs_trained or 0),
                    bool(row.terminated_early), row.wall_seconds or 0.0, None, row.flops))
            return cache

    # -------------------------------------------------------------------- run
    def run(self) -> list[CandidateResult]:
        """Ask, train, tell until the generation budget is spent; returns this call's results."""
        state = self._load_or_start()
        np.random.set_state(state.numpy_state)
        random.setstate(state.python_state)
        algorithm = state.algorithm
        crossover: RecordingCrossover = algorithm.mating.crossover
        everything: list[CandidateResult] = []
        while state.pending is not None or algorithm.has_next():
            if state.pending is None:
                crossover.children.clear()
                population = algorithm.ask()
                bits = population.get("X").astype(int)
                state.pending = population
                state.pending_edges = {i: [(p.tolist(), op) for p, op in self._edges(b, crossover)]
                                       for i, b in enumerate(bits)} if state.generation > 0 else {}
                crossover.children.clear()
                self._save(state)  # the asked offspring survive a kill before they are told
            population = state.pending
            bits = population.get("X").astype(int)
            results = self._evaluate_generation(state, bits)
            F = np.array([self._objectives(result) for result in results], dtype=float)
            PymooEvaluator().eval(StaticProblem(algorithm.problem, F=F), population)
            algorithm.tell(infills=population)
            everything.extend(results)
            state.history.append({"generation": state.generation, "evaluated": len(results),
                                  "trained": sum(not _is_cached(r, state.generation) for r in results)})
            generation = state.generation
            state.generation += 1
            state.pending, state.pending_edges = None, {}
            state.numpy_state = np.random.get_state()
            state.python_state = random.getstate()
            self._save(state)
            if self.on_generation:
                self.on_generation(generation, results)
        return everything

    def _evaluate_generation(self, state: SearchState, bits: np.ndarray) -> list[CandidateResult]:
        from a4nn.search.recipes import get_recipe, round_flops

        recipe = get_recipe(self.config.recipe)
        # NSGA-Net trains a genome met before again (recipes module); ours reuses its result
        cache = self._trained_genomes() if recipe.reuse_trained else {}
        results: list[CandidateResult | None] = [None] * len(bits)
        candidates: list[Candidate] = []
        for index, genome in enumerate(bits):
            genome_id = self.recorder.register_genome(genome.tolist(), ENCODING)
            hit = cache.get(genome_id)
            if hit is not None and hit.candidate.generation != state.generation:
                # trained earlier in this search: reuse (record the lineage edge, no new architecture)
                self._record_edges(genome_id, state.pending_edges.get(index, []))
                results[index] = hit
                self.cached += 1
                continue
            candidates.append(self._register(state.generation, index, genome, None,
                                             edges=state.pending_edges.get(index, [])))
        for candidate, result in zip(candidates, self.evaluator.evaluate(candidates)):
            if result.flops is None:
                result.flops = self._flops([candidate.architecture_id]).get(candidate.architecture_id)
            result.flops = round_flops(result.flops, recipe)
            results[candidate.index] = result
        return [r for r in results if r is not None]

    @staticmethod
    def _objectives(result: CandidateResult) -> list[float]:
        if result.status == ArchitectureStatus.FAILED or result.fitness is None or result.flops is None:
            return [100.0, FAILED_MFLOPS]
        return [100.0 - float(result.fitness), float(result.flops)]

    def _flops(self, architecture_ids: list[int]) -> dict[int, float]:
        with self.recorder.database.session() as session:
            rows = session.execute(select(Architecture.id, Architecture.flops)
                                   .where(Architecture.id.in_(architecture_ids)))
            return {row.id: (float(row.flops) if row.flops is not None else None) for row in rows}


def _is_cached(result: CandidateResult, generation: int) -> bool:
    return result.candidate.generation != generation
