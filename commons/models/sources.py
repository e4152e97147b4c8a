"""The three places a recorded network can be read from: a lineage database, a bundle, the query service."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import pandas as pd
from sqlalchemy import select

from a4nn.errors import InputFormatError
from a4nn.commons.models.record import (CheckpointError, CheckpointRef, ModelNotFoundError, NetworkRecord,
                                        decoder_settings)
from a4nn.lineage.database import Database
from a4nn.lineage.models import Architecture, Checkpoint, Dataset, EngineConfig, Genome, Publication, Search
from a4nn.lineage.recorder import file_sha256


def _engine_doc(engine: EngineConfig | None) -> dict[str, Any] | None:
    if engine is None:
        return None
    return {"function": engine.function, "c_min": engine.c_min, "e_pred": engine.e_pred, "n": engine.n,
            "r": engine.r, "bounds": list(engine.bounds or []), "extra": dict(engine.extra or {})}


def _local_path(uri: str) -> Path:
    parsed = urlparse(uri)
    return Path(unquote(parsed.path)) if parsed.scheme in ("file", "") else Path(uri)


def _read_file(path: Path, record: NetworkRecord, checkpoint: CheckpointRef) -> bytes:
    if not path.is_file():
        raise CheckpointError(f"checkpoint file {path} of {record.label} epoch {checkpoint.epoch:g} is missing "
                              f"(expected sha256 {checkpoint.sha256})")
    return path.read_bytes()


class DatabaseSource:
    """Records straight from a lineage database; checkpoint files are read where the search wrote them."""

    def __init__(self, database: Database):
        self.database = database

    def record(self, model_id: Any) -> NetworkRecord:
        try:
            model_id = int(model_id)
        except (TypeError, ValueError):
            raise ModelNotFoundError(f"a model id is a number, got {model_id!r}") from None
        with self.database.session() as session:
            arch = session.get(Architecture, model_id)
            if arch is None:
                raise ModelNotFoundError(f"no model with id {model_id} in "
                                         f"{self.database.url.render_as_string(hide_password=True)}")
            search: Search = arch.search
            dataset: Dataset | None = search.dataset
            genome: Genome | None = arch.genome
            if genome is None:
                raise ModelNotFoundError(f"model {model_id} has no genome recorded; it cannot be rebuilt")
            checkpoints = session.scalars(select(Checkpoint).where(Checkpoint.architecture_id == model_id)
                                          .order_by(Checkpoint.epoch)).all()
            publications = session.scalars(select(Publication).where(Publication.search_id == search.id,
                                                                     Publication.persistent_id.is_not(None))
                                           .order_by(Publication.id)).all()
            attributes = dict(dataset.attributes or {}) if dataset else {}
            settings = decoder_settings(arch.arch or {}, arch.train_params or {}, search.config or {}, attributes)
            return NetworkRecord(
                model_id=model_id, bits=genome.bits, encoding=genome.encoding, **settings,
                arch=dict(arch.arch or {}), train_params=dict(arch.train_params or {}), flops=arch.flops,
                n_params=arch.n_params, final_acc=arch.final_acc, status=arch.status, generation=arch.generation,
                index=arch.index,
                search={"id": search.id, "name": search.name, "nas": search.nas, "config": dict(search.config or {}),
                        "seed": search.seed, "code_version": search.code_version, "status": search.status},
                engine_config=_engine_doc(search.engine_config),
                dataset=None if dataset is None else {"id": dataset.id, "name": dataset.name, "kind": dataset.kind,
                                                      "beam": dataset.beam, "attributes": attributes},
                checkpoints=[CheckpointRef(c.epoch, c.sha256, c.size_bytes, str(_local_path(c.uri)))
                             for c in checkpoints],
                publications=[{"target": p.target, "persistent_id": p.persistent_id, "url": p.url}
                              for p in publications],
                source=self.database.url.render_as_string(hide_password=True))

    def checkpoint_bytes(self, record: NetworkRecord, checkpoint: CheckpointRef) -> bytes:
        return _read_file(Path(checkpoint.location), record, checkpoint)


def parse_bundle_key(model_id: Any) -> tuple[str, int, int] | int:
    """A bundle model: ``(search, generation, index)``, ``"SEARCH:GEN:INDEX"`` or the exporting database's id."""
    if isinstance(model_id, tuple) and len(model_id) == 3:
        return str(model_id[0]), int(model_id[1]), int(model_id[2])
    text = str(model_id)
    if text.isdigit():
        return int(text)
    parts = text.rsplit(":", 2)
    if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
        return parts[0], int(parts[1]), int(parts[2])
    raise ModelNotFoundError(f"a bundle model is SEARCH:GENERATION:INDEX or the exporting database's id, "
                             f"got {model_id!r}")


