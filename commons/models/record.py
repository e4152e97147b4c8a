"""What a recorded network is made of, wherever it is read from (database, bundle, query service).

A :class:`NetworkRecord` carries exactly what rebuilding and describing the network
needs: the genome, the decoder settings the search recorded (nodes per phase, channels,
and, from the data set, input channels, image size and classes), the search and engine
settings, and the list of checkpoints with their sha256. Sources differ only in how they
fill it and how they hand over a checkpoint's bytes.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from a4nn.errors import A4nnError


class ModelNotFoundError(A4nnError):
    """No network with this id in the source."""


class CheckpointError(A4nnError):
    """A checkpoint that cannot be used: none kept, unknown epoch, missing file, sha256 mismatch."""


@dataclass(frozen=True)
class CheckpointRef:
    """One recorded checkpoint: its epoch, pinned sha256 and where the source keeps it."""

    epoch: float
    sha256: str
    size_bytes: int | None
    location: str               # path or URL, named in error messages
    available: bool = True      # False: recorded, but this source does not carry the file (bundle without it)


@dataclass
class NetworkRecord:
    """A recorded network as the loader, the evaluator and the model card see it."""

    model_id: Any               # database id, or (search, generation, index) in a bundle
    bits: str
    encoding: str
    n_nodes: int
    channels: int
    in_channels: int | None
    image_size: tuple[int, int] | None
    n_classes: int | None
    arch: dict[str, Any] = field(default_factory=dict)
    train_params: dict[str, Any] = field(default_factory=dict)
    flops: float | None = None
    n_params: int | None = None
    final_acc: float | None = None
    status: str | None = None
    generation: int | None = None
    index: int | None = None
    search: dict[str, Any] = field(default_factory=dict)       # name, nas, config, seed, code_version, ...
    engine_config: dict[str, Any] | None = None
    dataset: dict[str, Any] | None = None                      # name, kind, beam, attributes
    checkpoints: list[CheckpointRef] = field(default_factory=list)
    publications: list[dict[str, Any]] = field(default_factory=list)
    source: str = ""

    @property
    def label(self) -> str:
        """How messages name the network."""
        if isinstance(self.model_id, tuple):
            search, generation, index = self.model_id
            return f"model {search}/g{generation}/i{index}"
        return f"model {self.model_id}"


class RecordSource(Protocol):
    """Where recorded networks come from."""

    def record(self, model_id: Any) -> NetworkRecord: ...

    def checkpoint_bytes(self, record: NetworkRecord, checkpoint: CheckpointRef) -> bytes: ...


def decoder_settings(arch: dict[str, Any], train_params: dict[str, Any], config: dict[str, Any],
                     attributes: dict[str, Any]) -> dict[str, Any]:
    """Nodes, channels, input channels, image size and classes from what a search records.

    The search stores ``n_nodes`` in ``arch`` and ``train_params`` (``TrainSettings``),
    ``channels`` in ``train_params`` and ``searches.config``; the data set's attributes
    hold ``channels``, ``image_size`` and ``n_classes`` (every loader writes them). What is
    missing stays None and is read off the checkpoint's tensor shapes.
    """
    image = attributes.get("image_size") or config.get("image_size")
    if isinstance(image, int):
        image = [image, image]
    return {
        "n_nodes": int(arch.get("n_nodes") or train_params.get("n_nodes") or config.get("n_nodes") or 4),
        "channels": int(train_params.get("channels") or arch.get("channels") or config.get("channels") or 24),
        "in_channels": int(attributes["channels"]) if attributes.get("channels") else None,
        "image_size": (int(image[0]), int(image[1])) if image else None,
        "n_classes": int(attributes["n_classes"]) if attributes.get("n_classes") else None,
    }
