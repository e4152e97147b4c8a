"""Model reuse: load time (SQLite / bundle / HTTP), inference overhead, TorchScript/ONNX vs eager, a refine run.

Runs the quick preset search (``a4nn-commons search --preset quick``, per-epoch checkpoints) unless
``--db URL --search ID`` point at one, then on its Pareto front:

* ``load``: ``load_network`` of the most accurate front network from the SQLite database, from an
  export bundle (final checkpoints) and over HTTP from ``a4nn-commons serve`` (median of repeats);
* ``inference``: images/s of ``LoadedNetwork.predict`` vs a plain ``torch.no_grad()`` forward of a
  network built and loaded by hand with ``torch.load``/``load_state_dict`` (target: overhead <= 5 %),
  batch 1 and batch 64, one thread, interleaved repeats;
* ``deploy``: the TorchScript file and the ONNX file (onnxruntime, one thread) vs eager;
* ``refine``: ``a4nn-commons refine --knee --epochs N`` on that front (before/after accuracy, epochs,
  wall time).

Run it under the CPU lock: ``flock /tmp/a4nn-cpu.lock python3 benchmarks/model_reuse.py``.
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
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._common import write_result  # noqa: E402

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", help="existing database with a quick-preset search (default: run one)")
    parser.add_argument("--search", type=int, help="its search id")
    parser.add_argument("--work", type=Path, default=None, help="working folder (default: a temporary one)")
    parser.add_argument("--refine-epochs", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    work = args.work or Path(tempfile.mkdtemp(prefix="model-reuse-"))
    work.mkdir(parents=True, exist_ok=True)

    from a4nn.commons.bundle import export_bundle
    from a4nn.commons.client import Client
    from a4nn.commons.models import load_network
    from a4nn.commons.models.export import example_input, export_network
    from a4nn.commons.models.refine import search_front
    from a4nn.lineage.database import Database
    from a4nn.search.network import build_network

    search_seconds = None
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
        }
        client.close()
    finally:
        server.terminate()
        server.wait(timeout=30)

    # ---- inference: loaded vs a hand-built module with the same weights
    from a4nn.search.encoding import string_to_bits

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
    inference = {}
    for batch in (1, 64):
        rates = _interleaved({"loaded": loaded.predict, "plain": plain_forward}, images, batch, args.rounds)
        inference[f"batch_{batch}"] = {"loaded_images_per_s": rates["loaded"], "plain_images_per_s": rates["plain"],
                                       "overhead_pct": 100.0 * (rates["plain"] / rates["loaded"] - 1.0)}
    inference["target_overhead_pct"] = 5.0

    # ---- deployment formats vs eager
    export_network(loaded, "torchscript", work / "net.pt")
    scripted = torch.jit.load(str(work / "net.pt"))
    deploy: dict = {"eager_vs": {}}
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
                   "seconds": search_seconds, "front": front},
        "load": load, "inference": inference, "deploy": deploy,
        "refine": {"epochs": args.refine_epochs, "wall_seconds": refine_seconds, "selection": selection["method"],
                   "flops_cut": selection["flops_max"], "rows": table["rows"], "table_line": method,
                   "parent_epochs": loaded.record.train_params.get("epochs")},
        "threads": 1, "torch": torch.__version__,
    }
    path = write_result("model_reuse", result)
    print(json.dumps({"load": load, "inference": inference, "deploy": deploy, "refine": result["refine"]}, indent=2))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
