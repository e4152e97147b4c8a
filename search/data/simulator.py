"""XFEL single-particle diffraction simulator: the embedded default data set.

Two conformations of one molecule (the shipped two-domain fragment, or a user PDB
file with two MODELs) are imaged one per pulse in uniformly random orientations.
For each image the expected photon count of every detector pixel is

    N(q) = J * r_e^2 * Omega_pixel * |sum_j f_j(q) exp(i q . R r_j)|^2

with J the fluence (1e14 / 1e15 / 1e16 photons/um^2/pulse for the low / medium /
high beam), r_e^2 the Thomson cross-section, Omega_pixel the pixel's solid angle on a
flat detector, q the scattering vector on the Ewald sphere, R the random rotation
and f_j(q) each scatterer's electrons times a Gaussian form factor. Counts are drawn
from a Poisson distribution and a central beam stop blanks the direct beam. So the
low beam gives ~100x fewer photons per image than the high beam and is genuinely
harder to classify — the effect the A4NN paper studies.

Images go to the layout of the real data (``images/trainset|testset/
ef2_{1n0u|1n0vc}_ptm{id}.tiff``, float32; 1n0u -> 0, 1n0vc -> 1) with an
``angles.csv`` (Euler angles, z-y-z, degrees) and a ``simulation.json``. A data set
is cached under a folder whose name ends in the hash of all its parameters (and of
the molecule file), built in a temporary folder and renamed into place, so a second
call reuses the files and concurrent workers never read a half-written set.
"""
from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable

import numpy as np
from scipy.spatial.transform import Rotation

from a4nn.search.data.molecule import BUILTIN_PDB, CONFORMATIONS, Molecule, read_pdb

BEAMS = {"low": 1e14, "medium": 1e15, "high": 1e16}  # photons / um^2 / pulse
LABELS = {name: label for label, name in enumerate(CONFORMATIONS)}  # 1n0u -> 0, 1n0vc -> 1
THOMSON_CROSS_SECTION = 7.9407877e-30 * 1e20  # r_e^2 in Angstrom^2
UM2_TO_A2 = 1e8
BLOCK_ELEMENTS = 2 ** 24  # phase-matrix entries per vectorised block (~64 MB of float32)


@dataclass(frozen=True)
class SimulationSpec:
    """Everything that determines a simulated data set (its cache key).

    ``q_max`` is |q| at the middle of a detector edge (1/Angstrom) and fixes the
    geometry together with the wavelength; ``beam_stop_q`` is the radius of the beam
    stop in q (at least the central pixels are always blanked).
    """

    beam: str = "low"
    n_images: int = 400
    image_size: int = 32
    seed: int = 0
    molecule: str | None = None      # PDB file with two MODELs; None = the shipped fragment
    wavelength: float = 2.0          # Angstrom (6.2 keV photons)
    q_max: float = 0.8               # 1/Angstrom at the detector edge
    beam_stop_q: float = 0.05        # 1/Angstrom

    def __post_init__(self) -> None:
        if self.beam not in BEAMS:
            raise ValueError(f"beam must be one of {', '.join(BEAMS)}, got {self.beam!r}")
        if self.n_images < 10:
            raise ValueError(f"n_images must be at least 10 (80/20 split of two classes), got {self.n_images}")
        if self.image_size < 4:
            raise ValueError(f"image_size must be at least 4 pixels, got {self.image_size}")
        if not 0 < self.q_max < 4 * np.pi / self.wavelength:
            raise ValueError(f"q_max must be in (0, 4 pi / wavelength), got {self.q_max}")

    @property
    def intensity(self) -> float:
        return BEAMS[self.beam]

    def molecule_path(self) -> Path:
        return Path(self.molecule) if self.molecule else BUILTIN_PDB

    def key(self) -> str:
        """12 hex digits of sha256 over the parameters and the molecule file's bytes."""
        digest = hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode())
        path = self.molecule_path()
        if path.is_file():
            digest.update(path.read_bytes())
        return digest.hexdigest()[:12]

    def folder_name(self) -> str:
        return f"xfel-sim-{self.beam}-{self.image_size}px-n{self.n_images}-s{self.seed}-{self.key()}"


