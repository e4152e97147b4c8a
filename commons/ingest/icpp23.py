"""Reader of the published A4NN ICPP'23 training logs (TauferLab/Reproducibility_A4NN_ICPP23).

One CSV per run and beam (``{1gpu|4gpu}_{1e14|1e15|1e16}_[stopping_]training_data.csv``),
one row per (network, epoch), columns varying by run. Each file becomes one search
(``icpp23:<gpus>/<early_termination|no_early_termination>/<intensity>``), each
``arch`` one architecture (generation and index from :func:`generation_of`), each row
one epoch (stored 1-based: epoch = index + 1) and, where logged, one PENGUIN
prediction with its converged flag.

What is recorded as the network's ``fitness`` is what that run's NAS was handed:

* early-termination runs: PENGUIN's converged prediction for a network whose
  prediction converged (A4NN stops its training and hands the prediction to
  NSGA-Net), else its last validation accuracy;
* no-early-termination runs: the last validation accuracy, always. PENGUIN ran beside
  those trainings and its predictions and flags are logged (and stored as
  predictions), but nothing was stopped and NSGA-Net ranked the networks by the
  accuracy they reached after all 25 epochs.

The logs carry no wall-clock dates, so ``searches.started_at`` cannot come from them:
the column is NULL (not recorded; nullable since schema revision 0004), and the search's
config keeps the ingest time as ``ingested_at`` and says ``"started_at": null``.

The file is streamed: rows are written in chunks as they are read, and what is kept per
network (its row id, last epoch, a bit set of the epochs seen) does not grow with its
rows. A second row for one (arch, epoch) is rejected naming the line; a file with a
header and no rows is rejected rather than stored as an empty "completed" search. A
log whose search already exists is "already present" when its bytes are the same
(sha256 kept in the search's config) and rejected, naming the file it came from,
when they differ: a search's networks are never rewritten by a re-run.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from a4nn.commons.ingest.table import FileResult, file_sha256, integer, number, read_rows
from a4nn.commons.random_nn_format import open_lines
from a4nn.errors import InputFormatError
from a4nn.lineage.recorder import Recorder

NAME = re.compile(r"^(?P<gpus>\d+gpu)_(?P<intensity>1e1[456])_(?P<stopping>stopping_)?training_data\.csv$")
BEAMS = {"1e14": "low", "1e15": "medium", "1e16": "high"}
FUNCTION = "a-b^(c-x)"
E_PRED = 25
GENERATION_SIZE = 10
MAX_EPOCH = 10_000  # bound on the per-network bit set of epochs seen
CHUNK = 10_000  # rows per insert


def generation_of(arch: int) -> tuple[int, int]:
    """(generation, index within it) of the network numbered ``arch`` in a log.

    The published runs are NSGA-Net macro searches with a population of 10 and 10
    offspring per generation over 10 generations: 100 networks, ``arch`` 0-99. ``arch``
    numbers the networks in the order the NAS created them, so networks 0-9 are the
    initial population (generation 0) and each further block of 10 is one generation's
    offspring. The logs bear this out: archs 0-9 carry the same ten genomes in all nine
    runs (one seeded random initial population, which is all the runs share), while
    every later arch differs between runs as evolution diverges. The order of rows in a
    file is not that order (it interleaves generations), so it is not used.
    """
    return divmod(arch, GENERATION_SIZE)


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


@dataclass
class _Network:
    """What is kept of one network while its file streams past."""

    architecture_id: int
    epochs: int = 0  # bit set of the epochs seen
    last_epoch: int = 0
    last_acc: float | None = None
    last_prediction: dict[str, Any] | None = None
    wall: float = 0.0
    timed: bool = False


def _entry(row: dict[str, str], source: str, line: int) -> tuple[float | None, float | None, float | None, dict | None]:
    """(val_acc, train_acc, seconds, prediction) of one row."""
    val_acc = number(row, "val_accs", source, line)
    train_acc = number(row, "train_accs", source, line, optional=True) if "train_accs" in row else None
    seconds = number(row, "epoch_times", source, line, optional=True) if "epoch_times" in row else None
    prediction = None
    if "predictions" in row and row["predictions"].strip():
        converged = row.get("converged", "False").strip()
        if converged not in ("True", "False"):
            raise InputFormatError(f"converged must be True or False, got {converged!r}", path=source, line=line)
        prediction = {"value": number(row, "predictions", source, line), "converged": converged == "True",
                      "params": _params(row.get("params", ""), source, line),
                      "seconds": number(row, "penguin_times", source, line, optional=True) if "penguin_times" in row else None}
    return val_acc, train_acc, seconds, prediction


def ingest_file(recorder: Recorder, path: Path, source_name: str | None = None, context: Any = None) -> FileResult:
    """Ingest one log file inside the caller's transaction (opened here when there is none)."""
    with recorder.transaction():
        return _ingest(recorder, path, source_name or str(path))


