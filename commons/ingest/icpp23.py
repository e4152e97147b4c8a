"""Reader of the published A4NN ICPP'23 training logs (TauferLab/Reproducibility_A4NN_ICPP23).

One CSV per run and beam (``{1gpu|4gpu}_{1e14|1e15|1e16}_[stopping_]training_data.csv``),
one row per (network, epoch), columns varying by run. Each file becomes one search
(``icpp23:<gpus>/<early_termination|no_early_termination>/<intensity>``), each
``arch`` one architecture, each row one epoch (stored 1-based: epoch = index + 1)
and, where logged, one PENGUIN prediction with its converged flag.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from a4nn.errors import InputFormatError
from a4nn.commons.ingest.table import integer, number, read_rows, read_text
from a4nn.lineage.recorder import Recorder

NAME = re.compile(r"^(?P<gpus>\d+gpu)_(?P<intensity>1e1[456])_(?P<stopping>stopping_)?training_data\.csv$")
BEAMS = {"1e14": "low", "1e15": "medium", "1e16": "high"}
FUNCTION = "a-b^(c-x)"
E_PRED = 25


def candidate(path: Path) -> bool:
    """ICPP'23 logs are recognised by their published file names (other CSVs beside them are not logs)."""
    return bool(NAME.match(path.name))


def matches(path: Path) -> bool:
    """Auto-detection by the published file names (the header varies between runs)."""
    return bool(NAME.match(path.name))


def _params(text: str, source: str, line: int) -> list[float] | None:
    text = (text or "").strip()
    if not text:
        return None
    try:
        return [float(v) for v in text.strip("[]").replace(",", " ").split()]
    except ValueError:
        raise InputFormatError(f"bad params {text!r}", path=source, line=line) from None


def _genome(text: str, source: str, line: int) -> list[int] | None:
    if not text:
        return None
    from a4nn.search.encoding import flatten_genome, genome_length

    try:
        bits = [int(b) for b in flatten_genome(json.loads(text))]
    except (ValueError, TypeError):
        raise InputFormatError(f"bad genome {text!r}", path=source, line=line) from None
    if len(bits) != genome_length() or set(bits) - {0, 1}:
        raise InputFormatError(f"genome must be {genome_length()} bits (3 phases x 7), got {text!r}", path=source, line=line)
    return bits


def ingest_file(recorder: Recorder, path: Path, source_name: str | None = None, context: Any = None) -> tuple[int, int]:
    """Ingest one log file inside the caller's transaction; returns (networks, epoch rows)."""
    from a4nn.search.network import describe_network

    source = source_name or str(path)
    match = NAME.match(path.name)
    if not match:
        raise InputFormatError("not an ICPP'23 log file name (<N>gpu_<1e14|1e15|1e16>_[stopping_]training_data.csv)", path=source)
    early = bool(match["stopping"])
    intensity = match["intensity"]
    networks: dict[int, dict[str, Any]] = {}
    for line, row in read_rows(read_text(path), source, ("epoch", "val_accs", "arch")):
        arch = integer(row, "arch", source, line)
        network = networks.setdefault(arch, {"rows": [], "genome": None, "flops": None})
        entry = {"epoch": integer(row, "epoch", source, line) + 1,
                 "val_acc": number(row, "val_accs", source, line),
                 "train_acc": number(row, "train_accs", source, line, optional=True) if "train_accs" in row else None,
                 "seconds": number(row, "epoch_times", source, line, optional=True) if "epoch_times" in row else None}
        if "predictions" in row and row["predictions"].strip():
            converged = row.get("converged", "False").strip()
            if converged not in ("True", "False"):
                raise InputFormatError(f"converged must be True or False, got {converged!r}", path=source, line=line)
            entry["prediction"] = {"value": number(row, "predictions", source, line), "converged": converged == "True",
                                   "params": _params(row.get("params", ""), source, line),
                                   "seconds": number(row, "penguin_times", source, line, optional=True) if "penguin_times" in row else None}
        network["rows"].append(entry)
        if network["genome"] is None and "genome" in row:
            network["genome"] = _genome(row["genome"], source, line)
        if network["flops"] is None and "flops" in row:
            network["flops"] = number(row, "flops", source, line, optional=True)

    dataset = recorder.register_dataset(f"xfel-ef2-{intensity}", "xfel-tiff",
                                        {"beam": BEAMS[intensity], "intensity": float(intensity), "molecule": "EF2",
                                         "conformations": ["1n0u", "1n0vc"], "source": "A4NN ICPP'23"})
    engine = recorder.register_engine_config(FUNCTION, 3, E_PRED, 3, 0.5, (0, 100), {"strategy": "penguin"}) if early else None
    run = "early_termination" if early else "no_early_termination"
    search = recorder.start_search(f"icpp23:{match['gpus']}/{run}/{intensity}", "icpp23-import", dataset, engine,
                                   {"epochs": E_PRED, "gpus": match["gpus"], "early_termination": early,
                                    "source_file": path.name}, status="completed")
    epoch_rows: list[dict] = []
    prediction_rows: list[dict] = []
    for arch, network in sorted(networks.items()):
        rows = sorted(network["rows"], key=lambda r: r["epoch"])
        bits = network["genome"]
        genome_id = recorder.register_genome(bits) if bits else None
        architecture = recorder.start_architecture(
            search, index=arch, generation=0, genome_id=genome_id,
            arch=describe_network(np.array(bits)) if bits else {}, train_params={"epochs": E_PRED},
            flops=network["flops"])
        for r in rows:
            epoch_rows.append({"architecture_id": architecture, "epoch": r["epoch"], "val_acc": r["val_acc"],
                               "train_acc": r["train_acc"], "seconds": r["seconds"]})
            if "prediction" in r:
                p = r["prediction"]
                prediction_rows.append({"architecture_id": architecture, "epoch": r["epoch"], "target_epoch": E_PRED,
                                        "value": p["value"], "function": FUNCTION, "params": p["params"],
                                        "converged": p["converged"], "seconds": p["seconds"]})
        last = rows[-1]
        converged = bool(last.get("prediction", {}).get("converged"))
        stopped = early and converged and last["epoch"] < E_PRED
        prediction = last.get("prediction", {}).get("value")
        finite_prediction = prediction if prediction is not None and np.isfinite(prediction) else None
        recorder.bulk_epochs(epoch_rows[-len(rows):])
        wall = sum(r["seconds"] for r in rows if r["seconds"] is not None) or None
        recorder.finish_architecture(architecture, "stopped" if stopped else "completed", final_acc=last["val_acc"],
                                     predicted_acc=finite_prediction,
                                     fitness=finite_prediction if converged and finite_prediction is not None else last["val_acc"],
                                     terminated_early=stopped, stop_epoch=last["epoch"] if stopped else None,
                                     wall_seconds=wall, epochs_trained=last["epoch"])
    recorder.bulk_predictions(prediction_rows)
    return len(networks), len(epoch_rows)