@dataclass(frozen=True)
class Detector:
    """Scattering vectors and solid angles of the pixels of a flat, centred detector."""

    q: np.ndarray            # (P, 3) scattering vectors, 1/Angstrom
    solid_angle: np.ndarray  # (P,) steradians
    beam_stop: np.ndarray    # (size, size) bool

    @classmethod
    def build(cls, spec: SimulationSpec) -> "Detector":
        k = 2 * np.pi / spec.wavelength
        two_theta_max = 2 * np.arcsin(spec.q_max / (2 * k))
        half = (spec.image_size - 1) / 2
        distance = 1.0                                       # unit distance; only ratios matter
        pixel = distance * np.tan(two_theta_max) / half      # pixel pitch in the same unit
        coords = (np.arange(spec.image_size) - half) * pixel
        x, y = np.meshgrid(coords, coords, indexing="xy")
        r = np.sqrt(x ** 2 + y ** 2 + distance ** 2)
        direction = np.stack([x / r, y / r, distance / r], axis=-1)
        q = k * (direction - np.array([0.0, 0.0, 1.0]))     # on the Ewald sphere
        solid_angle = pixel ** 2 * distance / r ** 3
        q_norm = np.linalg.norm(q, axis=-1)
        radius = max(spec.beam_stop_q, float(np.sort(q_norm.ravel())[min(3, q_norm.size - 1)]))
        return cls(q.reshape(-1, 3), solid_angle.ravel(), q_norm <= radius)


def expected_photons(molecule: Molecule, label: int, rotations: Rotation, detector: Detector,
                     intensity: float) -> np.ndarray:
    """Noise-free photon counts (N, P) of conformation ``label`` in each orientation.

    Vectorised over a block of orientations: the phase matrix ``(N, atoms, P)`` comes
    from one matmul, then cos/sin and a weighted sum give Re/Im of F(q).
    """
    coords = molecule.conformations[label].astype(np.float32)
    rotated = np.einsum("nij,aj->nai", rotations.as_matrix().astype(np.float32), coords)  # (N, A, 3)
    q = detector.q.astype(np.float32)
    n, a = rotated.shape[:2]
    phase = (rotated.reshape(n * a, 3) @ q.T).reshape(n, a, -1)  # one BLAS call: (N, A, P)
    q2 = (q ** 2).sum(axis=1)
    form = np.exp(-0.5 * q2 * molecule.sigma ** 2).astype(np.float32)                       # (P,)
    weights = molecule.electrons.astype(np.float32)
    real = np.einsum("a,nap->np", weights, np.cos(phase))
    imag = np.einsum("a,nap->np", weights, np.sin(phase, out=phase))
    amplitude2 = (real.astype(np.float64) ** 2 + imag.astype(np.float64) ** 2) * form.astype(np.float64) ** 2
    fluence = intensity / UM2_TO_A2  # photons / Angstrom^2
    return fluence * THOMSON_CROSS_SECTION * detector.solid_angle[None, :] * amplitude2


