"""Ingest speed: 6000 random-NN tables into SQLite, and the same tables into MLflow's tracking store.

Target (issue 4): ingest of 6000 tables in the exact 28-column format into SQLite in
under 30 s on 2 cores. The tables are generated here (random taxonomies from the
generator's sampler, synthetic learning curves, ~2 % diverged networks with ``nan``
losses), written as files, then ingested with ``ingest_paths`` (one transaction per
file, as the CLI does). The same files are then logged to MLflow (SQLite backend,
one run per table, params + ``log_batch`` of the curve), which is what users would
reach for instead, and the ratio is reported.

MLflow pins versions our environment is newer than, so it may live in its own
virtual environment: ``--mlflow-python PATH`` (or ``$A4NN_MLFLOW_PYTHON``) names the
interpreter that runs the MLflow half (a venv created with ``--system-site-packages``
sees ``a4nn``). Without an interpreter that can import mlflow, that half is skipped
and the JSON says so.

Peak memory (issue 22): one generated file of each format (a single random-NN table of
millions of rows, an ICPP'23 log of tens of thousands of networks) at ``--memory-mb``
sizes (default 20 and 200 MB) is ingested in a fresh process each, which reports its
resident set before the ingest (after imports) and its peak (``ru_maxrss``). Streaming
ingest keeps the peak flat as the file grows; the inputs live in a temporary folder.

Run: ``python benchmarks/ingest.py [--tables 6000] [--mlflow-tables 6000] [--memory-mb 20 200]``.
Results: ``benchmarks/results/ingest.json``.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_result  # noqa: E402

DATASETS = (("CIFAR100", 100), ("FashionMNIST", 10), ("SVHN", 10))


def synthetic_curve(rng: np.random.Generator, epochs: int, n_classes: int) -> list[tuple[float, float, float, float]]:
    """A plausible half-epoch learning curve; about 2 % of networks diverge to ``nan`` losses."""
    chance = 100.0 / n_classes
    top = rng.uniform(chance, 95.0)
    rate = rng.uniform(0.05, 1.5)
    diverge_at = rng.integers(1, 2 * epochs) if rng.random() < 0.02 else None
    start_loss = math.log(n_classes)
    rows = []
    for step in range(1, 2 * epochs + 1):
        x = step / 2
        acc = top - (top - chance) * math.exp(-rate * x) + rng.normal(0, 0.5)
        val_loss = start_loss * (1 - 0.7 * (acc - chance) / 100) + rng.normal(0, 0.02)
        train_loss = val_loss * rng.uniform(0.6, 1.0)
        if diverge_at is not None and step >= diverge_at:
            train_loss, val_loss, acc = float("nan"), float("nan"), chance
        rows.append((x, float(train_loss), float(val_loss), float(round(min(max(acc, 0.0), 100.0), 2))))
    return rows


def generate_tables(folder: Path, n: int, epochs: int, seed: int = 0) -> None:
    """Write ``n`` tables in the exact published format (space-delimited, <ID>.txt)."""
    from datetime import datetime, timedelta

    from a4nn.commons.random_nn_format import RandomNNTable, write_table
    from a4nn.search.random_nn import RandomNNRanges, new_network_id, sample_metadata

    rng = np.random.default_rng(seed)
    existing: set[str] = set()
    start = datetime(2021, 2, 15, 13, 0, 0)
    for i in range(n):
        dataset, n_classes = DATASETS[i % len(DATASETS)]
        network_id = new_network_id(existing, start + timedelta(milliseconds=93_417 * i))
        metadata = sample_metadata(rng, image_size=32, n_classes=n_classes, dataset=dataset, ranges=RandomNNRanges(),
                                   network_id=network_id, train_gpu=True)
        write_table(RandomNNTable(metadata, synthetic_curve(rng, epochs, n_classes)), folder)


def bench_sqlite(folder: Path, work: Path) -> dict:
    from sqlalchemy import func, select

    from a4nn.commons.ingest import ingest_paths
    from a4nn.lineage.database import Database
    from a4nn.lineage.models import Architecture, Epoch
    from a4nn.migrations.runner import upgrade_database

    url = f"sqlite:///{work / 'lineage.db'}"
    upgrade_database(url)
    database = Database.open(url)
    start, cpu = time.perf_counter(), time.process_time()
    summary = ingest_paths(database, [folder], progress=False)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu
    start = time.perf_counter()
    ingest_paths(database, [folder], progress=False)
    again_seconds = time.perf_counter() - start
    with database.engine.connect() as connection:
        architectures = connection.execute(select(func.count()).select_from(Architecture)).scalar_one()
        epochs = connection.execute(select(func.count()).select_from(Epoch)).scalar_one()
    database.dispose()
    return {"seconds": seconds, "cpu_seconds": cpu_seconds, "tables": summary.files, "networks": summary.networks,
            "epoch_rows": summary.rows,
            "skipped": len(summary.skipped), "rows_per_second": summary.rows / seconds,
            "architectures_in_db": architectures, "epochs_in_db": epochs,
            "reingest_seconds": again_seconds, "reingest_added_rows": epochs - summary.rows,
            "db_bytes": (work / "lineage.db").stat().st_size}


# --------------------------------------------------------------------------------------- peak memory
def write_big_table(path: Path, megabytes: float, seed: int = 0) -> int:
    """One random-NN table of about ``megabytes`` (published format, a row every half epoch); returns its rows."""
    from a4nn.commons.random_nn_format import METADATA_COLUMNS, RandomNNTable, format_table
    from a4nn.search.random_nn import RandomNNRanges, sample_metadata

    rng = np.random.default_rng(seed)
    metadata = sample_metadata(rng, image_size=32, n_classes=100, dataset="CIFAR100", ranges=RandomNNRanges(),
                               network_id="2021_02_15_13_55_26_539263", train_gpu=True)
    head = format_table(RandomNNTable(metadata, [(0.5, 4.25, 3.9, 9.68)]))
    tail = " " * len(METADATA_COLUMNS)
    target, rows = int(megabytes * 1e6), 1
    with open(path, "w", encoding="utf-8") as out:
        out.write(head)
        written = len(head)
        while written < target:
            block = "".join(f"{(rows + i + 1) * 0.5} {1.0 + i % 7 * 0.01!r} {1.1 + i % 5 * 0.01!r} "
                            f"{50 + i % 40 * 0.5!r}{tail}\n" for i in range(10_000))
            out.write(block)
            written += len(block)
            rows += 10_000
    return rows


ICPP_EPOCHS = 250  # epochs per network of the generated logs: a size test, not a realistic search (25)


def write_big_icpp(path: Path, megabytes: float, seed: int = 0, epochs: int = ICPP_EPOCHS) -> int:
    """An ICPP'23 log in the richest published layout of about ``megabytes``; returns its rows.

    Longer curves than the published 25 epochs keep the run short (per-network writes
    go through the Recorder one by one) while the file grows to the size under test.
    """
    rng = np.random.default_rng(seed)
    header = ("epoch,train_accs,val_accs,epoch_times,predictions,converged,params,function,penguin_times,genome,"
              "architecture,flops,arch\n")
    target, rows, arch = int(megabytes * 1e6), 0, 0
    with open(path, "w", encoding="utf-8") as out:
        out.write(header)
        written = len(header)
        while written < target:
            bits = rng.integers(0, 2, size=(3, 7)).tolist()
            genome = json.dumps(bits)
            lines = []
            for epoch in range(epochs):
                acc = 50 + 45 * (1 - math.exp(-0.3 * (epoch + 1))) + rng.normal(0, 0.5)
                fitted = epoch >= 4
                lines.append(f"{epoch},{acc + 3:.13f},{acc:.13f},{60 + rng.random():.13f},"
                             f"{(acc + 2 if fitted else float('inf'))},{fitted and epoch >= 8},"
                             f"{'[98.1 0.9 1.2]' if fitted else ''},{'a-b^(c-x)' if fitted else ''},0.0001,"
                             f"\"{genome}\",\"[]\",{400 + rng.random() * 500:.4f},{arch}\n")
            block = "".join(lines)
            out.write(block)
            written += len(block)
            rows += epochs
            arch += 1
    return rows


def memory_worker(path: Path, work: Path) -> dict:
    """Ingest one file into a fresh SQLite database in this process; RSS before and peak."""
    from a4nn.commons.ingest import ingest_paths
    from a4nn.lineage.database import Database
    from a4nn.migrations.runner import upgrade_database

    url = f"sqlite:///{work / 'memory.db'}"
    upgrade_database(url)
    database = Database.open(url)
    import a4nn.search.network  # noqa: F401 - the ICPP reader's import, loaded before the baseline is taken

    with open("/proc/self/status") as status:
        before_kb = next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
    start = time.perf_counter()
    summary = ingest_paths(database, [path], progress=False)
    seconds = time.perf_counter() - start
    database.dispose()
    return {"rss_before_ingest_mb": before_kb / 1024, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "seconds": seconds, "networks": summary.networks, "epoch_rows": summary.rows,
            "skipped": summary.skipped}


def bench_memory(sizes: list[float], work: Path) -> dict:
    """Peak RSS of ingesting one file per format and size, each in a fresh interpreter."""
    results: dict[str, list[dict]] = {"random-nn": [], "icpp23": []}
    for fmt, writer, name in (("random-nn", write_big_table, "big.txt"),
                              ("icpp23", write_big_icpp, "1gpu_1e14_training_data.csv")):
        for megabytes in sizes:
            folder = work / f"memory-{fmt}-{megabytes:g}"
            folder.mkdir()
            path = folder / name
            rows = writer(path, megabytes)
            done = subprocess.run([sys.executable, __file__, "--memory-worker", str(path), "--work", str(folder)],
                                  capture_output=True, text=True)
            if done.returncode != 0:
                raise RuntimeError(f"memory worker failed: {done.stderr[-2000:]}")
            result = json.loads(done.stdout.strip().splitlines()[-1])
            result.update(file_mb=path.stat().st_size / 1e6, file_rows=rows)
            if fmt == "icpp23":
                result["epochs_per_network"] = ICPP_EPOCHS
            result["peak_minus_before_mb"] = result["peak_rss_mb"] - result["rss_before_ingest_mb"]
            results[fmt].append(result)
            print(f"memory {fmt} {result['file_mb']:.0f} MB ({rows} rows): peak RSS {result['peak_rss_mb']:.0f} MB "
                  f"(+{result['peak_minus_before_mb']:.0f} MB over the {result['rss_before_ingest_mb']:.0f} MB "
                  f"before ingest), {result['seconds']:.1f} s")
            path.unlink()
    return results


# --------------------------------------------------------------------------------------- MLflow half
def mlflow_worker(folder: Path, limit: int, work: Path) -> dict:
    """Log the tables to an MLflow SQLite tracking store (run in an interpreter that has mlflow)."""
    import logging

    logging.getLogger("mlflow").setLevel(logging.ERROR)
    import mlflow
    from mlflow.entities import Metric, Param, RunTag
    from mlflow.tracking import MlflowClient

    from a4nn.commons.random_nn_format import METADATA_COLUMNS, format_value, read_table

    paths = sorted(folder.glob("*.txt"))[:limit]
    client = MlflowClient(tracking_uri=f"sqlite:///{work / 'mlflow.db'}")
    experiment = client.create_experiment("random-nn", artifact_location=(work / "artifacts").as_uri())
    start, cpu = time.perf_counter(), time.process_time()
    rows = 0
    for path in paths:
        table = read_table(path)
        run = client.create_run(experiment, run_name=table.id)
        stamp = int(time.time() * 1000)
        metrics = []
        for epoch, train_loss, val_loss, val_acc in table.curve:
            step = int(round(epoch * 2))
            metrics += [Metric("trainLoss", train_loss, stamp, step), Metric("valLoss", val_loss, stamp, step),
                        Metric("valAcc", val_acc, stamp, step), Metric("epochs", epoch, stamp, step)]
        params = [Param(name, format_value(table.metadata.get(name))[:6000]) for name in METADATA_COLUMNS]
        for first in range(0, len(metrics), 1000):  # MLflow caps a batch at 1000 metrics
            client.log_batch(run.info.run_id, metrics=metrics[first:first + 1000],
                             params=params if first == 0 else [], tags=[RunTag("source", path.name)] if first == 0 else [])
        client.set_terminated(run.info.run_id)
        rows += len(table.curve)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu
    return {"mlflow_version": mlflow.__version__, "tables": len(paths), "epoch_rows": rows, "seconds": seconds,
            "cpu_seconds": cpu_seconds,
            "rows_per_second": rows / seconds, "db_bytes": (work / "mlflow.db").stat().st_size}


def _mlflow_python(explicit: str | None) -> str | None:
    candidates = [explicit, os.environ.get("A4NN_MLFLOW_PYTHON"), sys.executable]
    for python in candidates:
        if not python:
            continue
        check = subprocess.run([python, "-c", "import mlflow"], capture_output=True, timeout=120)
        if check.returncode == 0:
            return python
    return None


def bench_mlflow(folder: Path, limit: int, work: Path, python: str | None) -> dict:
    interpreter = _mlflow_python(python)
    if interpreter is None:
        return {"skipped": "mlflow is not importable (pip install mlflow, or pass --mlflow-python of a venv that has it)"}
    done = subprocess.run([interpreter, __file__, "--mlflow-worker", str(folder), "--mlflow-tables", str(limit),
                           "--work", str(work)], capture_output=True, text=True)
    if done.returncode != 0:
        return {"skipped": f"mlflow worker failed: {done.stderr.strip().splitlines()[-1:] or done.returncode}"}
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["python"] = interpreter
    return result


def _earlier_sections(sections: dict[str, dict]) -> dict[str, dict]:
    """Sections skipped in this run, as last measured: ``<name>_earlier_run`` with the date of that run.

    MLflow may be missing from one environment and the memory runs take minutes, so a
    rerun of the SQLite half alone must not erase what an earlier run measured; the
    earlier numbers stay apart, dated, and are never mixed into this run's ratios.
    """
    from _common import RESULTS_DIR

    previous_path = RESULTS_DIR / "ingest.json"
    if not previous_path.exists():
        return {}
    previous = json.loads(previous_path.read_text())
    kept = {}
    for name, section in sections.items():
        if "skipped" not in section:
            continue
        for source in (name, f"{name}_earlier_run"):
            found = previous.get(source)
            if found and "skipped" not in found:
                when = found.get("measured_at") or previous.get("machine", {}).get("when")
                kept[f"{name}_earlier_run"] = {**found, "measured_at": when}
                break
    return kept


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tables", type=int, default=6000)
    parser.add_argument("--epochs", type=int, default=40, help="epochs per table (a row every half epoch)")
    parser.add_argument("--mlflow-tables", type=int, default=600,
                        help="tables logged to MLflow (default 600: ~0.2 s a table would make 6000 take ~20 min); "
                             "the ratio is per table")
    parser.add_argument("--mlflow-python", default=None, help="interpreter with mlflow installed")
    parser.add_argument("--memory-mb", type=float, nargs="*", default=[20.0, 200.0],
                        help="sizes of the single-file inputs whose peak RSS is measured (none: skip)")
    parser.add_argument("--before", type=Path, default=None,
                        help="a4nn_sqlite result of an earlier code version to keep beside this one (JSON file)")
    parser.add_argument("--memory-worker", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--mlflow-worker", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.memory_worker is not None:
        print(json.dumps(memory_worker(args.memory_worker, args.work)))
        return
    if args.mlflow_worker is not None:
        print(json.dumps(mlflow_worker(args.mlflow_worker, args.mlflow_tables or 10**9, args.work)))
        return

    with tempfile.TemporaryDirectory(prefix="a4nn-bench-ingest-") as tmp:
        work = Path(tmp)
        tables = work / "tables"
        start = time.perf_counter()
        generate_tables(tables, args.tables, args.epochs)
        generate_seconds = time.perf_counter() - start
        size = sum(p.stat().st_size for p in tables.iterdir())
        ours = bench_sqlite(tables, work)
        print(f"a4nn ingest: {ours['tables']} tables, {ours['epoch_rows']} epoch rows in {ours['seconds']:.1f} s")
        mlflow_tables = min(args.mlflow_tables or args.tables, args.tables)
        print(f"a4nn ingest CPU time: {ours['cpu_seconds']:.1f} s (wall time suffers when other jobs share the cores)")
        theirs = bench_mlflow(tables, mlflow_tables, work, args.mlflow_python)
        if "seconds" in theirs:
            per_table_ours = ours["seconds"] / ours["tables"]
            per_table_theirs = theirs["seconds"] / theirs["tables"]
            theirs["ratio_mlflow_over_a4nn_per_table"] = per_table_theirs / per_table_ours
            theirs["ratio_mlflow_over_a4nn_per_table_cpu"] = ((theirs["cpu_seconds"] / theirs["tables"])
                                                               / (ours["cpu_seconds"] / ours["tables"]))
            print(f"mlflow: {theirs['tables']} tables in {theirs['seconds']:.1f} s "
                  f"({theirs['ratio_mlflow_over_a4nn_per_table']:.1f}x slower per table)")
        else:
            print(f"mlflow: {theirs['skipped']}")
        memory = bench_memory(args.memory_mb, work) if args.memory_mb else {"skipped": "--memory-mb given no sizes"}

    earlier = _earlier_sections({"mlflow_sqlite": theirs, "memory": memory})
    path = write_result("ingest", {
        "target": {"tables": 6000, "seconds": 30.0, "cores": 2},
        "input": {"tables": args.tables, "rows_per_table": 2 * args.epochs, "epoch_rows": args.tables * 2 * args.epochs,
                  "bytes": size, "format": "random-nn 28 columns, space-delimited", "generate_seconds": generate_seconds},
        "a4nn_sqlite": ours,
        "mlflow_sqlite": theirs,
        **({"a4nn_sqlite_before": json.loads(args.before.read_text())} if args.before else {}),
        "memory": memory,
        **earlier,
        "load_average_during_run": os.getloadavg(),
        "meets_target": ours["seconds"] < 30.0 and ours["tables"] == args.tables,
        "meets_target_cpu_time": ours["cpu_seconds"] < 30.0 and ours["tables"] == args.tables,
    })
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
