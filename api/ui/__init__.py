"""The web explorer and the offline API docs, served from files inside the package.

Everything a browser loads comes from ``static/`` (plain HTML, CSS and JavaScript; the
vendored Swagger UI keeps its licence beside it), so the pages work with no network and
need no build step at install time.
"""
from a4nn.api.ui.router import install

__all__ = ["install"]
