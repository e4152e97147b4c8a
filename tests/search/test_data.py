"""The diffraction simulator and the data loaders."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch

from a4nn.errors import InputFormatError
from a4nn.search.data import SimulationSpec, load_dataset, load_xfel_tiff, simulate_xfel


def test_simulator_layout_balance_cache_and_noise(tmp_path: Path) -> None:
    spec = SimulationSpec(beam="low", n_images=40, image_size=16, seed=3)
    root = simulate_xfel(spec, tmp_path)
    train = sorted((root / "images" / "trainset").glob("ef2_*_ptm*.tiff"))
    test = sorted((root / "images" / "testset").glob("ef2_*_ptm*.tiff"))
    assert len(train) == 32 and len(test) == 8
    assert sum("1n0vc" in p.name for p in train + test) == 20
    image = tifffile.imread(train[0])
    assert image.dtype == np.float32 and image.shape == (16, 16)
    assert image[7:9, 7:9].sum() == 0  # beam stop
    assert (root / "angles.csv").read_text().count("\n") == 41
    stamp = (root / "angles.csv").stat().st_mtime_ns
    assert simulate_xfel(spec, tmp_path) == root and (root / "angles.csv").stat().st_mtime_ns == stamp
    high = tifffile.imread(sorted((simulate_xfel(SimulationSpec(beam="high", n_images=40, image_size=16, seed=3), tmp_path)
                                   / "images" / "trainset").glob("*.tiff"))[0])
    assert high.sum() > 50 * image.sum()  # photon count scales with beam intensity


def test_load_dataset_simulated(tmp_path: Path) -> None:
    split = load_dataset("xfel-sim", beam="medium", n_images=50, image_size=16, cache_dir=tmp_path)
    assert split.train_x.shape == (40, 1, 16, 16) and split.val_x.shape == (10, 1, 16, 16)
    assert split.kind == "xfel-sim" and split.attributes["beam"] == "medium" and len(split.attributes["checksum"]) == 64
    assert split.n_classes == 2 and abs(float(split.train_x.mean())) < 1e-4


def test_tiff_loader_names_a_broken_file(tmp_path: Path) -> None:
    root = simulate_xfel(SimulationSpec(n_images=20, image_size=8), tmp_path)
    broken = next((root / "images" / "trainset").glob("*.tiff"))
    broken.write_bytes(b"not a tiff")
    with pytest.raises(InputFormatError, match=broken.name):
        load_xfel_tiff(root)


def test_npz_and_hdf5_loaders(tmp_path: Path) -> None:
    import h5py

    x = np.random.default_rng(0).random((30, 8, 8)).astype(np.float32)
    y = np.arange(30) % 2
    np.savez(tmp_path / "set.npz", x=x, y=y)
    with h5py.File(tmp_path / "set.h5", "w") as handle:
        handle["x"], handle["y"] = x, y
    for name in ("set.npz", "set.h5"):
        split = load_dataset(str(tmp_path / name))
        assert len(split.train_y) == 24 and len(split.val_y) == 6
    np.savez(tmp_path / "bad.npz", images=x)
    with pytest.raises(InputFormatError, match="bad.npz"):
        load_dataset(str(tmp_path / "bad.npz"))


def test_high_beam_classes_are_learnable(tmp_path: Path) -> None:
    """A tiny CNN beats chance clearly on high-beam data: the two conformations are separable."""
    from a4nn.search.evaluation import TrainSettings
    from a4nn.search.network import build_network
    from a4nn.search.trainer import train_network

    torch.manual_seed(0)
    split = load_dataset("xfel-sim", beam="high", n_images=400, image_size=32, cache_dir=tmp_path)
    model = build_network([1, 1, 0, 1, 1, 0, 1] * 3, channels=8)
    history = train_network(model, split, TrainSettings(epochs=6, batch_size=32, channels=8), lambda m, _: False)
    assert max(h.val_acc for h in history) >= 75.0
