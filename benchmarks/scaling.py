"""Ray scaling: the same seeded NSGA-Net search in-process, on 1 and 2 Ray workers, and with overlap.

Targets (issue 6): wall-time speed-up of 2 workers over 1 of at least 1.7x on a 2-core
machine with torch pinned to one thread per worker; idle-slot time at generation
tails measured, and the ``overlap=True`` loop measured against it.

Fairness:

* Every run is the same search: same seed, same data (simulated once, cached on disk),
  engine off so every network trains its full budget, and network weights seeded from
  the search seed and the genome (the Ray worker and the in-process trainer build the
  model the same way). The generational runs must therefore train *the same networks
  to the same accuracies*; the script checks it (``same_networks``). The overlapping
  loop tells pymoo about networks in a different grouping, so it explores another
  trajectory by design: compare its idle time and its wall time per network.
* Ray start-up (``ray.init``) and the worker warm-up (process start, torch import,
  thread pinning) are timed and reported apart from the search's wall time; the
  search clock starts after both. Data loading inside the workers stays inside the
  clock (it is a cost of the run) and is reported in the profile.
* Hardware ceiling: the same network trained by one process alone and by two processes
  at once, without Ray (``hardware_ceiling.throughput_ratio``): the best speed-up any
  2-worker scheduler can reach on this machine at that moment.
* The load average is recorded before the timed runs; run it under the machine's
  CPU lock (``flock /tmp/a4nn-cpu.lock python benchmarks/scaling.py``).

Profile (per run): where the slots' time went, from the driver's time stamps and each
task's own (``RayEvaluator.timeline``): training, data loading, network build,
waiting for the driver's epoch verdicts, dispatch latency (submit to task start),
collect latency (task end to the driver seeing it); idle slot-seconds split into
*tail* idle (some slots busy, others idle: generation tails) and *gap* idle (no
network training at all: the driver between generations, ask/tell/registration);
and the CPU seconds used by the driver, the workers and Ray's own processes.

Run: ``python benchmarks/scaling.py [--pop 8 --offspring 5 --generations 3 --epochs 5]``.
"""
from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_result  # noqa: E402

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

import ray  # noqa: E402
from sqlalchemy import select  # noqa: E402

from a4nn.lineage.database import Database  # noqa: E402
from a4nn.lineage.models import Architecture, Genome  # noqa: E402
from a4nn.lineage.recorder import Recorder  # noqa: E402
from a4nn.migrations.runner import upgrade_database  # noqa: E402
from a4nn.search.distributed import RayEvaluator  # noqa: E402
from a4nn.search.evaluation import SerialEvaluator, TrainSettings  # noqa: E402
from a4nn.search.nsga import NSGANetSearch, SearchConfig  # noqa: E402
from a4nn.search.ray_overlap import make_search  # noqa: E402
from a4nn.search.ray_worker import DataSpec, pin_threads  # noqa: E402

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@ray.remote(num_cpus=1)
def _warm(num_threads: int) -> dict:
    """Start a worker process, pin its threads and import the training stack (not timed)."""
    pin_threads(num_threads)
    import torch

    import a4nn.search.network  # noqa: F401
    import a4nn.search.trainer  # noqa: F401

    time.sleep(1.0)  # keep this worker busy so the next warm-up lands on another process
    return {"pid": os.getpid(), "torch_threads": torch.get_num_threads(),
            "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"), "MKL_NUM_THREADS": os.environ.get("MKL_NUM_THREADS")}


# ------------------------------------------------------------------ CPU accounting
def _proc_table() -> dict[int, tuple[int, str, float]]:
    """pid -> (parent pid, command name, CPU seconds) for every process we can read."""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                text = handle.read()
        except OSError:
            continue
        name = text[text.index("(") + 1:text.rindex(")")]
        fields = text[text.rindex(")") + 2:].split()
        table[int(entry)] = (int(fields[1]), name, (int(fields[11]) + int(fields[12])) / CLOCK_TICKS)
    return table


