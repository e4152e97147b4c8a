"""Data sets for the search: the XFEL diffraction simulator (embedded default) and loaders."""
from a4nn.search.data.loaders import ImageSplit, load_arrays, load_dataset, load_xfel_tiff
from a4nn.search.data.simulator import BEAMS, SimulationSpec, simulate_xfel

__all__ = ["ImageSplit", "load_arrays", "load_dataset", "load_xfel_tiff", "BEAMS", "SimulationSpec", "simulate_xfel"]