def _assignments(spec: SimulationSpec, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Balanced labels and a stratified 80/20 train/test split, both seeded."""
    labels = np.arange(spec.n_images) % 2
    rng.shuffle(labels)
    train = np.zeros(spec.n_images, dtype=bool)
    for label in (0, 1):
        members = rng.permutation(np.flatnonzero(labels == label))
        train[members[: int(round(0.8 * len(members)))]] = True
    return labels, train


def _blocks(n: int, batch: int, progress: bool, desc: str) -> Iterable[tuple[int, int]]:
    starts = range(0, n, batch)
    if progress:
        from a4nn.progress import progress_bar

        bar = progress_bar(total=n, desc=desc, unit="img")
        for start in starts:
            yield start, min(start + batch, n)
            bar.update(min(start + batch, n) - start)
        bar.close()
    else:
        for start in starts:
            yield start, min(start + batch, n)


def _write(spec: SimulationSpec, folder: Path, progress: bool) -> None:
    import tifffile

    molecule = read_pdb(spec.molecule_path())
    detector = Detector.build(spec)
    rng = np.random.default_rng(spec.seed)
    labels, train = _assignments(spec, rng)
    rotations = Rotation.random(spec.n_images, random_state=np.random.default_rng(rng.integers(2 ** 62)))
    euler = rotations.as_euler("zyz", degrees=True)
    noise = np.random.default_rng(rng.integers(2 ** 62))
    for split in ("trainset", "testset"):
        (folder / "images" / split).mkdir(parents=True, exist_ok=True)
    rows: list[list[object]] = []
    photons = np.zeros(spec.n_images)
    batch = max(1, BLOCK_ELEMENTS // (len(molecule.electrons) * detector.q.shape[0]))
    for start, stop in _blocks(spec.n_images, batch, progress, f"simulating {spec.beam}-beam diffraction"):
        block = np.arange(start, stop)
        expected = np.empty((len(block), detector.q.shape[0]))
        for label in (0, 1):
            mine = labels[block] == label
            if mine.any():
                expected[mine] = expected_photons(molecule, label, rotations[block[mine]], detector, spec.intensity)
        counts = noise.poisson(expected).astype(np.float32).reshape(len(block), spec.image_size, spec.image_size)
        counts[:, detector.beam_stop] = 0.0
        for offset, i in enumerate(block):
            name = f"ef2_{CONFORMATIONS[labels[i]]}_ptm{i:05d}.tiff"
            split = "trainset" if train[i] else "testset"
            tifffile.imwrite(folder / "images" / split / name, counts[offset])
            photons[i] = counts[offset].sum()
            rows.append([i, name, split, int(labels[i]), CONFORMATIONS[labels[i]], *np.round(euler[i], 6),
                         int(photons[i])])
    with open(folder / "angles.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "file", "split", "label", "conformation", "alpha_deg", "beta_deg", "gamma_deg",
                         "photons"])
        writer.writerows(rows)
    summary = {**asdict(spec), "molecule": str(spec.molecule_path()), "molecule_kind": molecule.kind,
               "n_scatterers": int(len(molecule.electrons)), "intensity": spec.intensity, "key": spec.key(),
               "euler_convention": "zyz (intrinsic), degrees", "labels": LABELS,
               "photons_per_image": {"mean": float(photons.mean()), "median": float(np.median(photons)),
                                     "min": float(photons.min()), "max": float(photons.max())},
               "beam_stop_pixels": int(detector.beam_stop.sum())}
    (folder / "simulation.json").write_text(json.dumps(summary, indent=2))
    (folder / "COMPLETE").write_text("ok\n")


def simulate_xfel(spec: SimulationSpec, cache_dir: str | Path, progress: bool = False) -> Path:
    """Write (or reuse) a simulated data set under ``cache_dir`` and return its root folder."""
    cache_dir = Path(cache_dir)
    root = cache_dir / spec.folder_name()
    if (root / "COMPLETE").exists():
        return root
    cache_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{root.name}.", dir=cache_dir))
    try:
        _write(spec, staging, progress)
        if root.exists() and not (root / "COMPLETE").exists():
            shutil.rmtree(root, ignore_errors=True)  # left over from a killed run of an older version
        try:
            os.replace(staging, root)
        except OSError:
            if not (root / "COMPLETE").exists():  # another process won the race, else a real failure
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return root


def simulation_summary(root: str | Path) -> dict:
    """The ``simulation.json`` of a simulated data set (empty for real data)."""
    path = Path(root) / "simulation.json"
    return json.loads(path.read_text()) if path.is_file() else {}
