"""The ingest driver: find files (folders, .zip, .tar.gz), one transaction per file, a summary.

A malformed file is reported with its name and line and nothing of it is written;
the other files still ingest (``strict=True`` makes the first error fatal). Natural
keys in the Recorder make a second ingest of the same files add nothing.
"""
from __future__ import annotations

import tarfile
import tempfile
import time
import zipfile
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

from a4nn.commons.ingest import icpp23
from a4nn.errors import A4nnError, InputFormatError
from a4nn.lineage.database import Database
from a4nn.lineage.recorder import Recorder

READERS: dict[str, tuple[Callable[[Path], bool], Callable[..., tuple[int, int]]]] = {
    "icpp23": (icpp23.matches, icpp23.ingest_file),
}
FORMATS = ("auto", *READERS)


@dataclass
class IngestSummary:
    files: int = 0
    networks: int = 0
    rows: int = 0
    skipped: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.skipped


def _unpack(path: Path, stack: ExitStack) -> Iterator[tuple[Path, str]]:
    folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="a4nn-ingest-")))
    if path.suffix == ".zip":
        with zipfile.ZipFile(path) as archive:
            archive.extractall(folder)
    else:
        with tarfile.open(path) as archive:
            archive.extractall(folder, filter="data")
    for member in sorted(p for p in folder.rglob("*") if p.is_file()):
        yield member, f"{path}!{member.relative_to(folder)}"


def discover(paths: Iterable[Path], stack: ExitStack) -> Iterator[tuple[Path, str]]:
    """(local file, name used in messages) for every file under ``paths``, archives unpacked."""
    for path in paths:
        path = Path(path)
        if not path.exists():
            raise InputFormatError("no such file or folder", path=str(path))
        candidates = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for candidate in candidates:
            if candidate.suffix == ".zip" or candidate.name.endswith((".tar.gz", ".tgz", ".tar")):
                yield from _unpack(candidate, stack)
            else:
                yield candidate, str(candidate)


def _reader(path: Path, fmt: str, source: str):
    if fmt != "auto":
        return READERS[fmt][1]
    for matches, reader in READERS.values():
        if matches(path):
            return reader
    return None


def ingest_paths(database: Database, paths: Iterable[Path | str], format: str = "auto", strict: bool = False,
                 progress: bool = True, report: Callable[[str], None] | None = None) -> IngestSummary:
    """Ingest every recognised file under ``paths``; files auto-detection does not recognise are skipped silently."""
    if format not in FORMATS:
        raise A4nnError(f"unknown format {format!r}; choose from {', '.join(FORMATS)}")
    recorder = Recorder(database)
    summary = IngestSummary()
    start = time.perf_counter()
    with ExitStack() as stack:
        files = [(p, s) for p, s in discover([Path(p) for p in paths], stack) if _reader(p, format, s) is not None
                 or format != "auto"]
        iterator = files
        if progress:
            from tqdm import tqdm

            iterator = tqdm(files, desc="ingest", unit="file")
        for path, source in iterator:
            reader = _reader(path, format, source)
            try:
                with recorder.transaction():
                    networks, rows = reader(recorder, path, source)
            except InputFormatError as exc:
                if strict:
                    raise
                summary.skipped.append(str(exc))
                if report:
                    report(f"skipped: {exc}")
                continue
            summary.files += 1
            summary.networks += networks
            summary.rows += rows
    summary.seconds = time.perf_counter() - start
    return summary
