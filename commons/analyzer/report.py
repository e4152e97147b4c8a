"""One self-contained HTML page about a search: figures as base64 PNG, summary tables, no external links.

Self-contained because reports are mailed, attached to Dataverse records and opened
years later offline: no script, stylesheet, font or image may be fetched from anywhere.
"""
from __future__ import annotations

import html
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from a4nn import __version__
from a4nn.commons.analyzer.architecture import architecture_figure
from a4nn.commons.analyzer.data import AnalysisData
from a4nn.commons.analyzer.figures import fate_curves, learning_curve, pareto_figure
from a4nn.commons.analyzer.plotting import png_base64
from a4nn.commons.analyzer.similarity import matching_figure
from a4nn.commons.analyzer.stats import best_models, epochs_saved, search_summary, stop_epochs
from a4nn.commons.analyzer.summary_figures import epochs_saved_figure, stop_epoch_figure, wall_time_figure

STYLE = """
body { font-family: sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; margin-top: 1.6em; }
table { border-collapse: collapse; margin: .6em 0; font-size: .9em; }
th, td { border: 1px solid #ccc; padding: .25em .6em; text-align: right; }
th { background: #f0f0f0; } td:first-child, th:first-child { text-align: left; }
figure { margin: 1em 0; } img { max-width: 100%; } figcaption { color: #555; font-size: .9em; }
"""
TOP_MODELS = 10


def _table(frame: pd.DataFrame, caption: str) -> str:
    frame = frame.copy()
    for column in frame.columns:
        if pd.api.types.is_float_dtype(frame[column]):
            frame[column] = frame[column].map(lambda v: "" if pd.isna(v) else f"{v:.2f}")
    body = frame.to_html(index=False, escape=True, border=0, na_rep="")
    return f"<h3>{html.escape(caption)}</h3>\n{body}"


def _figure(figure: Figure, caption: str) -> str:
    data = png_base64(figure)
    alt = html.escape(caption, quote=True)
    return (f'<figure><img alt="{alt}" src="data:image/png;base64,{data}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")


def report_html(data: AnalysisData, search: str) -> str:
    """The report of the search called ``search`` (``data`` may hold others: they are left out)."""
    data = data.for_searches([search])
    row = data.searches.iloc[0]
    models = data.models
    best = best_models(models)  # ranked by the fitness the search saw, as the CLI, API and figures rank
    parts = [f"<h1>Search report: {html.escape(search)}</h1>",
             f"<p>NAS <b>{html.escape(str(row.nas))}</b> · data set <b>{html.escape(str(row.dataset))}</b> "
             f"(beam {html.escape(str(row.beam))}) · prediction engine: <b>{'yes' if row.engine else 'no'}</b> · "
             f"budget {row.budget if pd.notna(row.budget) else '?'} epochs · status {html.escape(str(row.status))}</p>",
             "<h2>Summary</h2>",
             _table(search_summary(data), "Networks by fate"),
             _table(epochs_saved(data)[["networks", "budget", "epochs_trained", "epochs_possible", "epochs_saved_pct"]],
                    "Epochs saved"),
             _table(stop_epochs(data)[["networks", "converged", "share_converged", "median_stop_epoch",
                                       "mean_stop_epoch"]], "Engine convergence"),
             _table(pd.DataFrame(sorted(row.config.items()), columns=["setting", "value"]).astype(str),
                    "Search configuration"),
             "<h2>Learning curves</h2>",
             _figure(fate_curves(data, search), "Validation accuracy of every network, coloured by fate.")]
    if len(best):
        top = best.iloc[0]
        parts.append(_figure(learning_curve(data, int(top.model_id)),
                             f"Best network (model {int(top.model_id)}, fitness seen {top.fitness_seen:.2f}"
                             f"{', stopped early' if top.terminated_early else ''}): curve, engine predictions, "
                             f"fitted curve."))
    parts += ["<h2>Accuracy and cost</h2>",
              _figure(pareto_figure(data), "Fitness the search saw vs MFLOPs; the Pareto front is outlined; "
                                           "triangles: networks the engine stopped early (predicted fitness)."),
              _table(best.head(TOP_MODELS)[["model_id", "generation", "index", "fate", "fitness_seen", "final_acc",
                                           "predicted_acc", "flops", "epochs_trained", "genome_bits"]],
                     f"Top {TOP_MODELS} networks by the fitness the search saw (fate 'stopped early': final_acc is "
                     f"an early-epoch value)"),
              "<h2>Savings</h2>",
              _figure(epochs_saved_figure(data), "Share of the epoch budget not spent."),
              _figure(stop_epoch_figure(data), "Epochs at which the engine stopped networks."),
              _figure(wall_time_figure(data), "Training wall time.")]
    genomes = best[best["genome_bits"].map(lambda b: isinstance(b, str) and len(b) > 0)]
    if len(genomes):
        parts += ["<h2>Architectures</h2>",
                  _figure(architecture_figure(genomes.iloc[0].genome_bits,
                                              title=f"model {int(genomes.iloc[0].model_id)}"),
                          "Decoded graph of the best network (dashed: skip connection)."),
                  _figure(matching_figure(data), "Connection bits shared by the best networks (by fitness seen).")]
    evaluations = data.evaluations
    if evaluations is not None and len(evaluations):
        parts += ["<h2>Re-evaluations</h2>",
                  _table(evaluations, "Checkpoints re-evaluated with `a4nn-commons model evaluate` (accuracy %, "
                                      "mean cross-entropy, median per-image latency in ms)")]
    failed = models[models["fate"] == "failed"]
    if len(failed):
        parts.append(_table(failed[["model_id", "generation", "index", "error"]], "Failed networks"))
    stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
    parts.append(f"<p><small>Generated {stamp} by a4nn-commons {html.escape(__version__)}.</small></p>")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(search)} — a4nn-commons report</title><style>{STYLE}</style></head>\n<body>\n"
            + "\n".join(parts) + "\n</body></html>\n")


def write_report(data: AnalysisData, search: str, out: Path | str) -> Path:
    """Write :func:`report_html` to ``out`` (UTF-8)."""
    out = Path(out)
    out.write_text(report_html(data, search), encoding="utf-8")
    return out
