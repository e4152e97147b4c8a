"""Errors that reach the user as one clear line instead of a traceback.

Every sub-system raises a subclass of :class:`A4nnError` for bad input or an
unusable environment; the CLI prints ``error: <message>`` and exits with code 2,
the API turns them into 4xx answers.
"""


class A4nnError(Exception):
    """Base class of all user-facing a4nn errors."""

    def _render_traceback_(self) -> list[str]:
        """What IPython and Jupyter show instead of a traceback (the message is the whole story).

        The notebook and interactive sessions then read like the CLI: ``error: <message>``.
        """
        return [f"error: {self}"]


class DatabaseError(A4nnError):
    """The lineage database cannot be opened or used (bad URL, unreachable, not a database)."""


class SchemaOutOfDateError(DatabaseError):
    """The database schema is behind the code; the user must run ``a4nn-commons db upgrade``."""


class DatabaseNotFoundError(SchemaOutOfDateError):
    """A reader was pointed at a database that does not exist (readers never create one).

    A schema "behind" at no revision at all: what fixes an empty database (``db upgrade``,
    or a writer) also fixes a missing one, so callers handling the one handle the other.
    """


class InputFormatError(A4nnError):
    """A malformed input file; the message names the file and, where known, the line."""

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None):
        location = ""
        if path is not None:
            location = f"{path}:{line}: " if line is not None else f"{path}: "
        super().__init__(f"{location}{message}")
        self.path = path
        self.line = line
