"""Training one network: SGD with momentum, cosine schedule, gradient clipping, per-epoch validation.

Pure training, no database: after every validation it calls ``on_epoch(metrics,
model)`` and stops as soon as that returns True (the prediction engine's decision).

Reproducibility: :func:`build_model` seeds the weight initialisation from the search
seed *and the genome*, and batches are shuffled by a generator seeded from the
search seed. On the CPU the same genome therefore trains to the same curve in any
search with the same data and settings, which is what lets the A/B benchmark look
up a network's true final accuracy in the standalone run.
"""
from __future__ import annotations

import hashlib
import time
from typing import Any, Callable, Sequence

import torch
from torch import nn

from a4nn.search.evaluation import EpochMetrics, TrainSettings


def resolve_device(name: str) -> torch.device:
    """``auto`` is CUDA when available, else the CPU; anything else is taken literally."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def model_seed(bits: Sequence[int], seed: int, network: int | None = None) -> int:
    """A 63-bit seed derived from the search seed and the genome (and, if given, the trained network's id)."""
    text = f"{seed}:" + "".join(str(int(b)) for b in bits) + ("" if network is None else f":{int(network)}")
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") >> 1


def build_model(bits: Sequence[int], settings: TrainSettings, data: Any, network: int | None = None) -> nn.Module:
    """The genome's network with a seeded initialisation (see the module docstring).

    ``network``: the trained network's id (its architecture row); with
    ``settings.init_per_network`` it enters the seed, so a genome trained twice starts from
    two initialisations (NSGA-Net's retrained repeats); otherwise the genome alone decides.
    """
    from a4nn.search.network import build_network

    salt = network if settings.init_per_network else None
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(model_seed(bits, settings.seed, salt))
        return build_network(list(bits), n_nodes=settings.n_nodes, channels=settings.channels,
                             in_channels=data.in_channels, n_classes=data.n_classes)


def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int,
             device: torch.device) -> tuple[float, float]:
    """Mean cross-entropy and accuracy (%) of ``model`` on (x, y)."""
    model.eval()
    loss_sum, correct = 0.0, 0
    criterion = nn.CrossEntropyLoss(reduction="sum")
    with torch.no_grad():
        for start in range(0, len(y), batch):
            xb, yb = x[start:start + batch].to(device), y[start:start + batch].to(device)
            logits = model(xb)
            loss_sum += float(criterion(logits, yb))
            correct += int((logits.argmax(1) == yb).sum())
    return loss_sum / max(len(y), 1), 100.0 * correct / max(len(y), 1)


def train_network(model: nn.Module, data: Any, settings: TrainSettings,
                  on_epoch: Callable[[EpochMetrics, nn.Module], bool]) -> list[EpochMetrics]:
    """Train ``model`` on ``data`` (an ImageSplit) for up to ``settings.epochs`` epochs.

    The cosine schedule always spans the full budget, so a network the engine stops
    at epoch k has seen exactly the learning rates it would have seen in a full run:
    its curve up to k is the standalone curve, which keeps the A/B comparison fair.
    """
    if len(data.train_y) == 0 or len(data.val_y) == 0:
        raise ValueError("the data set has an empty training or validation split")
    torch.set_num_threads(max(1, settings.num_threads))
    device = resolve_device(settings.device)
    model.to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=settings.lr, momentum=settings.momentum,
                                weight_decay=settings.weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, settings.epochs) if settings.cosine else None
    criterion = nn.CrossEntropyLoss()
    generator = torch.Generator().manual_seed(settings.seed)
    history: list[EpochMetrics] = []
    n = len(data.train_y)
    for epoch in range(1, settings.epochs + 1):
        start = time.perf_counter()
        model.train()
        # NSGA-Net's loaders do not shuffle (a4nn.search.recipes); the default reshuffles, seeded
        order = torch.randperm(n, generator=generator) if settings.shuffle else torch.arange(n)
        loss_sum, correct = 0.0, 0
        for first in range(0, n, settings.batch_size):
            index = order[first:first + settings.batch_size]
            xb, yb = data.train_x[index].to(device), data.train_y[index].to(device)
            optimizer.zero_grad(set_to_none=True)
            logits = model(xb)
            loss = criterion(logits, yb)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), settings.grad_clip)
            optimizer.step()
            loss_sum += float(loss.detach()) * len(yb)
            correct += int((logits.argmax(1) == yb).sum())
        if scheduler is not None:
            scheduler.step()
        if settings.precise_bn:  # why: TrainSettings.precise_bn
            chunk = max(settings.batch_size, 256)
            torch.optim.swa_utils.update_bn((data.train_x[i:i + chunk] for i in range(0, n, chunk)), model, device)
        val_loss, val_acc = evaluate(model, data.val_x, data.val_y, max(settings.batch_size, 256), device)
        metrics = EpochMetrics(epoch, loss_sum / n, 100.0 * correct / n, val_loss, val_acc, time.perf_counter() - start)
        history.append(metrics)
        if on_epoch(metrics, model):
            break
    return history
