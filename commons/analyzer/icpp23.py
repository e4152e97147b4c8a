"""Published whole-run wall times of the ICPP'23 logs (``time_to_run.csv``), keyed by ingested search name.

Ingest records per-epoch times only where the logs have them; the paper's Figure 9 uses
the whole-run times of this table, so :func:`published_run_times` maps them onto the
search names the ICPP'23 reader creates (``icpp23:<N>gpu/<run>/<intensity>``).
"""
from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd

from a4nn.errors import InputFormatError

COLUMNS = ("gpu", "dataset", "stopping", "total_seconds")


def published_run_times(path: Path | str) -> pd.DataFrame:
    """Columns ``search`` and ``seconds``; a malformed row is an InputFormatError naming file and line."""
    path = Path(path)
    rows = []
    try:
        with path.open(newline="") as handle:
            reader = csv.DictReader(handle)
            missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise InputFormatError(f"missing column(s) {', '.join(missing)}", path=str(path), line=1)
            for line, row in enumerate(reader, start=2):
                try:
                    run = "early_termination" if row["stopping"].strip() == "True" else "no_early_termination"
                    name = f"icpp23:{int(row['gpu'])}gpu/{run}/1e{int(row['dataset'])}"
                    rows.append({"search": name, "seconds": float(row["total_seconds"])})
                except (ValueError, AttributeError):
                    raise InputFormatError(f"bad row {row!r}", path=str(path), line=line) from None
    except OSError as exc:
        raise InputFormatError(f"cannot read: {exc.strerror}", path=str(path)) from None
    return pd.DataFrame(rows, columns=["search", "seconds"])
