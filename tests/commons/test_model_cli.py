"""``a4nn-commons model evaluate|export`` as a user runs them (the installed console script), and deployment
of the exported files in an interpreter that cannot import a4nn."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from models_fixture import Recorded, record_search, write_npz

from a4nn.commons.models import load_network
from a4nn.lineage.recorder import Recorder

SCRIPT = shutil.which("a4nn-commons")
pytestmark = pytest.mark.skipif(SCRIPT is None, reason="the a4nn-commons console script is not installed")


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Recorded:
    return record_search(tmp_path_factory.mktemp("cli"))


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([SCRIPT, *args], capture_output=True, text=True, timeout=300, env=env, cwd=cwd)


def one_error_line(result: subprocess.CompletedProcess) -> str:
    assert result.returncode != 0, result.stdout
    lines = [line for line in result.stderr.strip().splitlines() if line]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


def test_evaluate_prints_and_stores(recorded: Recorded) -> None:
    model_id = recorded.model_ids[0]
    result = run("model", "evaluate", str(model_id), "--dataset", str(recorded.npz), "--db", recorded.url)
    assert result.returncode == 0, result.stderr
    assert "confusion matrix" in result.stdout and "ms/image" in result.stdout
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["model"] == model_id and summary["evaluation_id"] is not None
    from a4nn.commons.models.evaluate import evaluations_of

    stored = evaluations_of(recorded.database, model_id)
    assert stored[-1]["id"] == summary["evaluation_id"]
    assert stored[-1]["metrics"]["accuracy"] == pytest.approx(summary["accuracy"])


def test_bad_input_is_one_clear_line(recorded: Recorded, tmp_path: Path) -> None:
    db = ("--db", recorded.url)
    model_id = str(recorded.model_ids[1])
    assert "no model with id 999" in one_error_line(run("model", "evaluate", "999", "--dataset", "xfel-sim", *db))
    assert "recorded epochs: 1, 2, 3" in one_error_line(
        run("model", "export", model_id, "--epoch", "9", "--format", "torchscript", "--out", str(tmp_path / "m.pt"),
            *db))
    other = write_npz(tmp_path / "other.npz", size=20, channels=2)
    line = one_error_line(run("model", "evaluate", model_id, "--dataset", str(other), *db))
    assert "channels: expected 1, got 2" in line and "image size: expected 16x16, got 20x20" in line
    # a network recorded without checkpoints
    recorder = Recorder(recorded.database)
    search = recorder.start_search("no-checkpoints", "nsga-net-macro", config={"channels": 4})
    bare = recorder.start_architecture(search, 0, 0, recorder.register_genome("1" * 21), {"n_nodes": 4},
                                       {"channels": 4})
    line = one_error_line(run("model", "export", str(bare), "--format", "onnx", "--out", str(tmp_path / "m.onnx"), *db))
    assert "without checkpoints" in line and "--checkpoints epoch" in line
    # a tampered checkpoint: the file is named with the sha256 it should have
    loaded = load_network(recorded.database, int(model_id), epoch=2)
    path = Path(next(c.location for c in loaded.record.checkpoints if c.epoch == 2))
    original = path.read_bytes()
    try:
        path.write_bytes(original[:-8] + b"tampered")
        line = one_error_line(run("model", "evaluate", model_id, "--epoch", "2", "--dataset", str(recorded.npz), *db))
        assert path.name in line and f"expected {loaded.sha256}" in line
    finally:
        path.write_bytes(original)


# The deployment check runs here: a4nn is made unimportable before anything else happens, and the script
# proves it; ONNX runs with torch blocked as well, so onnxruntime alone serves the file.
DEPLOY = r'''
import importlib.abc, json, sys
BLOCKED = set(sys.argv[3].split(","))
class Guard(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{name} is blocked in this deployment check")
        return None
sys.meta_path.insert(0, Guard())
for name in list(sys.modules):
    if name.split(".")[0] in BLOCKED:
        del sys.modules[name]
try:
    import a4nn  # noqa: F401
    raise SystemExit("a4nn is importable; the check would prove nothing")
except ImportError:
    pass
import numpy as np
x = np.load(sys.argv[2])
if sys.argv[1].endswith(".onnx"):
    import onnxruntime
    session = onnxruntime.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
    y = session.run(["logits"], {"images": x})[0]
else:
    import torch
    module = torch.jit.load(sys.argv[1])
    with torch.no_grad():
        y = module(torch.from_numpy(x)).numpy()
np.save(sys.argv[4], y)
print(json.dumps({"shape": list(y.shape), "a4nn_importable": False}))
'''


@pytest.mark.parametrize("fmt,suffix,blocked", [("torchscript", ".pt", "a4nn"), ("onnx", ".onnx", "a4nn,torch")])
def test_exported_file_runs_without_a4nn(recorded: Recorded, tmp_path: Path, fmt: str, suffix: str,
                                         blocked: str) -> None:
    if fmt == "onnx":
        pytest.importorskip("onnxruntime")
    model_id = recorded.model_ids[1]
    out = tmp_path / f"net{suffix}"
    result = run("model", "export", str(model_id), "--format", fmt, "--out", str(out), "--db", recorded.url)
    assert result.returncode == 0, result.stderr
    card = json.loads((tmp_path / "net.card.json").read_text())
    loaded = load_network(recorded.database, model_id)
    assert card["checkpoint"]["sha256"] == loaded.sha256 and card["genome"]["bits"] == loaded.record.bits
    assert card["mflops"] == pytest.approx(loaded.record.flops) and card["parameters"] == loaded.record.n_params
    assert card["dataset"]["attributes"]["normalization"]["transform"] == "log1p"
    assert card["search"]["name"] == "reuse" and card["train_params"]["channels"] == 4
    assert card["code_version"] == "0.1.0+test" and card["publication_doi"] is None
    images = torch.randn(7, 1, 16, 16, generator=torch.Generator().manual_seed(5))
    np.save(tmp_path / "x.npy", images.numpy())
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    deploy = subprocess.run([sys.executable, "-I", "-c", DEPLOY, str(out), str(tmp_path / "x.npy"), blocked,
                             str(tmp_path / "y.npy")], capture_output=True, text=True, timeout=120, cwd=outside)
    assert deploy.returncode == 0, deploy.stderr
    assert json.loads(deploy.stdout.strip().splitlines()[-1])["a4nn_importable"] is False
    expected = loaded.predict(images).numpy()
    got = np.load(tmp_path / "y.npy")
    assert got.shape == expected.shape and np.abs(got - expected).max() <= 1e-5
