"""Generator of random CNNs and their high-frequency learning curves (the 6000-NN data article's recipe).

Each network gets randomly drawn structure and training parameters, is trained with SGD
and cross entropy for ``epochs`` epochs on a local image data set (the XFEL simulator,
an image folder, NPZ/HDF5), is validated every half epoch, and is written as one table
in exactly the 28-column format of the published collection
(:mod:`a4nn.commons.random_nn_format`), so new collections can be grown and ingested
with the same reader as the published one.

Parameter ranges (:class:`RandomNNRanges`) follow the data article's generator as far as
the published tables show it (the article's Table 3 was not reachable offline): every
value in the three sample tables shipped with TauferLab/PENGUIN lies inside them
(3 conv layers of 63-384 filters, kernels up to 32 with strides up to the kernel,
pooling kernels up to 10, 0-2 hidden FC layers of up to ~360 units, batch sizes
25-186, learning rates 0.01-0.78, momentum/weight decay either 0 or small, dropout
rates below 0.5). ``RandomNNRanges.scaled_down()`` shrinks filter and FC widths so a
CPU can train a collection in minutes.

Structural choices are drawn layer by layer against the running spatial size, so every
sampled network is valid for the input (kernels never exceed the feature map).
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import nn

from a4nn.commons.random_nn_format import DELIMITERS, DROPOUT, POOL, RELU, RandomNNTable, safe_file_stem, write_table


@dataclass(frozen=True)
class RandomNNRanges:
    """Inclusive ranges the generator draws from (see the module docstring for their origin)."""

    conv_layers: tuple[int, int] = (1, 5)
    conv_filters: tuple[int, int] = (16, 400)
    conv_kernel_max: int = 32
    conv_padding_max: int = 5
    pool_kernel_max: int = 10
    fc_layers: tuple[int, int] = (0, 2)
    fc_units: tuple[int, int] = (16, 400)
    batch_size: tuple[int, int] = (16, 256)
    learning_rate: tuple[float, float] = (1e-3, 1.0)        # log-uniform
    momentum: tuple[float, float] = (1e-5, 0.99)            # log-uniform, or 0 with p_zero
    weight_decay: tuple[float, float] = (1e-5, 1e-1)        # log-uniform, or 0 with p_zero
    dropout_rate: tuple[float, float] = (0.0, 0.5)          # uniform, or 0 with p_zero
    p_zero: float = 0.4
    p_relu: float = 0.75
    p_pool: float = 0.5
    p_dropout_layer: float = 0.5

    def scaled_down(self) -> "RandomNNRanges":
        """Narrow filter, FC and batch ranges for CPU training (structure and optimiser draws unchanged)."""
        return replace(self, conv_layers=(1, 3), conv_filters=(4, 32), conv_kernel_max=7, fc_units=(8, 64),
                       batch_size=(16, 64), learning_rate=(1e-3, 0.3))


def _log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(math.exp(rng.uniform(math.log(low), math.log(high))))


def _maybe_zero(rng: np.random.Generator, p_zero: float, draw: Callable[[], float]) -> int | float:
    """0 (written ``0`` like the published tables) with probability ``p_zero``, else a drawn float."""
    return 0 if rng.random() < p_zero else draw()


def _int(rng: np.random.Generator, low: int, high: int) -> int:
    return int(rng.integers(low, high + 1))


def sample_metadata(rng: np.random.Generator, *, image_size: int, n_classes: int, dataset: str,
                    ranges: RandomNNRanges = RandomNNRanges(), network_id: str = "", train_gpu: bool = False,
                    deterministic: bool = False) -> dict[str, Any]:
    """The 24 metadata values of one random network, valid for ``image_size`` inputs."""
    dropout_rate = _maybe_zero(rng, ranges.p_zero, lambda: float(rng.uniform(*ranges.dropout_rate)))
    size = image_size
    types, filters, kernels, strides, paddings = [], [], [], [], []
    pool_kernels, pool_strides, pool_paddings = [], [], []
    for _ in range(_int(rng, *ranges.conv_layers)):
        kernel = _int(rng, 1, max(1, min(ranges.conv_kernel_max, size)))
        padding = _int(rng, 0, min(kernel, ranges.conv_padding_max))
        stride = _int(rng, 1, kernel)
        size = (size + 2 * padding - kernel) // stride + 1
        code = RELU if rng.random() < ranges.p_relu else 0
        if size >= 2 and rng.random() < ranges.p_pool:
            pool_kernel = _int(rng, 1, min(ranges.pool_kernel_max, size))
            pool_stride = _int(rng, 1, pool_kernel)
            pool_padding = _int(rng, 0, pool_kernel // 2)
            size = (size + 2 * pool_padding - pool_kernel) // pool_stride + 1
            pool_kernels.append(pool_kernel), pool_strides.append(pool_stride), pool_paddings.append(pool_padding)
            code |= POOL
        if dropout_rate and rng.random() < ranges.p_dropout_layer:
            code |= DROPOUT
        types.append(code), filters.append(_int(rng, *ranges.conv_filters))
        kernels.append(kernel), strides.append(stride), paddings.append(padding)
    fc_dropout_rate = _maybe_zero(rng, ranges.p_zero, lambda: float(rng.uniform(*ranges.dropout_rate)))
    hidden = [_int(rng, *ranges.fc_units) for _ in range(_int(rng, *ranges.fc_layers))]
    fc_dropout_layers = [int(bool(fc_dropout_rate) and rng.random() < 0.5) for _ in hidden]
    return {
        "ID": network_id, "random_seed": int(rng.integers(0, 2**32)), "train_GPU": train_gpu,
        "torch_set_deterministic": deterministic, "dataset": dataset,
        "batch_size": _int(rng, *ranges.batch_size), "loss_fn": "CrossEntropyLoss", "optimizer": "SGD",
        "learning_rate": _log_uniform(rng, *ranges.learning_rate),
        "momentum": _maybe_zero(rng, ranges.p_zero, lambda: _log_uniform(rng, *ranges.momentum)),
        "dampening": 0,
        "weight_decay": _maybe_zero(rng, ranges.p_zero, lambda: _log_uniform(rng, *ranges.weight_decay)),
        "layer_types": types, "dropout_rate": dropout_rate, "convKernels": kernels, "convStrides": strides,
        "convPaddings": paddings, "poolKernels": pool_kernels, "poolStrides": pool_strides,
        "poolPaddings": pool_paddings, "convFilters": filters, "FC_dropout_rate": fc_dropout_rate,
        "FC_dropout_layers": fc_dropout_layers, "FCFilters": hidden + [n_classes],
    }


def build_network(metadata: dict[str, Any], in_channels: int, image_size: tuple[int, int]) -> nn.Sequential:
    """The torch module a table's taxonomy describes: conv [-> ReLU] [-> max-pool] [-> dropout] blocks, FC head."""
    layers: list[nn.Module] = []
    channels = in_channels
    pools = iter(zip(metadata["poolKernels"], metadata["poolStrides"], metadata["poolPaddings"]))
    for code, filters, kernel, stride, padding in zip(metadata["layer_types"], metadata["convFilters"],
                                                      metadata["convKernels"], metadata["convStrides"],
                                                      metadata["convPaddings"]):
        layers.append(nn.Conv2d(channels, filters, kernel, stride, padding))
        if code & RELU:
            layers.append(nn.ReLU())
        if code & POOL:
            pool_kernel, pool_stride, pool_padding = next(pools)
            layers.append(nn.MaxPool2d(pool_kernel, pool_stride, pool_padding))
        if code & DROPOUT:
            layers.append(nn.Dropout(float(metadata["dropout_rate"])))
        channels = filters
    layers.append(nn.Flatten())
    with torch.no_grad():
        features = nn.Sequential(*layers)(torch.zeros(1, in_channels, *image_size)).shape[1]
    for units, dropout in zip(metadata["FCFilters"][:-1], metadata["FC_dropout_layers"]):
        layers += [nn.Linear(features, units), nn.ReLU()]
        if dropout:
            layers.append(nn.Dropout(float(metadata["FC_dropout_rate"])))
        features = units
    layers.append(nn.Linear(features, metadata["FCFilters"][-1]))
    return nn.Sequential(*layers)


