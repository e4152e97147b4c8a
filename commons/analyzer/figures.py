"""Figures of models and searches: one learning curve, all curves by fate, accuracy vs MFLOPs."""
from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from a4nn.commons.analyzer.curves import fitted_values
from a4nn.commons.analyzer.data import FATE_COLOURS, FATES, AnalysisData
from a4nn.commons.analyzer.plotting import beam_key, empty, new_figure, short_name
from a4nn.commons.analyzer.stats import pareto_mask

#: accuracy axes stop here; early predictions of a−b^(c−x) can be far above 100 %
ACC_LIMITS = (0.0, 105.0)


def learning_curve(data: AnalysisData, model_id: int) -> Figure:
    """Validation (and training) accuracy of one model, the engine's predictions and fitted curves.

    Every prediction with finite parameters contributes its fitted curve (faint; the last
    one bold) drawn from the first epoch to the target epoch; predictions are points at
    the epoch they were made (filled when converged); the stop epoch is a vertical line.
    """
    model = data.model(model_id)
    epochs = data.epochs[data.epochs["model_id"] == model.model_id].sort_values("epoch")
    predictions = data.predictions[data.predictions["model_id"] == model.model_id].sort_values("epoch")
    figure = new_figure(7.5, 4.8)
    if epochs.empty:
        return empty(figure, f"model {model.model_id} has no recorded epochs")
    axes = figure.add_subplot()
    axes.plot(epochs["epoch"], epochs["val_acc"], "o-", color="black", label="validation accuracy", zorder=5)
    if epochs["train_acc"].notna().any():
        axes.plot(epochs["epoch"], epochs["train_acc"], "--", color="grey", label="training accuracy")
    first = float(epochs["epoch"].min())
    fits = [row for row in predictions.itertuples() if row.params is not None]
    for position, row in enumerate(fits):
        grid = np.linspace(first, max(float(row.target_epoch), float(epochs["epoch"].max())), 120)
        values = fitted_values(row.function, row.params, grid, first)
        if values is None:
            continue
        last = position == len(fits) - 1
        axes.plot(grid, values, color="tab:orange", alpha=0.9 if last else 0.18, linewidth=2.0 if last else 1.0,
                  label=f"fitted {row.function} (epoch {row.epoch:g})" if last else None)
    finite = predictions[np.isfinite(predictions["value"].astype(float))]
    if not finite.empty:
        converged = finite["converged"].astype(bool)
        axes.scatter(finite.loc[~converged, "epoch"], finite.loc[~converged, "value"].clip(*ACC_LIMITS),
                     facecolors="none", edgecolors="tab:red", label="prediction", zorder=6)
        axes.scatter(finite.loc[converged, "epoch"], finite.loc[converged, "value"].clip(*ACC_LIMITS),
                     color="tab:red", label="prediction (converged)", zorder=6)
        target = float(finite["target_epoch"].iloc[-1])
        axes.axvline(target, color="tab:red", linestyle=":", linewidth=1)
    stop = model.stop_epoch if pd.notna(model.stop_epoch) else None
    if stop is not None:
        axes.axvline(float(stop), color="tab:blue", linewidth=1.5, label=f"stopped at epoch {float(stop):g}")
    axes.set_ylim(*ACC_LIMITS)
    axes.set_xlabel("epoch")
    axes.set_ylabel("accuracy (%)")
    axes.set_title(f"model {model.model_id} · {short_name(model.search, 40)} · gen {model.generation} "
                   f"#{model['index']} · {model.fate}")
    axes.grid(alpha=0.3)
    axes.legend(loc="lower right", fontsize=8)
    return figure


