"""Unpacking .zip and .tar(.gz) archives for ingest, within limits checked before anything is written.

An archive given to ``ingest`` may come from anywhere, so it is opened as hostile:

* at most ``max_members`` files (directories, links and devices are not extracted);
* no member larger than ``max_member_bytes`` once unpacked;
* the archive unpacks to at most ``max_ratio`` times its size on disk (zip: also each
  member against its compressed size), checked once more than ``ratio_floor_bytes``
  would be written, so small text archives that compress very well still pass;
* member paths stay inside the target folder (no absolute paths, no ``..``).

Zip archives declare every size in their central directory, so a zip bomb is refused
before its first byte is written (and a member that inflates past its declared size is
cut off). Tar headers carry each member's exact size, so a member is refused before it
is written and the ratio is checked member by member while the stream is read.
"""
from __future__ import annotations

import shutil
import tarfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO

from a4nn.errors import InputFormatError

MB = 1 << 20
SUFFIXES = (".zip", ".tar.gz", ".tgz", ".tar")
_ERRORS = (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError, zlib.error, RuntimeError, NotImplementedError,
           ValueError)


@dataclass(frozen=True)
class ArchiveLimits:
    """Bounds on what one archive may unpack to (the CLI's --max-member-mb, --max-members, --max-ratio).

    The defaults admit the published collections (the 6000-NN dataset's 6000 tables of a
    few kB, the ICPP'23 logs of about 1 MB each) with wide margins, and refuse what only
    a broken or malicious archive holds: a gigabyte member, a hundred thousand files, or
    a stream that inflates more than 200-fold (text tables compress 5-20-fold).
    """

    max_member_bytes: int = 1024 * MB
    max_members: int = 100_000
    max_ratio: float = 200.0
    ratio_floor_bytes: int = 16 * MB

    def __post_init__(self) -> None:
        if self.max_member_bytes <= 0 or self.max_members <= 0 or not self.max_ratio > 0:
            raise ValueError("archive limits must be positive")


def is_archive(path: Path) -> bool:
    return path.name.endswith(SUFFIXES)


def archive_stem(path: Path) -> str:
    for suffix in SUFFIXES:
        if path.name.endswith(suffix):
            return path.name[: -len(suffix)]
    return path.stem


def _safe_name(name: str, archive: Path) -> PurePosixPath:
    member = PurePosixPath(name.replace("\\", "/"))
    if member.is_absolute() or ".." in member.parts or not member.parts:
        raise InputFormatError(f"member {name!r} would unpack outside the archive's folder", path=str(archive))
    return member


class _Budget:
    """Running count of members and bytes of one archive against its limits."""

    def __init__(self, archive: Path, limits: ArchiveLimits):
        self.archive, self.limits = archive, limits
        self.size = max(archive.stat().st_size, 1)
        self.members = 0
        self.total = 0

    def fail(self, message: str) -> InputFormatError:
        return InputFormatError(f"refused archive: {message}", path=str(self.archive))

    def admit(self, name: str, size: int, compressed: int | None = None) -> None:
        limits = self.limits
        self.members += 1
        if self.members > limits.max_members:
            raise self.fail(f"more than {limits.max_members} files (--max-members)")
        if size > limits.max_member_bytes:
            raise self.fail(f"member {name} unpacks to {size} bytes, more than {limits.max_member_bytes // MB} MB "
                            f"(--max-member-mb)")
        if compressed is not None and size > limits.ratio_floor_bytes and size / max(compressed, 1) > limits.max_ratio:
            raise self.fail(f"member {name} inflates {size / max(compressed, 1):.0f}-fold, more than "
                            f"{limits.max_ratio:g} (--max-ratio)")
        self.total += size
        if self.total > limits.ratio_floor_bytes and self.total / self.size > limits.max_ratio:
            raise self.fail(f"unpacks to more than {limits.max_ratio:g} times its {self.size} bytes (--max-ratio)")


def _copy(source: IO[bytes], target: Path, limit: int, budget: _Budget, name: str) -> None:
    """Copy at most ``limit`` bytes (the member's declared size); a member that inflates past it is refused."""
    target.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    with open(target, "wb") as out:
        while block := source.read(min(MB, limit - written + 1)):
            written += len(block)
            if written > limit:
                raise budget.fail(f"member {name} inflates past its declared {limit} bytes")
            out.write(block)


def _unpack_zip(path: Path, folder: Path, budget: _Budget) -> None:
    with zipfile.ZipFile(path) as archive:
        members = [info for info in archive.infolist() if not info.is_dir()]
        names = [_safe_name(info.filename, path) for info in members]
        for info in members:  # every declared size is checked before anything is written
            budget.admit(info.filename, info.file_size, info.compress_size)
        for info, name in zip(members, names):
            with archive.open(info) as source:
                _copy(source, folder.joinpath(*name.parts), info.file_size, budget, info.filename)


def _unpack_tar(path: Path, folder: Path, budget: _Budget) -> None:
    with tarfile.open(path) as archive:
        for member in archive:  # read lazily: each header is checked before its data is written
            if not member.isfile():
                continue
            name = _safe_name(member.name, path)
            budget.admit(member.name, member.size)
            source = archive.extractfile(member)
            if source is None:  # pragma: no cover - isfile() members always have data
                continue
            with source:
                _copy(source, folder.joinpath(*name.parts), member.size, budget, member.name)


def unpack(path: Path, folder: Path, limits: ArchiveLimits = ArchiveLimits()) -> None:
    """Unpack ``path`` into ``folder`` within ``limits``; any problem is an :class:`InputFormatError` naming the archive.

    On error the partly written folder is emptied, so no member of a refused archive is ingested.
    """
    try:
        budget = _Budget(path, limits)
        if path.name.endswith(".zip"):
            _unpack_zip(path, folder, budget)
        else:
            _unpack_tar(path, folder, budget)
    except InputFormatError:
        _empty(folder)
        raise
    except _ERRORS as exc:
        _empty(folder)
        detail = (str(exc).splitlines() or [""])[0].rstrip(":")  # tarfile lists every method it tried: one line
        raise InputFormatError(f"cannot unpack archive ({type(exc).__name__}: {detail}; truncated, corrupt or not "
                               f"an archive)", path=str(path)) from None


def _empty(folder: Path) -> None:
    for child in folder.iterdir():
        if child.is_dir():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)
