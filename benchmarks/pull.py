"""Pull of a 6000-table commons (the 6000-NN layout) from the local Dataverse test server.

The tables are generated as in ``benchmarks/ingest.py`` and stored as one released
dataset of ``tests/dataverse_server.py`` on 127.0.0.1; ``DataversePuller`` (the real
pyDataverse client) lists the version, downloads every file into a fresh cache,
checks each MD5 and ingests them into a fresh SQLite database. Reported: files/s and
MB/s of the download phase, ingest seconds, end to end seconds (listing, downloads,
verification, ingest, publication record), and a second pull of the same version
(nothing downloaded, nothing added). The server runs in this process, so client and
server share the CPU and the GIL; numbers are a floor for a remote installation,
which adds network latency per file instead. Run under the CPU lock:

    flock /tmp/a4nn-cpu.lock python3 benchmarks/pull.py
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

from _common import write_result  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", type=int, default=6000)
    parser.add_argument("--epochs", type=int, default=40, help="epochs per table (two rows each)")
    args = parser.parse_args()

    from sqlalchemy import func, select

    from a4nn.commons.dataverse import RetryPolicy
    from a4nn.commons.pull import DataversePuller
    from a4nn.lineage.database import Database
    from a4nn.lineage.models import Architecture, Epoch
    from a4nn.migrations.runner import upgrade_database
    from dataverse_server import DataverseServer
    from ingest import generate_tables

    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        tables = work / "tables"
        tables.mkdir()
        started = time.perf_counter()
        generate_tables(tables, args.tables, args.epochs)
        generated = time.perf_counter() - started
        files = {f"tables/{path.name}": path.read_bytes() for path in sorted(tables.iterdir())}
        total_bytes = sum(len(content) for content in files.values())
        url = f"sqlite:///{work / 'pulled.db'}"
        upgrade_database(url)
        database = Database.open(url)
        with DataverseServer(token="bench") as server:
            pid = server.put_dataset(files, title="6000-NN benchmark commons")
            with DataversePuller(server.base_url, None, RetryPolicy(timeout=60), cache_dir=work / "cache") as puller:
                started = time.perf_counter()
                result = puller.pull(pid, database)
                end_to_end = time.perf_counter() - started
                started = time.perf_counter()
                again = puller.pull(pid, database)
                rerun = time.perf_counter() - started
            requests = len(server.state.requests)
        with database.engine.connect() as connection:
            networks = connection.execute(select(func.count()).select_from(Architecture)).scalar_one()
            epochs = connection.execute(select(func.count()).select_from(Epoch)).scalar_one()
        database.dispose()

    download = result.seconds["download"]
    payload = {
        "input": {"tables": args.tables, "rows_per_table": 2 * args.epochs, "bytes": total_bytes,
                  "generate_seconds": generated, "server": "tests/dataverse_server.py on 127.0.0.1, same process"},
        "pull": {"files": len(result.files), "downloaded": result.downloaded, "bytes_downloaded": result.bytes_downloaded,
                 "listing_seconds": result.seconds["listing"], "download_seconds": download,
                 "files_per_second": result.downloaded / download, "megabytes_per_second": result.bytes_downloaded / 1e6 / download,
                 "ingest_seconds": result.seconds["ingest"], "end_to_end_seconds": end_to_end,
                 "added": result.added, "networks_in_db": networks, "epoch_rows_in_db": epochs,
                 "http_requests": requests},
        "same_version_again": {"seconds": rerun, "already_pulled": again.already_pulled,
                               "downloaded": again.downloaded},
    }
    path = write_result("pull", payload)
    print(f"wrote {path}: {payload['pull']['files_per_second']:.0f} files/s, "
          f"{payload['pull']['megabytes_per_second']:.1f} MB/s, end to end {end_to_end:.1f} s")


if __name__ == "__main__":
    main()
