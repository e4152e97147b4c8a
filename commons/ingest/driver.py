"""The ingest driver: find files (folders, .zip, .tar.gz), one transaction per file, a summary.

The same per-file rules hold for loose files, folders and archive members: a
malformed file is reported with its name and line and nothing of it is written; the
other files still ingest (``strict=True`` makes the first error fatal). An archive
that cannot be unpacked, or would unpack past its :class:`ArchiveLimits`, is reported
by name like a malformed file and none of its members is ingested. Natural keys and
the readers' content hashes make a second ingest of the same files add nothing and
rewrite nothing; the summary tells added from already present.

Readers are plain modules with three functions:

* ``candidate(path) -> bool``: the file name could hold this format (cheap, by suffix/name);
* ``matches(path) -> bool``: auto-detection (name pattern or header sniffing);
* ``ingest_file(recorder, path, source, context) -> FileResult``: write one file inside
  the transaction the driver opened (raise InputFormatError on bad input).
"""
from __future__ import annotations

import os
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Hashable, Iterable, Iterator

from a4nn.commons.ingest import icpp23, random_nn
from a4nn.commons.ingest.archives import ArchiveLimits, archive_stem, is_archive, unpack
from a4nn.commons.ingest.table import FileResult
from a4nn.errors import A4nnError, InputFormatError
from a4nn.lineage.database import Database
from a4nn.lineage.recorder import Recorder

READERS: dict[str, ModuleType] = {"icpp23": icpp23, "random-nn": random_nn}
FORMATS = ("auto", *READERS)


@dataclass
class IngestSummary:
    """What one ingest run did.

    ``networks`` and ``rows`` count what was written (new networks, or a corrected table
    replacing its own earlier version: ``replaced``); ``present`` counts networks found
    already stored and left untouched. ``skipped`` holds one ``"<file>:<line>: <problem>"``
    per rejected file or archive, ``unrecognised`` the names of files no reader took.
    """

    files: int = 0
    networks: int = 0
    rows: int = 0
    present: int = 0
    replaced: int = 0
    skipped: list[str] = field(default_factory=list)
    unrecognised: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.skipped

    @property
    def ignored(self) -> int:
        """How many files were not recognised."""
        return len(self.unrecognised)

    def line(self) -> str:
        """The one-line summary the CLI prints."""
        replaced = f", replaced {self.replaced}" if self.replaced else ""
        return (f"ingested {self.files} files: {self.networks} networks, {self.rows} epoch rows, "
                f"{len(self.skipped)} skipped, {self.ignored} not recognised; "
                f"networks added {self.networks}, already present {self.present}{replaced} ({self.seconds:.1f} s)")


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
    """What a reader knows about the file besides its path.

    ``member`` is the file's name inside its collection (relative to the folder or
    archive given, or the file name): what a reader stores to tell a corrected version
    of a file from a different file.
    """

    collection: str
    cache: RunCache
    recorder: Recorder
    member: str = ""


@dataclass(frozen=True)
class Candidate:
    path: Path
    source: str
    collection: str
    member: str


@dataclass(frozen=True)
class Rejected:
    """A path or archive that yields no file to read (missing, unreadable, refused); reported like a bad file."""

    error: InputFormatError


def _hidden(name: str) -> bool:
    return name.startswith(".") or name == "__MACOSX"


def _files_under(folder: Path) -> list[Path]:
    """The files under ``folder`` in path order, hidden files and folders (and macOS resource forks) left out.

    ``os.walk`` rather than ``Path.rglob``: it does not follow links to folders (no
    loops) and lists a 6000-file collection without a pathlib object per comparison.
    """
    found: list[tuple[str, ...]] = []
    for root, folders, files in os.walk(folder):
        folders[:] = [name for name in folders if not _hidden(name)]
        base = Path(root).parts
        found.extend((*base, name) for name in files if not _hidden(name) and os.path.isfile(os.path.join(root, name)))
    return [Path(*parts) for parts in sorted(found)]


