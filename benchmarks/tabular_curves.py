"""Learning curves of classical learners on synthetic tabular data sets (a held-out curve family).

The engine was designed on CNN curves from images; the issue's own held-out set included
"learning curves of classical learners on many tabular data sets", which behave differently:
smooth, early saturation, a large validation set (fine accuracy steps), some learners that
diverge or oscillate at a too-large step size. This module grows such a collection with torch
alone (no download, no scikit-learn): for each of ``datasets`` synthetic problems (Gaussian
class clusters in 8-40 dimensions, some features only noise, 0-10 % flipped labels, a
nonlinear warp on some) it trains ``learners`` randomly configured learners epoch by epoch and
records the validation accuracy after each epoch:

* logistic regression (softmax), a linear SVM (multi-class hinge) and a one- or two-hidden-layer
  MLP (16-128 units, ReLU or tanh);
* SGD with a log-uniform step size in [1e-3, 1], momentum 0 or 0.9, weight decay 0-1e-2,
  batch size 16-256.

The curves of all data sets are interleaved in a seeded random order, as one population, the
way the issue's held-out set mixed many data sets. ``make_collections.py`` calls :func:`grow`.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd


def make_problem(rng: np.random.Generator, n_classes: int, n_train: int, n_val: int) -> tuple:
    """One synthetic classification problem: (x_train, y_train, x_val, y_val) as float32 / int64 arrays."""
    dims = int(rng.integers(8, 41))
    informative = max(2, int(dims * rng.uniform(0.3, 1.0)))
    clusters = int(rng.integers(1, 4))
    separation = rng.uniform(0.6, 2.2)
    centres = rng.normal(0, separation, size=(n_classes, clusters, informative))
    n = n_train + n_val
    y = rng.integers(0, n_classes, n)
    which = rng.integers(0, clusters, n)
    x = np.concatenate([centres[y, which] + rng.normal(0, 1.0, (n, informative)),
                        rng.normal(0, 1.0, (n, dims - informative))], axis=1)
    if rng.random() < 0.5:  # a nonlinear warp: the linear learners then plateau lower than the MLPs
        x = np.tanh(x) + 0.3 * np.sin(2 * x)
    flip = rng.random(n) < rng.choice([0.0, 0.02, 0.05, 0.1])
    y = np.where(flip, rng.integers(0, n_classes, n), y)
    x = (x - x[:n_train].mean(0)) / (x[:n_train].std(0) + 1e-6)
    return (x[:n_train].astype(np.float32), y[:n_train].astype(np.int64), x[n_train:].astype(np.float32),
            y[n_train:].astype(np.int64))


def make_learner(rng: np.random.Generator, dims: int, n_classes: int):
    """A randomly configured learner: (torch module, loss name, settings dict)."""
    import torch.nn as nn

    kind = str(rng.choice(["logistic", "svm", "mlp1", "mlp2"]))
    act = nn.ReLU if rng.random() < 0.5 else nn.Tanh
    width = int(rng.choice([16, 32, 64, 128]))
    if kind in ("logistic", "svm"):
        model = nn.Linear(dims, n_classes)
    elif kind == "mlp1":
        model = nn.Sequential(nn.Linear(dims, width), act(), nn.Linear(width, n_classes))
    else:
        model = nn.Sequential(nn.Linear(dims, width), act(), nn.Linear(width, width), act(), nn.Linear(width, n_classes))
    settings = {"learner": kind, "lr": float(10 ** rng.uniform(-3, 0)), "momentum": float(rng.choice([0.0, 0.9])),
                "weight_decay": float(rng.choice([0.0, 1e-4, 1e-3, 1e-2])), "batch": int(rng.choice([16, 32, 64, 256])),
                "width": width if kind.startswith("mlp") else None}
    return model, ("hinge" if kind == "svm" else "cross-entropy"), settings


def learning_curve(problem: tuple, model, loss_name: str, settings: dict, epochs: int, seed: int) -> list[float]:
    """Validation accuracy (%) after each of ``epochs`` epochs of minibatch SGD."""
    import torch
    import torch.nn.functional as F

    torch.manual_seed(seed)
    for p in model.parameters():  # the learner's own seeded initialisation
        if p.dim() > 1:
            torch.nn.init.kaiming_uniform_(p, a=math.sqrt(5))
        else:
            torch.nn.init.zeros_(p)
    x_train, y_train, x_val, y_val = (torch.from_numpy(a) for a in problem)
    optimizer = torch.optim.SGD(model.parameters(), lr=settings["lr"], momentum=settings["momentum"],
                                weight_decay=settings["weight_decay"])
    generator = torch.Generator().manual_seed(seed)
    curve = []
    for _ in range(epochs):
        order = torch.randperm(len(x_train), generator=generator)
        for start in range(0, len(order), settings["batch"]):
            batch = order[start:start + settings["batch"]]
            out = model(x_train[batch])
            loss = (F.multi_margin_loss(out, y_train[batch]) if loss_name == "hinge"
                    else F.cross_entropy(out, y_train[batch]))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        with torch.no_grad():
            predicted = model(x_val).argmax(1)
            accuracy = 100.0 * float((predicted == y_val).float().mean())
        curve.append(accuracy if math.isfinite(accuracy) else float("nan"))
    return curve


def grow(n_classes: int, datasets: int, learners: int, epochs: int, seed: int, n_train: int = 2000,
         n_val: int = 1000) -> pd.DataFrame:
    """The collection in long format (``model, epoch, val_acc`` plus the learner's settings), interleaved."""
    import torch

    torch.set_num_threads(1)
    rng = np.random.default_rng(seed)
    rows = []
    jobs = [(d, j) for d in range(datasets) for j in range(learners)]
    order = rng.permutation(len(jobs))
    problems = [make_problem(rng, n_classes, n_train, n_val) for _ in range(datasets)]
    for model_number, job in enumerate(order):
        d, j = jobs[job]
        learner_rng = np.random.default_rng([seed, d, j])
        model, loss_name, settings = make_learner(learner_rng, problems[d][0].shape[1], n_classes)
        curve = learning_curve(problems[d], model, loss_name, settings, epochs, seed=seed * 1000 + d * 100 + j)
        for epoch, value in enumerate(curve, start=1):
            rows.append({"model": model_number, "epoch": epoch, "val_acc": value, "dataset": d, **settings})
    return pd.DataFrame(rows)
