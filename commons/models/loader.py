"""``load_network``: a recorded network back as a working torch module, its weights checked first.

The network is rebuilt from the recorded genome with the decoder settings of its search
(:func:`a4nn.search.network.build_network`), and the checkpoint's bytes must hash to the
sha256 recorded for them before ``torch.load(weights_only=True)`` sees them: a
checkpoint is data from someone else, and a file that changed since it was recorded is
refused, never half-trusted.
"""
from __future__ import annotations

import hashlib
import io
import time
from dataclasses import dataclass
from typing import Any, Mapping

import torch
from torch import nn

from a4nn.commons.models.layout import LayoutError, is_nsga_net_layout, load_any_layout
from a4nn.commons.models.record import CheckpointError, CheckpointRef, NetworkRecord
from a4nn.commons.models.sources import open_source

HOW_TO_GET_CHECKPOINTS = ("run the search with `--checkpoints epoch` (every epoch) or `--checkpoints final` "
                          "to keep them, or refine it: `a4nn-commons refine SEARCH ...` trains on from the seed")


@dataclass
class LoadedNetwork:
    """A rebuilt network in eval mode, with the record and the checkpoint it came from."""

    module: nn.Module
    record: NetworkRecord
    epoch: float
    sha256: str
    layout: str
    seconds: float

    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        """``(1, C, H, W)`` of one image."""
        height, width = self.record.image_size or (0, 0)
        return (1, int(self.record.in_channels or 1), height, width)

    @torch.no_grad()
    def predict(self, images: torch.Tensor) -> torch.Tensor:
        """Logits of a batch ``N x C x H x W`` (inference mode, no gradients)."""
        return self.module(images)


def pick_checkpoint(record: NetworkRecord, epoch: float | None) -> CheckpointRef:
    """The checkpoint of ``epoch`` (default: the last one), or a one-line reason why there is none."""
    if not record.checkpoints:
        raise CheckpointError(f"{record.label} was recorded without checkpoints; {HOW_TO_GET_CHECKPOINTS}")
    if epoch is None:
        return max(record.checkpoints, key=lambda c: c.epoch)
    for checkpoint in record.checkpoints:
        if checkpoint.epoch == float(epoch):
            return checkpoint
    epochs = ", ".join(f"{c.epoch:g}" for c in record.checkpoints)
    raise CheckpointError(f"{record.label} has no checkpoint at epoch {float(epoch):g}; recorded epochs: {epochs}")


def verified_state(payload: bytes, record: NetworkRecord, checkpoint: CheckpointRef) -> Mapping[str, torch.Tensor]:
    """The state_dict in ``payload`` after its sha256 matched the record (tensors only, no pickled code)."""
    digest = hashlib.sha256(payload).hexdigest()
    if digest != checkpoint.sha256:
        raise CheckpointError(f"checkpoint {checkpoint.location} of {record.label} epoch {checkpoint.epoch:g} was "
                              f"changed since it was recorded: sha256 {digest}, expected {checkpoint.sha256}")
    try:
        loaded = torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises several types for a file that is no checkpoint
        raise CheckpointError(f"checkpoint {checkpoint.location} is not a torch state file "
                              f"({type(exc).__name__}: {str(exc).splitlines()[0][:200]})") from None
    state = loaded.get("state_dict", loaded) if isinstance(loaded, dict) else None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"checkpoint {checkpoint.location} holds no state_dict")
    return state


def _shapes_from_state(record: NetworkRecord, state: Mapping[str, torch.Tensor]) -> None:
    """Fill input channels and classes the record lacks from the tensors (the head and the first entry)."""
    head = state.get("linear.weight" if is_nsga_net_layout(state) else "head.weight")
    if head is None:
        raise LayoutError("the state_dict has no linear head (head.weight or linear.weight)")
    if record.n_classes is None:
        record.n_classes = int(head.shape[0])
    if record.in_channels is None:
        entry = state.get("model.0.first_conv.weight", state.get("features.0.entry.weight"))
        has_phase = any(k.startswith(("features.", "model.")) for k in state)
        record.in_channels = int(entry.shape[1]) if entry is not None else (
            record.channels if has_phase else int(head.shape[1]))


def build_from_record(record: NetworkRecord) -> nn.Module:
    """The untrained network of a record (decoder settings as recorded)."""
    from a4nn.search.encoding import string_to_bits
    from a4nn.search.network import build_network

    return build_network(string_to_bits(record.bits), n_nodes=record.n_nodes, channels=record.channels,
                         in_channels=int(record.in_channels or 1), n_classes=int(record.n_classes or 2))


def network_from_state(record: NetworkRecord, state: Mapping[str, torch.Tensor]) -> tuple[nn.Module, str]:
    """Rebuild ``record``'s network and load ``state`` (our layout or NSGA-Net's ``EvoNetwork``)."""
    _shapes_from_state(record, state)
    module = build_from_record(record)
    layout = load_any_layout(module, state)
    module.eval()
    return module, layout


def load_network(source: Any, model_id: Any, epoch: float | None = None) -> LoadedNetwork:
    """The recorded network ``model_id`` with the weights of ``epoch`` (default: its last checkpoint).

    ``source`` is a :class:`~a4nn.lineage.database.Database` or database URL, an export
    bundle folder (``model_id`` then is ``SEARCH:GENERATION:INDEX`` or the exporting
    database's id), or a :class:`~a4nn.commons.client.Client` / ``http://`` URL of a
    running ``a4nn-commons serve``.
    """
    start = time.perf_counter()
    reader = open_source(source)
    record = reader.record(model_id)
    checkpoint = pick_checkpoint(record, epoch)
    state = verified_state(reader.checkpoint_bytes(record, checkpoint), record, checkpoint)
    module, layout = network_from_state(record, state)
    return LoadedNetwork(module, record, checkpoint.epoch, checkpoint.sha256, layout, time.perf_counter() - start)