def _evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int, loss_fn: nn.Module) -> tuple[float, float]:
    model.eval()
    total_loss, correct = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(y), batch):
            logits = model(x[start:start + batch])
            total_loss += float(loss_fn(logits, y[start:start + batch])) * len(logits)
            correct += int((logits.argmax(1) == y[start:start + batch]).sum())
    return total_loss / len(y), 100.0 * correct / len(y)


def train_curve(metadata: dict[str, Any], split: Any, epochs: int, device: str = "cpu"
                ) -> list[tuple[float, float, float, float]]:
    """Train one random network; a ``(epoch, trainLoss, valLoss, valAcc)`` row every half epoch.

    trainLoss is the mean loss of the half epoch's batches; valLoss/valAcc (percent) are
    measured on the whole validation split. A diverged network keeps training and
    records ``nan`` losses, as the published collection does.
    """
    torch.manual_seed(metadata["random_seed"])
    model = build_network(metadata, split.in_channels, split.image_size).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=float(metadata["learning_rate"]),
                                momentum=float(metadata["momentum"]), dampening=float(metadata["dampening"]),
                                weight_decay=float(metadata["weight_decay"]))
    loss_fn = nn.CrossEntropyLoss()
    train_x, train_y = split.train_x.to(device), split.train_y.to(device)
    val_x, val_y = split.val_x.to(device), split.val_y.to(device)
    batch = int(metadata["batch_size"])
    generator = torch.Generator().manual_seed(metadata["random_seed"])
    rows: list[tuple[float, float, float, float]] = []
    for epoch in range(epochs):
        order = torch.randperm(len(train_y), generator=generator).to(device)
        middle = (len(order) + 1) // 2  # half an epoch = half the training images, so tiny sets still get 2 rows
        for part, samples in enumerate((order[:middle], order[middle:])):
            model.train()
            losses = []
            for start in range(0, len(samples), batch):
                index = samples[start:start + batch]
                optimizer.zero_grad()
                loss = loss_fn(model(train_x[index]), train_y[index])
                loss.backward()
                optimizer.step()
                losses.append(loss.item())
            val_loss, val_acc = _evaluate(model, val_x, val_y, max(batch, 256), loss_fn)
            train_loss = float(np.mean(losses)) if losses else float("nan")
            rows.append((epoch + 0.5 * (part + 1), train_loss, val_loss, val_acc))
    return rows


