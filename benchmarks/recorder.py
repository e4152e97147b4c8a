"""Recorder speed on SQLite: per-epoch write latency and bulk insert throughput.

Targets (issue 2): median per-epoch write under 2 ms; 500,000 epoch rows in under 20 s.
Run: ``python benchmarks/recorder.py [--rows 500000] [--epochs 2000]``.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_result  # noqa: E402

from a4nn.lineage.database import Database
from a4nn.lineage.recorder import Recorder
from a4nn.migrations.runner import upgrade_database


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=500_000, help="epoch rows for the bulk test")
    parser.add_argument("--epochs", type=int, default=2_000, help="single log_epoch calls timed")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'bench.db'}"
        upgrade_database(url)
        recorder = Recorder(Database.open(url))
        search = recorder.start_search("bench", "nsga-net-macro")

        arch = recorder.start_architecture(search, index=0)
        latencies = []
        for epoch in range(1, args.epochs + 1):
            start = time.perf_counter()
            recorder.log_epoch(arch, epoch, train_loss=0.5, train_acc=80.0, val_loss=0.6, val_acc=79.0, seconds=1.2)
            latencies.append((time.perf_counter() - start) * 1000)

        per_arch = 80
        n_arch = args.rows // per_arch
        arch_ids = [recorder.start_architecture(search, index=i + 1) for i in range(n_arch)]
        rows = [
            {"architecture_id": a, "epoch": e / 2, "train_loss": 1.0 / e, "val_loss": 1.1 / e, "val_acc": 50 + e / 2}
            for a in arch_ids for e in range(1, per_arch + 1)
        ]
        start = time.perf_counter()
        written = recorder.bulk_epochs(rows)
        bulk_seconds = time.perf_counter() - start

    latencies.sort()
    result = {
        "log_epoch_ms": {
            "calls": len(latencies),
            "median": statistics.median(latencies),
            "p95": latencies[int(0.95 * len(latencies)) - 1],
            "target_median": 2.0,
        },
        "bulk_epochs": {
            "rows": written,
            "seconds": bulk_seconds,
            "rows_per_second": written / bulk_seconds,
            "target_seconds_for_500k": 20.0,
        },
    }
    path = write_result("recorder", result)
    print(f"log_epoch median {result['log_epoch_ms']['median']:.3f} ms, p95 {result['log_epoch_ms']['p95']:.3f} ms")
    print(f"bulk_epochs {written} rows in {bulk_seconds:.2f} s ({written / bulk_seconds:,.0f} rows/s) -> {path}")


if __name__ == "__main__":
    main()
