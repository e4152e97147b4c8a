"""NSGA-Net macro search on pymoo 0.6, driven by ask/tell so our evaluator trains each generation.

Objectives are ``[100 - fitness, MFLOPs]`` (both minimized). After every ``tell`` the
algorithm, its random state and the generation counter are pickled into the run
folder; the architectures table doubles as the trained-genome cache. A search killed
at any point resumes with ``a4nn-commons search --resume ID``: the interrupted
generation is asked again from the restored random state, finished networks are read
back from the database and only unfinished ones are retrained (their partial trail is
cleared first), so no row is lost or duplicated.

Parents: pymoo does not hand parents to ``ask``'s caller, so the crossover is wrapped
to remember which parent pair produced each child; every offspring is then matched
to the crossover child it came from (identical, or nearest in Hamming distance after
bit-flip mutation) and both edges go to ``genome_parents``.
"""
from __future__ import annotations

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

from a4nn.lineage.recorder import Recorder
from a4nn.search.encoding import ENCODING, genome_length
from a4nn.search.evaluation import Candidate, CandidateResult, Evaluator
from a4nn.search.flops import count_mflops, count_parameters
from a4nn.search.network import build_network, describe_network

STATE_FILE = "nsga_state.pkl"


class RecordingCrossover(TwoPointCrossover):
    """Two-point crossover that remembers (child bits, parent A bits, parent B bits)."""

    def __init__(self) -> None:
        super().__init__()
        self.children: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

    def do(self, problem, pop, parents=None, *args, **kwargs):  # noqa: ANN001 - pymoo signature
        offspring = super().do(problem, pop, parents, *args, **kwargs)
        # pymoo's Mating hands over the selected matings as rows of individuals
        matings = [pop[mating] for mating in parents] if parents is not None else pop
        parent_bits = [[np.asarray(individual.get("X"), dtype=int) for individual in mating] for mating in matings]
        for k, child in enumerate(offspring.get("X")):
            a, b = parent_bits[k % len(parent_bits)][:2]
            self.children.append((np.asarray(child, dtype=int), a, b))
        return offspring


@dataclass
class SearchState:
    """What is pickled after every generation."""

    algorithm: Any
    generation: int
    numpy_state: Any
    python_state: Any
    history: list[dict] = field(default_factory=list)


def make_algorithm(pop_size: int, n_offsprings: int, n_bits: int, seed: int, generations: int) -> NSGA2:
    algorithm = NSGA2(pop_size=pop_size, n_offsprings=n_offsprings, sampling=BinaryRandomSampling(),
                      crossover=RecordingCrossover(), mutation=BitflipMutation(), eliminate_duplicates=True)
    problem = Problem(n_var=n_bits, n_obj=2, xl=0, xu=1, vtype=bool)
    algorithm.setup(problem, termination=("n_gen", generations), seed=seed)
    return algorithm


def _parents_of(bits: np.ndarray, crossover: RecordingCrossover) -> tuple[np.ndarray, np.ndarray, str] | None:
    if not crossover.children:
        return None
    distances = [int(np.sum(child != bits)) for child, _, _ in crossover.children]
    best = int(np.argmin(distances))
    _, a, b = crossover.children[best]
    return a, b, "crossover" if distances[best] == 0 else "crossover+mutation"


@dataclass
class SearchConfig:
    pop: int
    offspring: int
    generations: int
    n_nodes: int
    channels: int
    input_shape: tuple[int, int, int, int]
    n_classes: int
    seed: int


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
        self.genome_cache: dict[str, tuple[float, float]] = {}

    # ---------------------------------------------------------------- state
    def _state_path(self) -> Path:
        return self.run_dir / STATE_FILE

    def _save(self, state: SearchState) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        temporary = self._state_path().with_suffix(".tmp")
        with open(temporary, "wb") as handle:
            pickle.dump(state, handle)
        temporary.replace(self._state_path())  # atomic: a kill never leaves half a pickle

    def _load_or_start(self) -> SearchState:
        if self._state_path().exists():
            with open(self._state_path(), "rb") as handle:
                state: SearchState = pickle.load(handle)
            return state
        algorithm = make_algorithm(self.config.pop, self.config.offspring, genome_length(self.config.n_nodes),
                                   self.config.seed, self.config.generations)
        return SearchState(algorithm, 0, np.random.get_state(), random.getstate())

    # ------------------------------------------------------------ one network
    def _register(self, generation: int, index: int, bits: np.ndarray, crossover: RecordingCrossover) -> Candidate:
        genome_id = self.recorder.register_genome(bits.tolist(), ENCODING)
        if generation > 0:
            parents = _parents_of(bits, crossover)
            if parents is not None:
                a, b, operator = parents
                for parent in {tuple(a), tuple(b)}:
                    parent_id = self.recorder.register_genome(list(parent), ENCODING)
                    if parent_id != genome_id:
                        self.recorder.add_genome_parent(genome_id, parent_id, operator, self.search_id)
        model = build_network(bits, n_nodes=self.config.n_nodes, channels=self.config.channels,
                              in_channels=self.config.input_shape[1], n_classes=self.config.n_classes)
        architecture_id = self.recorder.start_architecture(
            self.search_id, index=index, generation=generation, genome_id=genome_id,
            arch=describe_network(bits, self.config.n_nodes), train_params=getattr(self.evaluator, "settings").to_dict(),
            flops=count_mflops(model, self.config.input_shape), n_params=count_parameters(model))
        return Candidate(self.search_id, generation, index, tuple(int(b) for b in bits), genome_id, architecture_id)

    # -------------------------------------------------------------------- run
    def run(self) -> list[CandidateResult]:
        state = self._load_or_start()
        np.random.set_state(state.numpy_state)
        random.setstate(state.python_state)
        algorithm = state.algorithm
        everything: list[CandidateResult] = []
        while algorithm.has_next():
            population = algorithm.ask()
            bits = population.get("X").astype(int)
            crossover: RecordingCrossover = algorithm.mating.crossover
            candidates = [self._register(state.generation, i, b, crossover) for i, b in enumerate(bits)]
            crossover.children.clear()
            results = self.evaluator.evaluate(candidates)
            flops = self._flops([c.architecture_id for c in candidates])
            F = np.array([[100.0 - (r.fitness if r.fitness is not None else 0.0), flops[r.candidate.architecture_id]]
                          for r in results])
            PymooEvaluator().eval(StaticProblem(algorithm.problem, F=F), population)
            algorithm.tell(infills=population)
            everything.extend(results)
            if self.on_generation:
                self.on_generation(state.generation, results)
            state.generation += 1
            state.numpy_state = np.random.get_state()
            state.python_state = random.getstate()
            state.history.append({"generation": state.generation - 1, "evaluated": len(results)})
            self._save(state)
        return everything

    def _flops(self, architecture_ids: list[int]) -> dict[int, float]:
        from sqlalchemy import select

        from a4nn.lineage.models import Architecture

        with self.recorder.database.session() as session:
            rows = session.execute(select(Architecture.id, Architecture.flops).where(Architecture.id.in_(architecture_ids)))
            return {row.id: float(row.flops or 0.0) for row in rows}
