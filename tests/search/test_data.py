"""The diffraction simulator, the shipped molecule and the TIFF / NPZ / HDF5 loaders."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
from scipy.spatial.transform import Rotation

from a4nn.errors import InputFormatError
from a4nn.search.data import (BUILTIN_PDB, BEAMS, Detector, ImageSplit, SimulationSpec, builtin_molecule,
                              load_dataset, load_xfel_tiff, read_pdb, simulate_xfel)
from a4nn.search.data.molecule import builtin_pdb_text
from a4nn.search.data.simulator import expected_photons


def _images(root: Path, split: str) -> list[Path]:
    return sorted((root / "images" / split).glob("ef2_*_ptm*.tiff"))


def test_shipped_molecule_is_the_generated_one() -> None:
    assert BUILTIN_PDB.read_text() == builtin_pdb_text()
    molecule = builtin_molecule()
    open_form, closed = molecule.conformations
    assert molecule.kind == "residue" and 100 <= len(open_form) <= 300 and open_form.shape == closed.shape
    assert np.allclose(open_form.mean(axis=0), 0, atol=1e-9)
    bonds = np.linalg.norm(np.diff(open_form, axis=0), axis=1)
    assert 2.5 < bonds.min() and bonds.max() < 5.5  # a chain with roughly C-alpha spacing
    assert np.sqrt((open_form ** 2).sum(1).mean()) > np.sqrt((closed ** 2).sum(1).mean()) + 1.0  # closed is compact


def test_simulator_layout_balance_split_and_cache(tmp_path: Path) -> None:
    spec = SimulationSpec(beam="low", n_images=40, image_size=16, seed=3)
    root = simulate_xfel(spec, tmp_path)
    assert root.name.startswith("xfel-sim-low-16px-n40-s3-") and root.name.endswith(spec.key())
    train, test = _images(root, "trainset"), _images(root, "testset")
    assert len(train) == 32 and len(test) == 8
    for files in (train, test):  # balanced classes in both splits
        assert sum("_1n0vc_" in p.name for p in files) == sum("_1n0u_" in p.name for p in files)
    image = tifffile.imread(train[0])
    assert image.dtype == np.float32 and image.shape == (16, 16) and (image >= 0).all()
    assert image[7:9, 7:9].sum() == 0  # beam stop
    with open(root / "angles.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 40 and {r["conformation"] for r in rows} == {"1n0u", "1n0vc"}
    assert all(r["file"].startswith(f"ef2_{r['conformation']}_") for r in rows)
    summary = json.loads((root / "simulation.json").read_text())
    assert summary["intensity"] == 1e14 and summary["key"] == spec.key()
    stamp = (root / "angles.csv").stat().st_mtime_ns
    assert simulate_xfel(spec, tmp_path) == root and (root / "angles.csv").stat().st_mtime_ns == stamp  # cached
    other = simulate_xfel(SimulationSpec(beam="low", n_images=40, image_size=16, seed=4), tmp_path)
    assert other != root and tifffile.imread(_images(other, "trainset")[0]).sum() != image.sum()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging folders left


def test_angles_reproduce_the_images_and_beam_sets_the_noise(tmp_path: Path) -> None:
    """Same seed, three beams: same orientations; photons scale x10 per step; the pattern
    emerges from the Poisson noise as the beam gets brighter (low beam = harder data)."""
    spec = {"n_images": 20, "image_size": 24, "seed": 1}
    roots = {beam: simulate_xfel(SimulationSpec(beam=beam, **spec), tmp_path) for beam in BEAMS}
    with open(roots["low"] / "angles.csv") as handle:
        rows = list(csv.DictReader(handle))
    with open(roots["high"] / "angles.csv") as handle:
        assert [r["alpha_deg"] for r in csv.DictReader(handle)] == [r["alpha_deg"] for r in rows]
    molecule, detector = builtin_molecule(), Detector.build(SimulationSpec(**spec))
    photons = {beam: [] for beam in BEAMS}
    errors = {beam: [] for beam in BEAMS}
    for row in rows:
        rotation = Rotation.from_euler("zyz", [[float(row[k]) for k in ("alpha_deg", "beta_deg", "gamma_deg")]],
                                       degrees=True)
        truth = expected_photons(molecule, int(row["label"]), rotation, detector, BEAMS["high"])[0].reshape(24, 24)
        truth[detector.beam_stop] = 0
        truth /= truth.sum()
        for beam, root in roots.items():
            image = tifffile.imread(root / "images" / row["split"] / row["file"])
            photons[beam].append(image.sum())
            errors[beam].append(np.abs(image / image.sum() - truth).sum())
    mean = {beam: float(np.mean(v)) for beam, v in photons.items()}
    assert 8 < mean["medium"] / mean["low"] < 12 and 8 < mean["high"] / mean["medium"] < 12
    error = {beam: float(np.mean(v)) for beam, v in errors.items()}
    assert error["high"] < 0.5 * error["medium"] < 0.25 * error["low"]
    assert error["high"] < 0.2  # the recorded angles regenerate the high-beam images


def test_simulator_rejects_bad_parameters(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="beam"):
        SimulationSpec(beam="ultra")
    with pytest.raises(InputFormatError, match="xfel-sim"):
        load_dataset("xfel-sim", beam="ultra", cache_dir=tmp_path)


def test_user_pdb_models(tmp_path: Path) -> None:
    atoms = ["N", "C", "O", "S"]

    def model(shift: float) -> list[str]:
        return [f"ATOM  {i + 1:5d}  {a:<3} ALA A{i + 1:4d}    {i * 1.5 + shift:8.3f}{0.0:8.3f}{i % 2:8.3f}"
                f"  1.00  0.00           {a}" for i, a in enumerate(atoms * 5)]

    pdb = tmp_path / "two.pdb"
    pdb.write_text("\n".join(["MODEL 1", *model(0), "ENDMDL", "MODEL 2", *model(0.5), "ENDMDL", "END"]) + "\n")
    molecule = read_pdb(pdb)
    assert molecule.kind == "atom" and molecule.electrons[:4].tolist() == [7, 6, 8, 16]
    split = load_dataset("xfel-sim", beam="high", n_images=10, image_size=8, molecule=str(pdb), cache_dir=tmp_path)
    assert split.attributes["molecule"] == str(pdb) and split.name.endswith(split.attributes["simulation_key"])
    bad = tmp_path / "bad.pdb"
    lines = pdb.read_text().splitlines()
    lines[3] = lines[3][:30] + "   x.xxx" + lines[3][38:]
    bad.write_text("\n".join(lines))
    with pytest.raises(InputFormatError, match=r"bad.pdb:4: bad ATOM"):
        read_pdb(bad)
    one = tmp_path / "one.pdb"
    one.write_text("\n".join(["MODEL 1", *model(0), "ENDMDL"]))
    with pytest.raises(InputFormatError, match="two MODEL"):
        read_pdb(one)


def test_load_dataset_simulated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("A4NN_DATA_DIR", str(tmp_path / "cache"))
    split = load_dataset("xfel-sim", beam="medium", n_images=50, image_size=16)
    assert (tmp_path / "cache").is_dir()  # default cache from the environment
    assert isinstance(split, ImageSplit) and split.kind == "xfel-sim" and split.name == "xfel-sim-medium-16px-50-s0"
    assert split.train_x.shape == (40, 1, 16, 16) and split.val_x.shape == (10, 1, 16, 16)
    assert split.train_x.dtype == torch.float32 and split.train_y.dtype == torch.int64
    assert (split.in_channels, split.image_size, split.n_classes) == (1, (16, 16), 2)
    attrs = split.attributes
    assert attrs["beam"] == "medium" and attrs["intensity"] == 1e15 and attrs["seed"] == 0
    assert attrs["n_train"] == 40 and attrs["n_val"] == 10 and attrs["image_size"] == [16, 16]
    assert len(attrs["checksum"]) == 64 and json.loads(json.dumps(attrs)) == attrs
    assert abs(float(split.train_x.mean())) < 1e-4 and abs(float(split.train_x.std()) - 1) < 1e-2
    again = load_dataset("xfel-sim", beam="medium", n_images=50, image_size=16)
    assert again.attributes["checksum"] == attrs["checksum"] and torch.equal(again.val_x, split.val_x)


def test_tiff_loader_reads_the_layout_and_names_broken_files(tmp_path: Path) -> None:
    root = tmp_path / "real"
    for split, n in (("trainset", 6), ("testset", 2)):
        (root / "images" / split).mkdir(parents=True)
        for i in range(n):
            name = f"ef2_{'1n0u' if i % 2 else '1n0vc'}_ptm{i}.tiff"
            tifffile.imwrite(root / "images" / split / name, np.full((9, 9), i, dtype=np.float32))
    (root / "images" / "trainset" / "notes.txt").write_text("ignored")
    split = load_xfel_tiff(root, beam="high")
    assert split.kind == "xfel-tiff" and split.train_x.shape == (6, 1, 9, 9) and split.val_x.shape == (2, 1, 9, 9)
    assert split.train_y.tolist() == [1, 0, 1, 0, 1, 0] and split.attributes["intensity"] == 1e16
    assert "beam" not in load_dataset(str(root)).attributes  # real data: beam only when the user says
    odd = root / "images" / "testset" / "ef2_1n0u_ptm9.tiff"
    tifffile.imwrite(odd, np.zeros((5, 5), dtype=np.float32))
    with pytest.raises(InputFormatError, match="ef2_1n0u_ptm9.tiff.*differs"):
        load_xfel_tiff(root)
    odd.write_bytes(b"not a tiff")
    with pytest.raises(InputFormatError, match="ef2_1n0u_ptm9.tiff: not a readable TIFF"):
        load_xfel_tiff(root)
    tifffile.imwrite(odd, np.full((9, 9), np.nan, dtype=np.float32))
    with pytest.raises(InputFormatError, match="ef2_1n0u_ptm9.tiff.*non-finite"):
        load_xfel_tiff(root)
    with pytest.raises(InputFormatError, match="missing folder images/trainset"):
        load_xfel_tiff(tmp_path)


def test_npz_and_hdf5_loaders(tmp_path: Path) -> None:
    import h5py

    rng = np.random.default_rng(0)
    x = rng.random((30, 8, 8)).astype(np.float32)
    y = np.arange(30) % 3
    np.savez(tmp_path / "set.npz", x=x, y=y)
    np.savez(tmp_path / "split.npz", x_train=x[:20, None], y_train=y[:20], x_val=x[20:, None], y_val=y[20:])
    with h5py.File(tmp_path / "set.h5", "w") as handle:
        handle["x"], handle["y"] = x, y
    a, b = load_dataset(str(tmp_path / "set.npz"), seed=1), load_dataset(str(tmp_path / "set.h5"), seed=1)
    assert (len(a.train_y), len(a.val_y), a.n_classes, a.kind, b.kind) == (24, 6, 3, "npz", "hdf5")
    assert torch.equal(a.train_x, b.train_x) and a.attributes["checksum"] == b.attributes["checksum"]
    assert not torch.equal(a.train_y, load_dataset(str(tmp_path / "set.npz"), seed=2).train_y)  # seeded split
    assert load_dataset(str(tmp_path / "split.npz")).train_x.shape == (20, 1, 8, 8)
    np.savez(tmp_path / "bad.npz", images=x)
    with pytest.raises(InputFormatError, match="bad.npz: NPZ needs"):
        load_dataset(str(tmp_path / "bad.npz"))
    np.savez(tmp_path / "short.npz", x=x, y=y[:10])
    with pytest.raises(InputFormatError, match="short.npz: x has 30 images but y 10"):
        load_dataset(str(tmp_path / "short.npz"))
    np.savez(tmp_path / "float.npz", x=x, y=y + 0.5)
    with pytest.raises(InputFormatError, match="float.npz: training labels"):
        load_dataset(str(tmp_path / "float.npz"))
    (tmp_path / "junk.h5").write_bytes(b"junk")
    with pytest.raises(InputFormatError, match="junk.h5: not a readable HDF5"):
        load_dataset(str(tmp_path / "junk.h5"))
    with pytest.raises(InputFormatError, match="nowhere.npz: no such data set"):
        load_dataset(str(tmp_path / "nowhere.npz"))
    (tmp_path / "x.csv").write_text("1,2\n")
    with pytest.raises(InputFormatError, match="unknown data format"):
        load_dataset(str(tmp_path / "x.csv"))


def test_high_beam_classes_are_learnable(tmp_path: Path) -> None:
    """A tiny decoded network beats chance clearly on high-beam data: the conformations are separable."""
    from a4nn.search.network import build_network

    torch.set_num_threads(1)
    torch.manual_seed(0)
    split = load_dataset("xfel-sim", beam="high", n_images=400, image_size=32, cache_dir=tmp_path)
    model = build_network([1, 1, 0, 1, 1, 0, 1] * 3, channels=8, in_channels=split.in_channels)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(0)
    accuracies = []
    for _ in range(6):
        model.train()
        for batch in torch.randperm(len(split.train_y), generator=generator).split(32):
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(split.train_x[batch]), split.train_y[batch])
            loss.backward()
            optimizer.step()
        model.eval()
        with torch.no_grad():
            accuracies.append((model(split.val_x).argmax(1) == split.val_y).float().mean().item())
    assert max(accuracies) >= 0.8, accuracies  # chance is 0.5 on 80 balanced validation images
