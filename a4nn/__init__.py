"""a4nn-commons: cheap, reproducible and shareable neural architecture search."""
from importlib.metadata import PackageNotFoundError, version as _version

try:
    __version__ = _version("a4nn-commons")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"
