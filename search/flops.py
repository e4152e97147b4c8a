"""FLOPs in NSGA-Net's convention: multiply-accumulates of one forward pass, in millions.

NSGA-Net (and the A4NN logs, whose ``flops`` column this reproduces) measured cost
with a forward-hook counter that adds, per image:

* Conv2d: ``output pixels x k_h x k_w x in_channels x out_channels / groups``, plus
  ``out_channels x output pixels`` when the convolution has a bias;
* Linear: ``in_features x out_features`` (bias not counted);
* BatchNorm2d: one per input element, two when affine;
* ReLU-like activations: one per output element;
* max/average pooling (adaptive too): one per input element;
* Upsample: one per output element.

Counting only the convolutions and the head lands about 1 % low; the normalisation,
activation and pooling terms close the gap (checked against every architecture of
the published logs in the tests). Hooks fire once per call, so a module used twice
counts twice — that is what the forward pass costs.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.PReLU, nn.ELU, nn.LeakyReLU)
POOLS = (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveMaxPool2d, nn.AdaptiveAvgPool2d)


def _conv(module: nn.Conv2d, _inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> int:
    positions = output.shape[0] * output.shape[2] * output.shape[3]
    per_position = module.kernel_size[0] * module.kernel_size[1] * module.in_channels * module.out_channels
    flops = per_position // module.groups * positions
    if module.bias is not None:
        flops += module.out_channels * positions
    return int(flops)


def _linear(module: nn.Linear, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> int:
    rows = inputs[0].numel() // module.in_features
    return int(rows * module.in_features * module.out_features)


def _batch_norm(module: nn.BatchNorm2d, inputs: tuple[torch.Tensor, ...], _output: torch.Tensor) -> int:
    return int(inputs[0].numel() * (2 if module.affine else 1))


def _per_output(_module: nn.Module, _inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> int:
    return int(output.numel())


def _per_input(_module: nn.Module, inputs: tuple[torch.Tensor, ...], _output: torch.Tensor) -> int:
    return int(inputs[0].numel())


def _counter_for(module: nn.Module) -> Callable[..., int] | None:
    if isinstance(module, nn.Conv2d):
        return _conv
    if isinstance(module, nn.Linear):
        return _linear
    if isinstance(module, nn.BatchNorm2d):
        return _batch_norm
    if isinstance(module, ACTIVATIONS):
        return _per_output
    if isinstance(module, POOLS):
        return _per_input
    if isinstance(module, nn.Upsample):
        return _per_output
    return None


def count_flops(model: nn.Module, input_shape: tuple[int, ...] = (1, 1, 127, 127)) -> dict[str, int]:
    """Per-image operation counts by module type (``{"Conv2d": ..., "BatchNorm2d": ...}``).

    Runs one forward pass on zeros in eval mode under ``no_grad`` (batch-norm
    statistics untouched) and restores the model's training flag afterwards.
    """
    totals: dict[str, int] = {}
    handles = []
    for module in model.modules():
        counter = _counter_for(module)
        if counter is None:
            continue

        def hook(mod: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor,
                 counter: Callable[..., int] = counter) -> None:
            name = type(mod).__name__
            totals[name] = totals.get(name, 0) + counter(mod, inputs, output)

        handles.append(module.register_forward_hook(hook))
    was_training = model.training
    model.eval()
    try:
        parameter = next(model.parameters(), None)
        device = parameter.device if parameter is not None else torch.device("cpu")
        with torch.no_grad():
            model(torch.zeros(input_shape, device=device))
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    batch = max(int(input_shape[0]), 1)
    return {name: value // batch for name, value in totals.items()}


def count_mflops(model: nn.Module, input_shape: tuple[int, ...] = (1, 1, 127, 127)) -> float:
    """Millions of multiply-accumulates of one image's forward pass, NSGA-Net convention."""
    return sum(count_flops(model, input_shape).values()) / 1e6


def count_parameters(model: nn.Module) -> int:
    """Trainable parameters (what NSGA-Net's ``get_model_parameters_number`` reports)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
