"""Numbers behind the figures: epochs saved, stop epochs, share converged, wall time, Pareto fronts.

Kept apart from the plotting so tests (and the report's tables) check the numbers
directly (tests/commons/test_analyzer_icpp23.py checks the epochs saved on the published
ICPP'23 logs). Epoch budgets, the Pareto front and "best" are defined once, in
:mod:`a4nn.lineage.queries`.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from a4nn.commons.analyzer.data import AnalysisData
from a4nn.lineage.pareto import pareto_mask as lineage_pareto_mask


def epochs_saved(data: AnalysisData) -> pd.DataFrame:
    """Per search: ``1 − Σ epochs_trained / (networks × budget)``, as in the A4NN paper (Figure 7).

    Networks that never recorded an epoch count as zero epochs trained; a search with no
    known budget gets NaN.
    """
    rows = []
    for search in data.searches.itertuples():
        models = data.models[data.models["search"] == search.search]
        trained = float(models["epochs_trained"].fillna(0).sum())
        budget = search.budget
        possible = len(models) * budget if budget else np.nan
        saved = 1.0 - trained / possible if possible else np.nan
        rows.append({"search": search.search, "beam": search.beam, "engine": bool(search.engine),
                     "networks": len(models), "budget": budget, "epochs_trained": trained,
                     "epochs_possible": possible, "epochs_saved": saved, "epochs_saved_pct": 100.0 * saved})
    return pd.DataFrame(rows, columns=["search", "beam", "engine", "networks", "budget", "epochs_trained",
                                       "epochs_possible", "epochs_saved", "epochs_saved_pct"])


def stop_epochs(data: AnalysisData) -> pd.DataFrame:
    """Per search: networks, how many the engine stopped (converged), the share, and stop-epoch statistics."""
    rows = []
    for search in data.searches.itertuples():
        models = data.models[data.models["search"] == search.search]
        stopped = models[models["terminated_early"]]
        epochs = stopped["stop_epoch"].fillna(stopped["epochs_trained"]).dropna()
        rows.append({"search": search.search, "beam": search.beam, "engine": bool(search.engine),
                     "networks": len(models), "converged": len(stopped),
                     "share_converged": len(stopped) / len(models) if len(models) else np.nan,
                     "median_stop_epoch": float(epochs.median()) if len(epochs) else np.nan,
                     "mean_stop_epoch": float(epochs.mean()) if len(epochs) else np.nan})
    return pd.DataFrame(rows, columns=["search", "beam", "engine", "networks", "converged", "share_converged",
                                       "median_stop_epoch", "mean_stop_epoch"])


def wall_times(data: AnalysisData, published: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per search: training seconds (Σ per-network wall time, else Σ epoch seconds) and a published figure.

    ``published`` (columns ``search``, ``seconds``) overrides with whole-run times logged
    outside the database, e.g. ICPP'23's ``time_to_run.csv`` (see :mod:`.icpp23`).
    """
    per_epoch = data.epochs.groupby("model_id")["seconds"].sum(min_count=1)
    rows = []
    for search in data.searches.itertuples():
        models = data.models[data.models["search"] == search.search]
        wall = models["wall_seconds"]
        fallback = models["model_id"].map(per_epoch)
        seconds = wall.astype(float).where(wall.notna(), fallback.astype(float))
        total = float(seconds.sum()) if seconds.notna().any() else np.nan
        rows.append({"search": search.search, "beam": search.beam, "engine": bool(search.engine),
                     "networks": len(models), "training_seconds": total, "source": "networks"})
    frame = pd.DataFrame(rows, columns=["search", "beam", "engine", "networks", "training_seconds", "source"])
    frame["seconds"] = frame["training_seconds"]
    if published is not None and len(published):
        known = published.set_index("search")["seconds"]
        hit = frame["search"].isin(known.index)
        frame.loc[hit, "seconds"] = frame.loc[hit, "search"].map(known).astype(float)
        frame.loc[hit, "source"] = "published"
    frame["hours"] = frame["seconds"] / 3600.0
    return frame


def pareto_mask(accuracy: np.ndarray, flops: np.ndarray) -> np.ndarray:
    """True for the non-dominated points when maximising accuracy and minimising FLOPs.

    NaN points are never on the front. Ties (identical points) are all kept. The one
    definition is :func:`a4nn.lineage.pareto.pareto_front`; this is its array form.
    """
    return np.asarray(lineage_pareto_mask(np.asarray(accuracy, dtype=float), np.asarray(flops, dtype=float)),
                      dtype=bool)


def pareto_front(models: pd.DataFrame, accuracy: str = "fitness_seen") -> pd.DataFrame:
    """The non-dominated models, sorted by FLOPs; by default ranked by the fitness the search saw.

    ``fitness_seen`` is the definition every output shares (:mod:`a4nn.lineage.queries`);
    pass ``accuracy="final_acc"`` for the front of last measured accuracies.
    """
    mask = pareto_mask(models[accuracy].to_numpy(dtype=float), models["flops"].to_numpy(dtype=float))
    return models[mask].sort_values("flops")


def best_models(models: pd.DataFrame) -> pd.DataFrame:
    """Models ranked best first: highest fitness seen, the cheaper first on a tie (the report's "best")."""
    ranked = models[np.isfinite(models["fitness_seen"].to_numpy(dtype=float))]
    return ranked.sort_values(["fitness_seen", "flops"], ascending=[False, True], kind="stable")


def search_summary(data: AnalysisData) -> pd.DataFrame:
    """One row per search for the report: networks by fate, the best network, epochs saved, converged share."""
    saved = epochs_saved(data).set_index("search")
    stops = stop_epochs(data).set_index("search")
    rows = []
    for search in data.searches.itertuples():
        models = data.models[data.models["search"] == search.search]
        counts = models["fate"].value_counts()
        best = best_models(models)
        rows.append({"search": search.search, "nas": search.nas, "beam": search.beam,
                     "engine": "yes" if search.engine else "no", "networks": len(models),
                     "stopped early": int(counts.get("stopped early", 0)), "ran full": int(counts.get("ran full", 0)),
                     "failed": int(counts.get("failed", 0)),
                     # "best" is ranked by the fitness the search saw (lineage.queries), as on every front
                     "best model": int(best.iloc[0].model_id) if len(best) else None,
                     "best fitness seen": float(best.iloc[0].fitness_seen) if len(best) else np.nan,
                     "epochs saved %": saved.loc[search.search, "epochs_saved_pct"],
                     "converged %": 100.0 * stops.loc[search.search, "share_converged"]})
    return pd.DataFrame(rows)
