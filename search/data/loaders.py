"""Loading image data sets into tensors: XFEL TIFF folders, NPZ and HDF5 files, the simulator.

Diffraction counts span orders of magnitude, so every loader applies the same
``log1p`` and then standardizes with the *training* split's mean and std (the
validation split never leaks into the statistics). The checksum recorded in the
lineage database is taken over the raw arrays and labels, before normalization,
so two loads of the same files always agree.
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
from a4nn.search.data.simulator import BEAMS, LABELS, SimulationSpec, simulate_xfel, simulation_summary

XFEL_NAME = re.compile(r"^ef2_(1n0u|1n0vc)_ptm(\d+)\.tiff?$")
ARRAY_KEYS = ("x_train", "y_train", "x_val", "y_val")


@dataclass
class ImageSplit:
    """Train/validation tensors plus what the lineage database records about the data.

    ``train_x``/``val_x`` are float32 ``N x C x H x W``; ``train_y``/``val_y`` int64 class
    indices. ``attributes`` becomes ``datasets.attributes`` (beam, intensity,
    image_size, n_train, n_val, checksum, seed, ...).
    """

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
    def input_shape(self) -> tuple[int, int, int, int]:
        """``(1, C, H, W)``: the one-image input FLOPs are counted on."""
        return (1, self.in_channels, *self.image_size)

    @property
    def n_classes(self) -> int:
        return int(max(self.train_y.max().item(), self.val_y.max().item()) + 1)


def checksum(*arrays: np.ndarray) -> str:
    """sha256 over dtype, shape and bytes of each array (so a reshaped array hashes differently)."""
    digest = hashlib.sha256()
    for array in arrays:
        array = np.ascontiguousarray(array)
        digest.update(f"{array.dtype.str}{array.shape}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def _as_images(array: np.ndarray, what: str, source: str) -> np.ndarray:
    """``N x H x W`` or ``N x C x H x W`` finite numbers as float32 ``N x C x H x W``."""
    array = np.asarray(array)
    if array.dtype.kind not in "biuf":
        raise InputFormatError(f"{what} must be numeric, got dtype {array.dtype}", path=source)
    if array.ndim == 3:
        array = array[:, None]
    if array.ndim != 4 or min(array.shape) == 0:
        raise InputFormatError(f"{what} must be N x H x W or N x C x H x W, got shape {array.shape}", path=source)
    array = array.astype(np.float32)
    if not np.isfinite(array).all():
        raise InputFormatError(f"{what} contains NaN or infinite values", path=source)
    return array


def _as_labels(array: np.ndarray, n: int, what: str, source: str) -> np.ndarray:
    array = np.asarray(array).reshape(-1)
    if array.size != n:
        raise InputFormatError(f"{what} has {array.size} labels for {n} images", path=source)
    if array.dtype.kind == "f" and np.all(np.mod(array, 1) == 0):
        array = array.astype(np.int64)
    if array.dtype.kind not in "biu" or (array.size and array.min() < 0):
        raise InputFormatError(f"{what} must be non-negative integer class indices", path=source)
    return array.astype(np.int64)


def load_arrays(train_x: np.ndarray, train_y: np.ndarray, val_x: np.ndarray, val_y: np.ndarray, name: str, kind: str,
                attributes: dict[str, Any] | None = None, source: str = "<arrays>") -> ImageSplit:
    """An :class:`ImageSplit` from raw arrays (images ``N x H x W`` or ``N x C x H x W``, integer labels)."""
    tx, vx = _as_images(train_x, "training images", source), _as_images(val_x, "validation images", source)
    ty, vy = _as_labels(train_y, len(tx), "training labels", source), _as_labels(val_y, len(vx), "validation labels",
                                                                                  source)
    if tx.shape[1:] != vx.shape[1:]:
        raise InputFormatError(f"training images {tx.shape[1:]} and validation images {vx.shape[1:]} differ in shape",
                               path=source)
    digest = checksum(tx, ty, vx, vy)
    log_train, log_val = np.log1p(np.clip(tx, 0, None)), np.log1p(np.clip(vx, 0, None))
    mean, std = float(log_train.mean()), float(log_train.std()) or 1.0
    attrs: dict[str, Any] = {"n_train": int(len(ty)), "n_val": int(len(vy)), "image_size": [int(s) for s in tx.shape[-2:]],
                             "channels": int(tx.shape[1]), "n_classes": int(max(ty.max(), vy.max()) + 1),
                             "checksum": digest,
                             "normalization": {"transform": "log1p", "mean": mean, "std": std}}
    attrs.update(attributes or {})
    return ImageSplit(torch.from_numpy((log_train - mean) / std), torch.from_numpy(ty),
                      torch.from_numpy((log_val - mean) / std), torch.from_numpy(vy), name, kind, attrs)


def _read_tiff_folder(root: Path, folder: str) -> tuple[list[np.ndarray], list[int]]:
    import tifffile

    directory = root / "images" / folder
    if not directory.is_dir():
        raise InputFormatError(f"missing folder images/{folder} (expected the published XFEL layout)", path=str(root))
    images: list[np.ndarray] = []
    labels: list[int] = []
    matches = [(XFEL_NAME.match(path.name), path) for path in directory.iterdir()]
    # order by the ptm id (then name) so the tensors follow the data set's own numbering
    for match, path in sorted(((m, p) for m, p in matches if m), key=lambda mp: (int(mp[0].group(2)), mp[1].name)):
        try:
            image = tifffile.imread(path)
        except Exception as exc:  # noqa: BLE001 - tifffile raises many types for corrupt files
            raise InputFormatError(f"not a readable TIFF image ({type(exc).__name__}: {exc})", path=str(path)) from None
        if image.ndim != 2:
            raise InputFormatError(f"expected a single-channel 2-D image, got shape {image.shape}", path=str(path))
        if images and image.shape != images[0].shape:
            raise InputFormatError(f"image shape {image.shape} differs from {images[0].shape} of the other images",
                                   path=str(path))
        if image.dtype.kind not in "biuf" or not np.isfinite(image).all():
            raise InputFormatError(f"image has non-numeric or non-finite pixels (dtype {image.dtype})", path=str(path))
        images.append(image.astype(np.float32))
        labels.append(LABELS[match.group(1)])
    if not images:
        raise InputFormatError(f"no ef2_{{1n0u|1n0vc}}_ptm<id>.tiff images in images/{folder}", path=str(root))
    return images, labels


def load_xfel_tiff(root: str | Path, beam: str | None = None) -> ImageSplit:
    """XFEL diffraction images in the published layout under ``root/images``.

    ``images/trainset`` is the training split and ``images/testset`` the validation
    split; ``ef2_1n0u_*`` is class 0 and ``ef2_1n0vc_*`` class 1. ``beam`` (low,
    medium, high) is recorded when known; simulated sets carry their own.
    """
    root = Path(root)
    train_images, train_labels = _read_tiff_folder(root, "trainset")
    val_images, val_labels = _read_tiff_folder(root, "testset")
    if train_images[0].shape != val_images[0].shape:
        raise InputFormatError(f"trainset images are {train_images[0].shape} but testset images "
                               f"{val_images[0].shape}", path=str(root))
    attributes: dict[str, Any] = {"root": str(root.resolve())}
    summary = simulation_summary(root)
    beam = beam or summary.get("beam")
    if beam is not None:
        if beam not in BEAMS:
            raise InputFormatError(f"unknown beam {beam!r}: use one of {', '.join(BEAMS)}", path=str(root))
        attributes.update(beam=beam, intensity=BEAMS[beam])
    return load_arrays(np.stack(train_images), np.array(train_labels), np.stack(val_images), np.array(val_labels),
                       name=f"xfel-tiff:{root.resolve().name}", kind="xfel-tiff", attributes=attributes, source=str(root))


def split_80_20(x: np.ndarray, y: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A seeded shuffle into 80 % training and 20 % validation."""
    order = np.random.default_rng(seed).permutation(len(y))
    cut = int(round(0.8 * len(y)))
    return x[order[:cut]], y[order[:cut]], x[order[cut:]], y[order[cut:]]


