"""How good is a strategy's fitness for the NAS: savings, error, ranking, selected Pareto front."""
from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy.stats import spearmanr

from a4nn.lineage.pareto import pareto_mask


def pareto_front(accuracy: np.ndarray, flops: np.ndarray) -> set[int]:
    """Indices of networks no other network beats in both accuracy (max) and FLOPs (min).

    The one definition of the front (:func:`a4nn.lineage.pareto.pareto_front`): points
    with a non-finite accuracy or cost are on no front, identical points are all kept.
    """
    return {i for i, on_front in enumerate(pareto_mask(accuracy, flops)) if on_front}


def top_k_recall_with_ties(fitness: Sequence[float], truth: Sequence[float], top_k: int = 10) -> float:
    """Share of the ``top_k`` networks the fitness selects whose true value reaches the true k-th best.

    On the medium and high beams dozens of networks end at 99.97-100.00 %, so the strict
    top-10 (``argsort``) is decided by ties and 0.01-point noise; this variant counts a
    selected network as a hit when it is as good as the true 10th best.
    """
    fitness = np.nan_to_num(np.asarray(fitness, dtype=float), nan=-np.inf)
    truth = np.asarray(truth, dtype=float)
    top_k = min(top_k, len(truth))
    if top_k == 0:
        return float("nan")
    threshold = np.sort(truth)[-top_k]
    selected = np.argsort(-fitness, kind="stable")[:top_k]
    return float(np.mean(truth[selected] >= threshold))


def strategy_report(fitness: Sequence[float], true_final: Sequence[float], epochs_used: Sequence[int], budget: int,
                    flops: Sequence[float] | None = None, top_k: int = 10) -> dict:
    fitness = np.asarray(fitness, dtype=float)
    truth = np.asarray(true_final, dtype=float)
    valid = np.isfinite(fitness) & np.isfinite(truth)
    k = min(top_k, len(truth))
    report = {
        "networks": int(len(truth)),
        "epochs_used": int(np.sum(epochs_used)),
        "epochs_saved": float(1 - np.sum(epochs_used) / (budget * len(truth))),
        "mae": float(np.mean(np.abs(fitness[valid] - truth[valid]))),
        "spearman": float(spearmanr(fitness[valid], truth[valid]).statistic),
        f"top{top_k}_recall": float(len(set(np.argsort(-truth)[:k]) & set(np.argsort(-np.nan_to_num(fitness, nan=-1))[:k])) / max(k, 1)),
        f"top{top_k}_recall_ties": top_k_recall_with_ties(fitness, truth, top_k),
    }
    if flops is not None:
        flops = np.asarray(flops, dtype=float)
        true_front = pareto_front(truth, flops)
        selected = pareto_front(np.nan_to_num(fitness, nan=-np.inf), flops)
        report["pareto"] = {
            "true_front": sorted(true_front), "selected_front": sorted(selected),
            "jaccard": float(len(true_front & selected) / len(true_front | selected)) if true_front | selected else 1.0,
        }
    return report
