"""Reproducible record-trail bundles: export a search (or a filter over models), verify, re-import.

A bundle is a plain folder that anyone can load with pandas, and that re-imports into
an empty lineage database with identical rows:

``architectures``, ``epochs``, ``predictions``, ``genomes``, ``genome_parents``, ``checkpoints``
    Parquet files with CSV twins. Rows reference each other by *natural* keys
    (search name, generation, index; genome hash), never by database ids, because ids
    are an accident of the source database and would collide in the target.
``search.json``
    Every exported search: configuration, seed, status, code version, host, its
    data set's description and engine configuration, plus the exporting environment
    (Python, platform, package versions) and what was selected (search or filter).
``engine_config.json``
    The prediction-engine settings per search (``null`` for a standalone search).
``checkpoints/`` (optional)
    Saved model states, per epoch or final only.
``MANIFEST.json``
    sha256 and size of every other file, so ``verify_bundle`` can prove the folder
    is exactly what was exported.
``README.md``
    Column descriptions and how to load the tables.

NaN/inf metrics are stored as such in Parquet (``nan``/``inf`` in CSV); the
``nonfinite`` JSON column keeps what the database knows, which is how a re-import
tells a missing value (NULL) from a NaN the trainer really saw.
"""
from __future__ import annotations

import json
import math
import os
import platform
import re
import shutil
import sys
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping
from urllib.parse import unquote, urlparse

import pandas as pd
from sqlalchemy import select

from a4nn import __version__
from a4nn.errors import A4nnError, InputFormatError
from a4nn.lineage.database import Database
from a4nn.lineage.frames import architectures_frame, epochs_frame, predictions_frame
from a4nn.lineage.models import Architecture, Checkpoint, Dataset, EngineConfig, Genome, GenomeParent, Search
from a4nn.lineage.paths import UnsafePathError, bundle_file, check_relative
from a4nn.lineage.public import public_attributes, public_checkpoint_path, public_config
from a4nn.lineage.recorder import FINISHED_STATUSES, Recorder, file_sha256
from a4nn.lineage.status import SearchStatus

BUNDLE_FORMAT = "a4nn-bundle/1"
MANIFEST = "MANIFEST.json"
#: version of MANIFEST.json's own layout (``format``, ``version``, ``files``); a manifest without it is version 1
MANIFEST_VERSION = 1
_HEX = re.compile(r"[0-9a-f]{64}")
#: publisher state (Dataverse persistent id) kept beside the bundle; not part of the manifest
STATE_FILE = ".dataverse.json"
NOT_IN_MANIFEST = frozenset({MANIFEST, STATE_FILE})
CHECKPOINT_MODES = ("per-epoch", "final")
TABLES = ("architectures", "epochs", "predictions", "genomes", "genome_parents", "checkpoints")
JSON_COLUMNS = ("arch", "train_params", "params", "nonfinite")

KEY = ["search", "generation", "index"]
ARCHITECTURE_COLUMNS = KEY + [
    "genome_hash", "status", "flops", "n_params", "epochs_trained", "terminated_early", "stop_epoch", "final_acc",
    "predicted_acc", "fitness", "wall_seconds", "device", "error", "dataset", "beam", "arch", "train_params", "nonfinite",
    "source_id"]
EPOCH_COLUMNS = KEY + ["epoch", "train_loss", "train_acc", "val_loss", "val_acc", "seconds", "nonfinite"]
PREDICTION_COLUMNS = KEY + ["epoch", "target_epoch", "value", "function", "params", "converged", "seconds", "nonfinite"]
GENOME_COLUMNS = ["hash", "encoding", "bits"]
PARENT_COLUMNS = ["child_hash", "parent_hash", "operator", "search"]
CHECKPOINT_COLUMNS = KEY + ["epoch", "format", "sha256", "size_bytes", "source_uri", "file"]
ENVIRONMENT_PACKAGES = ("a4nn-commons", "numpy", "pandas", "pyarrow", "scipy", "torch", "sqlalchemy", "pymoo",
                        "ray", "pyDataverse")

