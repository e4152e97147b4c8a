"""The NSGA-II ask/tell loop: objectives, exact parent edges, state after every generation, resume, cache.

Training is replaced by a deterministic evaluator implementing the ``Evaluator``
protocol (fitness from the genome's bits), so these tests check the loop itself.
"""
from __future__ import annotations

import pickle
from pathlib import Path
from typing import Sequence

import numpy as np
import pytest
from sqlalchemy import func, select

from a4nn.lineage.models import Architecture, Genome, GenomeParent
from a4nn.search.evaluation import Candidate, CandidateResult, TrainSettings
from a4nn.search.nsga import (FAILED_MFLOPS, STATE_FILE, NSGANetSearch, RecordingCrossover, ResumeError,
                              SearchConfig, make_algorithm)

CONFIG = SearchConfig(pop=6, offspring=6, generations=3, n_nodes=4, channels=4, input_shape=(1, 1, 16, 16),
                      n_classes=2, seed=3)


class Crash(Exception):
    """Stands in for the process dying mid-generation."""


class BitsEvaluator:
    """Fitness = 50 + 2 x (number of ones); finishes rows through the Recorder like a trainer would."""

    settings = TrainSettings(epochs=2, channels=4)

    def __init__(self, recorder, crash_after: int | None = None, fail_index: int | None = None):
        self.recorder = recorder
        self.crash_after = crash_after
        self.fail_index = fail_index
        self.trained: list[int] = []

    def evaluate(self, candidates: Sequence[Candidate]) -> list[CandidateResult]:
        results = []
        for candidate in candidates:
            row_status = self.recorder.architecture_status(candidate.architecture_id)
            if row_status != "running":
                with self.recorder.database.session() as session:
                    row = session.get(Architecture, candidate.architecture_id)
                    results.append(CandidateResult(candidate, row.status, row.fitness, row.final_acc, None, 2,
                                                   False, 0.0, row.error, row.flops))
                continue
            if self.crash_after is not None and len(self.trained) >= self.crash_after:
                raise Crash()
            self.trained.append(candidate.architecture_id)
            if candidate.index == self.fail_index and candidate.generation == 0:
                self.recorder.finish_architecture(candidate.architecture_id, "failed", error="boom")
                results.append(CandidateResult(candidate, "failed", None, None, None, 0, False, 0.0, "boom"))
                continue
            fitness = 50.0 + 2.0 * sum(candidate.bits)
            self.recorder.log_epoch(candidate.architecture_id, 1, val_acc=fitness)
            self.recorder.finish_architecture(candidate.architecture_id, "completed", final_acc=fitness,
                                              fitness=fitness, epochs_trained=1)
            results.append(CandidateResult(candidate, "completed", fitness, fitness, None, 1, False, 0.0))
        return results

    def close(self) -> None:
        pass


def new_search(recorder, name: str) -> int:
    return recorder.start_search(name, "nsga-net-macro", config={})


def genomes_by_slot(database, search_id: int) -> dict[tuple[int, int], str]:
    with database.session() as session:
        rows = session.execute(select(Architecture.generation, Architecture.index, Genome.bits)
                               .join(Genome, Genome.id == Architecture.genome_id)
                               .where(Architecture.search_id == search_id))
        return {(r.generation, r.index): r.bits for r in rows}


def test_runs_all_generations_and_pickles_state_each_time(recorder, tmp_path: Path) -> None:
    search_id = new_search(recorder, "full")
    seen: list[int] = []
    evaluator = BitsEvaluator(recorder)
    search = NSGANetSearch(recorder, search_id, CONFIG, evaluator, tmp_path,
                           on_generation=lambda g, results: seen.append(g))
    saves: list[int] = []
    original = search._save
    search._save = lambda state: (saves.append(state.generation), original(state))[1]
    results = search.run()
    assert seen == [0, 1, 2]
    assert len(results) == 6 + 6 + 6
    assert len(evaluator.trained) + search.cached == 18
    # saved after every ask (pending) and after every tell
    assert saves == [0, 1, 1, 2, 2, 3]
    with open(tmp_path / STATE_FILE, "rb") as handle:
        state = pickle.load(handle)
    assert state.generation == 3 and state.pending is None and not state.algorithm.has_next()
    # the better half survives: the final population is better than the random start
    fitness = -state.algorithm.pop.get("F")[:, 0] + 100
    assert fitness.mean() > np.mean([r.fitness for r in results[:6]])


def test_parent_edges_are_exact(recorder, tmp_path: Path) -> None:
    search_id = new_search(recorder, "edges")
    NSGANetSearch(recorder, search_id, CONFIG, BitsEvaluator(recorder), tmp_path).run()
    slots = genomes_by_slot(recorder.database, search_id)
    with recorder.database.session() as session:
        edges = session.execute(select(GenomeParent.child_id, GenomeParent.parent_id, GenomeParent.operator,
                                       Genome.bits).join(Genome, Genome.id == GenomeParent.parent_id)
                                .where(GenomeParent.search_id == search_id)).all()
        bits_of = dict(session.execute(select(Genome.id, Genome.bits)).all())
    children = {bits_of[e.child_id] for e in edges}
    later = {bits for (generation, _), bits in slots.items() if generation > 0}
    assert later <= children, "every offspring has its parents recorded"
    earlier = set(slots.values())
    for edge in edges:
        assert edge.bits in earlier, "a parent is a genome that was evaluated in this search"
        assert edge.operator in ("crossover", "mutation")
    by_child: dict[str, list] = {}
    for edge in edges:
        by_child.setdefault(bits_of[edge.child_id], []).append(edge)
    for child, its in by_child.items():
        if its[0].operator == "crossover":
            a, b = its[0].bits, its[1].bits
            # two-point crossover + bit-flip: all but the few mutated bits come from a parent
            mismatch = sum(c not in (x, y) for c, x, y in zip(child, a, b))
            assert len(its) == 2 and mismatch <= 3
        else:
            assert len(its) == 1 and its[0].bits != child