def _unpacked(path: Path, stack: ExitStack, limits: ArchiveLimits) -> Iterator[Candidate | Rejected]:
    folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="a4nn-ingest-")))
    try:
        unpack(path, folder, limits)
    except InputFormatError as exc:
        yield Rejected(exc)
        return
    collection = archive_stem(path)
    for member in _files_under(folder):
        name = member.relative_to(folder).as_posix()
        yield Candidate(member, f"{path}!{name}", collection, name)


def discover(paths: Iterable[Path], stack: ExitStack, limits: ArchiveLimits = ArchiveLimits()
             ) -> Iterator[Candidate | Rejected]:
    """Every file under ``paths`` with the name used in messages and its collection, or why a path gave none.

    The collection (what a random-NN search is named after) is the folder or archive
    given on the command line, or the parent folder of a single file; archives found
    inside a folder are their own collection.
    """
    for path in paths:
        path = Path(path)
        if not path.exists():
            yield Rejected(InputFormatError("no such file or folder", path=str(path)))
        elif path.is_dir():
            folder_name = path.resolve().name
            for candidate in _files_under(path):
                if is_archive(candidate):
                    yield from _unpacked(candidate, stack, limits)
                else:
                    yield Candidate(candidate, str(candidate), folder_name, candidate.relative_to(path).as_posix())
        elif is_archive(path):
            yield from _unpacked(path, stack, limits)
        else:
            yield Candidate(path, str(path), path.resolve().parent.name, path.name)


def _reader(path: Path, fmt: str) -> ModuleType | None:
    if fmt != "auto":
        return READERS[fmt] if READERS[fmt].candidate(path) else None
    for reader in READERS.values():
        if reader.candidate(path) and reader.matches(path):
            return reader
    return None


def ingest_paths(database: Database, paths: Iterable[Path | str], format: str = "auto", strict: bool = False,
                 progress: bool = True, report: Callable[[str], None] | None = None,
                 limits: ArchiveLimits = ArchiveLimits()) -> IngestSummary:
    """Ingest every recognised file under ``paths`` (files, folders, .zip/.tar.gz archives).

    ``format="auto"`` recognises ICPP'23 logs by file name and random-NN tables by
    their header; files it does not recognise are listed in ``unrecognised``. Each file
    is one transaction: a malformed one is listed in ``skipped`` (``strict=True``:
    raised) and leaves no row behind; so is a missing path or a refused archive.
    ``report`` receives one line per rejected and per unrecognised file.
    """
    if format not in FORMATS:
        raise A4nnError(f"unknown format {format!r}; choose from {', '.join(FORMATS)}")
    recorder = Recorder(database)
    cache = RunCache()
    summary = IngestSummary()
    start = time.perf_counter()

    def reject(exc: InputFormatError) -> None:
        if strict:
            raise exc
        summary.skipped.append(str(exc))
        if report:
            report(f"skipped: {exc}")

    with ExitStack() as stack:
        jobs: list[tuple[Candidate, ModuleType]] = []
        for found in discover([Path(p) for p in paths], stack, limits):
            if isinstance(found, Rejected):
                reject(found.error)
                continue
            reader = _reader(found.path, format)
            if reader is None:
                summary.unrecognised.append(found.source)
                if report:
                    report(f"not recognised: {found.source}")
            else:
                jobs.append((found, reader))
        iterator: Iterable[tuple[Candidate, ModuleType]] = jobs
        if progress:
            from tqdm import tqdm

            iterator = tqdm(jobs, desc="ingest", unit="file", disable=None)  # None: no bar unless a terminal
        for candidate, reader in iterator:
            context = FileContext(candidate.collection, cache, recorder, candidate.member)
            try:
                with recorder.transaction():
                    result: FileResult = reader.ingest_file(recorder, candidate.path, candidate.source, context)
            except InputFormatError as exc:
                cache.discard()
                reject(exc)
                continue
            except BaseException:
                cache.discard()
                raise
            cache.commit()
            summary.files += 1
            summary.networks += result.added
            summary.rows += result.rows
            summary.present += result.present
            summary.replaced += result.replaced
    summary.seconds = time.perf_counter() - start
    return summary