README = """# a4nn-commons record-trail bundle

{summary}

Exported {created} by a4nn-commons {version} (bundle format `{format}`).
Check integrity with `a4nn-commons verify .` (sha256 of every file is in `MANIFEST.json`).

## Tables (Parquet, with CSV twins)

Rows refer to each other by natural keys: a network is (`search`, `generation`, `index`),
a genome is its `hash`. JSON-valued columns (`arch`, `train_params`, `params`, `nonfinite`)
hold JSON text. Accuracies are percentages. NaN/inf are kept as such; `nonfinite` names
which fields of the row were `nan`, `inf` or `-inf` (an empty cell without a flag is a
value that was never recorded).

| file | one row per | columns |
|---|---|---|
| architectures | trained network | search, generation, index, genome_hash, status, flops (MMAC, one forward pass), n_params, epochs_trained, terminated_early, stop_epoch, final_acc, predicted_acc, fitness (what the NAS saw), wall_seconds, device, error, dataset, beam, arch (decoded network, JSON), train_params (JSON), nonfinite |
| epochs | (network, epoch) | search, generation, index, epoch (half epochs allowed), train_loss, train_acc, val_loss, val_acc, seconds, nonfinite |
| predictions | engine interaction | search, generation, index, epoch, target_epoch, value (predicted accuracy at target_epoch), function, params (fitted parameters, JSON), converged, seconds, nonfinite |
| genomes | distinct genome | hash (sha256 of `encoding:bits`), encoding, bits |
| genome_parents | evolution edge | child_hash, parent_hash, operator (`init`, `crossover`, `mutation`), search |
| checkpoints | saved model state | search, generation, index, epoch, format, sha256, size_bytes, source_uri (where the search kept it, relative to its run folder), file (path in this bundle, empty when not exported) |

`search.json` holds each search's configuration, seed, status, code version, start and
finish times (ISO 8601, UTC; `null` when not recorded: imported logs such as ICPP'23
carry no dates), data set and engine configuration, and the environment that exported the bundle;
`engine_config.json` the prediction-engine settings per search.

"Best" and the Pareto front rank networks by `fitness`, the value the NAS saw (the
engine's prediction for a network it stopped; where it is empty, `final_acc`), against
`flops`, among networks that did not fail. A network with `terminated_early` true
stopped at `stop_epoch`: its `final_acc` is that epoch's accuracy, not a trained-out
one. `a4nn.lineage.queries.front_rows` and the a4nn-commons CLI, API and analyzer all
use this definition.

## Loading with pandas

```python
import json
import pandas as pd

models = pd.read_parquet("architectures.parquet")
epochs = pd.read_parquet("epochs.parquet")
curves = epochs.merge(models[["search", "generation", "index", "final_acc"]], on=["search", "generation", "index"])
models["arch"] = models["arch"].map(json.loads)        # decoded network description
search = json.load(open("search.json"))["searches"][0]  # config, seed, data set, engine
```

Re-import into a lineage database with
`python -c "from a4nn.commons.bundle import import_bundle; ..."` (see the project README).
"""


# ---------------------------------------------------------------------- results
@dataclass
class ExportResult:
    """What :func:`export_bundle` wrote."""

    folder: Path
    search_ids: list[int]
    architectures: int
    epochs: int
    predictions: int
    checkpoints: int
    manifest: dict[str, Any]
    manifest_sha256: str = ""


@dataclass
class VerifyReport:
    """Differences between a bundle folder and its manifest; ``ok`` when there are none."""

    missing: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    symlinks: list[str] = field(default_factory=list)
    error: str | None = None
    #: sha256 of MANIFEST.json itself (None when there is no readable manifest)
    manifest_sha256: str | None = None
    #: the digest the caller expected (``verify --expect``), normalized
    expected_sha256: str | None = None

    @property
    def ok(self) -> bool:
        return not (self.missing or self.extra or self.changed or self.symlinks or self.error)

    def problems(self) -> list[str]:
        """One line per problem, naming the file."""
        lines = [self.error] if self.error else []
        lines += [f"symlink refused: {name}" for name in self.symlinks]
        lines += [f"missing: {name}" for name in self.missing]
        lines += [f"changed: {name}" for name in self.changed]
        lines += [f"not in manifest: {name}" for name in self.extra]
        return lines


@dataclass
class ImportResult:
    """What :func:`import_bundle` wrote: the new search ids by name and row counts."""

    search_ids: dict[str, int]
    architectures: int
    epochs: int
    predictions: int
    checkpoints: int


# --------------------------------------------------------------------- selecting
def resolve_search(database: Database, search: int | str) -> int:
    """The id of a search given by id or by name (the CLI accepts both)."""
    text = str(search)
    with database.engine.connect() as connection:
        if text.isdigit():
            found = connection.execute(select(Search.id).where(Search.id == int(text))).scalar()
        else:
            found = connection.execute(select(Search.id).where(Search.name == text)).scalar()
    if found is None:
        raise A4nnError(f"no search with id or name {text!r} in {database.url.render_as_string(hide_password=True)}")
    return int(found)


