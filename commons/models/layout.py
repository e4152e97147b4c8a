"""State-dict layouts: ours (``a4nn.search.network``) and the original NSGA-Net ``EvoNetwork``.

The layers are the same, only the module names differ. NSGA-Net
(github.com/ianwhale/nsga-net, ``models/macro_models.py`` and ``models/macro_decoder.py``)
names them::

    model.{k}.first_conv.weight          entry convolution of phase k (always built, used only
                                         when the phase changes the channel count)
    model.{k}.nodes.{i-1}.model.{0,1}.*  node i: Conv3x3 (0) and BatchNorm (1)
    model.{k}.processors.{i}.weight      1x1 convolution merging several inputs of node i
                                         (i = n+1 is the phase output)
    model.{k}.out.0.*                    BatchNorm of the phase output
    linear.{weight,bias}                 the head

``k`` is the position in the ``nn.Sequential`` of phases and max-pools, the same index
our ``features.{k}`` uses. Ours::

    features.{k}.entry.weight, features.{k}.nodes.{i}.body.{0,1}.*, features.{k}.merges.{i}.weight,
    features.{k}.out.0.*, head.{weight,bias}

A network without any active phase is ``Identity`` in both, so only the head has weights.
"""
from __future__ import annotations

import re
from typing import Mapping

import torch

from a4nn.errors import A4nnError

_THEIRS = [
    (re.compile(r"^model\.(\d+)\.nodes\.(\d+)\.model\.(.+)$"),
     lambda m: f"features.{m[1]}.nodes.{int(m[2]) + 1}.body.{m[3]}"),
    (re.compile(r"^model\.(\d+)\.processors\.(\d+)\.(.+)$"), lambda m: f"features.{m[1]}.merges.{m[2]}.{m[3]}"),
    (re.compile(r"^model\.(\d+)\.first_conv\.(.+)$"), lambda m: f"features.{m[1]}.entry.{m[2]}"),
    (re.compile(r"^model\.(\d+)\.out\.(.+)$"), lambda m: f"features.{m[1]}.out.{m[2]}"),
    (re.compile(r"^linear\.(.+)$"), lambda m: f"head.{m[1]}"),
]
_OURS = [
    (re.compile(r"^features\.(\d+)\.nodes\.(\d+)\.body\.(.+)$"),
     lambda m: f"model.{m[1]}.nodes.{int(m[2]) - 1}.model.{m[3]}"),
    (re.compile(r"^features\.(\d+)\.merges\.(\d+)\.(.+)$"), lambda m: f"model.{m[1]}.processors.{m[2]}.{m[3]}"),
    (re.compile(r"^features\.(\d+)\.entry\.(.+)$"), lambda m: f"model.{m[1]}.first_conv.{m[2]}"),
    (re.compile(r"^features\.(\d+)\.out\.(.+)$"), lambda m: f"model.{m[1]}.out.{m[2]}"),
    (re.compile(r"^head\.(.+)$"), lambda m: f"linear.{m[1]}"),
]


class LayoutError(A4nnError):
    """A state_dict in neither our layout nor NSGA-Net's, or one that does not fit the genome."""


def is_nsga_net_layout(state: Mapping[str, torch.Tensor]) -> bool:
    """True for an ``EvoNetwork`` state_dict (keys ``linear.*`` and ``model.*``)."""
    return "linear.weight" in state and "head.weight" not in state


def _rename(state: Mapping[str, torch.Tensor], rules: list, what: str) -> dict[str, torch.Tensor]:
    renamed: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        for pattern, target in rules:
            match = pattern.match(key)
            if match:
                renamed[target(match)] = value
                break
        else:
            raise LayoutError(f"state_dict key {key!r} has no counterpart in {what}")
    return renamed


def from_nsga_net(state: Mapping[str, torch.Tensor], reference: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """An ``EvoNetwork`` state_dict renamed into our layout.

    ``reference`` is our network's own state_dict; it decides which entry convolutions
    exist: NSGA-Net builds ``first_conv`` in every phase but uses it only when the
    channel count changes, where our decoder has an ``Identity`` instead, so an unused
    ``first_conv`` is dropped.
    """
    renamed = _rename(state, _THEIRS, "a4nn's decoder")
    return {key: value for key, value in renamed.items() if key in reference or not key.endswith("entry.weight")}


def to_nsga_net(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Our state_dict under NSGA-Net's ``EvoNetwork`` names (without unused ``first_conv`` weights)."""
    return _rename(state, _OURS, "NSGA-Net's EvoNetwork")


def load_any_layout(model: torch.nn.Module, state: Mapping[str, torch.Tensor]) -> str:
    """Load ``state`` (ours or NSGA-Net's) into ``model`` strictly; returns the layout name."""
    layout = "nsga-net" if is_nsga_net_layout(state) else "a4nn"
    if layout == "nsga-net":
        state = from_nsga_net(state, model.state_dict())
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        detail = " ".join(line.strip() for line in first[:3])
        raise LayoutError(f"the weights ({layout} layout) do not fit the network rebuilt from the genome: "
                          f"{detail[:400]}") from None
    return layout
