"""Reproducible record-trail bundles: export a search, verify a bundle, import it elsewhere.

A bundle is a folder anyone can load with pandas:

``architectures``, ``epochs``, ``predictions``, ``genomes``, ``genome_parents``
    Parquet with CSV twins. Rows reference each other by the *natural* keys, not
    database ids: architectures by (generation, index), genomes by hash; so a bundle
    re-imports into any database with identical content.
``search.json``, ``dataset.json``, ``engine_config.json``
    The search's configuration, seed and code version, the data set's description,
    the engine settings; ``search.json`` also records the exporting environment.
``checkpoints/`` (optional), ``MANIFEST.json`` (sha256 and size of every file), ``README.md``.

Non-finite values travel as NaN/inf in Parquet and as ``nan``/``inf`` in CSV.
"""
from __future__ import annotations

import hashlib
import json
import math
import platform
import shutil
import sys
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import pandas as pd
from sqlalchemy import select

from a4nn import __version__
from a4nn.errors import A4nnError, InputFormatError
from a4nn.lineage.database import Database
from a4nn.lineage.frames import architectures_frame, epochs_frame, predictions_frame
from a4nn.lineage.models import Checkpoint, Dataset, EngineConfig, Genome, GenomeParent, Search
from a4nn.lineage.recorder import Recorder, file_sha256

TABLES = ("architectures", "epochs", "predictions", "genomes", "genome_parents")
MANIFEST = "MANIFEST.json"
ARCHITECTURE_COLUMNS = ["generation", "index", "genome_hash", "status", "flops", "n_params", "epochs_trained",
                        "terminated_early", "stop_epoch", "final_acc", "predicted_acc", "fitness", "wall_seconds",
                        "device", "error", "arch", "train_params", "nonfinite"]
EPOCH_COLUMNS = ["generation", "index", "epoch", "train_loss", "train_acc", "val_loss", "val_acc", "seconds", "nonfinite"]
PREDICTION_COLUMNS = ["generation", "index", "epoch", "target_epoch", "value", "function", "params", "converged",
                      "seconds", "nonfinite"]

README = """# a4nn-commons record-trail bundle: {name}

Exported {created} by a4nn-commons {version}. Verify with `a4nn-commons verify .`.

| file | one row per | key columns |
|---|---|---|
| architectures.parquet / .csv | trained network | generation, index (unique), genome_hash, flops (MMAC), n_params, status, epochs_trained, terminated_early, stop_epoch, final_acc, predicted_acc, fitness (what the NAS saw), wall_seconds, arch (JSON), train_params (JSON) |
| epochs.parquet / .csv | (network, epoch) | generation, index, epoch, train_loss, train_acc, val_loss, val_acc, seconds |
| predictions.parquet / .csv | engine interaction | generation, index, epoch, target_epoch, value, function, params (JSON), converged, seconds |
| genomes.parquet / .csv | genome | hash, encoding, bits |
| genome_parents.parquet / .csv | evolution edge | child_hash, parent_hash, operator |

`search.json` holds the configuration, seed, code version and exporting environment;
`dataset.json` the data set; `engine_config.json` the prediction-engine settings (null for a
standalone search). Accuracies are percentages. `arch`, `train_params`, `params` and
`nonfinite` are JSON text; `nonfinite` names the fields that were NaN/inf where the value is empty.

```python
import pandas as pd
models = pd.read_parquet("architectures.parquet")
epochs = pd.read_parquet("epochs.parquet")
curves = epochs.merge(models[["generation", "index", "final_acc"]], on=["generation", "index"])
```
"""


def _sha256(path: Path) -> str:
    return file_sha256(path)