def _descendant_cpu() -> dict[int, tuple[str, float]]:
    """pid -> (name, CPU seconds) of every process below this one (Ray's daemons and workers)."""
    table = _proc_table()
    children: dict[int, list[int]] = {}
    for pid, (ppid, _, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    found, stack = {}, list(children.get(os.getpid(), []))
    while stack:
        pid = stack.pop()
        found[pid] = (table[pid][1], table[pid][2])
        stack.extend(children.get(pid, []))
    return found


def _self_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _cpu_delta(before: dict, after: dict, worker_pids: set[int]) -> dict:
    groups: dict[str, float] = {}
    for pid, (name, seconds) in after.items():
        used = seconds - before.get(pid, (name, 0.0))[1]
        group = "workers" if pid in worker_pids else name
        groups[group] = groups.get(group, 0.0) + used
    workers = groups.pop("workers", 0.0)
    return {"workers": round(workers, 2), "ray_daemons": {k: round(v, 2) for k, v in sorted(groups.items())
                                                          if v >= 0.05},
            "ray_daemons_total": round(sum(groups.values()), 2)}


# ------------------------------------------------------------------ timeline analysis
def _occupancy(intervals: list[tuple[float, float]], begin: float, end: float, slots: int) -> dict:
    """Idle slot-seconds in [begin, end]: with some slots busy (tail) and with none (gap)."""
    points = sorted([(max(a, begin), 1) for a, b in intervals] + [(min(b, end), -1) for a, b in intervals]
                    + [(begin, 0), (end, 0)])
    running, last, tail, gap = 0, begin, 0.0, 0.0
    for moment, change in points:
        span = max(0.0, moment - last)
        idle = max(0, slots - running)
        if running == 0:
            gap += idle * span
        else:
            tail += idle * span
        running += change
        last = max(last, moment)
    return {"tail_idle_slot_seconds": round(tail, 2), "gap_idle_slot_seconds": round(gap, 2)}


def _profile(timeline: list[dict], begin: float, end: float, slots: int) -> dict:
    tasks = [t for t in timeline if "started" in t and "ended" in t]
    busy = sum(t["ended"] - t["started"] for t in tasks)
    total = lambda key: round(sum(t.get(key, 0.0) for t in tasks), 2)  # noqa: E731
    return {
        "tasks": len(timeline),
        "slot_seconds": round(slots * (end - begin), 2),
        "task_seconds": round(busy, 2),
        "train_seconds": total("train_seconds"),
        "data_seconds": total("data_seconds"),
        "build_seconds": total("build_seconds"),
        "setup_seconds": total("setup_seconds"),
        "verdict_wait_seconds": total("verdict_wait_seconds"),
        "dispatch_latency_seconds": round(sum(t["started"] - t["submitted"] for t in tasks), 2),
        "collect_latency_seconds": round(sum(t["collected"] - t["ended"] for t in tasks), 2),
        **_occupancy([(t["started"], t["ended"]) for t in tasks], begin, end, slots),
        "worker_processes": len({t["pid"] for t in tasks}),
    }


# ------------------------------------------------------------------ hardware ceiling
def _train_repeatedly(job: tuple) -> float:
    """Train one genome ``n`` times in this process (threads pinned to 1); seconds taken."""
    bits, n, settings, data = job
    pin_threads(1)
    from a4nn.search.trainer import build_model, train_network

    split = data.load()
    start = time.perf_counter()
    for _ in range(n):
        train_network(build_model(bits, settings, split), split, settings, lambda metrics, model: False)
    return time.perf_counter() - start


def measure_ceiling(args: argparse.Namespace, data: DataSpec, n: int = 2) -> dict:
    """What 2 cores give without Ray: one process training alone vs two training at once.

    The same network, the same number of times per process: the ratio of throughputs is
    the best speed-up any 2-worker scheduler could reach on this machine right now.
    """
    import multiprocessing

    settings = TrainSettings(epochs=args.epochs, batch_size=args.batch_size, channels=args.channels, n_nodes=4,
                             seed=args.seed, num_threads=1, device="cpu", checkpoints="none")
    job = ((1, 0, 1, 1, 0, 1, 0) * 3, n, settings, data)
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        pool.map(time.sleep, [0.1, 0.1])  # both processes started before any clock
        alone = pool.apply(_train_repeatedly, (job,))
        together = pool.map(_train_repeatedly, [job, job], chunksize=1)
    return {"networks_per_process": n, "one_process_seconds": round(alone, 2),
            "two_processes_seconds": [round(x, 2) for x in together],
            "throughput_ratio": round(2 * alone / max(together), 3)}


# ------------------------------------------------------------------ one run
def run_once(mode: str, workers: int, args: argparse.Namespace, data: DataSpec, folder: Path) -> dict:
    """``mode``: serial (in-process, what ``--workers 1`` runs), ray or overlap."""
    tag = f"{mode}-w{workers}"
    url = f"sqlite:///{folder / f'{tag}.db'}"
    upgrade_database(url)
    database = Database.open(url)
    recorder = Recorder(database)
    split = data.load()
    dataset_id = recorder.register_dataset(split.name, split.kind, split.attributes)
    search_id = recorder.start_search(f"scaling-{tag}", "nsga-net-macro", dataset_id, None, {}, seed=args.seed)
    settings = TrainSettings(epochs=args.epochs, batch_size=args.batch_size, channels=args.channels, n_nodes=4,
                             seed=args.seed, num_threads=1, device="cpu", checkpoints="none")
    run_dir = folder / f"run-{tag}"
    config = SearchConfig(args.pop, args.offspring, args.generations, 4, args.channels,
                          (1, split.in_channels, *split.image_size), split.n_classes, args.seed)
    row: dict = {"mode": mode, "workers": workers, "overlap": mode == "overlap"}
    evaluator = None
    try:
        if mode == "serial":
            pin_threads(1)
            evaluator = SerialEvaluator(recorder, lambda: None, split, settings, run_dir)
            search = NSGANetSearch(recorder, search_id, config, evaluator, run_dir)
        else:
            evaluator = RayEvaluator(recorder, lambda: None, data, settings, workers=workers, overlap=mode == "overlap",
                                     run_dir=run_dir)
            mark = time.perf_counter()
            evaluator.wait_ready()
            warm = ray.get([_warm.remote(1) for _ in range(workers)])
            row["ray_start_seconds"] = round(evaluator.ray_start_seconds, 2)
            row["warmup_seconds"] = round(time.perf_counter() - mark, 2)
            row["warm_workers"] = warm
            search = make_search(recorder, search_id, config, evaluator, run_dir)
        procs_before, cpu_before = _descendant_cpu(), _self_cpu()
        begin, start = time.time(), time.perf_counter()
        results = search.run()
        wall = time.perf_counter() - start
        end = time.time()
        driver_cpu = _self_cpu() - cpu_before
        if isinstance(evaluator, RayEvaluator):
            pids = {t["pid"] for t in evaluator.timeline if "pid" in t} | {w["pid"] for w in row["warm_workers"]}
            row["cpu_seconds"] = {"driver": round(driver_cpu, 2), **_cpu_delta(procs_before, _descendant_cpu(), pids)}
            row["profile"] = _profile(evaluator.timeline, begin, end, evaluator.workers)
            row["tail_idle_seconds_per_generation"] = [round(s.tail_idle_seconds, 2) for s in evaluator.stats]
            row["torch_threads_in_workers"] = sorted({info.get("torch_threads") for info in
                                                     evaluator.attempt_info.values()} - {None})
        else:
            row["cpu_seconds"] = {"driver_and_training": round(driver_cpu, 2)}
    finally:
        if evaluator is not None:
            evaluator.close()
    with database.session() as session:
        networks = sorted((a.generation, a.index, g.bits, a.status, a.final_acc)
                          for a, g in session.execute(select(Architecture, Genome)
                                                      .join(Genome, Genome.id == Architecture.genome_id)
                                                      .where(Architecture.search_id == search_id)))
    database.dispose()
    trained = [r for r in results if r.status != "failed"]
    row.update({
        "networks_trained": len(networks),
        "results": len(results),
        "failed": sum(r.status == "failed" for r in results),
        "wall_seconds": round(wall, 2),
        "wall_seconds_per_network": round(wall / max(len(networks), 1), 3),
        "training_seconds_sum": round(sum(r.wall_seconds for r in trained), 2),
        "idle_slot_seconds": round(workers * wall - sum(r.wall_seconds for r in results), 2),
        "best_final_acc": max((r.final_acc for r in trained if r.final_acc is not None), default=None),
    })
    return row, networks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pop", type=int, default=8)
    parser.add_argument("--offspring", type=int, default=5, help="odd on purpose: 2 slots leave a tail")
    parser.add_argument("--generations", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--channels", type=int, default=8)
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--n-images", type=int, default=400)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--modes", default="serial:1,ray:1,ray:2,overlap:2",
                        help="comma-separated mode:workers runs (modes: serial, ray, overlap)")
    parser.add_argument("--no-ceiling", dest="ceiling", action="store_false",
                        help="skip the two-process training measurement without Ray")
    parser.add_argument("--output", default="scaling", help="name of the JSON under benchmarks/results/")
    args = parser.parse_args()
    plan = [(m.split(":")[0], int(m.split(":")[1])) for m in args.modes.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        data = DataSpec("xfel-sim", beam="high", n_images=args.n_images, image_size=args.image_size, seed=args.seed,
                        cache_dir=str(folder / "data"))
        data.load()  # simulate once, before any clock
        load_before = os.getloadavg()
        ceiling = measure_ceiling(args, data) if args.ceiling else None
        print(f"ceiling: {ceiling}", flush=True)
        runs, trained = [], {}
        for mode, workers in plan:
            row, networks = run_once(mode, workers, args, data, folder)
            runs.append(row)
            trained[(mode, workers)] = networks
            print(f"{mode} x{workers}: {row['wall_seconds']} s for {row['networks_trained']} networks", flush=True)
        load_after = os.getloadavg()
    by = {(r["mode"], r["workers"]): r for r in runs}
    payload: dict = {"config": vars(args), "hardware_ceiling": ceiling, "runs": runs, "target_speedup": 1.7}

    def ratio(a, b):
        return round(by[a]["wall_seconds"] / by[b]["wall_seconds"], 3) if a in by and b in by else None

    generational = [k for k in trained if k[0] != "overlap"]
    payload["same_networks"] = all(trained[k] == trained[generational[0]] for k in generational)
    payload["speedup_2_workers_vs_1_worker"] = ratio(("ray", 1), ("ray", 2))
    payload["speedup_2_workers_vs_serial"] = ratio(("serial", 1), ("ray", 2))
    payload["speedup_overlap_vs_1_worker"] = ratio(("ray", 1), ("overlap", 2))
    if ("ray", 1) in by and ("overlap", 2) in by:
        payload["speedup_overlap_vs_1_worker_per_network"] = round(
            by[("ray", 1)]["wall_seconds_per_network"] / by[("overlap", 2)]["wall_seconds_per_network"], 3)
    payload["load_average_before"] = [round(x, 2) for x in load_before]
    payload["load_average_after"] = [round(x, 2) for x in load_after]
    path = write_result(args.output, payload)
    print(path.read_text())


if __name__ == "__main__":
    main()
