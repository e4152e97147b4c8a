"""Bringing external record trails into the lineage database (transactional per file, idempotent).

Formats: the published A4NN ICPP'23 logs (:mod:`.icpp23`) and the 6000-NN random-network
tables (:mod:`.random_nn`); :func:`ingest_paths` walks files, folders and archives
(unpacked within :class:`ArchiveLimits`).
"""
from a4nn.commons.ingest.archives import ArchiveLimits
from a4nn.commons.ingest.driver import FORMATS, IngestSummary, ingest_paths

__all__ = ["FORMATS", "ArchiveLimits", "IngestSummary", "ingest_paths"]
