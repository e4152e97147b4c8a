"""Paths read from records (bundle tables, manifests, database rows) stay inside their folder.

A bundle is data from someone else, and a database row may come from such a bundle:
neither may make this process read (and so hash, record or serve) a file outside
the folder it belongs to. Two checks, one per direction:

* :func:`bundle_file` takes a *relative* path from a bundle and returns the regular
  file it names inside the bundle folder. Absolute paths (POSIX or Windows), ``..``
  segments, backslashes (a Windows ``..\\`` is a traversal on Windows and an odd file
  name elsewhere), NUL bytes and symlinks anywhere along the way are refused.
* :func:`file_under_roots` takes an *absolute* path from a database row and returns it
  only when it lies, without any symlink on the way, inside one of the given roots.

Both raise :class:`UnsafePathError`; callers add where the path came from
(table, row, column) to the message.
"""
from __future__ import annotations

import os
import stat
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Iterable

from a4nn.errors import A4nnError


class UnsafePathError(A4nnError):
    """A recorded path points outside the folder it must stay in (or through a symlink)."""


def check_relative(text: object) -> PurePosixPath:
    """``text`` as a safe relative POSIX path (``a/b.pt``), else :class:`UnsafePathError` saying why."""
    if not isinstance(text, str) or not text:
        raise UnsafePathError(f"path {text!r} is not a non-empty string")
    if "\x00" in text:
        raise UnsafePathError(f"path {text!r} contains a NUL byte")
    if "\\" in text:
        raise UnsafePathError(f"path {text!r} contains a backslash (Windows separators are refused)")
    windows = PureWindowsPath(text)
    if PurePosixPath(text).is_absolute() or windows.drive or windows.root or text.startswith("~"):
        raise UnsafePathError(f"absolute path {text!r} refused; paths must be relative to the bundle")
    if ":" in text.split("/", 1)[0]:
        raise UnsafePathError(f"path {text!r} looks like a URI or drive; paths must be relative to the bundle")
    path = PurePosixPath(text)
    if any(part == ".." for part in path.parts):
        raise UnsafePathError(f"path {text!r} leaves its folder ('..' refused)")
    return path


def _no_symlinks_below(root: Path, relative_parts: Iterable[str]) -> Path:
    """Walk from ``root`` down ``relative_parts`` refusing symlinks; returns the joined path."""
    current = root
    for part in relative_parts:
        current = current / part
        try:
            mode = os.lstat(current).st_mode
        except FileNotFoundError:
            raise UnsafePathError(f"{part!r} does not exist") from None
        if stat.S_ISLNK(mode):
            raise UnsafePathError("symlinks are refused")
    return current


def bundle_file(folder: Path | str, relative: object) -> Path:
    """The regular file ``relative`` names inside ``folder``; refuses anything that could leave it."""
    path = check_relative(relative)
    root = Path(folder).resolve()
    joined = _no_symlinks_below(root, [p for p in path.parts if p != "."])
    resolved = joined.resolve(strict=True)
    if not resolved.is_relative_to(root):  # defence in depth: the walk above already rules this out
        raise UnsafePathError(f"path {relative!r} resolves outside its folder")
    if not resolved.is_file():
        raise UnsafePathError(f"path {relative!r} is not a regular file")
    return resolved


def file_under_roots(path: Path | str, roots: Iterable[Path | str]) -> Path:
    """``path`` (absolute) when it is a regular file inside one of ``roots`` with no symlink below the root."""
    candidate = Path(path)
    if not candidate.is_absolute():
        raise UnsafePathError("recorded path is not absolute")
    if any(part == ".." for part in candidate.parts):
        raise UnsafePathError("recorded path contains '..'")
    for root in roots:
        root = Path(root).resolve()
        if not candidate.is_relative_to(root):
            continue
        joined = _no_symlinks_below(root, candidate.relative_to(root).parts)
        resolved = joined.resolve(strict=True)
        if resolved.is_relative_to(root) and resolved.is_file():
            return resolved
        raise UnsafePathError("recorded path is not a regular file inside its root")
    raise UnsafePathError("recorded path lies outside every allowed root")
