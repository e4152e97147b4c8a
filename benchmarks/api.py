"""Query-service latency on a large SQLite lineage database.

Fills a database with 100,000 architectures across three beams (25 epochs each for
20,000 of them: 500,000 epoch rows), serves it with uvicorn on 127.0.0.1 and sends
``/models?beam=low&acc>99&sort=-acc&limit=50`` from 8 concurrent clients (a bounded
number of requests). Target: p95 < 50 ms. Writes benchmarks/results/api.json.

The comparison with MLflow's ``search_runs`` named in the issue is not measured here
yet (mlflow is not a dependency); the JSON says so.
"""
from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_result  # noqa: E402

from a4nn.lineage.database import Database
from a4nn.lineage.models import Architecture
from a4nn.lineage.recorder import Recorder
from a4nn.migrations.runner import upgrade_database

QUERY = "/models?beam=low&acc>99&sort=-acc&limit=50"


def fill(url: str, n_arch: int, n_with_epochs: int, epochs: int) -> None:
    upgrade_database(url)
    database = Database.open(url)
    recorder = Recorder(database)
    rng = np.random.default_rng(0)
    now = datetime.now(timezone.utc)
    per_beam = n_arch // 3
    first_ids = []
    for beam in ("low", "medium", "high"):
        dataset = recorder.register_dataset(f"bench-{beam}", "xfel-sim", {"beam": beam})
        search = recorder.start_search(f"bench-{beam}", "nsga-net-macro", dataset, config={"epochs": epochs})
        acc = np.clip(rng.normal(95, 3, per_beam), 40, 100)
        rows = [{"search_id": search, "generation": i // 100, "index": i % 100, "arch": {}, "train_params": {},
                 "flops": float(rng.uniform(50, 1500)), "n_params": int(rng.integers(1e4, 1e6)), "status": "completed",
                 "epochs_trained": float(epochs), "terminated_early": bool(rng.random() < 0.3), "final_acc": float(a),
                 "fitness": float(a), "created_at": now} for i, a in enumerate(acc)]
        with database.engine.begin() as connection:
            connection.execute(Architecture.__table__.insert(), rows)
            first_ids.append(connection.execute(
                Architecture.__table__.select().with_only_columns(Architecture.id)
                .where(Architecture.search_id == search).order_by(Architecture.id).limit(1)).scalar())
    ids = [first_ids[0] + i for i in range(n_with_epochs)]
    recorder.bulk_epochs({"architecture_id": a, "epoch": e, "val_acc": 90 + e * 0.2, "val_loss": 1 / e}
                         for a in ids for e in range(1, epochs + 1))
    database.dispose()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--architectures", type=int, default=100_000)
    parser.add_argument("--with-epochs", type=int, default=20_000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=800, help="total requests (bounded)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'api.db'}"
        start = time.perf_counter()
        fill(url, args.architectures, args.with_epochs, 25)
        fill_seconds = time.perf_counter() - start
        port = free_port()
        server = subprocess.Popen([sys.executable, "-m", "a4nn.cli.main", "serve", "--db", url, "--port", str(port)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.time() + 60
            while time.time() < deadline:
                try:
                    if httpx.get(base + "/health", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.2)
            with httpx.Client(base_url=base, timeout=10) as warm:
                body = warm.get(QUERY).json()
                for _ in range(10):
                    warm.get(QUERY)

            def one(_: int) -> float:
                with httpx.Client(base_url=base, timeout=10) as client:
                    begin = time.perf_counter()
                    response = client.get(QUERY)
                    response.raise_for_status()
                    return (time.perf_counter() - begin) * 1000

            with ThreadPoolExecutor(args.clients) as pool:
                began = time.perf_counter()
                latencies = sorted(pool.map(one, range(args.requests)))
                elapsed = time.perf_counter() - began
        finally:
            server.terminate()
            server.wait(timeout=30)
    result = {
        "query": QUERY, "architectures": args.architectures, "epoch_rows": args.with_epochs * 25,
        "fill_seconds": fill_seconds, "clients": args.clients, "requests": len(latencies),
        "returned": body["count"], "latency_ms": {"median": statistics.median(latencies),
                                                  "p95": latencies[int(0.95 * len(latencies)) - 1],
                                                  "max": latencies[-1]},
        "requests_per_second": len(latencies) / elapsed, "target_p95_ms": 50,
        "mlflow_search_runs": "not measured: mlflow is not installed by this project yet",
    }
    path = write_result("api", result)
    print(f"p95 {result['latency_ms']['p95']:.1f} ms, median {result['latency_ms']['median']:.1f} ms, "
          f"{result['requests_per_second']:.0f} req/s over {args.clients} clients -> {path}")


if __name__ == "__main__":
    main()
