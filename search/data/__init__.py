"""Data sets for the search: the XFEL diffraction simulator (embedded default) and loaders.

``load_dataset("xfel-sim", beam="high")`` simulates (once, then cached) and loads the
embedded default; ``load_dataset(PATH)`` reads real XFEL TIFF folders, NPZ or HDF5 files.
Every loader returns an :class:`ImageSplit` whose ``attributes`` go to the lineage
database's ``datasets`` table.
"""
from a4nn.search.data.loaders import (ImageSplit, checksum, default_cache_dir, load_arrays, load_dataset, load_hdf5,
                                      load_npz, load_simulated, load_xfel_tiff, split_80_20)
from a4nn.search.data.molecule import BUILTIN_PDB, CONFORMATIONS, Molecule, builtin_molecule, read_pdb
from a4nn.search.data.simulator import BEAMS, LABELS, Detector, SimulationSpec, simulate_xfel, simulation_summary

__all__ = ["ImageSplit", "checksum", "default_cache_dir", "load_arrays", "load_dataset", "load_hdf5", "load_npz",
           "load_simulated", "load_xfel_tiff", "split_80_20", "BUILTIN_PDB", "CONFORMATIONS", "Molecule",
           "builtin_molecule", "read_pdb", "BEAMS", "LABELS", "Detector", "SimulationSpec", "simulate_xfel",
           "simulation_summary"]
