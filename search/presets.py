"""Named search configurations and the engine names a search accepts: one place for both.

The CLI (``a4nn-commons search``), :mod:`a4nn.search.run` and the benchmarks read these,
so a preset or an engine name is written once.
"""
from __future__ import annotations

from typing import Any

PRESETS: dict[str, dict[str, Any]] = {
    # finishes on 2 CPU cores in a few minutes and still shows the engine at work: 20 epochs, because
    # under the cosine schedule the validation curves only settle in its last third (with fewer they were
    # still climbing at the end, so no rule could stop a network that learns); 24 px pays for them.
    # 5 generations (40 networks): the first networks train to the end to teach the engine's population
    # prior, a fixed cost that a small search amortizes badly (benchmarks/search_ab.py and its results)
    "quick": dict(pop=8, offspring=8, generations=5, epochs=20, image_size=24, n_images=600, channels=8,
                  batch_size=32, n_nodes=4, r=1.0, beam="low", prior_curves=6),
    # Table 2 of the A4NN paper: pop 10, offspring 10, 10 generations, 25 epochs, 4 nodes, C=24, 127x127 images
    "paper": dict(pop=10, offspring=10, generations=10, epochs=25, image_size=127, n_images=2000, channels=24,
                  batch_size=64, n_nodes=4, r=0.5, beam="low", prior_curves=10),
}
DEFAULT_PRESET = "quick"

#: prediction engines a search can use: ``a4nn`` (default), ``penguin`` (the published rule), ``none`` (standalone)
ENGINES: tuple[str, ...] = ("a4nn", "penguin", "none")
DEFAULT_ENGINE = "a4nn"
STANDALONE = "none"

#: preset keys a caller may override one by one (the rest of a search's settings are not in presets)
PRESET_KEYS = ("pop", "offspring", "generations", "epochs", "channels", "image_size", "n_images", "batch_size",
               "lr", "r", "beam", "prior_curves", "error_target")
#: options that may be changed when resuming (where and how to train, not what is searched)
RESUME_OVERRIDES = ("workers", "ray_address", "device", "overlap")
DEFAULT_LR = 0.025
