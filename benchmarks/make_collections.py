"""Regenerate the held-out learning-curve collections in ``benchmarks/collections/``.

The engine's default was designed on the published A4NN curves; these collections are
curve families it never saw, grown with ``a4nn-commons generate random-nn`` (random CNNs,
random SGD settings, the 6000-NN recipe, ``--scale-down`` so a CPU trains them) on
different data sets, image sizes and training lengths:

* ``xfel-low-16px``    simulated diffraction, low beam, 16 px, 600 images, 30 epochs
* ``xfel-high-24px``   simulated diffraction, high beam, 24 px, 500 images, 20 epochs
* ``xfel-medium-12px`` simulated diffraction, medium beam, 12 px, 600 images, 40 epochs
* ``shapes10-12px``    a 10-class procedural image set (oriented bars, rings and blobs in
                       Poisson noise, written as an .npz), 12 px, 800 images, 25 epochs
* ``tabular-2class``   classical learners (logistic regression, linear SVM, MLPs with random
                       SGD settings) on 6 synthetic binary tabular problems, 40 epochs,
                       1,000 validation rows, interleaved (``tabular_curves.py``)
* ``tabular-5class``   the same on 6 five-class problems

Each collection is one Parquet file in long format (``model, epoch, val_acc``; integer
epochs only, the tables' half-epoch rows dropped) plus ``collections.json`` with the
settings, the number of classes and the validation-set size. Run under the CPU lock:
``flock /tmp/a4nn-cpu.lock python benchmarks/make_collections.py [--only NAME]``.

``--from-search BEAM=DB`` keeps a recorded standalone quick-preset search (every network
trained to the end, e.g. the A/B's ``search_ab.py --standalone-cache DIR`` runs) as the
collection ``search-BEAM``, with a ``flops`` column (MFLOPs, the Pareto veto's cost), so
the replay benchmark meets the curves a search meets without the database at hand.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
OUT = HERE / "collections"

COLLECTIONS = {
    "xfel-low-16px": {"dataset": "xfel-sim", "beam": "low", "image_size": 16, "n_images": 600, "epochs": 30, "n": 60,
                      "seed": 11},
    "xfel-high-24px": {"dataset": "xfel-sim", "beam": "high", "image_size": 24, "n_images": 500, "epochs": 20, "n": 60,
                       "seed": 12},
    "xfel-medium-12px": {"dataset": "xfel-sim", "beam": "medium", "image_size": 12, "n_images": 600, "epochs": 40,
                         "n": 50, "seed": 13},
    "shapes10-12px": {"dataset": "shapes10", "image_size": 12, "n_images": 800, "epochs": 25, "n": 60, "seed": 14},
    "tabular-2class": {"dataset": "tabular", "n_classes": 2, "datasets": 6, "learners": 12, "epochs": 40, "seed": 15},
    "tabular-5class": {"dataset": "tabular", "n_classes": 5, "datasets": 6, "learners": 12, "epochs": 40, "seed": 16},
}


def shapes10(path: Path, n_images: int, size: int, seed: int) -> Path:
    """A 10-class image set: bars at 4 angles, 2 ring radii, 4 blob positions, in Poisson noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] - (size - 1) / 2
    images, labels = [], []
    for i in range(n_images):
        label = i % 10
        jitter = rng.normal(0, 0.6, 2)
        y, x = yy - jitter[0], xx - jitter[1]
        if label < 4:
            angle = label * np.pi / 4 + rng.normal(0, 0.15)
            distance = np.abs(x * np.sin(angle) - y * np.cos(angle))
            signal = np.exp(-distance ** 2 / 1.5)
        elif label < 6:
            radius = size * (0.2 if label == 4 else 0.38)
            signal = np.exp(-(np.hypot(x, y) - radius) ** 2 / 1.5)
        else:
            corner = [(-1, -1), (-1, 1), (1, -1), (1, 1)][label - 6]
            cy, cx = corner[0] * size / 4, corner[1] * size / 4
            signal = np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (size / 5) ** 2)
        images.append(rng.poisson(3.0 * signal + 1.0).astype(np.float32))
        labels.append(label)
    order = rng.permutation(n_images)
    np.savez(path, x=np.stack(images)[order], y=np.array(labels)[order])
    return path


