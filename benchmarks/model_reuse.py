"""Model reuse: load time (SQLite / bundle / HTTP), inference overhead, TorchScript/ONNX vs eager, a refine run.

Runs the quick preset search (``a4nn-commons search --preset quick``, per-epoch checkpoints) unless
``--db URL --search ID`` point at one, then on its Pareto front:

* ``load``: ``load_network`` of the most accurate front network from the SQLite database, from an
  export bundle (final checkpoints) and over HTTP from ``a4nn-commons serve`` (median of repeats);
* ``inference``: images/s of ``LoadedNetwork.predict`` vs a plain ``torch.no_grad()`` forward of a
  network built and loaded by hand with ``torch.load``/``load_state_dict`` (target: overhead <= 5 %),
  batch 1 and batch 64, one thread. Both are warmed up, then timed in paired rounds (same images
  each, the first of the pair alternating), and the overhead is the median of the per-round ratios
  minus one: on shared cores, background load moves both halves of a round alike, whereas it
  decides a comparison of medians taken minutes apart;
* ``deploy``: the TorchScript file and the ONNX file (onnxruntime, one thread) vs eager;
* ``refine``: ``a4nn-commons refine --knee --epochs N`` on that front (before/after accuracy, epochs,
  wall time).

Run it under the CPU lock: ``flock /tmp/a4nn-cpu.lock python3 benchmarks/model_reuse.py``.
``--only throughput --db URL --search ID`` re-measures the ``inference`` section alone and rewrites
that section of the results file in place, keeping the others (each section has its ``measured_at``).
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._common import RESULTS_DIR, write_result  # noqa: E402

SCRIPT = [sys.executable, "-m", "a4nn.cli.main"]


def _cli(*args: str, cwd: Path) -> str:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "A4NN_DATA_DIR": str(cwd / "data")}
    done = subprocess.run([*SCRIPT, *args], capture_output=True, text=True, env=env, cwd=cwd)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args[:2])} failed: {done.stderr.strip()[-2000:]}")
    return done.stdout


def _median_seconds(function, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        tick = time.perf_counter()
        function()
        times.append(time.perf_counter() - tick)
    return statistics.median(times)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _throughput(function, images: torch.Tensor, batch: int, seconds: float = 1.0) -> float:
    """Images per second of ``function`` on batches of ``batch`` (after a warm-up), over about ``seconds``."""
    chunk = images[:batch]
    for _ in range(3):
        function(chunk)
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        function(chunk)
        count += len(chunk)
    return count / (time.perf_counter() - start)


def _interleaved(functions: dict, images: torch.Tensor, batch: int, rounds: int) -> dict[str, float]:
    """Median throughput per function over ``rounds`` interleaved measurements (drift hits all alike)."""
    samples: dict[str, list[float]] = {name: [] for name in functions}
    for _ in range(rounds):
        for name, function in functions.items():
            samples[name].append(_throughput(function, images, batch))
    return {name: statistics.median(values) for name, values in samples.items()}


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _time_calls(function, chunk: torch.Tensor, calls: int) -> float:
    tick = time.perf_counter()
    for _ in range(calls):
        function(chunk)
    return time.perf_counter() - tick


def _quartiles(values: list[float]) -> dict[str, float]:
    q1, median, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return {"median": median, "q1": q1, "q3": q3, "iqr": q3 - q1, "min": min(values), "max": max(values)}


def _paired_rounds(loaded, plain, images: torch.Tensor, batch: int, rounds: int,
                   round_seconds: float) -> dict:
    """Throughput of ``loaded`` vs ``plain`` in ``rounds`` paired rounds (same images, first one alternating).

    The ratio plain/loaded is taken per round, so a burst of background load that slows one
    round slows both of its halves and largely cancels; the median over rounds drops the
    rounds it did not.
    """
    chunk = images[:batch]
    warm = time.perf_counter()
    for function in (loaded, plain, loaded, plain):
        _time_calls(function, chunk, 10)
    per_call = (time.perf_counter() - warm) / 40
    calls = max(5, int(round_seconds / per_call))
    rates: dict[str, list[float]] = {"loaded": [], "plain": []}
    ratios = []
    for index in range(rounds):
        order = [("loaded", loaded), ("plain", plain)]
        if index % 2:
            order.reverse()
        seconds = {name: _time_calls(function, chunk, calls) for name, function in order}
        for name in rates:
            rates[name].append(calls * batch / seconds[name])
        ratios.append(seconds["loaded"] / seconds["plain"])
    ratio = _quartiles(ratios)
    return {"loaded_images_per_s": statistics.median(rates["loaded"]),
            "plain_images_per_s": statistics.median(rates["plain"]),
            "ratio_plain_over_loaded": ratio,
            "overhead_pct": 100.0 * (ratio["median"] - 1.0),
            "overhead_pct_iqr": [100.0 * (ratio["q1"] - 1.0), 100.0 * (ratio["q3"] - 1.0)],
            "rounds": rounds, "images_per_round_each": calls * batch, "calls_per_round_each": calls}


def _inference(loaded, rounds: int, round_seconds: float) -> dict:
    """The ``inference`` section: ``loaded.predict`` against a hand-built module with the same weights."""
    from a4nn.commons.models.export import example_input
    from a4nn.search.encoding import string_to_bits
    from a4nn.search.network import build_network

    state = torch.load(loaded.record.checkpoints[-1].location, weights_only=True)["state_dict"]
    plain = build_network(string_to_bits(loaded.record.bits), n_nodes=loaded.record.n_nodes,
                          channels=loaded.record.channels, in_channels=loaded.record.in_channels,
                          n_classes=loaded.record.n_classes)
    plain.load_state_dict(state)
    plain.eval()
    images = example_input(loaded, 64)

    def plain_forward(x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return plain(x)

    assert torch.equal(plain_forward(images), loaded.predict(images))
    inference: dict = {
        "measured_at": _now(),
        "compared": {
            "loaded": f"LoadedNetwork.predict: @torch.no_grad() around LoadedNetwork.module "
                      f"({type(loaded.module).__module__}.{type(loaded.module).__name__})",
            "plain": f"with torch.no_grad(): module(x), module a {type(plain).__module__}.{type(plain).__name__} "
                     f"from build_network + load_state_dict(torch.load(checkpoint))",
            "same_module_class": type(loaded.module) is type(plain),
            "outputs_equal": True,
        },
        "method": "per batch size: both warmed up, then paired rounds timing both on the same number of "
                  "images, first of the pair alternating; overhead_pct = 100 * (median over rounds of "
                  "seconds_loaded / seconds_plain - 1), with the interquartile range of that ratio",
        "threads": torch.get_num_threads(),
    }
    for batch in (1, 64):
        inference[f"batch_{batch}"] = _paired_rounds(loaded.predict, plain_forward, images, batch, rounds,
                                                     round_seconds)
    inference["target_overhead_pct"] = 5.0
    return inference


def _only_throughput(loaded, rounds: int, round_seconds: float) -> None:
    """Re-measure the ``inference`` section and rewrite it in the results file, keeping the other sections."""
    path = RESULTS_DIR / "model_reuse.json"
    previous = json.loads(path.read_text())
    earlier = previous.get("machine", {}).get("when")
    for name in ("search", "load", "deploy", "refine"):
        if isinstance(previous.get(name), dict):
            previous[name].setdefault("measured_at", earlier)
    previous["inference"] = _inference(loaded, rounds, round_seconds)
    payload = {key: value for key, value in previous.items() if key not in ("benchmark", "machine")}
    write_result("model_reuse", payload)
    print(json.dumps(previous["inference"], indent=2))
    print(f"updated the inference section of {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", help="existing database with a quick-preset search (default: run one)")
    parser.add_argument("--search", type=int, help="its search id")
    parser.add_argument("--work", type=Path, default=None, help="working folder (default: a temporary one)")
    parser.add_argument("--refine-epochs", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds of the deploy section")
    parser.add_argument("--throughput-rounds", type=int, default=25, help="paired rounds per batch size (inference)")
    parser.add_argument("--round-seconds", type=float, default=0.25,
                        help="about how long each contender runs per paired round")
    parser.add_argument("--only", choices=["throughput"],
                        help="throughput: re-measure only the inference section (needs --db and --search) and "
                             "update it in benchmarks/results/model_reuse.json, keeping the other sections")
    args = parser.parse_args()
    if args.only and (args.db is None or args.search is None):
        parser.error("--only throughput needs --db URL and --search ID of the search to measure")
    torch.set_num_threads(1)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # already set or parallel work started: the intra-op setting is what matters here
        pass
    work = args.work or Path(tempfile.mkdtemp(prefix="model-reuse-"))
    work.mkdir(parents=True, exist_ok=True)

    from a4nn.commons.bundle import export_bundle
    from a4nn.commons.client import Client
    from a4nn.commons.models import load_network
    from a4nn.commons.models.export import example_input, export_network
    from a4nn.commons.models.refine import search_front
    from a4nn.lineage.database import Database

    search_seconds, search_started = None, _now()
    if args.db is None:
        url = f"sqlite:///{work / 'quick.db'}"
        tick = time.perf_counter()
        _cli("search", "--preset", "quick", "--checkpoints", "epoch", "--db", url, "--run-dir", str(work / "runs"),
             "--name", "quick", "--quiet", cwd=work)
        search_seconds = time.perf_counter() - tick
        search_id = 1
    else:
        url, search_id = args.db, args.search
    database = Database.open(url)
    front = search_front(database, search_id)
    best = max(front, key=lambda p: (p["acc"], -p["flops"]))
    model_id = best["id"]

    # ---- load time
    loaded = load_network(database, model_id)
    if args.only == "throughput":
        _only_throughput(loaded, args.throughput_rounds, args.round_seconds)
        return
    load_started = _now()
    bundle = work / "bundle"
    if not bundle.exists():
        export_bundle(database, search_id, bundle, "final", record=False)
    port = _free_port()
    server = subprocess.Popen([*SCRIPT, "serve", "--db", url, "--port", str(port), "--checkpoint-root",
                               str(Path(loaded.record.checkpoints[-1].location).parents[2])], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        client = Client(f"http://127.0.0.1:{port}")
        for _ in range(100):
            try:
                client.model(model_id)
                break
            except Exception:  # noqa: BLE001 - the server is still starting
                time.sleep(0.1)
        load = {
            "sqlite_ms": 1e3 * _median_seconds(lambda: load_network(database, model_id), args.repeats),
            "bundle_ms": 1e3 * _median_seconds(lambda: load_network(bundle, model_id), args.repeats),
            "http_ms": 1e3 * _median_seconds(lambda: load_network(client, model_id), args.repeats),
            "repeats": args.repeats, "model_id": model_id, "checkpoint_bytes": loaded.record.checkpoints[-1].size_bytes,
            "measured_at": load_started,
        }
        client.close()
    finally:
        server.terminate()
        server.wait(timeout=30)

    # ---- inference: loaded vs a hand-built module with the same weights
    inference = _inference(loaded, args.throughput_rounds, args.round_seconds)
    images = example_input(loaded, 64)

    # ---- deployment formats vs eager
    export_network(loaded, "torchscript", work / "net.pt")
    scripted = torch.jit.load(str(work / "net.pt"))
    deploy: dict = {"eager_vs": {}, "measured_at": _now()}
    functions = {"eager": loaded.predict, "torchscript": lambda x: scripted(x)}
    try:
        import onnxruntime

        export_network(loaded, "onnx", work / "net.onnx")
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        session = onnxruntime.InferenceSession(str(work / "net.onnx"), options, providers=["CPUExecutionProvider"])
        functions["onnxruntime"] = lambda x: session.run(["logits"], {"images": x.numpy()})[0]
        deploy["onnx_max_abs_diff"] = float(abs(torch.from_numpy(functions["onnxruntime"](images))
                                                - loaded.predict(images)).max())
    except ImportError:
        deploy["onnx"] = "onnxruntime not installed"
    with torch.no_grad():
        deploy["torchscript_max_abs_diff"] = float((scripted(images) - loaded.predict(images)).abs().max())
    for batch in (1, 64):
        rates = _interleaved(functions, images, batch, args.rounds)
        deploy[f"batch_{batch}_images_per_s"] = rates
        deploy["eager_vs"][f"batch_{batch}"] = {name: rates[name] / rates["eager"] for name in rates if name != "eager"}

    # ---- refine on the quick front
    refine_started = _now()
    tick = time.perf_counter()
    out = _cli("refine", str(search_id), "--knee", "--epochs", str(args.refine_epochs), "--db", url, "--run-dir",
               str(work / "refine-runs"), "--quiet", cwd=work)
    refine_seconds = time.perf_counter() - tick
    table = json.loads(out.strip().splitlines()[-1])
    method = next(line for line in out.splitlines() if line.startswith("Table I"))
    with database.session() as session:
        from a4nn.lineage.models import Search

        selection = session.get(Search, table["search_id"]).config["selection"]
    result = {
        "search": {"url": "sqlite (temporary)" if args.db is None else "given", "search_id": search_id,
                   "seconds": search_seconds, "front": front, "measured_at": search_started},
        "load": load, "inference": inference, "deploy": deploy,
        "refine": {"epochs": args.refine_epochs, "wall_seconds": refine_seconds, "selection": selection["method"],
                   "flops_cut": selection["flops_max"], "rows": table["rows"], "table_line": method,
                   "parent_epochs": loaded.record.train_params.get("epochs"), "measured_at": refine_started},
        "threads": 1, "torch": torch.__version__,
    }
    path = write_result("model_reuse", result)
    print(json.dumps({"load": load, "inference": inference, "deploy": deploy, "refine": result["refine"]}, indent=2))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