def select_architectures(database: Database, filter_text: str) -> tuple[list[int], list[int]]:
    """(search ids, architecture ids) matched by a model filter such as ``beam=low&acc>99``.

    Uses the grammar shared with the REST API (:mod:`a4nn.lineage.filters`); sort,
    limit and cursor are paging controls there and do not narrow an export.
    """
    from a4nn.lineage.filters import parse_filter

    query = parse_filter(filter_text)
    # architecture-level terms, plus search-level ones (beam, dataset, nas, ...) where the grammar splits them
    conditions = [*query.conditions, *query.search_conditions]
    if not conditions:
        raise A4nnError(f"filter {filter_text!r} has no conditions; give e.g. 'beam=low&acc>99' or a SEARCH_ID")
    statement = (
        select(Architecture.id, Architecture.search_id)
        .join(Search, Search.id == Architecture.search_id)
        .outerjoin(Dataset, Dataset.id == Search.dataset_id)
        .outerjoin(Genome, Genome.id == Architecture.genome_id)
        .outerjoin(EngineConfig, EngineConfig.id == Search.engine_config_id)
        .where(*conditions)
        .order_by(Architecture.id)
    )
    with database.engine.connect() as connection:
        rows = connection.execute(statement, query.params).all()
    if not rows:
        raise A4nnError(f"filter {filter_text!r} matches no models; nothing to export")
    return sorted({int(r.search_id) for r in rows}), [int(r.id) for r in rows]