def read_tables(folder: Path) -> pd.DataFrame:
    """The generator's 28-column tables as one long frame at whole epochs."""
    frames = []
    for number, table in enumerate(sorted(folder.glob("*.txt"))):
        frame = pd.read_csv(table, sep=" ", usecols=["epochs", "valAcc"])
        frame = frame[np.isclose(frame["epochs"] % 1.0, 0.0)]
        frames.append(pd.DataFrame({"model": number, "epoch": frame["epochs"].astype(int),
                                    "val_acc": frame["valAcc"].astype(float)}))
    return pd.concat(frames, ignore_index=True)


def make(name: str, spec: dict, scratch: Path) -> dict:
    dataset = spec["dataset"]
    if dataset == "tabular":
        from tabular_curves import grow

        frame = grow(spec["n_classes"], spec["datasets"], spec["learners"], spec["epochs"], spec["seed"])
        OUT.mkdir(exist_ok=True)
        frame.to_parquet(OUT / f"{name}.parquet", index=False)
        return {**spec, "n_val": 1000, "networks": int(frame["model"].nunique())}
    if dataset == "shapes10":
        dataset = str(shapes10(scratch / f"{name}.npz", spec["n_images"], spec["image_size"], spec["seed"]))
    tables = scratch / name
    command = ["a4nn-commons", "generate", "random-nn", "--dataset", dataset, "--n", str(spec["n"]),
               "--epochs", str(spec["epochs"]), "--seed", str(spec["seed"]), "--scale-down", "--quiet",
               "--out", str(tables), "--cache-dir", str(scratch / "cache")]
    if spec["dataset"] == "xfel-sim":
        command += ["--beam", spec["beam"], "--image-size", str(spec["image_size"]), "--n-images", str(spec["n_images"])]
    subprocess.run(command, check=True)
    frame = read_tables(tables)
    OUT.mkdir(exist_ok=True)
    frame.to_parquet(OUT / f"{name}.parquet", index=False)
    classes = 10 if spec["dataset"] == "shapes10" else 2
    return {**spec, "n_classes": classes, "n_val": spec["n_images"] // 5, "networks": int(frame["model"].nunique())}


def from_search(beam: str, db: str) -> dict:
    """Write the complete curves of one recorded search as ``search-<beam>.parquet`` (with MFLOPs)."""
    from engine_replay import search_collection

    collection = search_collection(db)
    rows = [{"model": i, "epoch": epoch, "val_acc": value, "flops": float(collection["flops"][i])}
            for i, curve in enumerate(collection["curves"]) for epoch, value in enumerate(curve, start=1)]
    OUT.mkdir(exist_ok=True)
    pd.DataFrame(rows).to_parquet(OUT / f"search-{beam}.parquet", index=False)
    return {"dataset": "xfel-sim", "beam": beam, "source": "standalone quick-preset search (search_ab.py, seed 0)",
            "epochs": len(collection["curves"][0]), "n_classes": collection["n_classes"], "n_val": collection["n_val"],
            "networks": len(collection["curves"])}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", choices=sorted(COLLECTIONS), help="regenerate only these")
    parser.add_argument("--from-search", action="append", default=[], metavar="BEAM=DB",
                        help="keep a recorded standalone search (SQLite file) as collection search-BEAM")
    args = parser.parse_args(argv)
    index_path = OUT / "collections.json"
    index = json.loads(index_path.read_text()) if index_path.exists() else {}
    if args.from_search:
        for item in args.from_search:
            beam, db = item.split("=", 1)
            index[f"search-{beam}"] = from_search(beam, db)
            index_path.write_text(json.dumps(index, indent=2) + "\n")
            print(f"search-{beam}: {index[f'search-{beam}']['networks']} networks")
        return
    with tempfile.TemporaryDirectory() as scratch:
        for name in args.only or COLLECTIONS:
            index[name] = make(name, COLLECTIONS[name], Path(scratch))
            OUT.mkdir(exist_ok=True)
            index_path.write_text(json.dumps(index, indent=2) + "\n")
            print(f"{name}: {index[name]['networks']} networks")


if __name__ == "__main__":
    main()
