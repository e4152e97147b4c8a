"""The analyzer: figures, similarity and an HTML report over searches and record trails (matplotlib, Agg).

Load once (:func:`load` from a database, a URL or an export bundle), then draw:

>>> data = load("sqlite:///a4nn.db")                       # doctest: +SKIP
>>> learning_curve(data, model_id=12).savefig("m12.png")   # doctest: +SKIP
"""
from a4nn.commons.analyzer.architecture import architecture_figure, architecture_graph
from a4nn.commons.analyzer.data import FATES, AnalysisData, load, load_bundle, load_database
from a4nn.commons.analyzer.figures import fate_curves, learning_curve, pareto_figure
from a4nn.commons.analyzer.plotting import png_base64, save_figure
from a4nn.commons.analyzer.stats import (best_models, epochs_saved, pareto_front, search_summary, stop_epochs,
                                          wall_times)
from a4nn.commons.analyzer.summary_figures import epochs_saved_figure, stop_epoch_figure, wall_time_figure

__all__ = [
    "FATES", "AnalysisData", "load", "load_bundle", "load_database",
    "learning_curve", "fate_curves", "pareto_figure", "epochs_saved_figure", "stop_epoch_figure", "wall_time_figure",
    "architecture_figure", "architecture_graph", "save_figure", "png_base64",
    "epochs_saved", "stop_epochs", "wall_times", "pareto_front", "best_models", "search_summary",
]
