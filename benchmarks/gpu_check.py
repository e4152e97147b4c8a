"""The search on one NVIDIA GPU: seconds per epoch, utilisation, peak memory, CPU-vs-GPU agreement.

Run by ``benchmarks/gpu_check.sh`` (which installs the project first); writes one JSON
(default ``benchmarks/results/gpu_check.json``). Steps:

1. what torch sees (version, CUDA build, ``torch.cuda.is_available()``, the device);
   without a usable CUDA device the JSON says so (``cuda_usable: false`` and why) and the
   GPU steps are skipped rather than silently run on the CPU;
2. one network's first epochs trained on the CPU and on the GPU from the same seed and
   weights: both curves, their largest difference, seconds per epoch on each, and
   ``torch.cuda.max_memory_allocated`` of the GPU run;
3. the paper preset on one beam through the console script with ``--device cuda`` for
   reduced generations/epochs, in process (``--workers 1``) and on 2 Ray workers sharing
   the GPU (``num_gpus=0.5`` each), while ``nvidia-smi`` samples utilisation and memory
   in the background: wall time, seconds per epoch (from the epochs table), epochs per wall
   second, utilisation, and how many processes held the GPU at once (``max_gpu_processes``:
   2 when both Ray workers trained on it; 0 where a container hides the processes).

``--budget`` (``gpu_check.sh`` passes what its install left of 10 minutes) caps the searches
to what remains, a search past its share is stopped (its whole process group) and reported,
and the JSON is written after every step. Exit status: 0 when every step ran, 1 when a
search failed or ran out of time, 2 when CUDA was not usable (a CPU-only torch build, no
driver): the GPU steps need a CUDA build of torch 2.13.0 and an NVIDIA driver.

``--cpu`` (or ``A4NN_GPU_CHECK_CPU=1``) runs the same code on the CPU with tiny sizes, so
the script is exercised where no GPU is (its JSON goes to ``gpu_check_cpu_dryrun.json``).
CPU and GPU kernels differ (cuDNN picks other algorithms, reductions run in another order),
so agreement is reported as numbers, not asserted.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
AGREE_TRAIN, AGREE_VAL = 512, 256  # images of the agreement run
GENOME = [1, 0, 1, 1, 0, 1, 1, 1, 0, 1, 0, 1, 1, 0, 1, 0, 1, 1, 1, 0, 1]  # a fixed 3-phase macro genome


def torch_report() -> dict[str, Any]:
    import torch

    report: dict[str, Any] = {"torch": torch.__version__, "torch_cuda_build": torch.version.cuda,
                              "cuda_available": bool(torch.cuda.is_available()),
                              "nvidia_smi": shutil.which("nvidia-smi") is not None}
    if report["cuda_available"]:
        report["device_name"] = torch.cuda.get_device_name(0)
        report["device_count"] = torch.cuda.device_count()
    elif report["torch_cuda_build"] is None:
        report["why_not_cuda"] = "this torch is a CPU-only build (install a CUDA wheel of torch 2.13.0)"
    elif not report["nvidia_smi"]:
        report["why_not_cuda"] = "no nvidia-smi: no NVIDIA driver on this machine"
    else:
        report["why_not_cuda"] = "torch has CUDA but torch.cuda.is_available() is False (driver/runtime mismatch?)"
    return report


class GpuSampler:
    """``nvidia-smi`` every ``interval_ms`` in the background; summary of utilisation and memory.

    GPU 0 only (the machine has one; with more, lines of several GPUs would mix). The
    processes holding a CUDA context are polled too: 2 Ray workers sharing the GPU show
    up as 2 processes at once (``max_gpu_processes``), which utilisation alone cannot tell.
    """

    def __init__(self, interval_ms: int = 500):
        self.interval_ms, self.process, self.lines = interval_ms, None, []
        self.thread: threading.Thread | None = None
        self.apps_thread: threading.Thread | None = None
        self.stop = threading.Event()
        self.max_processes = 0

    def __enter__(self) -> "GpuSampler":
        if shutil.which("nvidia-smi"):
            self.process = subprocess.Popen(
                ["nvidia-smi", "-i", "0", "--query-gpu=utilization.gpu,memory.used", "--format=csv,noheader,nounits",
                 f"--loop-ms={self.interval_ms}"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            self.thread = threading.Thread(target=self._read, daemon=True)
            self.thread.start()
            self.apps_thread = threading.Thread(target=self._poll_apps, daemon=True)
            self.apps_thread.start()
        return self

    def _read(self) -> None:
        for line in self.process.stdout:  # type: ignore[union-attr]
            self.lines.append(line.strip())

    def _poll_apps(self) -> None:
        while not self.stop.wait(1.0):
            try:
                out = subprocess.run(["nvidia-smi", "-i", "0", "--query-compute-apps=pid", "--format=csv,noheader"],
                                     capture_output=True, text=True, timeout=10).stdout
            except (OSError, subprocess.SubprocessError):
                continue
            self.max_processes = max(self.max_processes, len({l.strip() for l in out.splitlines() if l.strip()}))

    def __exit__(self, *exc: Any) -> None:
        self.stop.set()
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        for thread in (self.thread, self.apps_thread):
            if thread is not None:
                thread.join(timeout=5)

    def summary(self) -> dict[str, Any]:
        samples = []
        for line in self.lines:
            try:
                util, memory = (float(v) for v in line.split(","))
            except ValueError:
                continue
            samples.append((util, memory))
        if not samples:
            return {"samples": 0, "note": "no nvidia-smi samples (no NVIDIA driver)"}
        utils = [u for u, _ in samples]
        return {"samples": len(samples), "interval_ms": self.interval_ms, "util_mean_pct": statistics.fmean(utils),
                "util_median_pct": statistics.median(utils), "util_max_pct": max(utils),
                "memory_used_max_mib": max(m for _, m in samples), "max_gpu_processes": self.max_processes}


def options_for(cpu: bool) -> dict[str, Any]:
    from a4nn.search.run import SearchSpec

    if cpu:
        return SearchSpec(preset="quick", image_size=16, n_images=60, channels=4, epochs=3, device="cpu").options()
    return SearchSpec(preset="paper", beam="low", device="cuda").options()


def agreement(cpu: bool, epochs: int, cache_dir: Path) -> dict[str, Any]:
    """One network's first ``epochs`` on the CPU and on the GPU (the same seed, the same initial weights)."""
    import torch

    from a4nn.search.run import load_data, train_settings
    from a4nn.search.trainer import build_model, train_network

    options = dict(options_for(cpu), epochs=epochs, checkpoints="none")
    from dataclasses import replace

    from a4nn.search.data.loaders import ImageSplit

    full = load_data(options, cache_dir=cache_dir)
    # a subset keeps the CPU side of the comparison short at 127 px; both devices see the same images
    data = ImageSplit(full.train_x[:AGREE_TRAIN], full.train_y[:AGREE_TRAIN], full.val_x[:AGREE_VAL],
                      full.val_y[:AGREE_VAL], full.name, full.kind, dict(full.attributes))
    curves: dict[str, Any] = {}
    devices = ["cpu"] if cpu else ["cpu", "cuda"]
    for device in devices:
        settings = replace(train_settings(dict(options, device=device)), num_threads=os.cpu_count() or 1)
        model = build_model(GENOME, settings, data)
        if device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        history = train_network(model, data, settings, lambda metrics, model: False)
        curves[device] = {"val_acc": [m.val_acc for m in history], "train_loss": [m.train_loss for m in history],
                          "seconds_per_epoch": statistics.fmean(m.seconds for m in history)}
        if device == "cuda":
            curves[device]["peak_memory_allocated_mib"] = torch.cuda.max_memory_allocated() / 2 ** 20
    report: dict[str, Any] = {"genome": GENOME, "epochs": epochs, "n_train": len(data.train_y), "n_val": len(data.val_y), "batch_size": options["batch_size"],
                              "image_size": options["image_size"], "channels": options["channels"], "curves": curves}
    if "cuda" in curves:
        a, b = curves["cpu"], curves["cuda"]
        report["max_abs_val_acc_diff"] = max(abs(x - y) for x, y in zip(a["val_acc"], b["val_acc"]))
        report["max_abs_train_loss_diff"] = max(abs(x - y) for x, y in zip(a["train_loss"], b["train_loss"]))
        report["speedup_per_epoch"] = a["seconds_per_epoch"] / b["seconds_per_epoch"]
    return report


