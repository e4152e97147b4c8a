"""Search-level comparisons in the style of the A4NN paper: epochs saved (Fig. 7), stop epochs (Fig. 8), wall time (Fig. 9)."""
from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from a4nn.commons.analyzer.data import AnalysisData
from a4nn.commons.analyzer.plotting import beam_key, empty, new_figure, short_name
from a4nn.commons.analyzer.stats import epochs_saved, stop_epochs, wall_times

ENGINE_COLOURS = {True: "#1f77b4", False: "#bbbbbb"}


def _grouped_bars(axes: Axes, frame: pd.DataFrame, value: str, fmt: str) -> None:
    """Bars grouped by beam, one per search, blue with the engine and grey standalone, labelled with values."""
    frame = frame.assign(_beam=frame["beam"].fillna("—"))
    beams = sorted(frame["_beam"].unique(), key=beam_key)
    ticks, labels, centres = [], [], []
    position = 0.0
    for beam in beams:
        group = frame[frame["_beam"] == beam].sort_values(["engine", "search"])
        start = position
        for row in group.itertuples():
            height = getattr(row, value)
            if pd.isna(height):  # no bar: a 0 bar would read as "took no time" / "saved nothing"
                axes.text(position, 0.0, "not recorded", ha="center", va="bottom", fontsize=8, rotation=90,
                          color="dimgrey", fontstyle="italic")
            else:
                axes.bar(position, float(height), width=0.8, color=ENGINE_COLOURS[bool(row.engine)],
                         edgecolor="black")
                axes.text(position, float(height), fmt.format(float(height)), ha="center", va="bottom", fontsize=8)
            ticks.append(position)
            labels.append(short_name(row.search, 22))
            position += 1.0
        centres.append(((start + position - 1.0) / 2.0, beam))
        position += 0.8
    axes.set_xticks(ticks, labels, rotation=30, ha="right", fontsize=8)
    axes.set_xlim(-0.6, position - 1.2)  # the loop left a group gap after the last bar
    known = frame[value].dropna()
    top = float(known.max()) * 1.12 if len(known) and float(known.max()) > 0 else 1.0
    for centre, beam in centres:
        axes.text(centre, top * 1.02, f"beam: {beam}", ha="center", va="bottom", fontsize=9, fontweight="bold")
    axes.set_ylim(0, top * 1.12)
    handles = [Patch(facecolor=ENGINE_COLOURS[True], edgecolor="black", label="with prediction engine"),
               Patch(facecolor=ENGINE_COLOURS[False], edgecolor="black", label="standalone")]
    axes.figure.legend(handles=handles, fontsize=8, loc="outside lower center", ncols=2)
    axes.grid(axis="y", alpha=0.3)


def epochs_saved_figure(data: AnalysisData) -> Figure:
    """Share of the epoch budget each search did not spend, standalone vs engine (paper Figure 7)."""
    frame = epochs_saved(data)
    figure = new_figure(max(6.0, 0.9 * len(frame) + 3), 4.8)
    if frame.empty:
        return empty(figure, "no searches loaded")
    axes = figure.add_subplot()
    _grouped_bars(axes, frame, "epochs_saved_pct", "{:.1f}%")
    axes.set_ylabel("epochs saved (%)")
    axes.set_title("epochs saved per search\n1 − Σ epochs trained / (networks × budget)", pad=18)
    return figure


def stop_epoch_figure(data: AnalysisData) -> Figure:
    """Distribution of the epochs at which the engine stopped networks, per engine search (paper Figure 8)."""
    summary = stop_epochs(data)
    engine_searches = summary[summary["engine"]]
    figure = new_figure(7.5, 4.8)
    if engine_searches.empty:
        return empty(figure, "no search ran with the prediction engine")
    axes = figure.add_subplot()
    stopped = data.models[data.models["terminated_early"] & data.models["search"].isin(engine_searches["search"])]
    values = stopped["stop_epoch"].fillna(stopped["epochs_trained"])
    budget = data.searches.set_index("search").loc[engine_searches["search"], "budget"].max()
    high = float(np.nanmax([budget if pd.notna(budget) else 0.0, values.max() if len(values) else 0.0, 1.0]))
    bins = np.arange(0.5, high + 1.5, 1.0)
    series, labels = [], []
    for row in engine_searches.itertuples():
        mine = values[stopped["search"] == row.search]
        series.append(mine.to_numpy(float))
        labels.append(f"{short_name(row.search)}: {100 * row.share_converged:.1f}% converged "
                      f"({row.converged}/{row.networks})")
    axes.hist(series, bins=bins, label=labels, stacked=False, alpha=0.85)
    axes.set_xlabel("epoch at which the engine stopped the network")
    axes.set_ylabel("networks")
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_title("stop epochs and share of networks converged")
    # below the axes, never over the bars (the tallest bins are where a legend would sit)
    figure.legend(fontsize=8, loc="outside lower center", ncols=2 if len(labels) > 3 else 1)
    axes.grid(axis="y", alpha=0.3)
    return figure


def wall_time_figure(data: AnalysisData, published: pd.DataFrame | None = None) -> Figure:
    """Wall time per search in hours, standalone vs engine (paper Figure 9)."""
    frame = wall_times(data, published)
    figure = new_figure(max(6.0, 0.9 * len(frame) + 3), 4.8)
    if frame.empty or frame["seconds"].isna().all():
        return empty(figure, "no wall times recorded for these searches")
    axes = figure.add_subplot()
    _grouped_bars(axes, frame, "hours", "{:.1f} h")
    axes.set_ylabel("wall time (hours)")
    sources = sorted(frame["source"].unique())
    note = "published run times" if sources == ["published"] else "Σ network training time"
    axes.set_title(f"wall time per search\n({note})", pad=18)
    return figure