def _table_dataset_name(name: str) -> str:
    """Data set names go into a delimited field: no spaces, tabs or commas."""
    return re.sub(r"[\s,]+", "_", name)


def new_network_id(existing: set[str], now: datetime | None = None) -> str:
    """A timestamp ID like the published ones (``2021_02_15_13_55_26_539263``), unique within ``existing``."""
    moment = now or datetime.now()
    while True:
        candidate = moment.strftime("%Y_%m_%d_%H_%M_%S_%f")
        if candidate not in existing:
            existing.add(candidate)
            return candidate
        moment += timedelta(microseconds=1)


def generate_random_nns(split: Any, n: int, out_dir: Path, *, epochs: int = 40, seed: int = 0,
                        ranges: RandomNNRanges = RandomNNRanges(), delimiter: str = " ", device: str = "cpu",
                        threads: int | None = 1, progress: bool = True) -> list[Path]:
    """Train ``n`` random networks on ``split`` and write one table each to ``out_dir``; returns the paths.

    ``threads`` caps torch's intra-op threads (1 by default: several processes share small machines).
    """
    if n < 1 or epochs < 1:
        raise ValueError("n and epochs must be at least 1")
    if len(split.train_y) < 2 or len(split.val_y) < 1:
        raise ValueError("the data set needs at least 2 training and 1 validation image (a row every half epoch)")
    if threads:
        torch.set_num_threads(threads)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    existing = {p.stem for p in out.glob("*.txt")}
    rng = np.random.default_rng(seed)
    iterator: Sequence[int] | Any = range(n)
    if progress:
        from a4nn.progress import progress_bar

        iterator = progress_bar(iterator, desc="random-nn", unit="net")
    written = []
    for _ in iterator:
        network_id = new_network_id(existing)
        metadata = sample_metadata(rng, image_size=min(split.image_size), n_classes=split.n_classes,
                                   dataset=_table_dataset_name(split.name), ranges=ranges, network_id=network_id,
                                   train_gpu=str(device).startswith("cuda"))
        curve = train_curve(metadata, split, epochs, device)
        written.append(write_table(RandomNNTable(metadata, list(curve)), out, delimiter))
    return written


__all__ = ["DELIMITERS", "RandomNNRanges", "build_network", "generate_random_nns", "new_network_id",
           "safe_file_stem", "sample_metadata", "train_curve"]