def test_recording_operators_match_every_offspring_exactly() -> None:
    from pymoo.core.evaluator import Evaluator
    from pymoo.problems.static import StaticProblem

    algorithm = make_algorithm(8, 8, 21, seed=0, generations=3)
    population = algorithm.ask()
    F = np.column_stack([np.arange(8.0), np.arange(8.0)[::-1]])
    Evaluator().eval(StaticProblem(algorithm.problem, F=F), population)
    algorithm.tell(infills=population)
    crossover: RecordingCrossover = algorithm.mating.crossover
    crossover.children.clear()
    offspring = algorithm.ask()
    parents = {tuple(x.astype(int)) for x in population.get("X")}
    for bits in offspring.get("X").astype(int):
        child = crossover.lookup(bits)
        assert child is not None and np.array_equal(child.mutated, bits)
        assert {tuple(child.parent_a), tuple(child.parent_b)} <= parents


def test_failed_network_is_dominated(recorder, tmp_path: Path) -> None:
    search_id = new_search(recorder, "failed")
    search = NSGANetSearch(recorder, search_id, CONFIG, BitsEvaluator(recorder, fail_index=2), tmp_path)
    results = search.run()
    failed = [r for r in results if r.status == "failed"]
    assert len(failed) == 1 and NSGANetSearch._objectives(failed[0]) == [100.0, FAILED_MFLOPS]
    assert len(results) == 18  # the search went on


def test_crash_and_resume_is_identical_to_an_uninterrupted_run(recorder, tmp_path: Path) -> None:
    reference_id = new_search(recorder, "reference")
    NSGANetSearch(recorder, reference_id, CONFIG, BitsEvaluator(recorder), tmp_path / "ref").run()

    search_id = new_search(recorder, "crashy")
    first = BitsEvaluator(recorder, crash_after=9)  # dies in the middle of generation 1
    with pytest.raises(Crash):
        NSGANetSearch(recorder, search_id, CONFIG, first, tmp_path / "run").run()
    second = BitsEvaluator(recorder)
    search = NSGANetSearch(recorder, search_id, CONFIG, second, tmp_path / "run")
    search.run()
    assert not set(first.trained) & set(second.trained), "a finished network was trained again"
    assert genomes_by_slot(recorder.database, search_id) == genomes_by_slot(recorder.database, reference_id)
    with recorder.database.session() as session:
        statuses = session.scalars(select(Architecture.status).where(Architecture.search_id == search_id)).all()
    assert set(statuses) == {"completed"}


def test_a_genome_trained_earlier_in_the_search_is_not_trained_again(recorder, tmp_path: Path) -> None:
    search_id = new_search(recorder, "cache")
    evaluator = BitsEvaluator(recorder)
    search = NSGANetSearch(recorder, search_id, SearchConfig(**{**CONFIG.__dict__, "generations": 1}), evaluator,
                           tmp_path)
    search.run()
    state = search._load_or_start()
    state.generation = 5
    old = np.array([[int(c) for c in bits] for bits in genomes_by_slot(recorder.database, search_id).values()][:2])
    fresh = np.ones((1, 21), dtype=int)
    before = len(evaluator.trained)
    results = search._evaluate_generation(state, np.vstack([old, fresh]))
    assert [r.candidate.generation for r in results] == [0, 0, 5]
    assert len(evaluator.trained) == before + 1 and search.cached == 2
    with recorder.database.session() as session:
        assert session.scalar(select(func.count()).select_from(Architecture)
                              .where(Architecture.search_id == search_id, Architecture.generation == 5)) == 1


def test_state_of_another_search_is_refused(recorder, tmp_path: Path) -> None:
    one = new_search(recorder, "one")
    NSGANetSearch(recorder, one, CONFIG, BitsEvaluator(recorder), tmp_path).run()
    other = new_search(recorder, "other")
    other_config = SearchConfig(**{**CONFIG.__dict__, "seed": 99, "generations": 1})
    NSGANetSearch(recorder, other, other_config, BitsEvaluator(recorder), tmp_path / "o").run()
    # point "other" at a folder whose state is mid-generation for a different genome set
    (tmp_path / "o" / STATE_FILE).unlink()
    with open(tmp_path / STATE_FILE, "rb") as handle:
        state = pickle.load(handle)
    state.generation, state.pending = 0, state.algorithm.pop
    with open(tmp_path / "o" / STATE_FILE, "wb") as handle:
        pickle.dump(state, handle)
    with pytest.raises(ResumeError, match="does not belong"):
        NSGANetSearch(recorder, other, other_config, BitsEvaluator(recorder), tmp_path / "o").run()
