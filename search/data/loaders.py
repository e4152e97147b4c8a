"""Loading image data sets into tensors: XFEL TIFF folders, NPZ and HDF5 files.

Diffraction counts span orders of magnitude, so every loader applies the same
``log1p`` followed by standardization with the training split's mean and std.
"""
from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from a4nn.errors import InputFormatError
from a4nn.search.data.simulator import BEAMS, LABELS, SimulationSpec, simulate_xfel

XFEL_NAME = re.compile(r"^ef2_(1n0u|1n0vc)_ptm(\d+)\.tiff?$")


@dataclass
class ImageSplit:
    """Train/validation tensors plus what the lineage database records about the data."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    name: str
    kind: str
    attributes: dict[str, Any] = field(default_factory=dict)

    @property
    def in_channels(self) -> int:
        return int(self.train_x.shape[1])

    @property
    def image_size(self) -> tuple[int, int]:
        return int(self.train_x.shape[2]), int(self.train_x.shape[3])

    @property
    def n_classes(self) -> int:
        return int(max(self.train_y.max().item(), self.val_y.max().item()) + 1)


def _prepare(train: np.ndarray, val: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    train = np.log1p(np.clip(train.astype(np.float32), 0, None))
    val = np.log1p(np.clip(val.astype(np.float32), 0, None))
    mean, std = float(train.mean()), float(train.std()) or 1.0
    as_nchw = lambda a: torch.from_numpy(((a - mean) / std).astype(np.float32)).reshape(a.shape[0], -1, *a.shape[-2:])
    return as_nchw(train), as_nchw(val)


def _checksum(*arrays: np.ndarray) -> str:
    digest = hashlib.sha256()
    for array in arrays:
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def load_arrays(train_x: np.ndarray, train_y: np.ndarray, val_x: np.ndarray, val_y: np.ndarray, name: str, kind: str,
                attributes: dict[str, Any] | None = None) -> ImageSplit:
    """An :class:`ImageSplit` from raw arrays (N x H x W or N x C x H x W)."""
    tx, vx = _prepare(train_x, val_x)
    attrs = {"n_train": int(len(train_y)), "n_val": int(len(val_y)), "image_size": list(tx.shape[-2:]),
             "checksum": _checksum(train_x, train_y, val_x, val_y), **(attributes or {})}
    return ImageSplit(tx, torch.as_tensor(train_y, dtype=torch.long), vx, torch.as_tensor(val_y, dtype=torch.long),
                      name, kind, attrs)


def load_xfel_tiff(root: Path, beam: str | None = None) -> ImageSplit:
    """Real (or simulated) XFEL data in the published layout under ``root/images``."""
    import tifffile

    root = Path(root)
    parts: dict[str, tuple[list[np.ndarray], list[int]]] = {}
    for folder in ("trainset", "testset"):
        images, labels = [], []
        directory = root / "images" / folder
        if not directory.is_dir():
            raise InputFormatError(f"missing folder images/{folder}", path=str(root))
        for path in sorted(directory.iterdir()):
            match = XFEL_NAME.match(path.name)
            if not match:
                continue
            try:
                image = tifffile.imread(path)
            except Exception as exc:  # tifffile raises several types for corrupt files
                raise InputFormatError(f"not a readable TIFF image ({exc})", path=str(path)) from None
            if image.ndim != 2 or (images and image.shape != images[0].shape):
                raise InputFormatError(f"expected a 2-D image like the others, got shape {image.shape}", path=str(path))
            images.append(image)
            labels.append(LABELS[match.group(1)])
        if not images:
            raise InputFormatError(f"no ef2_{{1n0u|1n0vc}}_ptm<id>.tiff images in images/{folder}", path=str(root))
        parts[folder] = (images, labels)
    attributes: dict[str, Any] = {"root": str(root)}
    if beam:
        attributes.update(beam=beam, intensity=BEAMS.get(beam))
    return load_arrays(np.stack(parts["trainset"][0]), np.array(parts["trainset"][1]), np.stack(parts["testset"][0]),
                       np.array(parts["testset"][1]), name=f"xfel-tiff:{root.name}", kind="xfel-tiff",
                       attributes=attributes)


def _split(x: np.ndarray, y: np.ndarray, seed: int) -> tuple[np.ndarray, ...]:
    order = np.random.default_rng(seed).permutation(len(y))
    cut = int(round(0.8 * len(y)))
    return x[order[:cut]], y[order[:cut]], x[order[cut:]], y[order[cut:]]


def _load_npz(path: Path, seed: int) -> ImageSplit:
    with np.load(path) as data:
        keys = set(data.files)
        if {"x_train", "y_train", "x_val", "y_val"} <= keys:
            arrays = (data["x_train"], data["y_train"], data["x_val"], data["y_val"])
        elif {"x", "y"} <= keys:
            arrays = _split(data["x"], data["y"], seed)
        else:
            raise InputFormatError(f"NPZ needs arrays x_train/y_train/x_val/y_val or x/y, found {sorted(keys)}", path=str(path))
    return load_arrays(*arrays, name=f"npz:{path.stem}", kind="npz")


def _load_hdf5(path: Path, seed: int) -> ImageSplit:
    import h5py

    with h5py.File(path, "r") as data:
        keys = set(data.keys())
        if {"x_train", "y_train", "x_val", "y_val"} <= keys:
            arrays = tuple(np.asarray(data[k]) for k in ("x_train", "y_train", "x_val", "y_val"))
        elif {"x", "y"} <= keys:
            arrays = _split(np.asarray(data["x"]), np.asarray(data["y"]), seed)
        else:
            raise InputFormatError(f"HDF5 needs datasets x_train/y_train/x_val/y_val or x/y, found {sorted(keys)}", path=str(path))
    return load_arrays(*arrays, name=f"hdf5:{path.stem}", kind="hdf5")


def default_cache_dir() -> Path:
    return Path(os.environ.get("A4NN_DATA_DIR", "a4nn-data"))


def load_dataset(spec: str, *, beam: str = "low", n_images: int = 400, image_size: int = 32, seed: int = 0,
                 cache_dir: Path | None = None, progress: bool = False) -> ImageSplit:
    """``"xfel-sim"`` (simulate, cached) or a path: a folder with images/, a .npz or an .h5/.hdf5 file."""
    if spec == "xfel-sim":
        simulation = SimulationSpec(beam=beam, n_images=n_images, image_size=image_size, seed=seed)
        root = simulate_xfel(simulation, cache_dir or default_cache_dir(), progress=progress)
        split = load_xfel_tiff(root, beam=beam)
        split.name = f"xfel-sim-{beam}-{image_size}px-{n_images}-s{seed}"
        split.kind = "xfel-sim"
        split.attributes.update(simulation=simulation.key(), seed=seed, n_images=n_images)
        return split
    path = Path(spec)
    if path.is_dir():
        return load_xfel_tiff(path, beam=beam if beam in BEAMS else None)
    if path.suffix == ".npz":
        return _load_npz(path, seed)
    if path.suffix in (".h5", ".hdf5"):
        return _load_hdf5(path, seed)
    raise InputFormatError("not a data set: expected 'xfel-sim', a folder with images/, a .npz or an .h5 file", path=spec)
