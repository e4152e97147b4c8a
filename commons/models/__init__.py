"""Recorded networks back to life: load, re-evaluate, export for deployment.

``load_network(source, model_id, epoch=None)`` rebuilds a network from its recorded
genome and decoder settings and loads a checkpoint whose sha256 was checked first;
:mod:`~a4nn.commons.models.evaluate` measures it on a data set and records the result,
:mod:`~a4nn.commons.models.export` writes TorchScript or ONNX files with a model card.
"""
from a4nn.commons.models.layout import LayoutError, from_nsga_net, is_nsga_net_layout, to_nsga_net
from a4nn.commons.models.loader import LoadedNetwork, load_network, pick_checkpoint
from a4nn.commons.models.record import CheckpointError, CheckpointRef, ModelNotFoundError, NetworkRecord
from a4nn.commons.models.sources import BundleSource, DatabaseSource, ServiceSource, open_source

__all__ = ["LayoutError", "from_nsga_net", "is_nsga_net_layout", "to_nsga_net", "LoadedNetwork", "load_network",
           "pick_checkpoint", "CheckpointError", "CheckpointRef", "ModelNotFoundError", "NetworkRecord",
           "BundleSource", "DatabaseSource", "ServiceSource", "open_source"]