def fate_curves(data: AnalysisData, search: str) -> Figure:
    """Every validation curve of one search, coloured by fate (stopped early, ran full, failed)."""
    models = data.models[data.models["search"] == search]
    figure = new_figure(7.5, 4.8)
    if models.empty:
        return empty(figure, f"search {search!r} has no models")
    axes = figure.add_subplot()
    fate = models.set_index("model_id")["fate"]
    epochs = data.epochs[data.epochs["model_id"].isin(fate.index)].sort_values(["model_id", "epoch"])
    for model_id, curve in epochs.groupby("model_id"):
        colour = FATE_COLOURS[fate[model_id]]
        axes.plot(curve["epoch"], curve["val_acc"], color=colour, alpha=0.5, linewidth=1)
        if fate[model_id] == "failed":  # mark where it died: a failed run often has a single finite point
            finite = curve[curve["val_acc"].map(lambda v: v is not None and np.isfinite(v))]
            axes.plot(finite["epoch"].iloc[-1:], finite["val_acc"].iloc[-1:], "X", color=colour, markersize=9)
    counts = fate.value_counts()
    for name in FATES:
        if counts.get(name, 0):
            axes.plot([], [], color=FATE_COLOURS[name], label=f"{name} ({counts[name]})")
    axes.set_ylim(*ACC_LIMITS)
    axes.set_xlabel("epoch")
    axes.set_ylabel("validation accuracy (%)")
    axes.set_title(f"learning curves of {short_name(search, 50)} by fate")
    axes.grid(alpha=0.3)
    axes.legend(loc="lower right", fontsize=8)
    return figure


def pareto_figure(data: AnalysisData, accuracy: str = "fitness_seen") -> Figure:
    """Fitness seen vs MFLOPs per beam (one panel each), one colour per search, its Pareto front as a step line.

    The front and the y values are the fitness the search saw (``fitness_seen``, the one
    definition in :mod:`a4nn.lineage.queries`); networks the engine stopped early are
    drawn as triangles, so a predicted value is never mistaken for a measured one.
    """
    models = data.models[data.models[accuracy].notna() & data.models["flops"].notna()]
    beams = sorted(models["beam"].fillna("—").unique(), key=beam_key)
    figure = new_figure(max(5.0, 4.5 * len(beams)), 4.8)
    if models.empty:
        return empty(figure, "no model has both an accuracy and a FLOPs count")
    panels = figure.subplots(1, len(beams), squeeze=False, sharey=True)[0]
    searches = list(data.searches["search"])
    colours = {name: f"C{i % 10}" for i, name in enumerate(searches)}
    for axes, beam in zip(panels, beams):
        in_beam = models[models["beam"].fillna("—") == beam]
        for search, group in in_beam.groupby("search", sort=False):
            colour = colours.get(search, "black")
            stopped = group["terminated_early"].fillna(False).astype(bool)
            axes.scatter(group.loc[~stopped, "flops"], group.loc[~stopped, accuracy], s=14, alpha=0.55, color=colour,
                         marker="o", label=short_name(search))
            if stopped.any():
                axes.scatter(group.loc[stopped, "flops"], group.loc[stopped, accuracy], s=18, alpha=0.55,
                             color=colour, marker="^")
            mask = pareto_mask(group[accuracy].to_numpy(float), group["flops"].to_numpy(float))
            front = group[mask].sort_values("flops")
            axes.step(front["flops"], front[accuracy], where="post", color=colour, linewidth=1.8)
            on_front_stopped = front["terminated_early"].fillna(False).astype(bool)
            axes.scatter(front.loc[~on_front_stopped, "flops"], front.loc[~on_front_stopped, accuracy], s=40,
                         color=colour, edgecolors="black", marker="o", zorder=5)
            axes.scatter(front.loc[on_front_stopped, "flops"], front.loc[on_front_stopped, accuracy], s=48,
                         color=colour, edgecolors="black", marker="^", zorder=5)
        if in_beam["terminated_early"].fillna(False).astype(bool).any():
            axes.scatter([], [], marker="^", color="grey", label="stopped early (predicted fitness)")
        axes.set_title(f"beam: {beam}")
        axes.set_xlabel("MFLOPs (MMAC)")
        axes.grid(alpha=0.3)
        axes.legend(fontsize=7, loc="lower right")
    panels[0].set_ylabel({"final_acc": "final validation accuracy (%)", "fitness": "fitness seen by the NAS (%)",
                          "fitness_seen": "fitness seen by the NAS (%)"}.get(accuracy, accuracy))
    figure.suptitle("fitness vs MFLOPs with Pareto fronts (outlined; triangles: stopped early)")
    return figure
