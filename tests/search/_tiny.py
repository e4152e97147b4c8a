"""Tiny synthetic image splits for fast search tests (no simulator, no files)."""
from __future__ import annotations

import torch

from a4nn.search.data import ImageSplit


def tiny_split(n_train: int = 32, n_val: int = 16, size: int = 16, seed: int = 0) -> ImageSplit:
    """Two classes told apart by the brightness of the image centre: learnable in a few epochs."""
    generator = torch.Generator().manual_seed(seed)

    def make(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        y = torch.arange(n) % 2
        x = torch.randn(n, 1, size, size, generator=generator) * 0.5
        c = size // 4
        x[:, :, c:-c, c:-c] += (y.float() * 2 - 1).view(-1, 1, 1, 1)
        return x, y

    train_x, train_y = make(n_train)
    val_x, val_y = make(n_val)
    return ImageSplit(train_x, train_y, val_x, val_y, name=f"tiny-{size}px-s{seed}", kind="synthetic",
                      attributes={"n_train": n_train, "n_val": n_val})