def search_run(cpu: bool, workers: int, generations: int, epochs: int, pop: int, work: Path,
               timeout: int) -> dict[str, Any]:
    """The paper preset (tiny under ``cpu``) through the console script; seconds per epoch from the database."""
    from sqlalchemy import func, select

    from a4nn.lineage.database import Database
    from a4nn.lineage.models import Architecture, Epoch

    exe = Path(sys.executable).with_name("a4nn-commons")
    url = f"sqlite:///{work / f'gpu-w{workers}.db'}"
    sizes = (["--preset", "quick", "--image-size", "16", "--n-images", "60", "--channels", "4", "--device", "cpu"]
             if cpu else ["--preset", "paper", "--device", "cuda"])
    command = [str(exe) if exe.exists() else "a4nn-commons", "search", *sizes, "--beam", "low", "--pop", str(pop),
               "--offspring", str(pop), "--generations", str(generations), "--epochs", str(epochs),
               "--workers", str(workers), "--checkpoints", "none", "--quiet", "--db", url,
               "--run-dir", str(work / "runs"), "--name", f"gpu-check-w{workers}"]
    start = time.perf_counter()
    timed_out = False
    with GpuSampler() as sampler:
        # its own session, so a timeout ends the search and the Ray processes it started, not just the driver
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   start_new_session=True, env={**os.environ, "A4NN_DATA_DIR": str(work / "data")})
        try:
            _, stderr = process.communicate(timeout=max(1, timeout))
        except subprocess.TimeoutExpired:
            timed_out = True
            # Ctrl-C first: the search marks itself interrupted and shuts its Ray instance down
            stderr = ""
            for sig in (signal.SIGINT, signal.SIGKILL):
                try:
                    os.killpg(process.pid, sig)
                except ProcessLookupError:
                    pass
                try:  # a process it left behind may hold the pipes open: do not wait on them for ever
                    _, stderr = process.communicate(timeout=30)
                    break
                except subprocess.TimeoutExpired:
                    continue
    wall = time.perf_counter() - start
    report: dict[str, Any] = {"workers": workers, "command": " ".join(command[1:]), "returncode": process.returncode,
                              "wall_seconds": wall, "gpu": sampler.summary()}
    if timed_out:
        report["error"] = f"ran past its {timeout} s (killed); what it recorded is below"
    elif process.returncode != 0:
        report["stderr_tail"] = stderr[-1500:]
        return report
    if not (work / f"gpu-w{workers}.db").exists():
        return report
    database = Database.open(url)
    with database.session() as session:
        seconds = [float(s) for s in session.scalars(select(Epoch.seconds)) if s is not None]
        report["networks"] = session.scalar(select(func.count()).select_from(Architecture))
    report["epochs"] = len(seconds)
    report["seconds_per_epoch_mean"] = statistics.fmean(seconds) if seconds else None
    report["seconds_per_epoch_median"] = statistics.median(seconds) if seconds else None
    # with 2 workers epochs overlap: throughput is epochs per wall second, not 1 / seconds per epoch
    report["epochs_per_wall_second"] = len(seconds) / wall if wall > 0 else None
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpu", action="store_true", default=os.environ.get("A4NN_GPU_CHECK_CPU") == "1",
                        help="dry run on the CPU with tiny sizes (also A4NN_GPU_CHECK_CPU=1)")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--generations", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=8, help="epochs per network in the searches")
    parser.add_argument("--pop", type=int, default=4, help="population and offspring per generation")
    parser.add_argument("--agreement-epochs", type=int, default=3, help="epochs of the CPU-vs-GPU run")
    parser.add_argument("--search-timeout", type=int, default=200, help="seconds per search run (at most)")
    parser.add_argument("--budget", type=int, default=540,
                        help="seconds for the whole check: each search gets at most what is left of it")
    parser.add_argument("--skip-ray", action="store_true", help="no 2-worker run")
    args = parser.parse_args(argv)
    out = args.out or RESULTS / ("gpu_check_cpu_dryrun.json" if args.cpu else "gpu_check.json")
    result: dict[str, Any] = {"benchmark": "gpu_check", "mode": "cpu-dry-run" if args.cpu else "gpu",
                              "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "env": torch_report()}
    result["cuda_usable"] = result["env"]["cuda_available"]
    deadline = time.monotonic() + args.budget
    out.parent.mkdir(parents=True, exist_ok=True)

    def save() -> None:  # after every step: a check cut short still leaves what it measured
        result["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        out.write_text(json.dumps(result, indent=2) + "\n")

    def search_timeout(runs_left: int) -> int:  # the rest of the budget, shared by the searches still to run
        return int(min(args.search_timeout, (deadline - time.monotonic() - 15) / runs_left))

    work = Path(tempfile.mkdtemp(prefix="a4nn-gpu-check-"))
    try:
        if not args.cpu and not result["cuda_usable"]:
            result["skipped"] = f"CUDA is not usable: {result['env'].get('why_not_cuda')}; nothing ran on a GPU"
            print(result["skipped"], file=sys.stderr)
        else:
            result["agreement"] = agreement(args.cpu, args.agreement_epochs, work / "data")
            save()
            runs = [1] if args.skip_ray else [1, 2]
            for k, workers in enumerate(runs):
                key = "search_1_worker" if workers == 1 else "search_2_ray_workers"
                left = search_timeout(len(runs) - k)
                if left < 30:
                    result[key] = {"workers": workers, "error": "no time left in the budget"}
                else:
                    result[key] = search_run(args.cpu, workers, args.generations, args.epochs, args.pop, work, left)
                save()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    save()
    print(f"wrote {out}")
    if "skipped" in result:
        return 2
    searches = [result[key] for key in ("search_1_worker", "search_2_ray_workers") if key in result]
    return 0 if all(run.get("returncode") == 0 and "error" not in run for run in searches) else 1

if __name__ == "__main__":
    sys.exit(main())
