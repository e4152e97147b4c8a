"""Overlapping generations on Ray: no slot idles at a generation's tail.

Generational NSGA-II waits for the slowest network of a generation before it asks
for the next one, so with W slots up to W-1 of them idle at every tail (the paper's
Ray FIFO showed exactly that). NSGA-II's survival step merges the population with
whatever offspring it is told about, so it allows an *asynchronous generational*
variant: as soon as a slot would go idle and the generation has nothing left to
dispatch, pymoo is told the networks finished so far, the next generation is asked
and its first offspring start on the free slot; the tail networks still training
are told together with the next generation's results. Every network keeps its
original generation number, and lineage edges are recorded as usual.

The pickled state carries the tail still in flight, so a search interrupted here
resumes like the generational one (finished networks are read back from the
database, unfinished ones retrained).
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field

import numpy as np
from pymoo.core.evaluator import Evaluator as PymooEvaluator
from pymoo.core.population import Population
from pymoo.problems.static import StaticProblem

from a4nn.search.distributed import RayEvaluator
from a4nn.search.evaluation import Candidate, CandidateResult
from a4nn.search.nsga import NSGANetSearch, RecordingCrossover, SearchState


@dataclass
class OverlapState(SearchState):
    """The generational state plus the networks asked but not yet told to pymoo."""

    untold: list = field(default_factory=list)  # (individual, generation, index) not yet told


class OverlappingNSGANetSearch(NSGANetSearch):
    """NSGA-Net search that asks the next generation while the current tail still trains."""

    min_tell: int = 2  # never tell pymoo fewer networks than this at once

    def run(self) -> list[CandidateResult]:
        evaluator = self.evaluator
        if not isinstance(evaluator, RayEvaluator):
            raise TypeError("overlapping generations need the RayEvaluator (its submit/collect interface)")
        loaded = self._load_or_start()
        state = loaded if isinstance(loaded, OverlapState) else OverlapState(**vars(loaded))
        np.random.set_state(state.numpy_state)
        random.setstate(state.python_state)
        algorithm = state.algorithm
        crossover: RecordingCrossover = algorithm.mating.crossover
        individuals: dict[int, tuple] = {}  # architecture id -> (individual, candidate)
        finished: dict[int, CandidateResult] = {}
        everything: list[CandidateResult] = []
        current: set[int] = set()  # the newest generation's networks still training

        def launch(entries: list[tuple]) -> None:
            candidates = []
            for individual, generation, index in entries:
                candidate = self._register(generation, index, np.asarray(individual.get("X"), dtype=int), crossover)
                individuals[candidate.architecture_id] = (individual, candidate)
                candidates.append(candidate)
            crossover.children.clear()
            evaluator.submit(candidates)
            current.clear()
            current.update(c.architecture_id for c in candidates if c.architecture_id not in finished)

        def ask_next() -> None:
            population = algorithm.ask()
            launch([(individual, state.generation, i) for i, individual in enumerate(population)])
            state.generation += 1

        def tell() -> None:
            ids = list(finished)
            flops = self._flops(ids)
            population = Population.create(*[individuals[i][0] for i in ids])
            F = np.array([[100.0 - (finished[i].fitness if finished[i].fitness is not None else 0.0), flops[i]]
                          for i in ids])
            PymooEvaluator().eval(StaticProblem(algorithm.problem, F=F), population)
            algorithm.tell(infills=population)
            everything.extend(finished.values())
            if self.on_generation:
                self.on_generation(state.generation - 1, list(finished.values()))
            for i in ids:
                individuals.pop(i)
            finished.clear()
            state.untold = [(ind, c.generation, c.index) for ind, c in individuals.values()]
            state.numpy_state = np.random.get_state()
            state.python_state = random.getstate()
            state.history.append({"generation": state.generation - 1, "evaluated": len(ids), "overlap": True})
            self._save(state)

        if state.untold:  # resume: the tail that was in flight when the search stopped
            launch(state.untold)
        def more() -> bool:  # the same number of generations as the generational loop asks
            return state.generation < self.config.generations and algorithm.has_next()

        if more():
            ask_next()
        while individuals:
            for result in evaluator.collect():
                finished[result.candidate.architecture_id] = result
                current.discard(result.candidate.architecture_id)
            slot_idle = evaluator.busy < evaluator.workers and evaluator.queued == 0
            if not individuals.keys() - finished.keys():  # everything asked so far is done
                tell()
                if more():
                    ask_next()
            elif (slot_idle and len(current) < evaluator.workers and len(finished) >= self.min_tell
                  and more()):
                tell()  # the tail keeps training; it joins the next tell
                ask_next()
        return everything


def make_search(recorder, search_id, config, evaluator, run_dir, on_generation=None) -> NSGANetSearch:
    """The overlapping loop when the evaluator asks for it (``RayEvaluator(overlap=True)``), else the plain one."""
    cls = OverlappingNSGANetSearch if getattr(evaluator, "overlap", False) else NSGANetSearch
    return cls(recorder, search_id, config, evaluator, run_dir, on_generation)


__all__ = ["OverlappingNSGANetSearch", "OverlapState", "make_search", "Candidate"]