def _ingest(recorder: Recorder, path: Path, source: str) -> FileResult:
    match = NAME.match(path.name)
    if not match:
        raise InputFormatError("not an ICPP'23 log file name (<N>gpu_<1e14|1e15|1e16>_[stopping_]training_data.csv)", path=source)
    early = bool(match["stopping"])
    intensity = match["intensity"]
    run = "early_termination" if early else "no_early_termination"
    name = f"icpp23:{match['gpus']}/{run}/{intensity}"
    digest = file_sha256(path, source)
    bulk = recorder.bulk
    found = bulk.find_search(name)
    if found is not None:
        search_id, _, config = found
        stored = config.get("source_sha256")
        if stored is None or stored == digest:  # None: ingested before hashes were kept, never rewritten
            return FileResult(present=bulk.count_architectures(search_id))
        raise InputFormatError(f"search {name!r} already holds another version of this log (ingested from "
                               f"{config.get('source', config.get('source_file'))}); delete that search to replace it",
                               path=source)

    search: int | None = None
    networks: dict[int, _Network] = {}
    epoch_rows: list[tuple] = []
    prediction_rows: list[dict] = []
    written = 0

    def flush() -> None:
        nonlocal written
        written += bulk.insert_epoch_rows(epoch_rows)
        bulk.insert_predictions(prediction_rows)
        epoch_rows.clear()
        prediction_rows.clear()

    for line, row in read_rows(open_lines(path, source), source, ("epoch", "val_accs", "arch")):
        arch = integer(row, "arch", source, line)
        logged_epoch = integer(row, "epoch", source, line)
        if arch < 0 or not 0 <= logged_epoch < MAX_EPOCH:
            raise InputFormatError(f"arch and epoch must be non-negative (epoch below {MAX_EPOCH}), got arch {arch} "
                                   f"epoch {logged_epoch}", path=source, line=line)
        epoch = logged_epoch + 1
        val_acc, train_acc, seconds, prediction = _entry(row, source, line)
        if search is None:
            search = _start_search(recorder, name, match, early, path, source, digest)
        network = networks.get(arch)
        if network is None:
            from a4nn.search.network import describe_network  # torch: loaded only when a network is written

            bits = _genome(row["genome"], source, line) if "genome" in row else None
            flops = number(row, "flops", source, line, optional=True) if "flops" in row else None
            generation, index = generation_of(arch)
            genome_id = recorder.register_genome(bits) if bits else None
            network = networks[arch] = _Network(recorder.start_architecture(
                search, index=index, generation=generation, genome_id=genome_id,
                arch=describe_network(np.array(bits)) if bits else {},
                train_params={"epochs": E_PRED, "icpp23_arch": arch}, flops=flops))
        if network.epochs >> epoch & 1:
            raise InputFormatError(f"a second row for arch {arch} epoch {logged_epoch} (one row per network and epoch)",
                                   path=source, line=line)
        network.epochs |= 1 << epoch
        if epoch > network.last_epoch:
            network.last_epoch, network.last_acc, network.last_prediction = epoch, val_acc, prediction
        if seconds is not None:
            network.wall += seconds
            network.timed = True
        epoch_rows.append((network.architecture_id, epoch, None, train_acc, None, val_acc, seconds))
        if prediction is not None:
            prediction_rows.append({"architecture_id": network.architecture_id, "epoch": epoch, "target_epoch": E_PRED,
                                    "function": FUNCTION, **prediction})
        if len(epoch_rows) >= CHUNK:
            flush()
    if search is None:
        raise InputFormatError("no data rows after the header (an empty log is not a completed search)",
                               path=source, line=2)
    flush()
    for network in networks.values():
        _finish(recorder, network, early)
    return FileResult(added=len(networks), rows=written)


def _start_search(recorder: Recorder, name: str, match: re.Match, early: bool, path: Path, source: str,
                  digest: str) -> int:
    intensity = match["intensity"]
    dataset = recorder.register_dataset(f"xfel-ef2-{intensity}", "xfel-tiff",
                                        {"beam": BEAMS[intensity], "intensity": float(intensity), "molecule": "EF2",
                                         "conformations": ["1n0u", "1n0vc"], "source": "A4NN ICPP'23"})
    engine = recorder.register_engine_config(FUNCTION, 3, E_PRED, 3, 0.5, (0, 100), {"strategy": "penguin"}) if early else None
    return recorder.start_search(name, "icpp23-import", dataset, engine,
                                 {"epochs": E_PRED, "gpus": match["gpus"], "early_termination": early,
                                  "source_file": path.name, "source": source, "source_sha256": digest,
                                  "population": GENERATION_SIZE, "offspring": GENERATION_SIZE,
                                  "fitness": "converged prediction, else last accuracy" if early else "last accuracy",
                                  "started_at": None, "ingested_at": datetime.now(timezone.utc).isoformat()},
                                 status="completed", started_at=None)


def _finish(recorder: Recorder, network: _Network, early: bool) -> None:
    """Close a network with the fitness its run's NAS used (see the module docstring)."""
    prediction = network.last_prediction or {}
    converged = bool(prediction.get("converged"))
    value = prediction.get("value")
    finite_prediction = value if value is not None and math.isfinite(value) else None
    stopped = early and converged and network.last_epoch < E_PRED
    handed_prediction = early and converged and finite_prediction is not None
    recorder.finish_architecture(network.architecture_id, "stopped" if stopped else "completed",
                                 final_acc=network.last_acc, predicted_acc=finite_prediction,
                                 fitness=finite_prediction if handed_prediction else network.last_acc,
                                 terminated_early=stopped, stop_epoch=network.last_epoch if stopped else None,
                                 wall_seconds=network.wall if network.timed and network.wall else None,
                                 epochs_trained=network.last_epoch)
