"""XFEL diffraction simulator: the embedded default data set.

Two conformations of one molecule are imaged in random orientations. For each
image the far-field intensity ``I(q) = |sum_j f_j exp(i q . R r_j)|^2`` is
evaluated on a flat detector (small-angle approximation, q_z = 0), scaled so the
expected photon count grows with the beam intensity (1e14 / 1e15 / 1e16
photons/um^2/pulse = low / medium / high beam), sampled with Poisson noise and
masked by a central beam stop. The result is written in the layout of the real
data (``images/trainset|testset/ef2_{1n0u|1n0vc}_ptm{id}.tiff``, 1n0u -> 0,
1n0vc -> 1) with an ``angles.csv`` of the Euler angles used, and cached by the
hash of its parameters, so a second run with the same parameters reuses the files.

The molecule is a deterministic 3-D chain of "residues" (or the atoms of a user
PDB file with two MODEL records); the second conformation bends its second half
around a hinge, like the EF2 domain motion the real data capture.
"""
from __future__ import annotations

import csv
import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from a4nn.errors import InputFormatError

BEAMS = {"low": 1e14, "medium": 1e15, "high": 1e16}
LABELS = {"1n0u": 0, "1n0vc": 1}
PHOTONS_PER_1E14 = 400.0  # expected photons per image at the low beam; scales linearly with intensity


@dataclass(frozen=True)
class SimulationSpec:
    """Everything that determines a simulated data set (its cache key)."""

    beam: str = "low"
    n_images: int = 400
    image_size: int = 32
    seed: int = 0
    n_residues: int = 96
    hinge_degrees: float = 35.0
    q_max: float = 1.2          # 1/Angstrom at the detector edge
    beam_stop_pixels: int = 2
    molecule: str | None = None  # path to a PDB file with two MODELs, or None for the built-in chain

    def key(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:12]


def builtin_conformations(n_residues: int, hinge_degrees: float, seed: int = 1234) -> tuple[np.ndarray, np.ndarray]:
    """A compact random chain (3.8 A steps) and the same chain bent at its middle."""
    rng = np.random.default_rng(seed)
    steps = rng.normal(size=(n_residues, 3))
    steps /= np.linalg.norm(steps, axis=1, keepdims=True)
    chain = np.cumsum(3.8 * steps, axis=0)
    chain -= chain.mean(axis=0)
    # fold it into a globule: pull every point towards the centre
    chain *= 12.0 / (1e-9 + np.sqrt((chain ** 2).sum(axis=1).mean()))
    hinge = n_residues // 2
    axis = np.cross(chain[hinge + 1] - chain[hinge - 1], [0.0, 0.0, 1.0])
    axis /= np.linalg.norm(axis) + 1e-12
    bent = chain.copy()
    rotation = Rotation.from_rotvec(np.deg2rad(hinge_degrees) * axis)
    bent[hinge:] = rotation.apply(chain[hinge:] - chain[hinge]) + chain[hinge]
    return chain, bent - bent.mean(axis=0)


def read_pdb_models(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """The atom coordinates of the first two MODELs of a PDB file."""
    models: list[list[list[float]]] = []
    current: list[list[float]] = []
    with open(path) as handle:
        for number, line in enumerate(handle, start=1):
            if line.startswith("MODEL"):
                current = []
            elif line.startswith(("ATOM", "HETATM")):
                try:
                    current.append([float(line[30:38]), float(line[38:46]), float(line[46:54])])
                except ValueError:
                    raise InputFormatError("bad ATOM coordinates", path=str(path), line=number) from None
            elif line.startswith("ENDMDL"):
                models.append(current)
    if len(models) < 2 or not models[0] or len(models[0]) != len(models[1]):
        raise InputFormatError("need two MODEL records with the same atoms (two conformations)", path=str(path))
    return tuple(np.asarray(m) - np.asarray(m).mean(axis=0) for m in models[:2])  # type: ignore[return-value]


def diffraction_patterns(coords: np.ndarray, rotations: Rotation, image_size: int, q_max: float) -> np.ndarray:
    """Noise-free |F(q)|^2 of ``coords`` under each rotation, on an image_size^2 detector."""
    axis = np.linspace(-q_max, q_max, image_size)
    qx, qy = np.meshgrid(axis, axis, indexing="xy")
    q = np.stack([qx.ravel(), qy.ravel()], axis=1)  # (P, 2); q_z = 0 on a flat detector
    out = np.empty((len(rotations), image_size, image_size), dtype=np.float64)
    for i, rotation in enumerate(rotations):
        rotated = rotation.apply(coords)[:, :2]  # (N, 2)
        phase = q @ rotated.T                     # (P, N)
        amplitude = np.exp(1j * phase).sum(axis=1)
        out[i] = (np.abs(amplitude) ** 2).reshape(image_size, image_size)
    return out


def simulate_xfel(spec: SimulationSpec, cache_dir: Path, progress: bool = False) -> Path:
    """Write (or reuse) a simulated data set and return its root folder."""
    if spec.beam not in BEAMS:
        raise ValueError(f"beam must be one of {', '.join(BEAMS)}, got {spec.beam!r}")
    root = Path(cache_dir) / f"xfel-sim-{spec.beam}-{spec.key()}"
    if (root / "COMPLETE").exists():
        return root
    rng = np.random.default_rng(spec.seed)
    if spec.molecule:
        conformations = read_pdb_models(Path(spec.molecule))
    else:
        conformations = builtin_conformations(spec.n_residues, spec.hinge_degrees)
    labels = np.array([i % 2 for i in range(spec.n_images)])  # balanced classes
    rng.shuffle(labels)
    rotations = Rotation.random(spec.n_images, random_state=rng.integers(2**31))
    euler = rotations.as_euler("zyz", degrees=True)
    photons = PHOTONS_PER_1E14 * BEAMS[spec.beam] / 1e14
    center = (spec.image_size - 1) / 2
    yy, xx = np.mgrid[: spec.image_size, : spec.image_size]
    beam_stop = (xx - center) ** 2 + (yy - center) ** 2 <= spec.beam_stop_pixels ** 2

    import tifffile

    names = list(LABELS)
    split = np.zeros(spec.n_images, dtype=bool)
    split[rng.permutation(spec.n_images)[: int(round(0.8 * spec.n_images))]] = True  # 80/20
    for folder in ("trainset", "testset"):
        (root / "images" / folder).mkdir(parents=True, exist_ok=True)
    indices = range(spec.n_images)
    if progress:
        from tqdm import tqdm

        indices = tqdm(indices, desc=f"simulating {spec.beam}-beam diffraction", unit="img")
    rows = []
    for i in indices:
        label = int(labels[i])
        intensity = diffraction_patterns(conformations[label], rotations[i:i + 1], spec.image_size, spec.q_max)[0]
        expected = intensity / intensity.sum() * photons
        counts = rng.poisson(expected).astype(np.float32)
        counts[beam_stop] = 0.0
        folder = "trainset" if split[i] else "testset"
        name = f"ef2_{names[label]}_ptm{i}.tiff"
        tifffile.imwrite(root / "images" / folder / name, counts)
        rows.append([i, name, folder, label, *np.round(euler[i], 6)])
    with open(root / "angles.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "file", "split", "label", "alpha_deg", "beta_deg", "gamma_deg"])
        writer.writerows(rows)
    (root / "simulation.json").write_text(json.dumps({**asdict(spec), "intensity": BEAMS[spec.beam],
                                                      "photons_per_image": photons}, indent=2))
    (root / "COMPLETE").write_text("ok\n")
    return root
