"""Ray scaling: the same quick NSGA-Net search with 1 and 2 workers, plus overlapping generations.

Targets (issue 6): wall-time speed-up of 2 workers over 1 of at least 1.7x on a 2-core
machine with torch pinned to one thread per worker; idle-slot time at generation
tails measured, and the ``overlap=True`` loop measured against it.

Every configuration starts its own local Ray instance (``num_cpus`` = workers) and a
fresh SQLite database; worker processes are warmed up (torch imported) before the
clock starts, so the timings compare training, not interpreter start-up. The engine
is off (``--engine none``) so both runs train exactly the same networks for the same
epochs; the overlapping loop explores a slightly different trajectory by design.

Run: ``python benchmarks/scaling.py [--pop 6 --offspring 6 --generations 3 --epochs 4]``.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_result  # noqa: E402

import ray  # noqa: E402

from a4nn.lineage.database import Database  # noqa: E402
from a4nn.lineage.recorder import Recorder  # noqa: E402
from a4nn.migrations.runner import upgrade_database  # noqa: E402
from a4nn.search.distributed import RayEvaluator  # noqa: E402
from a4nn.search.evaluation import TrainSettings  # noqa: E402
from a4nn.search.nsga import SearchConfig  # noqa: E402
from a4nn.search.ray_overlap import make_search  # noqa: E402
from a4nn.search.ray_worker import DataSpec  # noqa: E402


@ray.remote(num_cpus=1)
def _warm() -> int:
    """Import the training stack in a worker so the timed run does not pay for it."""
    import a4nn.search.network  # noqa: F401
    import a4nn.search.trainer  # noqa: F401

    time.sleep(1.0)  # keep this worker busy so the next warm-up lands on another one
    return os.getpid()


def run_once(workers: int, overlap: bool, args: argparse.Namespace, data: DataSpec, folder: Path) -> dict:
    url = f"sqlite:///{folder / f'w{workers}-{int(overlap)}.db'}"
    upgrade_database(url)
    database = Database.open(url)
    recorder = Recorder(database)
    split = data.load()
    dataset_id = recorder.register_dataset(split.name, split.kind, split.attributes)
    search_id = recorder.start_search(f"scaling-w{workers}-o{int(overlap)}", "nsga-net-macro", dataset_id, None, {},
                                      seed=args.seed)
    settings = TrainSettings(epochs=args.epochs, batch_size=32, channels=args.channels, n_nodes=4, seed=args.seed,
                             num_threads=1, device="cpu", checkpoints="none")
    evaluator = RayEvaluator(recorder, lambda: None, data, settings, workers=workers, overlap=overlap,
                             run_dir=folder / f"run-w{workers}-{int(overlap)}",
                             ray_init={"runtime_env": {"env_vars": {"OMP_NUM_THREADS": "1"}}})
    try:
        ray.get([_warm.remote() for _ in range(workers)])
        config = SearchConfig(args.pop, args.offspring, args.generations, 4, args.channels,
                              (1, split.in_channels, *split.image_size), split.n_classes, args.seed)
        search = make_search(recorder, search_id, config, evaluator, folder / f"run-w{workers}-{int(overlap)}")
        start = time.perf_counter()
        results = search.run()
        wall = time.perf_counter() - start
    finally:
        evaluator.close()
        database.dispose()
    task_seconds = sum(r.wall_seconds for r in results)
    return {
        "workers": workers,
        "overlap": overlap,
        "networks": len(results),
        "wall_seconds": round(wall, 2),
        "training_seconds_sum": round(task_seconds, 2),
        # slot-seconds not spent training: tails, dispatch, driver work between generations
        "idle_slot_seconds": round(workers * wall - task_seconds, 2),
        "tail_idle_seconds_per_generation": [round(s.tail_idle_seconds, 2) for s in evaluator.stats],
        "tail_idle_seconds": round(sum(s.tail_idle_seconds for s in evaluator.stats), 2),
        "failed": sum(r.status == "failed" for r in results),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pop", type=int, default=6)
    parser.add_argument("--offspring", type=int, default=5, help="odd on purpose: 2 slots leave a tail")
    parser.add_argument("--generations", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--channels", type=int, default=8)
    parser.add_argument("--image-size", type=int, default=24)
    parser.add_argument("--n-images", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        data = DataSpec("xfel-sim", beam="high", n_images=args.n_images, image_size=args.image_size, seed=args.seed,
                        cache_dir=str(folder / "data"))
        data.load()
        runs = [run_once(1, False, args, data, folder), run_once(2, False, args, data, folder),
                run_once(2, True, args, data, folder)]
    one, two, overlapped = runs
    payload = {
        "config": vars(args),
        "runs": runs,
        "speedup_2_workers": round(one["wall_seconds"] / two["wall_seconds"], 3),
        "speedup_2_workers_overlap": round(one["wall_seconds"] / overlapped["wall_seconds"], 3),
        "efficiency_2_workers": round(one["wall_seconds"] / two["wall_seconds"] / 2, 3),
        "target_speedup": 1.7,
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "note": "2-core machine shared with other jobs; load averages show the contention during the run. "
                "The overlap run's networks differ from the generational runs (asynchronous NSGA-II), so compare "
                "its idle time, and its wall time per network.",
    }
    path = write_result("scaling", payload)
    print(path.read_text())


if __name__ == "__main__":
    main()
