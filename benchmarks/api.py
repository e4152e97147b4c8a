"""Query-service latency on a large SQLite lineage database, and the same query in MLflow.

1. Fills a fresh SQLite lineage database with 100,000 architectures across three
   beams (Core bulk insert; accuracies clipped at 100 so many networks tie at the
   top, as in the XFEL logs) and 25 epochs each for 20,000 of them through
   ``Recorder.bulk_epochs`` (500,000 epoch rows).
2. Serves it with ``a4nn-commons serve`` (uvicorn) on 127.0.0.1 and sends
   ``/models?beam=low&acc>99&sort=-acc&limit=50`` from 8 concurrent keep-alive
   clients, a bounded number of requests each, for 1 and 2 uvicorn workers, each
   ``--repeats`` times (the median p95 decides: one run on a shared 2-core machine
   says little; the load generator shares the two cores with the service).
   Target: p95 < 50 ms.
3. Writes the same rows into MLflow's SQLite tracking store (params beam/search,
   metrics acc/flops/fitness, the 500,000 per-epoch val_acc values as metric
   history) and times ``MlflowClient.search_runs`` for the same question
   (``params.beam = 'low' and metrics.acc > 99``, ``metrics.acc DESC``, 50 runs).
   By default every 5th architecture is mirrored (a 20,000-run subset with the same
   beam mix; ``--mlflow-every 1`` mirrors all). Logging that many runs through
   MLflow's API takes hours (~0.1 s a run here), so the first
   ``--mlflow-api-runs`` runs go through ``create_run``/``log_batch``/``set_terminated``
   and the rest are bulk-inserted into the very tables (MLflow's own SQLAlchemy
   models) those calls fill, with the same column values. MLflow runs in the
   interpreter given by ``--mlflow-python`` (or ``$A4NN_MLFLOW_PYTHON``) when this one
   cannot import it.

Writes benchmarks/results/api.json.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import wait_for_service, write_result  # noqa: E402

from a4nn.lineage.database import Database
from a4nn.lineage.filters import find_models, parse_filter
from a4nn.lineage.models import Architecture, Dataset, Search
from a4nn.lineage.recorder import Recorder
from a4nn.migrations.runner import upgrade_database

QUERY = "beam=low&acc>99&sort=-acc&limit=50"
EPOCHS = 25
BEAMS = ("low", "medium", "high")


def fill(url: str, n_arch: int, n_with_epochs: int, epochs: int = EPOCHS) -> None:
    """The lineage database: architectures by Core bulk insert, epochs through the Recorder."""
    upgrade_database(url)
    database = Database.open(url)
    recorder = Recorder(database)
    rng = np.random.default_rng(0)
    now = datetime.now(timezone.utc)
    per_beam = n_arch // len(BEAMS)
    first_ids = []
    for beam in BEAMS:
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


def percentiles(latencies: list[float]) -> dict[str, float]:
    ordered = sorted(latencies)
    return {"median": statistics.median(ordered), "p95": ordered[max(0, int(round(0.95 * len(ordered))) - 1)],
            "max": ordered[-1], "n": len(ordered)}


def concurrent(call: Callable[[Any], None], make_state: Callable[[], Any], clients: int, per_client: int
               ) -> tuple[list[float], float]:
    """``clients`` threads, each with its own state (an HTTP client), each timing ``per_client`` calls."""
    latencies: list[float] = []
    lock = threading.Lock()

    def worker(_: int) -> None:
        state = make_state()
        mine = []
        for _ in range(per_client):
            begin = time.perf_counter()
            call(state)
            mine.append((time.perf_counter() - begin) * 1000)
        with lock:
            latencies.extend(mine)
        close = getattr(state, "close", None)
        if close:
            close()

    began = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(worker, range(clients)))
    return latencies, time.perf_counter() - began


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def measure_service(url: str, clients: int, per_client: int, workers: int) -> dict[str, Any]:
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "a4nn.cli.main", "serve", "--db", url, "--port", str(port),
                               "--workers", str(workers), "--log-level", "warning"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    path = f"/models?{QUERY}"
    try:
        wait_for_service(base, server)
        with httpx.Client(base_url=base, timeout=10) as warm:
            body = warm.get(path).json()
            single = []
            for _ in range(50):
                begin = time.perf_counter()
                warm.get(path).raise_for_status()
                single.append((time.perf_counter() - begin) * 1000)

        def call(client: httpx.Client) -> None:
            client.get(path).raise_for_status()

        latencies, elapsed = concurrent(call, lambda: httpx.Client(base_url=base, timeout=10), clients, per_client)
    finally:
        server.terminate()
        server.wait(timeout=30)
    return {"workers": workers, "returned": body["count"], "first_acc": body["items"][0]["final_acc"],
            "single_client_ms": percentiles(single), "concurrent_ms": percentiles(latencies),
            "requests_per_second": len(latencies) / elapsed}


def measure_in_process(url: str, repeats: int = 50) -> dict[str, float]:
    """The query builder alone (no HTTP): the fair counterpart of an in-process ``search_runs``."""
    database = Database.open(url)
    query = parse_filter(QUERY)
    latencies = []
    with database.engine.connect() as connection:
        find_models(connection, query)
        for _ in range(repeats):
            begin = time.perf_counter()
            find_models(connection, query)
            latencies.append((time.perf_counter() - begin) * 1000)
    database.dispose()
    return percentiles(latencies)


# ------------------------------------------------------------------------ MLflow
def fill_mlflow(lineage_url: str, tracking_uri: str, api_runs: int, every: int = 1) -> dict[str, Any]:
    """Mirror every ``every``-th architecture (and its epochs) of the lineage database into an MLflow store."""
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    from mlflow.entities import Metric, Param
    from mlflow.store.tracking.dbmodels.models import SqlLatestMetric, SqlMetric, SqlParam, SqlRun, SqlTag
    from mlflow.tracking import MlflowClient
    from sqlalchemy import create_engine, select

    client = MlflowClient(tracking_uri=tracking_uri)
    experiment = client.create_experiment("a4nn-bench")
    database = Database.open(lineage_url)
    with database.engine.connect() as connection:
        archs = connection.execute(
            select(Architecture.id, Architecture.final_acc, Architecture.flops, Architecture.fitness,
                   Search.name.label("search"), Dataset.beam)
            .join(Search, Search.id == Architecture.search_id).join(Dataset, Dataset.id == Search.dataset_id)
            .where(Architecture.id % every == 0).order_by(Architecture.id)).all()
        epoch_rows = connection.exec_driver_sql("SELECT architecture_id, epoch, val_acc FROM epochs").all()
    database.dispose()
    history: dict[int, list[tuple[float, float]]] = {}
    for arch_id, epoch, val_acc in epoch_rows:
        history.setdefault(arch_id, []).append((epoch, val_acc))

    def metrics_of(arch: Any) -> list[tuple[str, float, int]]:
        out = [(key, float(getattr(arch, field)), 0) for key, field in
               (("acc", "final_acc"), ("flops", "flops"), ("fitness", "fitness"))]
        out += [("val_acc", float(v), int(e)) for e, v in history.get(arch.id, [])]
        return out

    began = time.perf_counter()
    for arch in archs[:api_runs]:
        run = client.create_run(experiment, run_name=f"arch-{arch.id}")
        stamp = int(time.time() * 1000)
        client.log_batch(run.info.run_id,
                         metrics=[Metric(k, v, stamp, s) for k, v, s in metrics_of(arch)],
                         params=[Param("beam", arch.beam), Param("search", arch.search)])
        client.set_terminated(run.info.run_id)
    api_seconds = time.perf_counter() - began
    engine = create_engine(tracking_uri)
    artifact_root = client.get_experiment(experiment).artifact_location
    runs, metrics, latest, params, tags = [], [], [], [], []
    stamp = int(time.time() * 1000)
    for arch in archs[api_runs:]:
        run_id = uuid.uuid4().hex
        runs.append({"run_uuid": run_id, "name": f"arch-{arch.id}", "source_type": "UNKNOWN", "source_name": "",
                     "entry_point_name": "", "user_id": "bench", "status": "FINISHED", "start_time": stamp,
                     "end_time": stamp, "source_version": "", "lifecycle_stage": "active",
                     "artifact_uri": f"{artifact_root}/{run_id}/artifacts", "experiment_id": int(experiment)})
        tags.append({"key": "mlflow.runName", "value": f"arch-{arch.id}", "run_uuid": run_id})
        params += [{"key": "beam", "value": arch.beam, "run_uuid": run_id},
                   {"key": "search", "value": arch.search, "run_uuid": run_id}]
        newest: dict[str, dict[str, Any]] = {}
        for key, value, step in metrics_of(arch):
            row = {"key": key, "value": value, "timestamp": stamp, "step": step, "is_nan": False, "run_uuid": run_id}
            metrics.append(row)
            if key not in newest or step >= newest[key]["step"]:
                newest[key] = row
        latest += list(newest.values())
    with engine.begin() as connection:
        for model, rows in ((SqlRun, runs), (SqlTag, tags), (SqlParam, params), (SqlMetric, metrics),
                            (SqlLatestMetric, latest)):
            for start in range(0, len(rows), 50_000):
                connection.execute(model.__table__.insert(), rows[start:start + 50_000])
    engine.dispose()
    return {"experiment": experiment, "runs": len(archs), "runs_logged_via_api": min(api_runs, len(archs)),
            "api_seconds_per_run": api_seconds / max(1, min(api_runs, len(archs))),
            "runs_bulk_inserted_into_mlflow_tables": max(0, len(archs) - api_runs),
            "metric_rows": len(metrics) + sum(len(metrics_of(a)) for a in archs[:api_runs])}


def measure_mlflow(tracking_uri: str, experiment: str, clients: int, per_client: int) -> dict[str, Any]:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)

    def search(_: Any = None) -> list[Any]:
        return client.search_runs([experiment], "params.beam = 'low' and metrics.acc > 99",
                                  order_by=["metrics.acc DESC"], max_results=50)

    found = search()
    single = []
    for _ in range(10):
        begin = time.perf_counter()
        search()
        single.append((time.perf_counter() - begin) * 1000)
    latencies, elapsed = concurrent(search, lambda: None, clients, per_client)
    return {"returned": len(found), "first_acc": found[0].data.metrics["acc"] if found else None,
            "single_client_ms": percentiles(single), "concurrent_ms": percentiles(latencies),
            "calls_per_second": len(latencies) / elapsed}


def mlflow_worker(lineage_url: str, folder: Path, args: argparse.Namespace) -> dict[str, Any]:
    """The MLflow half, in an interpreter that can import mlflow: fill its store, time ``search_runs``."""
    import mlflow

    tracking = f"sqlite:///{folder / 'mlflow.db'}"
    os.environ.setdefault("MLFLOW_TRACKING_URI", tracking)
    start = time.perf_counter()
    store = fill_mlflow(lineage_url, tracking, args.mlflow_api_runs, args.mlflow_every)
    store["mirrored"] = f"every {args.mlflow_every}th architecture (same beam mix)"
    store["fill_seconds"] = time.perf_counter() - start
    timing = measure_mlflow(tracking, store.pop("experiment"), args.clients, args.mlflow_per_client)
    return {"version": mlflow.__version__, "store": "sqlite", **store, "search_runs": timing}


def mlflow_half(lineage_url: str, folder: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Run :func:`mlflow_worker` here, or in ``--mlflow-python`` / ``$A4NN_MLFLOW_PYTHON``.

    MLflow pins older pyarrow than this project, so it usually lives in its own venv
    (``python -m venv --system-site-packages V && V/bin/pip install mlflow``: the venv
    still sees ``a4nn``).
    """
    for python in (args.mlflow_python, os.environ.get("A4NN_MLFLOW_PYTHON"), sys.executable):
        if not python or subprocess.run([python, "-c", "import mlflow"], capture_output=True).returncode != 0:
            continue
        if python == sys.executable:
            return mlflow_worker(lineage_url, folder, args)
        command = [python, __file__, "--mlflow-worker", lineage_url, "--work", str(folder),
                   "--clients", str(args.clients), "--mlflow-api-runs", str(args.mlflow_api_runs),
                   "--mlflow-per-client", str(args.mlflow_per_client), "--mlflow-every", str(args.mlflow_every)]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            return {"skipped": f"mlflow worker failed: {done.stderr.strip().splitlines()[-1:]}"}
        return {**json.loads(done.stdout.strip().splitlines()[-1]), "python": python}
    return {"skipped": "mlflow is not importable (pip install mlflow, or pass --mlflow-python of a venv that has it)"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--architectures", type=int, default=100_000)
    parser.add_argument("--with-epochs", type=int, default=20_000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--per-client", type=int, default=100, help="requests per client (bounded)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="uvicorn worker counts to measure")
    parser.add_argument("--repeats", type=int, default=3, help="service runs per worker count (median p95 decides)")
    parser.add_argument("--mlflow-api-runs", type=int, default=200)
    parser.add_argument("--mlflow-per-client", type=int, default=3)
    parser.add_argument("--mlflow-every", type=int, default=5,
                        help="mirror every Nth architecture into MLflow (5: a 20,000-run subset; 1: all)")
    parser.add_argument("--skip-mlflow", action="store_true")
    parser.add_argument("--mlflow-python", default=None, help="interpreter with mlflow installed (its own venv)")
    parser.add_argument("--mlflow-worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.mlflow_worker is not None:
        print(json.dumps(mlflow_worker(args.mlflow_worker, args.work, args)))
        return
    result: dict[str, Any] = {"query": f"/models?{QUERY}", "architectures": args.architectures,
                              "epoch_rows": args.with_epochs * EPOCHS, "clients": args.clients,
                              "requests_per_client": args.per_client, "target_p95_ms": 50}
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'lineage.db'}"
        start = time.perf_counter()
        fill(url, args.architectures, args.with_epochs)
        result["fill_seconds"] = time.perf_counter() - start
        result["in_process_ms"] = measure_in_process(url)
        # repeated runs: on a shared 2-core machine one run says little; the verdict uses the median p95
        result["service"] = []
        for workers in args.workers:
            runs = []
            for _ in range(args.repeats):
                load = os.getloadavg()
                run = measure_service(url, args.clients, args.per_client, workers)
                run["load_average_before"] = load
                runs.append(run)
                print(f"workers={workers}: p95 {run['concurrent_ms']['p95']:.1f} ms, median "
                      f"{run['concurrent_ms']['median']:.1f} ms, {run['requests_per_second']:.0f} req/s; single client "
                      f"median {run['single_client_ms']['median']:.1f} ms", flush=True)
            p95s = [r["concurrent_ms"]["p95"] for r in runs]
            result["service"].append({"workers": workers, "runs": runs, "p95_ms_of_runs": p95s,
                                      "median_p95_ms": statistics.median(p95s),
                                      "meets_target": statistics.median(p95s) < 50})
        result["meets_target"] = any(s["meets_target"] for s in result["service"])
        if args.skip_mlflow:
            result["mlflow"] = "skipped (--skip-mlflow)"
        else:
            write_result("api", result)  # the service numbers are kept even if MLflow fails or is cut off
            store = mlflow_half(url, Path(folder), args)
            if "search_runs" in store:
                timing = store["search_runs"]
                ours = result["in_process_ms"]["median"]  # on all 100,000 rows: the ratio favours MLflow
                best = min(result["service"], key=lambda r: r["median_p95_ms"])
                store["ratio_single_median_mlflow_over_a4nn_in_process"] = timing["single_client_ms"]["median"] / ours
                store["ratio_concurrent_p95_mlflow_in_process_over_a4nn_http"] = (timing["concurrent_ms"]["p95"]
                                                                                  / best["median_p95_ms"])
                print(f"mlflow search_runs: median {timing['single_client_ms']['median']:.1f} ms single, "
                      f"p95 {timing['concurrent_ms']['p95']:.1f} ms under {args.clients} threads")
            result["mlflow"] = store
    path = write_result("api", result)
    print(f"-> {path}")


if __name__ == "__main__":
    main()
