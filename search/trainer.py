"""Training one network: SGD with momentum, cosine schedule, gradient clipping, per-epoch validation.

Pure training, no database: after every validation it calls ``on_epoch(metrics,
model)`` and stops as soon as that returns True (the prediction engine's decision).
"""
from __future__ import annotations

import time
from typing import Callable

import torch
from torch import nn

from a4nn.search.evaluation import EpochMetrics, TrainSettings


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int, device: torch.device) -> tuple[float, float]:
    model.eval()
    loss_sum, correct = 0.0, 0
    criterion = nn.CrossEntropyLoss(reduction="sum")
    with torch.no_grad():
        for start in range(0, len(y), batch):
            xb, yb = x[start:start + batch].to(device), y[start:start + batch].to(device)
            logits = model(xb)
            loss_sum += float(criterion(logits, yb))
            correct += int((logits.argmax(1) == yb).sum())
    return loss_sum / len(y), 100.0 * correct / len(y)


def train_network(model: nn.Module, data, settings: TrainSettings,
                  on_epoch: Callable[[EpochMetrics, nn.Module], bool]) -> list[EpochMetrics]:
    """Train ``model`` on ``data`` (an ImageSplit) for up to ``settings.epochs`` epochs."""
    torch.set_num_threads(max(1, settings.num_threads))
    torch.manual_seed(settings.seed)
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
        order = torch.randperm(n, generator=generator)
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
        val_loss, val_acc = _evaluate(model, data.val_x, data.val_y, max(settings.batch_size, 256), device)
        metrics = EpochMetrics(epoch, loss_sum / n, 100.0 * correct / n, val_loss, val_acc, time.perf_counter() - start)
        history.append(metrics)
        if on_epoch(metrics, model):
            break
    return history