# ----------------------------------------------------------------------- writing
def environment() -> dict[str, Any]:
    """Python, platform and package versions of the exporting process (for reproduction)."""
    packages: dict[str, str] = {}
    for name in ENVIRONMENT_PACKAGES:
        try:
            packages[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return {"python": sys.version.split()[0], "implementation": platform.python_implementation(),
            "platform": platform.platform(), "machine": platform.machine(), "packages": packages}


def _json_text(value: Any) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return json.dumps(value, sort_keys=True, allow_nan=False)


def _write_table(frame: pd.DataFrame, folder: Path, name: str) -> None:
    """Write ``name``.parquet and ``name``.csv; JSON columns become JSON text in both."""
    frame = frame.copy()
    for column in JSON_COLUMNS:
        if column in frame.columns:
            frame[column] = frame[column].map(_json_text).astype(object)
    frame.to_parquet(folder / f"{name}.parquet", index=False)
    frame.to_csv(folder / f"{name}.csv", index=False)


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "search"


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _engine_doc(engine: EngineConfig | None) -> dict[str, Any] | None:
    if engine is None:
        return None
    return {"function": engine.function, "c_min": engine.c_min, "e_pred": engine.e_pred, "n": engine.n,
            "r": engine.r, "bounds": list(engine.bounds or []), "extra": dict(engine.extra or {}),
            "content_hash": engine.content_hash}


def _search_docs(database: Database, search_ids: list[int]) -> list[dict[str, Any]]:
    docs = []
    with database.session() as session:
        for search_id in search_ids:
            search = session.get(Search, search_id)
            dataset = search.dataset
            # public forms: no run folder, state path, cache folder or host name leaves the machine
            docs.append({
                "name": search.name, "nas": search.nas, "status": search.status,
                "config": public_config(search.config), "seed": search.seed, "code_version": search.code_version,
                "started_at": _iso(search.started_at), "finished_at": _iso(search.finished_at),
                "dataset": None if dataset is None else {"name": dataset.name, "kind": dataset.kind,
                                                          "beam": dataset.beam,
                                                          "attributes": public_attributes(dataset.attributes)},
                "engine_config": _engine_doc(search.engine_config),
            })
    return docs


def _genome_tables(database: Database, genome_ids: set[int], search_names: dict[int, str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Genomes used by the exported networks plus their direct parents, and the edges between them."""
    with database.engine.connect() as connection:
        edges = connection.execute(
            select(GenomeParent.child_id, GenomeParent.parent_id, GenomeParent.operator, GenomeParent.search_id)
            .where(GenomeParent.child_id.in_(sorted(genome_ids))).order_by(GenomeParent.id)
        ).all() if genome_ids else []
        wanted = genome_ids | {edge.parent_id for edge in edges}
        genomes = connection.execute(
            select(Genome.id, Genome.hash, Genome.encoding, Genome.bits).where(Genome.id.in_(sorted(wanted)))
        ).all() if wanted else []
    hash_of = {g.id: g.hash for g in genomes}
    genome_frame = pd.DataFrame([{"hash": g.hash, "encoding": g.encoding, "bits": g.bits} for g in genomes],
                                columns=GENOME_COLUMNS).sort_values("hash").reset_index(drop=True)
    parent_frame = pd.DataFrame(
        [{"child_hash": hash_of[e.child_id], "parent_hash": hash_of[e.parent_id], "operator": e.operator,
          "search": search_names.get(e.search_id) if e.search_id is not None else None} for e in edges],
        columns=PARENT_COLUMNS).sort_values(["child_hash", "parent_hash", "operator"]).reset_index(drop=True)
    return genome_frame, parent_frame


def _uri_path(uri: str) -> Path:
    parsed = urlparse(uri)
    return Path(unquote(parsed.path)) if parsed.scheme in ("file", "") else Path(uri)


def _run_dirs(database: Database, search_ids: list[int]) -> dict[str, str]:
    """Each exported search's run folder by name (checkpoint locations are published relative to it)."""
    with database.engine.connect() as connection:
        rows = connection.execute(select(Search.name, Search.config).where(Search.id.in_(search_ids))).all()
    return {row.name: str((row.config or {}).get("run_dir")) for row in rows if (row.config or {}).get("run_dir")}


def _checkpoint_table(database: Database, keys: Mapping[int, tuple[str, int, int]], mode: str | None,
                      out: Path, run_dirs: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Checkpoint metadata of the exported networks; copies the files when ``mode`` asks for them.

    ``source_uri`` is published relative to the search's run folder (or as a bare file
    name), never as this machine's absolute path.
    """
    run_dirs = run_dirs or {}
    with database.engine.connect() as connection:
        rows = connection.execute(
            select(Checkpoint.architecture_id, Checkpoint.epoch, Checkpoint.format, Checkpoint.sha256,
                   Checkpoint.size_bytes, Checkpoint.uri)
            .where(Checkpoint.architecture_id.in_(sorted(keys))).order_by(Checkpoint.architecture_id, Checkpoint.epoch)
        ).all() if keys else []
    final_epoch: dict[int, float] = {}
    for row in rows:
        final_epoch[row.architecture_id] = max(row.epoch, final_epoch.get(row.architecture_id, row.epoch))
    records = []
    for row in rows:
        search, generation, index = keys[row.architecture_id]
        copied = ""
        if mode == "per-epoch" or (mode == "final" and row.epoch == final_epoch[row.architecture_id]):
            source = _uri_path(row.uri)
            if source.is_symlink():
                raise A4nnError(f"checkpoint {source} of {search} generation {generation} index {index} "
                                f"epoch {row.epoch:g} is a symlink; refusing to copy it into a bundle")
            if not source.is_file():
                raise A4nnError(f"checkpoint {source} of {search} generation {generation} index {index} "
                                f"epoch {row.epoch:g} is missing on disk")
            if file_sha256(source) != row.sha256:
                raise A4nnError(f"checkpoint {source} no longer matches the sha256 recorded for it; "
                                f"the record trail and the file disagree")
            relative = Path("checkpoints") / _safe(search) / f"g{generation:03d}_i{index:04d}_e{row.epoch:g}{source.suffix}"
            (out / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, out / relative)
            copied = relative.as_posix()
        records.append({"search": search, "generation": generation, "index": index, "epoch": row.epoch,
                        "format": row.format, "sha256": row.sha256, "size_bytes": row.size_bytes,
                        "source_uri": public_checkpoint_path(row.uri, run_dirs.get(search)) or "", "file": copied})
    return pd.DataFrame(records, columns=CHECKPOINT_COLUMNS)


def _keyed(frame: pd.DataFrame, keys: Mapping[int, tuple[str, int, int]], columns: list[str]) -> pd.DataFrame:
    frame = frame.copy()
    for position, name in enumerate(KEY):
        frame[name] = [keys[int(a)][position] for a in frame["architecture_id"]] if len(frame) else []
    return frame[columns].sort_values(KEY + ["epoch"], kind="stable").reset_index(drop=True)


def export_bundle(
    database: Database,
    search: int | str | None,
    out: Path | str,
    with_checkpoints: str | None = None,
    *,
    filter_text: str | None = None,
    record: bool = True,
    progress: Callable[[str], None] | None = None,
) -> ExportResult:
    """Write the bundle of one search (id or name) or of the models a filter selects into ``out``.

    ``out`` must be absent or empty so a bundle never mixes two exports. With
    ``record`` the export is logged in ``publications`` (target ``bundle``) of every
    search it covers, so the database knows where its record trail went.
    """
    if (search is None) == (filter_text is None):
        raise A4nnError("give exactly one of a SEARCH_ID or --filter")
    if with_checkpoints not in (None, *CHECKPOINT_MODES):
        raise A4nnError(f"--with-checkpoints must be one of {', '.join(CHECKPOINT_MODES)}")
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise A4nnError(f"{out} exists and is not an empty folder; choose a new folder for the bundle")
    report = progress or (lambda _line: None)

    if filter_text is not None:
        search_ids, architecture_ids = select_architectures(database, filter_text)
        architectures = architectures_frame(database, search_ids)
        architectures = architectures[architectures["id"].isin(architecture_ids)].reset_index(drop=True)
    else:
        search_ids = [resolve_search(database, search)]  # type: ignore[arg-type]
        architectures = architectures_frame(database, search_ids[0])
    docs = _search_docs(database, search_ids)
    search_names = {sid: doc["name"] for sid, doc in zip(search_ids, docs)}
    keys = {int(r.id): (r.search_name, int(r.generation), int(r.index)) for r in architectures.itertuples()}
    ids = list(keys)
    report(f"exporting {len(ids)} models of {len(search_ids)} search(es)")

    out.mkdir(parents=True, exist_ok=True)
    genome_ids = {int(g) for g in architectures["genome_id"].dropna()}
    genomes, parents = _genome_tables(database, genome_ids, search_names)
    with database.engine.connect() as connection:
        hash_of_id = dict(connection.execute(select(Genome.id, Genome.hash).where(Genome.id.in_(sorted(genome_ids)))).all()) \
            if genome_ids else {}
    architectures = architectures.rename(columns={"search_name": "search"})
    architectures["source_id"] = architectures["id"]  # the exporting database's id: informational, never a key
    architectures["genome_hash"] = [hash_of_id.get(int(g)) if pd.notna(g) else None for g in architectures["genome_id"]]
    architectures = architectures[ARCHITECTURE_COLUMNS].sort_values(KEY, kind="stable").reset_index(drop=True)

    if filter_text is None:
        epochs = epochs_frame(database, search_id=search_ids[0])
        predictions = predictions_frame(database, search_id=search_ids[0])
    else:
        epochs = epochs_frame(database, architecture_ids=ids)
        predictions = predictions_frame(database, architecture_ids=ids)
    epochs = _keyed(epochs, keys, EPOCH_COLUMNS)
    predictions = _keyed(predictions, keys, PREDICTION_COLUMNS)
    checkpoints = _checkpoint_table(database, keys, with_checkpoints, out, _run_dirs(database, search_ids))

    for name, frame in (("architectures", architectures), ("epochs", epochs), ("predictions", predictions),
                        ("genomes", genomes), ("genome_parents", parents), ("checkpoints", checkpoints)):
        _write_table(frame, out, name)
    from a4nn.commons.models.bundled import evaluations_frame

    _write_table(evaluations_frame(database, keys), out, "evaluations")  # re-evaluations (revision 0003)
    created = datetime.now(timezone.utc).isoformat(timespec="seconds")
    search_doc = {"bundle_format": BUNDLE_FORMAT, "exported_at": created,
                  "exported_by": {"a4nn_commons": __version__, "environment": environment()},
                  "selection": {"search": None if search is None else str(search), "filter": filter_text,
                                "checkpoints": with_checkpoints},
                  "searches": docs}
    (out / "search.json").write_text(json.dumps(search_doc, indent=2, sort_keys=False, default=str) + "\n")
    engines = {doc["name"]: doc["engine_config"] for doc in docs}
    (out / "engine_config.json").write_text(json.dumps(engines, indent=2) + "\n")
    summary = (f"Record trail of search {docs[0]['name']!r} ({docs[0]['nas']})." if filter_text is None else
               f"Models matching `{filter_text}` from searches {', '.join(repr(d['name']) for d in docs)}.")
    summary += (f" {len(architectures)} networks, {len(epochs)} epoch rows, {len(predictions)} engine predictions,"
                f" {int((checkpoints['file'] != '').sum()) if len(checkpoints) else 0} checkpoint files.")
    (out / "README.md").write_text(README.format(summary=summary, created=created, version=__version__,
                                                 format=BUNDLE_FORMAT))
    manifest = write_manifest(out)
    digest = manifest_digest(out)
    report(f"wrote {len(manifest['files'])} files to {out}; manifest sha256 {digest}")
    if record:
        recorder = Recorder(database)
        for search_id in search_ids:
            recorder.log_publication(search_id, "bundle", {**manifest, "manifest_sha256": digest},
                                     url=out.resolve().as_uri())
    return ExportResult(out, search_ids, len(architectures), len(epochs), len(predictions),
                        int((checkpoints["file"] != "").sum()) if len(checkpoints) else 0, manifest, digest)


# ---------------------------------------------------------------------- manifest
def _walk_bundle(folder: Path) -> tuple[list[str], list[str]]:
    """(regular files, symlinks) below ``folder`` as POSIX paths, never following a symlink."""
    files, links = [], []
    for directory, subdirs, names in os.walk(folder, followlinks=False):
        base = Path(directory)
        for name in [*subdirs, *names]:
            path = base / name
            relative = path.relative_to(folder).as_posix()
            if path.is_symlink():
                links.append(relative)
            elif path.is_file() and relative not in NOT_IN_MANIFEST:
                files.append(relative)
    return sorted(files), sorted(links)


def _bundle_files(folder: Path) -> list[str]:
    return _walk_bundle(folder)[0]


def write_manifest(folder: Path | str) -> dict[str, Any]:
    """Write MANIFEST.json listing sha256 and size of every file in ``folder``; returns it."""
    folder = Path(folder)
    files, links = _walk_bundle(folder)
    if links:
        raise A4nnError(f"{folder} holds symlinks ({', '.join(links[:3])}); a bundle carries regular files only")
    entries = {name: {"sha256": file_sha256(folder / name), "size": (folder / name).stat().st_size} for name in files}
    manifest = {"format": BUNDLE_FORMAT, "version": MANIFEST_VERSION, "files": entries}
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def manifest_digest(folder: Path | str) -> str:
    """sha256 of the bundle's MANIFEST.json bytes: the one value that pins every file of the bundle.

    Publish it (a paper, a DOI record) and anyone can check a copy with
    ``a4nn-commons verify BUNDLE --expect DIGEST``: a file edited and the manifest
    rehashed gives another digest.
    """
    path = Path(folder) / MANIFEST
    if not path.is_file() or path.is_symlink():
        raise InputFormatError(f"not a bundle: {MANIFEST} is missing", path=str(folder))
    return file_sha256(path)


def _manifest_problem(manifest: Any) -> str | None:
    """What is wrong with a parsed manifest's own fields, or None."""
    if not isinstance(manifest, dict):
        return "the manifest is not a JSON object"
    if manifest.get("format") != BUNDLE_FORMAT:
        return f"unsupported manifest format {manifest.get('format')!r}; this a4nn-commons reads {BUNDLE_FORMAT!r}"
    version = manifest.get("version", 1)
    if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= MANIFEST_VERSION:
        return f"unsupported manifest version {version!r}; this a4nn-commons reads versions 1 to {MANIFEST_VERSION}"
    files = manifest.get("files")
    if not isinstance(files, dict):
        return "the manifest has no 'files' object"
    for name, entry in files.items():
        try:
            check_relative(name)
        except UnsafePathError as exc:
            return f"files entry {name!r}: {exc}"
        if name in NOT_IN_MANIFEST:
            return f"files entry {name!r}: this file cannot be listed in its own manifest"
        if not isinstance(entry, dict) or not isinstance(entry.get("sha256"), str) \
                or not _HEX.fullmatch(entry["sha256"]):
            return f"files entry {name!r}: sha256 must be 64 lowercase hex digits"
        size = entry.get("size")
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            return f"files entry {name!r}: size must be a non-negative integer"
    return None


def read_manifest(folder: Path | str) -> dict[str, Any]:
    """The parsed, validated manifest of a bundle; a missing or malformed one is an :class:`InputFormatError`."""
    path = Path(folder) / MANIFEST
    if path.is_symlink():
        raise InputFormatError(f"{MANIFEST} is a symlink; refused", path=str(folder))
    if not path.is_file():
        raise InputFormatError(f"not a bundle: {MANIFEST} is missing", path=str(folder))
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InputFormatError(f"not a valid manifest ({exc.__class__.__name__}: {exc})", path=str(path)) from None
    problem = _manifest_problem(manifest)
    if problem:
        raise InputFormatError(problem, path=str(path))
    return manifest


def _expected_digest(expect: str) -> str:
    text = expect.strip().lower()
    text = text.split(":", 1)[1] if text.startswith(("sha256:", "sha-256:")) else text
    if not _HEX.fullmatch(text):
        raise A4nnError(f"--expect {expect!r} is not a sha256 digest (64 hex digits)")
    return text


def verify_bundle(folder: Path | str, expect: str | None = None) -> VerifyReport:
    """Compare a bundle folder with its MANIFEST.json: missing, extra and changed files, symlinks.

    ``report.manifest_sha256`` is the manifest's own digest; with ``expect`` (a
    published value) a different digest makes the report fail, naming both.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return VerifyReport(error=f"{folder} is not a folder")
    try:
        expected = read_manifest(folder)["files"]
        digest = manifest_digest(folder)
    except InputFormatError as exc:
        return VerifyReport(error=str(exc))
    files, links = _walk_bundle(folder)
    present = set(files)
    report = VerifyReport(missing=sorted(set(expected) - present - set(links)), extra=sorted(present - set(expected)),
                          symlinks=links, manifest_sha256=digest)
    if expect is not None:
        wanted = _expected_digest(expect)
        report.expected_sha256 = wanted
        if wanted != digest:
            report.error = f"manifest sha256 {digest} does not match the expected {wanted}"
    for name in sorted(set(expected) & present):
        path = folder / name
        if path.stat().st_size != expected[name]["size"] or file_sha256(path) != expected[name]["sha256"]:
            report.changed.append(name)
    return report


# ----------------------------------------------------------------------- import
def _number(row: Mapping[str, Any], field_name: str) -> float | None:
    """A numeric cell as the Recorder wants it: NaN/inf only where ``nonfinite`` says so, else None."""
    flags = row.get("nonfinite") or {}
    if field_name in flags:
        return float(flags[field_name])
    value = row.get(field_name)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return float(value)


def _scalar(value: Any) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return value.item() if hasattr(value, "item") else value


def _load_json_cell(value: Any, where: str) -> Any:
    value = _scalar(value)
    if value is None or value == "":
        return None
    try:
        return json.loads(value)
    except (TypeError, ValueError):
        raise InputFormatError(f"not JSON: {str(value)[:60]!r}", path=where) from None


def _read_tables(folder: Path) -> dict[str, list[dict[str, Any]]]:
    tables: dict[str, list[dict[str, Any]]] = {}
    for name in TABLES:
        path = folder / f"{name}.parquet"
        try:
            frame = pd.read_parquet(path)
        except Exception as exc:  # pyarrow raises several types for a damaged file
            raise InputFormatError(f"cannot read Parquet table: {exc}", path=str(path)) from None
        rows = frame.astype(object).where(frame.notna(), None).to_dict("records")
        for row in rows:
            for column in JSON_COLUMNS:
                if column in row:
                    row[column] = _load_json_cell(row[column], f"{path} column {column}")
        tables[name] = rows
    return tables


def _read_json(folder: Path, name: str) -> Any:
    path = folder / name
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InputFormatError(f"cannot read: {exc}", path=str(path)) from None


def _refuse_different_searches(database: Database, searches: list[dict[str, Any]]) -> None:
    """A same-named search in the target must be this one (a re-import), not an unrelated run.

    Importing is idempotent through the Recorder's natural keys, so importing a
    bundle twice adds nothing; but merging two different searches that merely share
    a name would corrupt both record trails.
    """
    by_name = {entry["name"]: entry for entry in searches}
    with database.engine.connect() as connection:
        existing = connection.execute(
            select(Search.name, Search.nas, Search.seed, Search.config).where(Search.name.in_(list(by_name)))
        ).all()
    for row in existing:
        entry = by_name[row.name]
        # bundles carry public configurations (no run folder), so public forms are compared
        if (row.nas, row.seed, public_config(row.config)) != (entry["nas"], entry.get("seed"),
                                                              public_config(entry.get("config"))):
            raise A4nnError(f"the target database already holds a different search named {row.name!r} "
                            f"(nas, seed or config differ); import into another database or rename that search")


def _checkpoint_files(folder: Path, rows: list[dict[str, Any]]) -> dict[int, Path]:
    """The bundle file of every checkpoint row that names one, checked to stay inside the bundle.

    ``file`` must be a relative path to a regular file in the bundle (no ``..``, no
    absolute or Windows path, no symlink) whose sha256 is the row's; ``source_uri`` is
    only information, but it must be relative too, so that no host path is imported.
    A bad entry fails the whole import, naming the table, row and column.
    """
    found: dict[int, Path] = {}
    for position, row in enumerate(rows):
        where = (f"checkpoints.parquet row {position + 1} ({row.get('search')} generation {row.get('generation')} "
                 f"index {row.get('index')} epoch {row.get('epoch')})")
        source = row.get("source_uri")
        if source:
            try:
                check_relative(source)
            except UnsafePathError as exc:
                raise InputFormatError(f"{where}, column source_uri: {exc}", path=str(folder)) from None
        if not row.get("file"):
            continue
        try:
            path = bundle_file(folder, row["file"])
        except (UnsafePathError, OSError) as exc:
            raise InputFormatError(f"{where}, column file: {exc}", path=str(folder)) from None
        if file_sha256(path) != row.get("sha256"):
            raise InputFormatError(f"{where}, column file: {row['file']!r} does not have the sha256 the row records",
                                   path=str(folder))
        found[position] = path
    return found


def import_bundle(database: Database, bundle_dir: Path | str) -> ImportResult:
    """Import a verified bundle into ``database`` in one transaction (all rows or none).

    Writes go through the Recorder, so natural keys apply: genomes, data sets and
    engine configurations already in the target are shared, and importing the same
    bundle again adds nothing. A *different* search of the same name is refused.
    Checkpoint rows are restored for the checkpoint files the bundle carries
    (their URIs point into the bundle folder). A search keeps the start time it was
    exported with, NULL where the bundle says null (not recorded), never the import time.
    """
    folder = Path(bundle_dir)
    verified = verify_bundle(folder)
    if not verified.ok:
        raise InputFormatError("bundle does not match its manifest: " + "; ".join(verified.problems()[:8]),
                               path=str(folder))
    doc = _read_json(folder, "search.json")
    if doc.get("bundle_format") != BUNDLE_FORMAT:
        raise InputFormatError(f"unsupported bundle format {doc.get('bundle_format')!r}; expected {BUNDLE_FORMAT}",
                               path=str(folder / "search.json"))
    tables = _read_tables(folder)
    checkpoint_files = _checkpoint_files(folder, tables["checkpoints"])
    _refuse_different_searches(database, doc["searches"])

    recorder = Recorder(database)
    search_ids: dict[str, int] = {}
    with recorder.transaction():
        for entry in doc["searches"]:
            dataset = entry.get("dataset")
            dataset_id = recorder.register_dataset(dataset["name"], dataset["kind"],
                                                   public_attributes(dataset.get("attributes"))) if dataset else None
            engine = entry.get("engine_config")
            engine_id = recorder.register_engine_config(
                engine["function"], engine["c_min"], engine["e_pred"], engine["n"], engine["r"],
                engine.get("bounds") or (), engine.get("extra")) if engine else None
            search_ids[entry["name"]] = recorder.start_search(
                # a run folder or state path in a (crafted) bundle would point at this machine: never imported
                entry["name"], entry["nas"], dataset_id, engine_id, public_config(entry.get("config")),
                seed=entry.get("seed"),
                code_version=entry.get("code_version"), host=entry.get("host"),
                status=entry.get("status", SearchStatus.RUNNING),
                started_at=_recorded_time(entry, "started_at", folder))
        genome_ids = {row["hash"]: recorder.register_genome(row["bits"], row["encoding"]) for row in tables["genomes"]}
        for row in tables["genome_parents"]:
            recorder.add_genome_parent(genome_ids[row["child_hash"]], genome_ids[row["parent_hash"]], row["operator"],
                                       search_ids.get(row["search"]) if row["search"] else None)
        architecture_ids: dict[tuple[str, int, int], int] = {}
        for row in tables["architectures"]:
            key = (row["search"], int(row["generation"]), int(row["index"]))
            architecture_id = recorder.start_architecture(
                search_ids[key[0]], index=key[2], generation=key[1],
                genome_id=genome_ids[row["genome_hash"]] if row["genome_hash"] else None,
                arch=row["arch"], train_params=row["train_params"], flops=_number(row, "flops"),
                n_params=None if row["n_params"] is None else int(row["n_params"]), device=row["device"])
            architecture_ids[key] = architecture_id
            if row["status"] in FINISHED_STATUSES:
                recorder.finish_architecture(
                    architecture_id, row["status"], final_acc=_number(row, "final_acc"),
                    predicted_acc=_number(row, "predicted_acc"), fitness=_number(row, "fitness"),
                    terminated_early=bool(row["terminated_early"]), stop_epoch=_number(row, "stop_epoch"),
                    wall_seconds=_number(row, "wall_seconds"), error=row["error"],
                    epochs_trained=_number(row, "epochs_trained"))

        def owner(row: Mapping[str, Any]) -> int:
            return architecture_ids[(row["search"], int(row["generation"]), int(row["index"]))]

        epochs = recorder.bulk_epochs(
            {"architecture_id": owner(row), "epoch": float(row["epoch"]),
             **{name: _number(row, name) for name in ("train_loss", "train_acc", "val_loss", "val_acc", "seconds")}}
            for row in tables["epochs"])
        predictions = recorder.bulk_predictions(
            {"architecture_id": owner(row), "epoch": float(row["epoch"]), "target_epoch": float(row["target_epoch"]),
             "function": row["function"], "value": _number(row, "value"), "seconds": _number(row, "seconds"),
             "params": _params(row["params"]), "converged": bool(row["converged"])}
            for row in tables["predictions"])
        restored = 0
        for position, row in enumerate(tables["checkpoints"]):
            if position in checkpoint_files:
                recorder.log_checkpoint(owner(row), float(row["epoch"]), checkpoint_files[position], row["format"])
                restored += 1
        from a4nn.commons.models.bundled import import_evaluations

        import_evaluations(recorder, folder, owner)
    return ImportResult(search_ids, len(architecture_ids), epochs, predictions, restored)


def _recorded_time(entry: Mapping[str, Any], key: str, folder: Path) -> datetime | None:
    """A search's time as exported (``_iso``): None stays None (not recorded), a naive one is UTC."""
    text = entry.get(key)
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text)
    except (TypeError, ValueError):
        raise InputFormatError(f"search {entry.get('name')!r}: {key} {text!r} is not an ISO 8601 time or null",
                               path=str(folder / "search.json")) from None
    return value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)


def _params(values: Iterable[Any] | None) -> list[float] | None:
    if values is None:
        return None
    return [None if v is None else float(v) for v in values]
