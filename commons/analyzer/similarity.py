"""How alike two architectures are: Hamming distance, longest common run of bits, graph edit distance.

* **Hamming** counts connection bits that differ, position by position — cheap, the
  ranking key of :func:`similar_models`.
* **Longest common run** is the longest stretch of connection bits the two genomes share
  *at the same positions* (a conserved block of wiring, e.g. a whole phase), so it ignores
  chance matches of a bit pattern in unrelated places. :func:`longest_common_substring`
  is the alignment-free variant.
* **Graph edit distance** compares the decoded, repaired networks (what is trained), so
  genomes that differ only in bits the repair rules erase are at distance 0. Exact GED is
  exponential; networkx stops at ``timeout`` seconds and returns the best edit path found
  so far, flagged ``exact=False``.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Sequence

import networkx as nx
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from a4nn.commons.analyzer.architecture import genome_bits, phase_graph
from a4nn.commons.analyzer.data import AnalysisData
from a4nn.commons.analyzer.plotting import empty, new_figure
from a4nn.errors import A4nnError
from a4nn.search.encoding import DEFAULT_NODES, decode_genome, is_empty_phase

Genome = str | Sequence[int] | Sequence[Sequence[int]]


def _pair(a: Genome, b: Genome) -> tuple[np.ndarray, np.ndarray]:
    x, y = genome_bits(a), genome_bits(b)
    if x.size != y.size:
        raise A4nnError(f"genomes of different lengths ({x.size} and {y.size} bits) cannot be compared bit by bit")
    return x, y


def hamming(a: Genome, b: Genome) -> int:
    """Number of connection bits that differ."""
    x, y = _pair(a, b)
    return int(np.count_nonzero(x != y))


def common_runs(a: Genome, b: Genome) -> list[tuple[int, int]]:
    """Every maximal run of positions where both genomes agree, as (start, length)."""
    x, y = _pair(a, b)
    runs, start = [], None
    for position, same in enumerate(np.append(x == y, False)):
        if same and start is None:
            start = position
        elif not same and start is not None:
            runs.append((start, position - start))
            start = None
    return runs


def longest_common_run(a: Genome, b: Genome) -> tuple[int, int]:
    """(length, start) of the longest stretch of identical bits at identical positions; (0, -1) if none."""
    runs = common_runs(a, b)
    if not runs:
        return 0, -1
    start, length = max(runs, key=lambda run: (run[1], -run[0]))
    return length, start


def longest_common_substring(a: Genome, b: Genome) -> tuple[int, int, int]:
    """(length, start in a, start in b) of the longest bit string occurring in both, anywhere."""
    x, y = genome_bits(a), genome_bits(b)
    best = (0, -1, -1)
    previous = np.zeros(len(y) + 1, dtype=int)
    for i in range(1, len(x) + 1):
        current = np.zeros(len(y) + 1, dtype=int)
        for j in range(1, len(y) + 1):
            if x[i - 1] == y[j - 1]:
                current[j] = previous[j - 1] + 1
                if current[j] > best[0]:
                    best = (int(current[j]), int(i - current[j]), int(j - current[j]))
        previous = current
    return best


@dataclass(frozen=True)
class EditDistance:
    """Graph edit distance and whether it is proven minimal (False when the timeout cut the search)."""

    distance: float
    exact: bool
    seconds: float


def _same_role(first: dict, second: dict) -> bool:
    return first.get("role") == second.get("role")


def _same_kind(first: dict, second: dict) -> bool:
    return first.get("skip", False) == second.get("skip", False)


def phase_graphs(genome: Genome, n_nodes: int = DEFAULT_NODES) -> list[nx.DiGraph]:
    """One repaired graph per phase position; a removed (empty) phase is an empty graph."""
    return [nx.DiGraph() if is_empty_phase(connectivity) else phase_graph(connectivity, 0)
            for connectivity in decode_genome(genome_bits(genome), n_nodes)]


def graph_edit_distance(a: Genome, b: Genome, timeout: float = 2.0) -> EditDistance:
    """Edit distance between the decoded networks: the sum over phases of their graph edit distances.

    Phases are compared position by position (each has its own channel width, so a
    node of phase 1 is never "the same" as a node of phase 2); node roles and skip flags
    must match, all edits cost 1. Per-phase graphs have at most ``n+2`` nodes, so the
    exact answer usually comes in milliseconds; ``timeout`` (seconds, shared by the
    phases) bounds the rest and ``exact=False`` says the search was cut short.
    """
    _pair(a, b)
    start = time.perf_counter()
    total, exact = 0.0, True
    for first, second in zip(phase_graphs(a), phase_graphs(b)):
        if nx.is_isomorphic(first, second, node_match=_same_role, edge_match=_same_kind):
            continue
        left = max(timeout - (time.perf_counter() - start), 0.01)
        began = time.perf_counter()
        distance = nx.graph_edit_distance(first, second, node_match=_same_role, edge_match=_same_kind, timeout=left)
        if time.perf_counter() - began >= left:
            exact = False
        if distance is None:  # nothing found in time: delete one graph, insert the other
            distance = len(first) + first.number_of_edges() + len(second) + second.number_of_edges()
        total += float(distance)
    return EditDistance(total, exact, time.perf_counter() - start)


def similar_models(data: AnalysisData, model_id: int, top: int = 10, ged: bool = True,
                   timeout: float = 1.0) -> pd.DataFrame:
    """The ``top`` models whose genomes are closest to ``model_id``'s (Hamming, then longest common run).

    Models without a genome (or of another length) are skipped; graph edit distance is
    computed for the returned rows only, each bounded by ``timeout`` seconds.
    """
    target = data.model(model_id)
    if not isinstance(target.genome_bits, str) or not target.genome_bits:
        raise A4nnError(f"model {model_id} has no genome; similarity needs NSGA-Net genomes")
    reference = genome_bits(target.genome_bits)
    rows = []
    for model in data.models.itertuples():
        bits = model.genome_bits
        if model.model_id == target.model_id or not isinstance(bits, str) or len(bits) != reference.size:
            continue
        run, start = longest_common_run(reference, bits)
        rows.append({"model_id": int(model.model_id), "search": model.search, "generation": model.generation,
                     "index": model.index, "final_acc": model.final_acc, "flops": model.flops, "fate": model.fate,
                     "hamming": hamming(reference, bits), "common_run": run, "run_start": start, "genome": bits})
    columns = ["model_id", "search", "generation", "index", "final_acc", "flops", "fate", "hamming", "common_run",
               "run_start", "genome"]
    frame = pd.DataFrame(rows, columns=columns)
    if frame.empty:
        return frame.assign(ged=pd.Series(dtype=float), ged_exact=pd.Series(dtype=bool))
    frame = frame.sort_values(["hamming", "common_run", "final_acc", "model_id"],
                              ascending=[True, False, False, True], na_position="last").head(top).reset_index(drop=True)
    if ged:
        distances = [graph_edit_distance(reference, bits, timeout) for bits in frame["genome"]]
        frame["ged"] = [d.distance for d in distances]
        frame["ged_exact"] = [d.exact for d in distances]
    return frame


def matching_figure(data: AnalysisData, top: int = 10, accuracy: str = "fitness_seen") -> Figure:
    """Bits of the ``top`` best networks, with the positions they all share highlighted.

    "Best" ranks by the fitness the search saw (``fitness_seen``), as every front does;
    ``accuracy="final_acc"`` ranks by the last measured accuracy instead.

    Left: one row per network (most accurate first), bits as dark/light cells, phase
    boundaries as lines, and the positions where every shown network agrees outlined in
    red (the conserved wiring). Right: pairwise longest common run, in bits.
    """
    models = data.models[data.models["genome_bits"].map(lambda b: isinstance(b, str) and len(b) > 0)]
    models = models[models[accuracy].notna()].sort_values(accuracy, ascending=False)
    if len(models):
        length = models["genome_bits"].map(len).mode().iloc[0]
        models = models[models["genome_bits"].map(len) == length]
    models = models.drop_duplicates("genome_bits").head(top)
    figure = new_figure(11.0, 0.45 * max(len(models), 4) + 2.2)
    if len(models) < 2:
        return empty(figure, "fewer than two networks with genomes and accuracies")
    matrix = np.array([genome_bits(b) for b in models["genome_bits"]])
    left, right = figure.subplots(1, 2, width_ratios=[2.2, 1])
    left.imshow(matrix, cmap="Greys", vmin=-0.3, vmax=1.3, aspect="auto")
    agree = (matrix == matrix[0]).all(axis=0)
    for position in np.flatnonzero(agree):
        left.add_patch(_outline(position, len(models)))
    per_phase = 7 if matrix.shape[1] % 7 == 0 else matrix.shape[1]
    for boundary in range(per_phase, matrix.shape[1], per_phase):
        left.axvline(boundary - 0.5, color="tab:blue", linewidth=2)
    labels = [f"#{int(m.model_id)} {getattr(m, accuracy):.2f}%" for m in models.itertuples()]
    left.set_yticks(range(len(models)), labels, fontsize=8)
    left.set_ylabel({"fitness_seen": "network id · fitness seen by the NAS",
                     "final_acc": "network id · final validation accuracy"}.get(accuracy, f"network id · {accuracy}"))
    left.set_xticks(range(matrix.shape[1]), [str(i) for i in range(matrix.shape[1])], fontsize=7)
    left.set_xlabel("connection bit (phases separated in blue; red: shared by all shown)")
    left.set_title(f"genomes of the {len(models)} most accurate networks ({int(agree.sum())} bits shared)")
    runs = np.array([[longest_common_run(a, b)[0] for b in matrix] for a in matrix])
    image = right.imshow(runs, cmap="viridis", vmin=0, vmax=matrix.shape[1])
    for i in range(len(runs)):
        for j in range(len(runs)):
            right.text(j, i, str(runs[i, j]), ha="center", va="center", fontsize=7,
                       color="white" if runs[i, j] < matrix.shape[1] * 0.6 else "black")
    ids = [f"#{int(m)}" for m in models["model_id"]]
    right.set_xticks(range(len(ids)), ids, rotation=90, fontsize=7)
    right.set_yticks(range(len(ids)), ids, fontsize=7)
    right.set_title("longest common run (bits)")
    colorbar = figure.colorbar(image, ax=right, shrink=0.8)
    colorbar.set_label("longest common run (bits)")
    from matplotlib.patches import Patch  # the bit cells need a key too: which shade is a connection

    key = [Patch(facecolor=left.images[0].cmap(left.images[0].norm(value)), edgecolor="black", label=label)
           for value, label in ((1, "bit 1 (connection)"), (0, "bit 0 (no connection)"))]
    key.append(Patch(fill=False, edgecolor="tab:red", linewidth=1.5, label="shared by all shown"))
    left.legend(handles=key, fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.09), ncols=3, frameon=False)
    return figure


def _outline(position: int, rows: int):
    from matplotlib.patches import Rectangle

    return Rectangle((position - 0.5, -0.5), 1, rows, fill=False, edgecolor="tab:red", linewidth=1.5)
