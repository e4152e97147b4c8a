"""The built-in molecule of the simulator and a small PDB reader.

The embedded data set needs a molecule with two conformations, like EF2's
1n0u / 1n0vc pair in the real A4NN data. Shipping EF2 itself (842 residues) would
make simulation slow, so we ship a made-up 160-residue two-domain fragment as a
C-alpha trace (``hinge_fragment.pdb``): two three-helix bundles joined by a short
linker. Conformation 1 (label ``1n0u``) is open; in conformation 2 (``1n0vc``) the
second domain swings about the linker, as EF2's domains do between its two crystal
forms. The file is generated deterministically by :func:`builtin_pdb_text`, and a test
checks the shipped file still equals the generator's output.

A C-alpha-only model scatters like residues, not atoms: each bead carries the
electron count of its residue (coarse-grained scattering, the usual shortcut for
single-particle diffraction of proteins). All-atom PDB files use atomic numbers.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from a4nn.errors import InputFormatError

BUILTIN_PDB = Path(__file__).with_name("hinge_fragment.pdb")
CONFORMATIONS = ("1n0u", "1n0vc")  # label 0, label 1 (the names of the real EF2 data)

# Electrons of each residue as part of a chain (formula minus water, hydrogens included).
RESIDUE_ELECTRONS = {"GLY": 30, "ALA": 38, "SER": 46, "CYS": 54, "VAL": 54, "THR": 54, "PRO": 52, "LEU": 62,
                     "ILE": 62, "ASN": 60, "ASP": 60, "GLN": 68, "GLU": 68, "LYS": 70, "MET": 70, "HIS": 72,
                     "PHE": 78, "ARG": 84, "TYR": 86, "TRP": 98}
ATOMIC_NUMBER = {"H": 1, "C": 6, "N": 7, "O": 8, "S": 16, "P": 15, "SE": 34, "FE": 26, "ZN": 30, "MG": 12, "CA": 20,
                 "NA": 11, "CL": 17, "K": 19, "MN": 25, "CU": 29}
# Gaussian widths (Angstrom) of one scatterer's electron cloud: a residue bead is a blob of
# several atoms, an atom a tight core plus thermal motion.
BEAD_SIGMA = {"residue": 1.6, "atom": 0.35}

HELIX_RISE, HELIX_TWIST, HELIX_RADIUS = 1.5, np.deg2rad(100.0), 2.3  # alpha helix C-alpha geometry
HELIX_LENGTH = 22
HINGE_DEGREES = 55.0


@dataclass(frozen=True)
class Molecule:
    """Scatterers of both conformations: coordinates (Angstrom, centred), weights, bead kind."""

    conformations: tuple[np.ndarray, np.ndarray]
    electrons: np.ndarray
    kind: str  # "residue" (C-alpha trace) or "atom"
    source: str

    @property
    def sigma(self) -> float:
        return BEAD_SIGMA[self.kind]


def _helix(n: int, start: np.ndarray, direction: np.ndarray, phase: float) -> np.ndarray:
    """C-alpha positions of an ideal alpha helix along ``direction`` (unit) starting at ``start``."""
    direction = direction / np.linalg.norm(direction)
    helper = np.array([1.0, 0.0, 0.0]) if abs(direction[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    u = np.cross(direction, helper)
    u /= np.linalg.norm(u)
    v = np.cross(direction, u)
    k = np.arange(n)[:, None]
    angle = phase + HELIX_TWIST * k
    return start + HELIX_RISE * k * direction + HELIX_RADIUS * (np.cos(angle) * u + np.sin(angle) * v)


def _loop(a: np.ndarray, b: np.ndarray, bulge: np.ndarray) -> np.ndarray:
    """C-alphas between two chain ends on an arc bowed along ``bulge``, spaced as close to 3.8 A as possible."""
    def points(n: int) -> np.ndarray:
        t = np.linspace(0, 1, n + 2)[:, None]
        return (1 - t) * a + t * b + 4.0 * np.sin(np.pi * t) * bulge

    best = min(range(1, 20), key=lambda n: np.abs(np.linalg.norm(np.diff(points(n), axis=0), axis=1) - 3.8).max())
    return points(best)[1:-1]


def _bundle(origin: np.ndarray) -> np.ndarray:
    """A three-helix up-down-up bundle with its axes on a triangle of side 10 A."""
    corners = [np.array([0.0, 0.0, 0.0]), np.array([10.0, 0.0, 0.0]), np.array([5.0, 8.66, 0.0])]
    span = HELIX_RISE * (HELIX_LENGTH - 1)
    parts: list[np.ndarray] = []
    for h, corner in enumerate(corners):
        up = h % 2 == 0
        start = origin + corner + (np.array([0, 0, -span / 2]) if up else np.array([0, 0, span / 2]))
        helix = _helix(HELIX_LENGTH, start, np.array([0.0, 0.0, 1.0 if up else -1.0]), phase=1.3 * h)
        if parts:
            bulge = np.array([0.0, 0.0, 1.0 if not up else -1.0])
            parts.append(_loop(parts[-1][-1], helix[0], bulge))
        parts.append(helix)
    return np.concatenate(parts)


def builtin_coordinates() -> tuple[np.ndarray, np.ndarray, int]:
    """Open and closed C-alpha coordinates of the two-domain fragment, and the hinge residue."""
    first = _bundle(np.zeros(3))
    second = _bundle(np.array([30.0, 6.0, 4.0]))
    linker = _loop(first[-1], second[0], np.array([0.0, -1.0, 0.0]))
    open_form = np.concatenate([first, linker, second])
    hinge = len(first) + len(linker) // 2
    pivot = open_form[hinge]
    axis = np.cross(second.mean(axis=0) - pivot, first.mean(axis=0) - pivot)
    axis /= np.linalg.norm(axis)
    closed = open_form.copy()
    closed[hinge:] = Rotation.from_rotvec(np.deg2rad(HINGE_DEGREES) * axis).apply(open_form[hinge:] - pivot) + pivot
    return open_form, closed, hinge


def _sequence(n: int) -> list[str]:
    """A fixed, helix-friendly sequence (deterministic; repeats a heptad-like pattern)."""
    pattern = ["LEU", "GLU", "ALA", "LYS", "ILE", "ARG", "GLN", "ALA", "LEU", "GLU", "SER", "TRP", "ASP", "VAL",
               "LYS", "PHE", "THR", "GLY", "TYR", "ASN", "MET", "HIS", "PRO"]
    return [pattern[(7 * i) % len(pattern)] for i in range(n)]


def builtin_pdb_text() -> str:
    """The text of ``hinge_fragment.pdb``: two MODEL records of a C-alpha trace."""
    open_form, closed, hinge = builtin_coordinates()
    names = _sequence(len(open_form))
    lines = ["HEADER    A4NN-COMMONS SIMULATOR MOLECULE (MADE UP, NOT A REAL PROTEIN)",
             "REMARK   1 TWO-DOMAIN C-ALPHA TRACE; MODEL 1 = OPEN (1N0U-LIKE), MODEL 2 = CLOSED (1N0VC-LIKE)",
             f"REMARK   2 HINGE AT RESIDUE {hinge + 1}, SWING {HINGE_DEGREES:.1f} DEGREES; GENERATED BY"
             " a4nn.search.data.molecule"]
    for model, coords in enumerate((open_form, closed), start=1):
        lines.append(f"MODEL     {model:4d}")
        for i, ((x, y, z), name) in enumerate(zip(coords, names), start=1):
            lines.append(f"ATOM  {i:5d}  CA  {name} A{i:4d}    {x:8.3f}{y:8.3f}{z:8.3f}  1.00  0.00           C")
        lines.append("ENDMDL")
    lines.append("END")
    return "\n".join(lines) + "\n"


def _element(line: str) -> str:
    element = line[76:78].strip().upper()
    if element:
        return element
    name = line[12:16].strip().upper()
    return name.lstrip("0123456789")[:1]


def read_pdb(path: str | Path) -> Molecule:
    """Both conformations from the first two MODEL records of a PDB file.

    A file whose atoms are all C-alpha is read as a residue-level trace (electrons per
    residue); otherwise every atom scatters with its atomic number. Errors name the
    file and line.
    """
    path = Path(path)
    if not path.is_file():
        raise InputFormatError("molecule file not found", path=str(path))
    models: list[list[tuple[float, float, float]]] = []
    weights: list[list[tuple[str, str, str]]] = []
    current: list[tuple[float, float, float]] | None = None
    labels: list[tuple[str, str, str]] = []
    with open(path, errors="replace") as handle:
        for number, line in enumerate(handle, start=1):
            record = line[:6]
            if record.startswith("MODEL"):
                current, labels = [], []
            elif record.startswith(("ATOM", "HETATM")):
                if current is None:  # single-model file: the first model starts implicitly
                    current, labels = [], []
                try:
                    current.append((float(line[30:38]), float(line[38:46]), float(line[46:54])))
                except ValueError:
                    raise InputFormatError("bad ATOM coordinates (columns 31-54)", path=str(path), line=number) from None
                labels.append((line[12:16].strip().upper(), line[17:20].strip().upper(), _element(line)))
            elif record.startswith("ENDMDL") and current is not None:
                models.append(current)
                weights.append(labels)
                current = None
    if len(models) < 2:
        raise InputFormatError(f"need two MODEL ... ENDMDL records (two conformations), found {len(models)}",
                               path=str(path))
    if not models[0] or len(models[0]) != len(models[1]):
        raise InputFormatError(f"the two models must list the same atoms, found {len(models[0])} and "
                               f"{len(models[1])}", path=str(path))
    if all(name == "CA" for name, _, _ in weights[0]):
        kind = "residue"
        electrons = [RESIDUE_ELECTRONS.get(residue, 57) for _, residue, _ in weights[0]]  # 57: average residue
    else:
        kind = "atom"
        unknown = sorted({element for _, _, element in weights[0] if element not in ATOMIC_NUMBER})
        if unknown:
            raise InputFormatError(f"unknown element(s) {unknown} (columns 77-78)", path=str(path))
        electrons = [ATOMIC_NUMBER[element] for _, _, element in weights[0]]
    coords = [np.asarray(m, dtype=np.float64) for m in models[:2]]
    coords = [c - c.mean(axis=0) for c in coords]
    return Molecule((coords[0], coords[1]), np.asarray(electrons, dtype=np.float64), kind, str(path))


def builtin_molecule() -> Molecule:
    """The shipped two-domain fragment."""
    return read_pdb(BUILTIN_PDB)
