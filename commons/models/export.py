"""Deployable files: TorchScript (runs with torch alone) or ONNX (runs with onnxruntime alone), plus a model card.

The model card (``FILE.card.json`` beside the file) says what the file is and where it
came from: genome, decoded architecture, MFLOPs, parameters, the data set and its
attributes (including the normalization a caller must apply to raw images), accuracy,
the search and engine settings, the code version, the checkpoint sha256 and the
publication DOI when the search was published.
"""
from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path
from typing import Any

import torch

from a4nn import __version__
from a4nn.errors import A4nnError
from a4nn.commons.models.loader import LoadedNetwork

FORMATS = ("torchscript", "onnx")
ONNX_OPSET = 17
MISSING_ONNX = "ONNX export needs the onnx package: pip install 'a4nn-commons[onnx]' (onnx and onnxruntime)"


def card_path(out: Path) -> Path:
    """Where the model card of ``out`` goes: ``model.pt`` -> ``model.card.json``."""
    return out.with_name(out.stem + ".card.json")


def example_input(loaded: LoadedNetwork, batch: int = 1) -> torch.Tensor:
    """A seeded batch of the network's input shape (trace input and test data)."""
    if loaded.record.image_size is None:
        raise A4nnError(f"{loaded.record.label}: the recorded data set has no image size; cannot fix the input shape")
    _, channels, height, width = loaded.input_shape
    return torch.randn(batch, channels, height, width, generator=torch.Generator().manual_seed(0))


def export_torchscript(loaded: LoadedNetwork, out: Path) -> None:
    """A traced TorchScript module (the decoder's graph is static, so tracing records all of it)."""
    with torch.no_grad():
        traced = torch.jit.trace(loaded.module, example_input(loaded), check_trace=True)
    traced.save(str(out))


def export_onnx(loaded: LoadedNetwork, out: Path) -> None:
    """An ONNX graph with a dynamic batch axis (input ``images``, output ``logits``).

    torch 2.13's default exporter goes through torch.export and needs onnxscript; the
    TorchScript-based exporter (``dynamo=False``) handles this static graph with the
    ``onnx`` package alone.
    """
    try:
        import onnx  # the exporter needs it too, not only the check below
    except ImportError:
        raise A4nnError(MISSING_ONNX) from None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(loaded.module, (example_input(loaded),), str(out), dynamo=False, opset_version=ONNX_OPSET,
                          input_names=["images"], output_names=["logits"],
                          dynamic_axes={"images": {0: "batch"}, "logits": {0: "batch"}})
    onnx.checker.check_model(onnx.load(str(out)))


def model_card(loaded: LoadedNetwork, fmt: str, out: Path) -> dict[str, Any]:
    """What the exported file is and where it came from (see the module docstring)."""
    record = loaded.record
    dois = [p["persistent_id"] for p in record.publications if p.get("persistent_id")]
    _, channels, height, width = loaded.input_shape
    return {
        "format": fmt, "file": out.name, "file_sha256": hashlib.sha256(out.read_bytes()).hexdigest(),
        "input": {"name": "images", "shape": ["batch", channels, height, width], "dtype": "float32",
                  "normalization": (record.dataset or {}).get("attributes", {}).get("normalization")},
        "output": {"name": "logits", "shape": ["batch", record.n_classes], "classes": record.n_classes},
        "model": {"id": record.model_id if not isinstance(record.model_id, tuple) else list(record.model_id),
                  "generation": record.generation, "index": record.index, "status": record.status},
        "genome": {"bits": record.bits, "encoding": record.encoding},
        "architecture": record.arch,
        "decoder": {"n_nodes": record.n_nodes, "channels": record.channels, "in_channels": record.in_channels,
                    "image_size": list(record.image_size) if record.image_size else None,
                    "n_classes": record.n_classes},
        "mflops": record.flops, "parameters": record.n_params,
        "accuracy": {"final_val_acc": record.final_acc, "checkpoint_epoch": loaded.epoch},
        "dataset": record.dataset,
        "search": record.search, "train_params": record.train_params, "engine_config": record.engine_config,
        "checkpoint": {"epoch": loaded.epoch, "sha256": loaded.sha256, "layout": loaded.layout},
        "code_version": record.search.get("code_version"), "exported_by": {"a4nn_commons": __version__,
                                                                          "torch": torch.__version__},
        "publication_doi": dois[-1] if dois else None, "publications": record.publications,
        "source": record.source,
    }


def export_network(loaded: LoadedNetwork, fmt: str, out: Path | str) -> tuple[Path, Path]:
    """Write the deployable file and its model card; returns both paths."""
    if fmt not in FORMATS:
        raise A4nnError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    out = Path(out)
    if not out.parent.is_dir():
        raise A4nnError(f"folder {out.parent} does not exist")
    (export_torchscript if fmt == "torchscript" else export_onnx)(loaded, out)
    card = card_path(out)
    card.write_text(json.dumps(model_card(loaded, fmt, out), indent=2, default=str) + "\n")
    return out, card
