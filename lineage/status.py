"""The status values stored in ``searches.status`` and ``architectures.status``.

They are ``StrEnum`` members whose values are the strings the schema has always held,
so a member compares equal to the stored text, binds as that text in SQL, and
``json.dumps`` writes it unchanged: no migration, and old databases read the same.
"""
from __future__ import annotations

from enum import StrEnum


class SearchStatus(StrEnum):
    """Where a search stands."""

    RUNNING = "running"
    COMPLETED = "completed"
    INTERRUPTED = "interrupted"   # Ctrl-C: resumable
    FAILED = "failed"             # an exception ended it: resumable too


class ArchitectureStatus(StrEnum):
    """How one network's training ended (``running`` until it does)."""

    RUNNING = "running"
    COMPLETED = "completed"       # trained its whole budget
    STOPPED = "stopped"           # stopped early by the prediction engine
    FAILED = "failed"             # training raised; the error is recorded


#: an architecture in one of these states is never trained again (resume, retries)
FINISHED = (ArchitectureStatus.COMPLETED, ArchitectureStatus.STOPPED, ArchitectureStatus.FAILED)
#: finished with a fitness the NAS could use
TRAINED = (ArchitectureStatus.COMPLETED, ArchitectureStatus.STOPPED)
