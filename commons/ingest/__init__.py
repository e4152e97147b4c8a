"""Bringing external record trails into the lineage database (transactional per file, idempotent)."""
from a4nn.commons.ingest.driver import IngestSummary, ingest_paths

__all__ = ["IngestSummary", "ingest_paths"]
