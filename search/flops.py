"""FLOPs in NSGA-Net's convention: multiply-accumulates of one forward pass, in millions.

Counted with forward hooks on one ``1 x C x H x W`` input: convolutions count
``output elements x (in_channels / groups) x kernel area``, linear layers
``in x out``; batch norm, activations and pooling are not counted, as in the
NSGA-Net macro search results (checked against the published A4NN logs).
"""
from __future__ import annotations

import torch
from torch import nn


def count_mflops(model: nn.Module, input_shape: tuple[int, ...] = (1, 1, 127, 127)) -> float:
    total = 0

    def conv_hook(module: nn.Conv2d, _inputs, output: torch.Tensor) -> None:
        nonlocal total
        kernel = module.kernel_size[0] * module.kernel_size[1]
        total += output.numel() * (module.in_channels // module.groups) * kernel

    def linear_hook(module: nn.Linear, _inputs, output: torch.Tensor) -> None:
        nonlocal total
        total += output.numel() * module.in_features

    handles = []
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            handles.append(module.register_forward_hook(conv_hook))
        elif isinstance(module, nn.Linear):
            handles.append(module.register_forward_hook(linear_hook))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(input_shape))
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return total / 1e6


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
