"""Figures of models and searches: one learning curve, all curves by fate, accuracy vs MFLOPs."""
from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from a4nn.commons.analyzer.curves import fitted_values
from a4nn.commons.analyzer.data import FATE_COLOURS, FATES, AnalysisData
from a4nn.commons.analyzer.plotting import beam_key, empty, new_figure, short_name
from a4nn.commons.analyzer.stats import pareto_mask

#: the fallback accuracy range when there is nothing to fit the axis to
ACC_LIMITS = (0.0, 105.0)
#: an accuracy axis never goes higher (room for a marker at 100 %); early predictions of
#: a−b^(c−x) can be far above 100 % and are marked at this edge instead
ACC_TOP = 102.0


def _accuracy_limits(values: np.ndarray) -> tuple[float, float]:
    """The y range of the data with a margin, kept within 0-100 %.

    Starting at 0 squeezes curves that live between 90 and 99 % into a thin band; going
    past 100 would let one runaway early prediction flatten everything else, so values
    above the top are marked at the edge instead (see :func:`learning_curve`).
    """
    values = values[np.isfinite(values)]
    if values.size == 0:
        return ACC_LIMITS
    low, high = float(values.min()), float(min(values.max(), 100.0))
    margin = max(1.0, 0.08 * (high - low))
    return max(0.0, low - margin), min(ACC_TOP, high + margin)


def learning_curve(data: AnalysisData, model_id: int) -> Figure:
    """Validation (and training) accuracy of one model, the engine's predictions and fitted curves.

    Every prediction with finite parameters contributes its fitted curve (faint; the last
    drawable one bold and labelled with its family) drawn from the first epoch to the
    target epoch; predictions are points at the epoch they were made (filled when
    converged); the epoch budget and the stop epoch are labelled vertical lines. The
    y-axis fits the data; a prediction above it is an upward triangle at the top edge,
    and the legend gives the largest such value, so no clipped point passes as measured.
    """
    model = data.model(model_id)
    epochs = data.epochs[data.epochs["model_id"] == model.model_id].sort_values("epoch")
    predictions = data.predictions[data.predictions["model_id"] == model.model_id].sort_values("epoch")
    figure = new_figure(7.5, 4.8)
    if epochs.empty:
        return empty(figure, f"model {model.model_id} has no recorded epochs")
    axes = figure.add_subplot()
    axes.plot(epochs["epoch"], epochs["val_acc"], "o-", color="black", label="validation accuracy", zorder=5)
    measured = [epochs["val_acc"].to_numpy(float)]
    if epochs["train_acc"].notna().any():
        axes.plot(epochs["epoch"], epochs["train_acc"], "--", color="grey", label="training accuracy")
        measured.append(epochs["train_acc"].to_numpy(float))
    first = float(epochs["epoch"].min())
    curves = []
    for row in predictions.itertuples():
        if row.params is None:
            continue
        grid = np.linspace(first, max(float(row.target_epoch), float(epochs["epoch"].max())), 120)
        values = fitted_values(row.function, row.params, grid, first)
        if values is not None:
            curves.append((row, grid, values))
    for position, (row, grid, values) in enumerate(curves):
        last = position == len(curves) - 1
        axes.plot(grid, values, color="tab:orange", alpha=0.9 if last else 0.18, linewidth=2.0 if last else 1.0,
                  label=f"fitted {row.function} (epoch {row.epoch:g})" if last else None)
    finite = predictions[np.isfinite(predictions["value"].astype(float))]
    low, high = _accuracy_limits(np.concatenate(measured + [finite["value"].to_numpy(float)]))
    if not finite.empty:
        value = finite["value"].astype(float)
        above = value > high
        converged = finite["converged"].astype(bool)
        for mask, style, label in ((~converged & ~above, dict(facecolors="none", edgecolors="tab:red"), "prediction"),
                                   (converged & ~above, dict(color="tab:red"), "prediction (converged)")):
            if mask.any():
                axes.scatter(finite.loc[mask, "epoch"], value[mask], label=label, zorder=6, **style)
        if above.any():
            axes.scatter(finite.loc[above, "epoch"], np.full(int(above.sum()), high), marker="^", color="tab:red",
                         clip_on=False, zorder=7, label=f"prediction above axis (up to {value[above].max():.4g})")
        budget = data.searches.set_index("search")["budget"].get(model.search)
        target = float(finite["target_epoch"].iloc[-1])
        label = (f"epoch budget {target:g}" if budget is not None and pd.notna(budget) and float(budget) == target
                 else f"prediction target epoch {target:g}")
        axes.axvline(target, color="tab:red", linestyle=":", linewidth=1, label=label)
    stop = model.stop_epoch if pd.notna(model.stop_epoch) else None
    if stop is not None:
        axes.axvline(float(stop), color="tab:blue", linewidth=1.5, label=f"stopped at epoch {float(stop):g}")
    axes.set_ylim(low, high)
    axes.set_xlabel("epoch")
    axes.set_ylabel("accuracy (%)")
    axes.set_title(f"model {model.model_id} · {short_name(model.search, 40)} · gen {model.generation} "
                   f"#{model['index']} · {model.fate}")
    axes.grid(alpha=0.3)
    axes.legend(loc="best", fontsize=8)
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
    axes.set_ylim(*_accuracy_limits(epochs["val_acc"].to_numpy(float)))
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