class BundleSource:
    """Records from an export bundle folder; the files read are checked against MANIFEST.json first."""

    TABLES = ("architectures.parquet", "genomes.parquet", "checkpoints.parquet", "search.json")

    def __init__(self, folder: Path | str):
        from a4nn.commons.bundle import read_manifest

        self.folder = Path(folder)
        self.manifest = read_manifest(self.folder)["files"]
        for name in self.TABLES:
            self._verified(name)
        self.architectures = pd.read_parquet(self.folder / "architectures.parquet")
        self.genomes = pd.read_parquet(self.folder / "genomes.parquet").set_index("hash")
        self.checkpoints = pd.read_parquet(self.folder / "checkpoints.parquet")
        self.searches = {doc["name"]: doc for doc in json.loads((self.folder / "search.json").read_text())["searches"]}

    def _verified(self, name: str) -> Path:
        path = self.folder / name
        entry = self.manifest.get(name)
        if entry is None or not path.is_file():
            raise InputFormatError(f"bundle file {name} is missing or not in MANIFEST.json", path=str(self.folder))
        if path.stat().st_size != entry["size"] or file_sha256(path) != entry["sha256"]:
            raise InputFormatError(f"bundle file {name} does not match MANIFEST.json (sha256 {entry['sha256']})",
                                   path=str(self.folder))
        return path

    def _row(self, model_id: Any) -> pd.Series:
        key = parse_bundle_key(model_id)
        frame = self.architectures
        if isinstance(key, int):
            if "source_id" not in frame.columns:
                raise ModelNotFoundError(f"bundle {self.folder} predates model ids; name the model as "
                                         f"SEARCH:GENERATION:INDEX")
            rows = frame[frame["source_id"] == key]
        else:
            rows = frame[(frame["search"] == key[0]) & (frame["generation"] == key[1]) & (frame["index"] == key[2])]
        if rows.empty:
            raise ModelNotFoundError(f"no model {model_id} in bundle {self.folder}")
        return rows.iloc[0]

    def record(self, model_id: Any) -> NetworkRecord:
        row = self._row(model_id)
        key = (str(row["search"]), int(row["generation"]), int(row["index"]))
        if not isinstance(row["genome_hash"], str) or row["genome_hash"] not in self.genomes.index:
            raise ModelNotFoundError(f"model {model_id} in bundle {self.folder} has no genome; it cannot be rebuilt")
        genome = self.genomes.loc[row["genome_hash"]]
        doc = self.searches.get(key[0], {})
        dataset = doc.get("dataset")
        arch, train_params = json.loads(row["arch"] or "{}"), json.loads(row["train_params"] or "{}")
        settings = decoder_settings(arch, train_params, doc.get("config") or {},
                                    (dataset or {}).get("attributes") or {})
        mine = self.checkpoints[(self.checkpoints["search"] == key[0]) & (self.checkpoints["generation"] == key[1])
                                & (self.checkpoints["index"] == key[2])].sort_values("epoch")
        refs = [CheckpointRef(float(c.epoch), str(c.sha256), int(c.size_bytes),
                              str(self.folder / c.file) if c.file else f"{self.folder} (not exported: {c.source_uri})",
                              available=bool(c.file)) for c in mine.itertuples()]
        source_id = row.get("source_id")
        return NetworkRecord(
            model_id=key, bits=str(genome["bits"]), encoding=str(genome["encoding"]), **settings, arch=arch,
            train_params=train_params, flops=_float(row["flops"]), n_params=_int(row["n_params"]),
            final_acc=_float(row["final_acc"]), status=row["status"], generation=key[1], index=key[2],
            search={"name": key[0], "nas": doc.get("nas"), "config": doc.get("config") or {}, "seed": doc.get("seed"),
                    "code_version": doc.get("code_version"), "status": doc.get("status"),
                    "source_model_id": None if source_id is None or pd.isna(source_id) else int(source_id)},
            engine_config=doc.get("engine_config"), dataset=dataset, checkpoints=refs,
            publications=[], source=str(self.folder))

    def checkpoint_bytes(self, record: NetworkRecord, checkpoint: CheckpointRef) -> bytes:
        if not checkpoint.available:
            raise CheckpointError(f"bundle {self.folder} does not carry the checkpoint of {record.label} epoch "
                                  f"{checkpoint.epoch:g}; export with --with-checkpoints final or per-epoch")
        return _read_file(Path(checkpoint.location), record, checkpoint)


