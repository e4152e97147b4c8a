"""Analyzer figures and numbers on a small search history written with the Recorder.

The numbers are checked on the ``database`` fixture (every configured backend); the
read-only rendering tests share one SQLite file per module, because writing the history
(real engine fits) costs seconds and rendering never changes it.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from analyzer_fixture import BUDGET, ENGINE_SEARCH, HIGH_SEARCH, STANDALONE_SEARCH, build_database, fill_analyzer_trail

from a4nn.commons import analyzer
from a4nn.commons.analyzer.curves import fitted_values
from a4nn.commons.analyzer.stats import pareto_mask
from a4nn.errors import A4nnError


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """(URL, trail) of a module-wide SQLite database with the fixture history."""
    return build_database(tmp_path_factory.mktemp("analyzer"))


@pytest.fixture(scope="module")
def shared_data(shared):
    return analyzer.load(shared[0])


@pytest.fixture
def trail(recorder):
    return fill_analyzer_trail(recorder)


@pytest.fixture
def data(database, trail):
    return analyzer.load(database)


def test_fates_and_budget(data, trail):
    fates = data.models.set_index("model_id")["fate"]
    assert fates[trail.failed] == "failed"
    assert set(fates[trail.models[STANDALONE_SEARCH]]) == {"ran full"}
    assert {"stopped early", "ran full"} <= set(fates[trail.models[ENGINE_SEARCH]])
    assert set(data.searches["budget"]) == {float(BUDGET)}
    assert data.searches.set_index("search")["engine"].to_dict() == {ENGINE_SEARCH: True, STANDALONE_SEARCH: False,
                                                                      HIGH_SEARCH: True}


def test_epochs_saved_matches_definition(data):
    frame = analyzer.epochs_saved(data).set_index("search")
    models = data.models[data.models["search"] == ENGINE_SEARCH]
    expected = 1 - models["epochs_trained"].sum() / (len(models) * BUDGET)
    assert frame.loc[ENGINE_SEARCH, "epochs_saved"] == pytest.approx(expected)
    assert 0 < expected < 1
    assert frame.loc[STANDALONE_SEARCH, "epochs_saved"] == 0


def test_stop_epochs_and_share_converged(shared_data):
    data = shared_data
    frame = analyzer.stop_epochs(data).set_index("search")
    models = data.models[data.models["search"] == ENGINE_SEARCH]
    stopped = models[models["terminated_early"]]
    assert frame.loc[ENGINE_SEARCH, "converged"] == len(stopped)
    assert frame.loc[ENGINE_SEARCH, "share_converged"] == pytest.approx(len(stopped) / len(models))
    assert frame.loc[ENGINE_SEARCH, "median_stop_epoch"] == stopped["stop_epoch"].median()
    assert frame.loc[STANDALONE_SEARCH, "converged"] == 0


def test_wall_time_sums_networks_and_accepts_published(shared_data):
    data = shared_data
    import pandas as pd

    frame = analyzer.wall_times(data).set_index("search")
    models = data.models[data.models["search"] == STANDALONE_SEARCH]
    assert frame.loc[STANDALONE_SEARCH, "seconds"] == pytest.approx(models["wall_seconds"].sum())
    published = pd.DataFrame({"search": [ENGINE_SEARCH], "seconds": [7200.0]})
    frame = analyzer.wall_times(data, published).set_index("search")
    assert frame.loc[ENGINE_SEARCH, "hours"] == 2.0 and frame.loc[ENGINE_SEARCH, "source"] == "published"


def test_pareto_mask():
    accuracy = np.array([90, 95, 80, 95, np.nan, 99])
    flops = np.array([100, 200, 150, 300, 10, 500])
    assert pareto_mask(accuracy, flops).tolist() == [True, True, False, False, False, True]


def test_fitted_curve_reproduces_prediction(shared_data):
    data = shared_data
    """The stored params evaluated at e_pred (x from the first epoch) give the stored prediction."""
    predictions = data.predictions.dropna(subset=["params"])
    row = predictions[predictions["value"].map(math.isfinite)].iloc[-1]
    first = data.epochs[data.epochs["model_id"] == row.model_id]["epoch"].min()
    value = fitted_values(row.function, row.params, np.array([row.target_epoch + first]), first)
    assert value[0] == pytest.approx(row.value, rel=1e-6)
    assert fitted_values("a-b^(c-x)", [float("inf"), 1.0, 1.0], np.array([1.0]), 1.0) is None
    assert fitted_values("no-such-family", [1.0], np.array([1.0]), 1.0) is None


FIGURE_CALLS = {
    "curve": lambda d, t: analyzer.learning_curve(d, t.best),
    "fates": lambda d, t: analyzer.fate_curves(d, ENGINE_SEARCH),
    "pareto": lambda d, t: analyzer.pareto_figure(d),
    "saved": lambda d, t: analyzer.epochs_saved_figure(d),
    "stops": lambda d, t: analyzer.stop_epoch_figure(d),
    "walltime": lambda d, t: analyzer.wall_time_figure(d),
}


@pytest.mark.parametrize("kind", sorted(FIGURE_CALLS))
def test_figures_render_png_and_svg(shared, shared_data, kind, tmp_path: Path):
    figure = FIGURE_CALLS[kind](shared_data, shared[1])
    assert figure.axes, "figure has no axes"
    png = analyzer.save_figure(figure, tmp_path / f"{kind}.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    svg = analyzer.save_figure(figure, tmp_path / f"{kind}.svg")
    assert "<svg" in svg.read_text()[:2000]


def test_learning_curve_draws_fit_predictions_and_stop(shared, shared_data):
    data, trail = shared_data, shared[1]
    model = data.model(trail.best)
    assert model.fate == "stopped early"
    axes = analyzer.learning_curve(data, trail.best).axes[0]
    labels = [text.get_text() for text in axes.get_legend().get_texts()]
    assert any(label.startswith("fitted a-b^(c-x)") for label in labels)
    assert "prediction (converged)" in labels
    assert f"stopped at epoch {model.stop_epoch:g}" in labels


def test_fate_curves_colour_each_fate(shared_data):
    axes = analyzer.fate_curves(shared_data, ENGINE_SEARCH).axes[0]
    labels = " ".join(text.get_text() for text in axes.get_legend().get_texts())
    assert "stopped early" in labels and "ran full" in labels and "failed (1)" in labels


def test_unknown_model_and_bad_suffix_are_clear_errors(shared_data, tmp_path: Path):
    data = shared_data
    with pytest.raises(A4nnError, match="no model with id 9999"):
        analyzer.learning_curve(data, 9999)
    with pytest.raises(A4nnError, match=r"\.png or \.svg"):
        analyzer.save_figure(analyzer.pareto_figure(data), tmp_path / "x.jpg")


def test_empty_database_gives_explanatory_figures(database):
    data = analyzer.load(database)
    for figure in (analyzer.pareto_figure(data), analyzer.epochs_saved_figure(data), analyzer.stop_epoch_figure(data)):
        assert figure.axes[0].texts  # a message, not blank axes


def test_bundle_loads_like_the_database(database, trail, tmp_path: Path):
    from a4nn.commons.bundle import export_bundle

    export_bundle(database, ENGINE_SEARCH, tmp_path / "bundle", record=False)
    from_bundle = analyzer.load(tmp_path / "bundle")
    from_db = analyzer.load(database, [ENGINE_SEARCH])
    assert from_bundle.models["fate"].tolist() == from_db.models["fate"].tolist()
    assert from_bundle.models["genome_bits"].tolist() == from_db.models["genome_bits"].tolist()
    assert analyzer.epochs_saved(from_bundle)["epochs_saved"].tolist() == pytest.approx(
        analyzer.epochs_saved(from_db)["epochs_saved"].tolist())
    assert len(from_bundle.predictions) == len(from_db.predictions)
    analyzer.learning_curve(from_bundle, int(from_bundle.models.iloc[0].model_id))


@pytest.mark.parametrize("kind,extra", [("curve", ["--model", "MODEL"]), ("fates", ["--search", ENGINE_SEARCH]),
                                        ("pareto", []), ("saved", []), ("stops", []), ("walltime", []),
                                        ("architecture", ["--model", "MODEL"]), ("matching", ["--top", "5"])])
def test_plot_cli(shared, kind, extra, tmp_path: Path):
    from a4nn.cli.analyze import plot

    database_url, trail = shared
    out = tmp_path / f"{kind}.png"
    args = [kind, "--db", database_url, "--out", str(out)] + [str(trail.best) if a == "MODEL" else a for a in extra]
    result = CliRunner().invoke(plot, args)
    assert result.exit_code == 0, result.output
    assert out.stat().st_size > 1000


def test_plot_cli_usage_errors(shared, tmp_path: Path):
    from a4nn.cli.analyze import plot

    database_url = shared[0]
    result = CliRunner().invoke(plot, ["curve", "--db", database_url, "--out", str(tmp_path / "a.png")])
    assert result.exit_code == 2 and "needs --model" in result.output
    result = CliRunner().invoke(plot, ["pareto", "--db", database_url, "--out", str(tmp_path / "a.gif")])
    assert result.exit_code == 2 and ".png or .svg" in result.output
    result = CliRunner().invoke(plot, ["pareto", "--db", database_url, "--search", "nope", "--out",
                                       str(tmp_path / "a.png")])
    assert result.exit_code != 0 and "nope" in str(result.exception or result.output)


# --- figures that do not mislead (issue 24 item 5) -------------------------------------------

def _legend_texts(figure_or_axes) -> list[str]:
    legends = list(getattr(figure_or_axes, "legends", []))
    if hasattr(figure_or_axes, "get_legend") and figure_or_axes.get_legend() is not None:
        legends.append(figure_or_axes.get_legend())
    return [text.get_text() for legend in legends for text in legend.get_texts()]


def test_learning_curve_axis_fits_the_data_and_labels_every_line(shared, shared_data):
    data, trail = shared_data, shared[1]
    axes = analyzer.learning_curve(data, trail.best).axes[0]
    epochs = data.epochs[data.epochs["model_id"] == trail.best]
    low, high = axes.get_ylim()
    assert 0 < low < epochs["val_acc"].min() and epochs["val_acc"].max() < high <= 102
    labels = _legend_texts(axes)
    budget = data.searches.set_index("search")["budget"][data.model(trail.best).search]
    assert f"epoch budget {budget:g}" in labels
    fitted = [line for line in axes.get_lines() if line.get_label().startswith("fitted ")]
    assert len(fitted) == 1 and fitted[0].get_linewidth() == 2.0  # the last (bold) curve carries the family


def test_learning_curve_marks_predictions_above_the_axis(shared, shared_data):
    import dataclasses

    data, trail = shared_data, shared[1]
    predictions = data.predictions.copy()
    mine = predictions.index[(predictions["model_id"] == trail.best) & predictions["value"].map(math.isfinite)]
    predictions.loc[mine[0], "value"] = 187.5
    axes = analyzer.learning_curve(dataclasses.replace(data, predictions=predictions), trail.best).axes[0]
    high = axes.get_ylim()[1]
    assert high <= 102  # one runaway prediction does not flatten the measured curve
    assert "prediction above axis (up to 187.5)" in _legend_texts(axes)
    marked = [c for c in axes.collections if c.get_label().startswith("prediction above axis")]
    assert marked and np.allclose(marked[0].get_offsets()[:, 1], high)


def test_learning_curve_has_no_legend_entry_for_an_empty_series(shared_data):
    data = shared_data
    ran_full = data.models[(data.models["search"] == ENGINE_SEARCH) & (data.models["fate"] == "ran full")]
    predictions = data.predictions[data.predictions["model_id"].isin(ran_full["model_id"])]
    never = [m for m in ran_full["model_id"] if not predictions[predictions["model_id"] == m]["converged"].any()]
    assert never, "fixture has no network without a converged prediction"
    labels = _legend_texts(analyzer.learning_curve(data, int(never[0])).axes[0])
    assert "prediction (converged)" not in labels
    for collection in analyzer.learning_curve(data, int(never[0])).axes[0].collections:
        assert len(collection.get_offsets()) > 0, collection.get_label()


def test_wall_time_says_not_recorded_instead_of_a_zero_bar(shared_data):
    import dataclasses

    data = shared_data
    # a search with no recorded time (as ICPP'23's standalone logs): no network or epoch seconds
    models, epochs = data.models.copy(), data.epochs.copy()
    standalone = models["search"] == STANDALONE_SEARCH
    models.loc[standalone, "wall_seconds"] = float("nan")
    epochs.loc[epochs["model_id"].isin(models.loc[standalone, "model_id"]), "seconds"] = float("nan")
    assert analyzer.wall_times(dataclasses.replace(data, models=models, epochs=epochs))["seconds"].isna().sum() == 1
    figure = analyzer.wall_time_figure(dataclasses.replace(data, models=models, epochs=epochs))
    axes = figure.axes[0]
    assert any(text.get_text() == "not recorded" for text in axes.texts)
    heights = [patch.get_height() for patch in axes.patches]
    assert heights and all(height > 0 for height in heights)
    assert len(heights) == len(data.searches) - 1


def test_stop_epoch_legend_does_not_cover_the_bars(shared_data):
    figure = analyzer.stop_epoch_figure(shared_data)
    axes = figure.axes[0]
    assert axes.get_legend() is None and figure.legends  # a figure legend outside the axes
    figure.canvas.draw()
    legend_box = figure.legends[0].get_window_extent()
    axes_box = axes.get_window_extent()
    assert legend_box.y1 <= axes_box.y0 or legend_box.y0 >= axes_box.y1


def test_matching_heat_map_has_a_labelled_key(shared_data):
    from a4nn.commons.analyzer.similarity import matching_figure

    figure = matching_figure(shared_data, top=5)
    colorbars = [a for a in figure.axes if a.get_label() == "<colorbar>"]
    assert len(colorbars) == 1 and colorbars[0].get_ylabel() == "longest common run (bits)"
    labels = _legend_texts(figure.axes[0])
    assert "bit 1 (connection)" in labels and "bit 0 (no connection)" in labels


def test_fate_curves_axis_fits_the_data(shared_data):
    axes = analyzer.fate_curves(shared_data, ENGINE_SEARCH).axes[0]
    values = shared_data.epochs["val_acc"].astype(float)
    assert axes.get_ylim()[0] > 0 and axes.get_ylim()[1] >= values[np.isfinite(values)].max()


def test_architecture_says_which_empty_phases_were_removed():
    from a4nn.commons.analyzer.architecture import architecture_figure

    axes = architecture_figure("1101011" + "0000000" + "1111111").axes[0]
    texts = [text.get_text() for text in axes.texts]
    assert "empty phase 2 removed (no connections)" in texts
    assert "phase 1" in texts and "phase 3" in texts and "phase 2" not in texts
    full = [text.get_text() for text in architecture_figure("1101011" * 3).axes[0].texts]
    assert not any(text.startswith("empty phase") for text in full)
