"""The ingest driver: find files (folders, .zip, .tar.gz), one transaction per file, a summary.

A malformed file is reported with its name and line and nothing of it is written;
the other files still ingest (``strict=True`` makes the first error fatal). Natural
keys in the Recorder make a second ingest of the same files add nothing.

Readers are plain modules with three functions:

* ``candidate(path) -> bool``: the file name could hold this format (cheap, by suffix/name);
* ``matches(path) -> bool``: auto-detection (name pattern or header sniffing);
* ``ingest_file(recorder, path, source, context) -> (networks, epoch rows)``: write one
  file inside the transaction the driver opened (raise InputFormatError on bad input).
"""
from __future__ import annotations

import tarfile
import tempfile
import time
import zipfile
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Hashable, Iterable, Iterator

from sqlalchemy.engine import Connection

from a4nn.commons.ingest import icpp23, random_nn
from a4nn.errors import A4nnError, InputFormatError
from a4nn.lineage.database import Database
from a4nn.lineage.recorder import Recorder

READERS: dict[str, ModuleType] = {"icpp23": icpp23, "random-nn": random_nn}
FORMATS = ("auto", *READERS)
ARCHIVE_SUFFIXES = (".zip", ".tar.gz", ".tgz", ".tar")


@dataclass
class IngestSummary:
    """What one ingest run did; ``skipped`` holds one ``"<file>:<line>: <problem>"`` per rejected file."""

    files: int = 0
    networks: int = 0
    rows: int = 0
    skipped: list[str] = field(default_factory=list)
    ignored: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.skipped

    def line(self) -> str:
        """The one-line summary the CLI prints."""
        return (f"ingested {self.files} files: {self.networks} networks, {self.rows} epoch rows, "
                f"{len(self.skipped)} skipped, {self.ignored} not recognised, {self.seconds:.1f} s")


class RunCache:
    """Ids learned during a run (dataset, search, network-ID -> index) so later files skip look-ups.

    Values a file stages become visible to later files only once that file's
    transaction committed; a rejected file's values are discarded with its rows.
    """

    def __init__(self) -> None:
        self._committed: dict[Hashable, Any] = {}
        self._pending: dict[Hashable, Any] = {}

    def get(self, key: Hashable, default: Any = None) -> Any:
        if key in self._pending:
            return self._pending[key]
        return self._committed.get(key, default)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._pending or key in self._committed

    def stage(self, key: Hashable, value: Any) -> None:
        self._pending[key] = value

    def remember(self, key: Hashable, value: Any) -> None:
        """Store a value read from committed rows (valid whatever happens to the current file)."""
        self._committed[key] = value

    def commit(self) -> None:
        self._committed.update(self._pending)
        self._pending.clear()

    def discard(self) -> None:
        self._pending.clear()


@dataclass
class FileContext:
    """What a reader knows about the file besides its path."""

    collection: str
    cache: RunCache
    recorder: Recorder

    @property
    def connection(self) -> Connection:
        """The connection of the file's transaction (for the few statements the Recorder has no method for)."""
        connection = self.recorder.connection
        if connection is None:
            raise RuntimeError("FileContext.connection used outside the per-file transaction")
        return connection


@dataclass(frozen=True)
class Candidate:
    path: Path
    source: str
    collection: str


def _is_archive(path: Path) -> bool:
    return path.name.endswith(ARCHIVE_SUFFIXES)


def _archive_stem(path: Path) -> str:
    for suffix in ARCHIVE_SUFFIXES:
        if path.name.endswith(suffix):
            return path.name[: -len(suffix)]
    return path.stem


def _hidden(path: Path, root: Path) -> bool:
    parts = path.relative_to(root).parts
    return any(part.startswith(".") or part == "__MACOSX" for part in parts)


def _files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and not _hidden(p, folder))


def _unpack(path: Path, stack: ExitStack) -> Iterator[Candidate]:
    folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="a4nn-ingest-")))
    try:
        if path.name.endswith(".zip"):
            with zipfile.ZipFile(path) as archive:
                archive.extractall(folder)
        else:
            with tarfile.open(path) as archive:
                archive.extractall(folder, filter="data")
    except (zipfile.BadZipFile, tarfile.TarError, OSError) as exc:
        raise InputFormatError(f"cannot unpack archive ({exc})", path=str(path)) from None
    collection = _archive_stem(path)
    for member in _files_under(folder):
        yield Candidate(member, f"{path}!{member.relative_to(folder)}", collection)


def discover(paths: Iterable[Path], stack: ExitStack) -> Iterator[Candidate]:
    """Every file under ``paths`` with the name used in messages and its collection.

    The collection (what a random-NN search is named after) is the folder or archive
    given on the command line, or the parent folder of a single file; archives found
    inside a folder are their own collection.
    """
    for path in paths:
        path = Path(path)
        if not path.exists():
            raise InputFormatError("no such file or folder", path=str(path))
        if path.is_dir():
            folder_name = path.resolve().name
            for candidate in _files_under(path):
                if _is_archive(candidate):
                    yield from _unpack(candidate, stack)
                else:
                    yield Candidate(candidate, str(candidate), folder_name)
        elif _is_archive(path):
            yield from _unpack(path, stack)
        else:
            yield Candidate(path, str(path), path.resolve().parent.name)


def _reader(path: Path, fmt: str) -> ModuleType | None:
    if fmt != "auto":
        return READERS[fmt] if READERS[fmt].candidate(path) else None
    for reader in READERS.values():
        if reader.candidate(path) and reader.matches(path):
            return reader
    return None


def ingest_paths(database: Database, paths: Iterable[Path | str], format: str = "auto", strict: bool = False,
                 progress: bool = True, report: Callable[[str], None] | None = None) -> IngestSummary:
    """Ingest every recognised file under ``paths`` (files, folders, .zip/.tar.gz archives).

    ``format="auto"`` recognises ICPP'23 logs by file name and random-NN tables by
    their header; files it does not recognise are counted in ``ignored``. Each file is
    one transaction: a malformed one is listed in ``skipped`` (``strict=True``: raised)
    and leaves no row behind.
    """
    if format not in FORMATS:
        raise A4nnError(f"unknown format {format!r}; choose from {', '.join(FORMATS)}")
    recorder = Recorder(database)
    cache = RunCache()
    summary = IngestSummary()
    start = time.perf_counter()
    with ExitStack() as stack:
        jobs: list[tuple[Candidate, ModuleType]] = []
        for candidate in discover([Path(p) for p in paths], stack):
            reader = _reader(candidate.path, format)
            if reader is None:
                summary.ignored += 1
            else:
                jobs.append((candidate, reader))
        iterator: Iterable[tuple[Candidate, ModuleType]] = jobs
        if progress:
            from tqdm import tqdm

            iterator = tqdm(jobs, desc="ingest", unit="file")
        for candidate, reader in iterator:
            context = FileContext(candidate.collection, cache, recorder)
            try:
                with recorder.transaction():
                    networks, rows = reader.ingest_file(recorder, candidate.path, candidate.source, context)
            except InputFormatError as exc:
                cache.discard()
                if strict:
                    raise
                summary.skipped.append(str(exc))
                if report:
                    report(f"skipped: {exc}")
                continue
            except BaseException:
                cache.discard()
                raise
            cache.commit()
            summary.files += 1
            summary.networks += networks
            summary.rows += rows
    summary.seconds = time.perf_counter() - start
    return summary