def _float(value: Any) -> float | None:
    return None if value is None or pd.isna(value) else float(value)


def _int(value: Any) -> int | None:
    return None if value is None or pd.isna(value) else int(value)


class ServiceSource:
    """Records from a running query service through :class:`a4nn.commons.client.Client`."""

    def __init__(self, client: Any):
        self.client = client

    def record(self, model_id: Any) -> NetworkRecord:
        from a4nn.commons.client import ServiceError

        try:
            detail = self.client.model(int(model_id))
        except ServiceError as exc:
            if exc.status_code == 404:
                raise ModelNotFoundError(f"no model with id {model_id} at {self.client.base_url}") from None
            raise
        if not detail.get("genome"):
            raise ModelNotFoundError(f"model {model_id} has no genome recorded; it cannot be rebuilt")
        search = self.client.search(int(detail["search_id"]))
        attributes = detail.get("dataset_attributes") or {}
        arch, train_params = detail.get("arch") or {}, detail.get("train_params") or {}
        settings = decoder_settings(arch, train_params, search.get("config") or {}, attributes)
        checkpoints = self.client.checkpoints(int(model_id))
        refs = [CheckpointRef(float(c.epoch), str(c.sha256), int(c.size_bytes), f"{self.client.base_url}{c.download}")
                for c in checkpoints.itertuples()] if len(checkpoints) else []
        return NetworkRecord(
            model_id=int(model_id), bits=detail["genome"], encoding=detail.get("genome_encoding") or "nsga-net-macro/v1",
            **settings, arch=arch, train_params=train_params, flops=detail.get("flops"),
            n_params=detail.get("n_params"), final_acc=detail.get("final_acc"), status=detail.get("status"),
            generation=detail.get("generation"), index=detail.get("index"),
            search={"id": search.get("id"), "name": search.get("name"), "nas": search.get("nas"),
                    "config": search.get("config") or {}, "seed": search.get("seed"),
                    "code_version": search.get("code_version"), "status": search.get("status")},
            engine_config=detail.get("engine_config"),
            dataset=None if detail.get("dataset") is None else {
                "name": detail["dataset"], "beam": detail.get("beam"), "attributes": attributes},
            checkpoints=refs, source=self.client.base_url)

    def checkpoint_bytes(self, record: NetworkRecord, checkpoint: CheckpointRef) -> bytes:
        return self.client.download_checkpoint(int(record.model_id), checkpoint.epoch)


def open_source(source: Any) -> Any:
    """A record source for a Database, a database URL, a bundle folder, a service URL or a Client."""
    from a4nn.commons.client import Client

    if isinstance(source, (DatabaseSource, BundleSource, ServiceSource)):
        return source
    if isinstance(source, Database):
        return DatabaseSource(source)
    if isinstance(source, Client):
        return ServiceSource(source)
    text = str(source)
    if text.startswith(("http://", "https://")):
        return ServiceSource(Client(text))
    if "://" in text:
        return DatabaseSource(Database.open(text))
    path = Path(text)
    if path.is_dir():
        return BundleSource(path)
    raise InputFormatError("not a model source: expected a database URL, a bundle folder or an http:// service URL",
                           path=text)