def _arrays_from(keys: set[str], get: Any, path: Path, what: str, seed: int) -> tuple[np.ndarray, ...]:
    if set(ARRAY_KEYS) <= keys:
        return tuple(np.asarray(get(k)) for k in ARRAY_KEYS)
    if {"x", "y"} <= keys:
        x, y = np.asarray(get("x")), np.asarray(get("y"))
        if len(x) != len(y):
            raise InputFormatError(f"x has {len(x)} images but y {len(y)} labels", path=str(path))
        return split_80_20(x, y, seed)
    raise InputFormatError(f"{what} needs x_train/y_train/x_val/y_val or x/y, found {sorted(keys)}", path=str(path))


def load_npz(path: str | Path, seed: int = 0, beam: str | None = None) -> ImageSplit:
    """An ``.npz`` with arrays ``x_train, y_train, x_val, y_val`` or ``x, y`` (seeded 80/20 split)."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = _arrays_from(set(data.files), data.__getitem__, path, "NPZ", seed)
    except InputFormatError:
        raise
    except Exception as exc:  # noqa: BLE001 - zipfile/pickle/OS errors of a damaged file
        raise InputFormatError(f"not a readable NPZ file ({type(exc).__name__}: {exc})", path=str(path)) from None
    return load_arrays(*arrays, name=f"npz:{path.stem}", kind="npz", source=str(path),
                       attributes=_file_attributes(path, seed, beam))


def load_hdf5(path: str | Path, seed: int = 0, beam: str | None = None) -> ImageSplit:
    """An HDF5 file with datasets ``x_train, y_train, x_val, y_val`` or ``x, y`` at the root."""
    import h5py

    path = Path(path)
    try:
        with h5py.File(path, "r") as data:
            arrays = _arrays_from(set(data.keys()), lambda key: data[key][()], path, "HDF5", seed)
    except InputFormatError:
        raise
    except Exception as exc:  # noqa: BLE001 - h5py raises OSError/KeyError/TypeError for bad files
        raise InputFormatError(f"not a readable HDF5 file ({type(exc).__name__}: {exc})", path=str(path)) from None
    return load_arrays(*arrays, name=f"hdf5:{path.stem}", kind="hdf5", source=str(path),
                       attributes=_file_attributes(path, seed, beam))


def _file_attributes(path: Path, seed: int, beam: str | None) -> dict[str, Any]:
    attributes: dict[str, Any] = {"path": str(path.resolve()), "split_seed": seed}
    if beam is not None:
        if beam not in BEAMS:
            raise InputFormatError(f"unknown beam {beam!r}: use one of {', '.join(BEAMS)}", path=str(path))
        attributes.update(beam=beam, intensity=BEAMS[beam])
    return attributes


#: the environment variable naming the simulated-data cache; read by :func:`default_cache_dir` only
DATA_DIR_ENV = "A4NN_DATA_DIR"


def default_cache_dir() -> Path:
    """Where simulated data sets are cached: ``$A4NN_DATA_DIR`` or ``./a4nn-data``.

    The one reader of the variable. Programs that know their folder pass ``cache_dir``
    down explicitly (the CLI resolves it once, the benchmarks use their own folder);
    this default serves a caller that gives none.
    """
    return Path(os.environ.get(DATA_DIR_ENV) or "a4nn-data")


def load_simulated(spec: SimulationSpec, cache_dir: str | Path | None = None, progress: bool = False) -> ImageSplit:
    """Simulate (or reuse from the cache) and load an XFEL-like data set."""
    root = simulate_xfel(spec, cache_dir if cache_dir is not None else default_cache_dir(), progress=progress)
    split = load_xfel_tiff(root, beam=spec.beam)
    summary = simulation_summary(root)
    split.name = f"xfel-sim-{spec.beam}-{spec.image_size}px-{spec.n_images}-s{spec.seed}"
    if spec != SimulationSpec(beam=spec.beam, n_images=spec.n_images, image_size=spec.image_size, seed=spec.seed):
        split.name += f"-{spec.key()}"  # non-default physics or molecule: keep names unique in the database
    split.kind = "xfel-sim"
    split.attributes.update(seed=spec.seed, n_images=spec.n_images, simulation_key=spec.key(),
                            molecule=summary.get("molecule"), photons_per_image=summary.get("photons_per_image"),
                            wavelength=spec.wavelength, q_max=spec.q_max)
    return split


def load_dataset(spec: str, *, beam: str | None = None, n_images: int = 400, image_size: int = 32, seed: int = 0,
                 cache_dir: str | Path | None = None, molecule: str | None = None,
                 progress: bool = False) -> ImageSplit:
    """One entry point for every data source.

    ``spec`` is ``"xfel-sim"`` (simulate with ``beam`` — low when not given —, ``n_images``, ``image_size``,
    ``seed`` and optionally a ``molecule`` PDB; cached in ``cache_dir``, default
    ``$A4NN_DATA_DIR`` or ``./a4nn-data``) or a path: a folder with ``images/`` (XFEL
    TIFF layout), an ``.npz`` or an ``.h5``/``.hdf5`` file. For paths, ``beam`` is only
    a label recorded with the data (pass ``None`` when it does not apply); ``seed``
    drives the 80/20 split of files that hold a single ``x, y`` pair.
    """
    if spec == "xfel-sim":
        try:
            simulation = SimulationSpec(beam=beam or "low", n_images=n_images, image_size=image_size, seed=seed,
                                        molecule=molecule)
        except ValueError as exc:
            raise InputFormatError(str(exc), path="xfel-sim") from None
        return load_simulated(simulation, cache_dir, progress=progress)
    path = Path(spec)
    if not path.exists():
        raise InputFormatError("no such data set: expected 'xfel-sim', a folder with images/, a .npz or an .h5 file",
                               path=spec)
    if path.is_dir():
        return load_xfel_tiff(path, beam=beam)
    suffix = path.suffix.lower()
    if suffix == ".npz":
        return load_npz(path, seed, beam)
    if suffix in (".h5", ".hdf5"):
        return load_hdf5(path, seed, beam)
    raise InputFormatError("unknown data format: expected a folder with images/, a .npz or an .h5/.hdf5 file",
                           path=spec)


def raw_split(split: ImageSplit) -> ImageSplit:
    """The same images without the loaders' ``log1p`` + standardisation (NSGA-Net trained on raw floats).

    Inverts the recorded normalization (``expm1(x * std + mean)``), so the pixels are the
    loaded intensities clipped at 0, as before ``log1p``. The data set row is unchanged:
    the images are the same, how a search feeds them is its recipe (``searches.config``).
    """
    norm = split.attributes.get("normalization") or {}
    if norm.get("transform") != "log1p":
        raise InputFormatError(f"cannot undo normalization {norm!r}", path=split.name)
    mean, std = float(norm["mean"]), float(norm["std"])

    def undo(x: torch.Tensor) -> torch.Tensor:
        return torch.expm1(x.double() * std + mean).clamp_min(0).to(x.dtype)

    return ImageSplit(undo(split.train_x), split.train_y, undo(split.val_x), split.val_y, split.name, split.kind,
                      dict(split.attributes))