def _environment() -> dict[str, Any]:
    packages = {}
    for name in ("numpy", "pandas", "torch", "sqlalchemy", "pymoo", "scipy"):
        try:
            packages[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return {"python": sys.version.split()[0], "platform": platform.platform(), "packages": packages}


JSON_COLUMNS = ("arch", "train_params", "params", "nonfinite")


def _write_table(frame: pd.DataFrame, folder: Path, name: str) -> None:
    """Parquet + CSV; nested values (arch, params, flags) are JSON text so every row has one schema."""
    frame = frame.copy()
    for column in JSON_COLUMNS:
        if column in frame.columns:
            frame[column] = frame[column].map(lambda v: None if v is None else json.dumps(v))
    frame.to_parquet(folder / f"{name}.parquet", index=False)
    frame.to_csv(folder / f"{name}.csv", index=False)


def _read_table(folder: Path, name: str) -> pd.DataFrame:
    frame = pd.read_parquet(folder / f"{name}.parquet")
    for column in JSON_COLUMNS:
        if column in frame.columns:
            frame[column] = frame[column].map(lambda v: json.loads(v) if isinstance(v, str) else None)
    return frame


def export_bundle(database: Database, search_id: int, out: Path, with_checkpoints: str | None = None) -> Path:
    """Write the bundle of one search into ``out`` (created; must be empty or absent)."""
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise A4nnError(f"{out} is not empty; choose a new folder for the bundle")
    out.mkdir(parents=True, exist_ok=True)
    with database.session() as session:
        search = session.get(Search, search_id)
        if search is None:
            raise A4nnError(f"no search with id {search_id}")
        dataset = session.get(Dataset, search.dataset_id) if search.dataset_id else None
        engine = session.get(EngineConfig, search.engine_config_id) if search.engine_config_id else None
        search_doc = {"name": search.name, "nas": search.nas, "config": search.config, "seed": search.seed,
                      "status": search.status, "started_at": search.started_at.isoformat() if search.started_at else None,
                      "finished_at": search.finished_at.isoformat() if search.finished_at else None,
                      "code_version": search.code_version, "host": search.host,
                      "exported_by": {"a4nn_commons": __version__, **_environment()}}
        dataset_doc = None if dataset is None else {"name": dataset.name, "kind": dataset.kind, "attributes": dataset.attributes}
        engine_doc = None if engine is None else {"function": engine.function, "c_min": engine.c_min, "e_pred": engine.e_pred,
                                                  "n": engine.n, "r": engine.r, "bounds": engine.bounds, "extra": engine.extra}
        checkpoints = session.execute(select(Checkpoint)).scalars().all() if with_checkpoints else []

    architectures = architectures_frame(database, search_id)
    genome_ids = [int(g) for g in architectures["genome_id"].dropna().unique()]
    with database.session() as session:
        genomes = pd.DataFrame([{"id": g.id, "hash": g.hash, "encoding": g.encoding, "bits": g.bits}
                                for g in session.scalars(select(Genome).where(Genome.id.in_(genome_ids)))],
                               columns=["id", "hash", "encoding", "bits"])
        edges = session.scalars(select(GenomeParent).where(GenomeParent.child_id.in_(genome_ids))).all()
        parent_ids = {e.parent_id for e in edges} - set(genome_ids)
        extra = [{"id": g.id, "hash": g.hash, "encoding": g.encoding, "bits": g.bits}
                 for g in session.scalars(select(Genome).where(Genome.id.in_(parent_ids)))]
        edge_rows = [(e.child_id, e.parent_id, e.operator) for e in edges]
    genomes = pd.concat([genomes, pd.DataFrame(extra, columns=genomes.columns)], ignore_index=True)
    hash_of = dict(zip(genomes["id"], genomes["hash"]))
    architectures["genome_hash"] = architectures["genome_id"].map(lambda g: hash_of.get(g) if g == g and g is not None else None)
    key_of = {int(r.id): (int(r.generation), int(r.index)) for r in architectures.itertuples()}

    def keyed(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
        frame = frame.copy()
        frame["generation"] = frame["architecture_id"].map(lambda a: key_of[int(a)][0])
        frame["index"] = frame["architecture_id"].map(lambda a: key_of[int(a)][1])
        return frame[columns].sort_values(["generation", "index", "epoch"]).reset_index(drop=True)

    ids = list(key_of)
    _write_table(architectures[ARCHITECTURE_COLUMNS].sort_values(["generation", "index"]).reset_index(drop=True), out, "architectures")
    _write_table(keyed(epochs_frame(database, ids), EPOCH_COLUMNS), out, "epochs")
    _write_table(keyed(predictions_frame(database, ids), PREDICTION_COLUMNS), out, "predictions")
    _write_table(genomes[["hash", "encoding", "bits"]].sort_values("hash").reset_index(drop=True), out, "genomes")
    _write_table(pd.DataFrame([{"child_hash": hash_of[c], "parent_hash": hash_of[p], "operator": o} for c, p, o in edge_rows],
                              columns=["child_hash", "parent_hash", "operator"]), out, "genome_parents")
    for name, doc in (("search", search_doc), ("dataset", dataset_doc), ("engine_config", engine_doc)):
        (out / f"{name}.json").write_text(json.dumps(doc, indent=2, default=str) + "\n")
    _copy_checkpoints(checkpoints, key_of, out, with_checkpoints, architectures)
    (out / "README.md").write_text(README.format(name=search_doc["name"], version=__version__,
                                                 created=datetime.now(timezone.utc).isoformat(timespec="seconds")))
    write_manifest(out)
    return out


def _copy_checkpoints(checkpoints, key_of, out: Path, mode: str | None, architectures: pd.DataFrame) -> None:
    if not mode:
        return
    last_epoch = dict(zip(architectures["id"], architectures["epochs_trained"]))
    for checkpoint in checkpoints:
        if checkpoint.architecture_id not in key_of:
            continue
        if mode == "final" and checkpoint.epoch != last_epoch.get(checkpoint.architecture_id):
            continue
        source = Path(unquote(urlparse(checkpoint.uri).path))
        if not source.is_file():
            raise A4nnError(f"checkpoint {source} (model {checkpoint.architecture_id}) is missing on disk")
        generation, index = key_of[checkpoint.architecture_id]
        target = out / "checkpoints" / f"g{generation:03d}-i{index:04d}-e{checkpoint.epoch:g}{source.suffix}"
        target.parent.mkdir(exist_ok=True)
        shutil.copyfile(source, target)


def write_manifest(folder: Path) -> dict[str, Any]:
    files = {str(p.relative_to(folder)): {"sha256": _sha256(p), "size": p.stat().st_size}
             for p in sorted(folder.rglob("*")) if p.is_file() and p.name != MANIFEST}
    manifest = {"format": "a4nn-bundle/1", "files": files}
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def verify_bundle(folder: Path) -> list[str]:
    """Problems found against MANIFEST.json (empty list = intact)."""
    folder = Path(folder)
    manifest_path = folder / MANIFEST
    if not manifest_path.is_file():
        return [f"{MANIFEST} is missing"]
    try:
        expected = json.loads(manifest_path.read_text())["files"]
    except (ValueError, KeyError):
        return [f"{MANIFEST} is not a valid manifest"]
    problems = []
    present = {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() and p.name != MANIFEST}
    for name, entry in sorted(expected.items()):
        path = folder / name
        if name not in present:
            problems.append(f"missing: {name}")
        elif path.stat().st_size != entry["size"] or _sha256(path) != entry["sha256"]:
            problems.append(f"changed: {name}")
    problems.extend(f"not in manifest: {name}" for name in sorted(present - set(expected)))
    return problems


def _clean(row: dict[str, Any]) -> dict[str, Any]:
    """Missing scalars become None; values flagged in ``nonfinite`` get their nan/inf back.

    Parquet keeps NULL and NaN apart only through the flag column, which is why the
    bundle carries it: a re-import must store exactly what the source database held.
    """
    flags = row.get("nonfinite") or {}
    clean = {}
    for key, value in row.items():
        if isinstance(value, (list, dict)) or key == "nonfinite":
            clean[key] = value
        elif key in flags:
            clean[key] = float(flags[key])
        else:
            clean[key] = None if value is None or (isinstance(value, float) and math.isnan(value)) else value
    return clean


def import_bundle(database: Database, folder: Path) -> int:
    """Import a verified bundle as a new search (one transaction); returns the search id."""
    folder = Path(folder)
    problems = verify_bundle(folder)
    if problems:
        raise InputFormatError("bundle does not match its manifest: " + "; ".join(problems[:5]), path=str(folder))
    search_doc = json.loads((folder / "search.json").read_text())
    dataset_doc = json.loads((folder / "dataset.json").read_text())
    engine_doc = json.loads((folder / "engine_config.json").read_text())
    tables = {name: _read_table(folder, name) for name in TABLES}
    recorder = Recorder(database)
    with recorder.transaction():
        dataset_id = recorder.register_dataset(dataset_doc["name"], dataset_doc["kind"], dataset_doc["attributes"]) if dataset_doc else None
        engine_id = recorder.register_engine_config(**engine_doc) if engine_doc else None
        search_id = recorder.start_search(search_doc["name"], search_doc["nas"], dataset_id, engine_id, search_doc["config"],
                                          seed=search_doc["seed"], code_version=search_doc["code_version"],
                                          host=search_doc["host"], status=search_doc["status"])
        genome_ids = {row.hash: recorder.register_genome(row.bits, row.encoding) for row in tables["genomes"].itertuples()}
        for row in tables["genome_parents"].itertuples():
            recorder.add_genome_parent(genome_ids[row.child_hash], genome_ids[row.parent_hash], row.operator, search_id)
        arch_ids = {}
        for row in map(_clean, tables["architectures"].to_dict("records")):
            key = (int(row["generation"]), int(row["index"]))
            arch_id = recorder.start_architecture(search_id, index=key[1], generation=key[0],
                                                  genome_id=genome_ids.get(row["genome_hash"]), arch=row["arch"],
                                                  train_params=row["train_params"], flops=row["flops"],
                                                  n_params=None if row["n_params"] is None else int(row["n_params"]),
                                                  device=row["device"])
            arch_ids[key] = arch_id
            if row["status"] in ("completed", "stopped", "failed"):
                recorder.finish_architecture(arch_id, row["status"], final_acc=row["final_acc"],
                                             predicted_acc=row["predicted_acc"], fitness=row["fitness"],
                                             terminated_early=bool(row["terminated_early"]), stop_epoch=row["stop_epoch"],
                                             wall_seconds=row["wall_seconds"], error=row["error"],
                                             epochs_trained=row["epochs_trained"])
        recorder.bulk_epochs({**row, "architecture_id": arch_ids[(int(row["generation"]), int(row["index"]))]}
                             for row in map(_clean, tables["epochs"].to_dict("records")))
        recorder.bulk_predictions({**row, "architecture_id": arch_ids[(int(row["generation"]), int(row["index"]))]}
                                  for row in map(_clean, tables["predictions"].to_dict("records")))
    return search_id

