"""The search as a library: start, resume and summarize an NSGA-Net search with the prediction engine.

``a4nn-commons search`` is a thin shell over this module (it parses options into a
:class:`SearchSpec` and prints what :class:`SearchObserver` hooks report), and so are
the benchmarks. Everything a search needs to be recorded and resumable lives here:
presets, name-collision checks, resume resolution, the evaluator choice (in process
or on Ray), the search status on Ctrl-C or failure, and the final summary.

Example::

    from a4nn.search.run import SearchSpec, start, resume, summarize

    result = start(SearchSpec(preset="quick", beam="high", engine="a4nn", name="demo"), "sqlite:///a4nn.db")
    print(result.summary.epochs_saved, [row["id"] for row in result.summary.front])
    resume("demo", "sqlite:///a4nn.db", {"workers": 2})   # after a Ctrl-C or a kill -9

Reuse: ``start``/``resume`` take a ``driver`` (what trains, given a prepared
:class:`SearchContext`; default the NSGA-II loop :func:`nsga_driver`), a ``nas`` label
and an ``evaluator`` factory, so a caller that trains given genomes (refining recorded
networks, say) gets the same recording, status handling and resume.
"""
from __future__ import annotations

import pickle
import socket
import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Callable, Mapping

from a4nn.errors import A4nnError
from a4nn.lineage.database import Database
from a4nn.lineage.queries import SearchSummary, find_search, resume_population, search_id_by_name, search_summary
from a4nn.lineage.recorder import Recorder
from a4nn.lineage.status import SearchStatus
from a4nn.search.nsga import STATE_FILE  # the NSGA-II state in the run folder
from a4nn.search.recipes import DEFAULT_RECIPE, RecipeError, get_recipe
from a4nn.search.presets import (DEFAULT_ENGINE, DEFAULT_LR, DEFAULT_PRESET, ENGINES, PRESET_KEYS, PRESETS,
                                 RESUME_OVERRIDES, STANDALONE)

#: the ``searches.nas`` label of an NSGA-Net macro search started here
NAS = "nsga-net-macro"


# -------------------------------------------------------------- errors
class SpecError(A4nnError, ValueError):
    """Settings that cannot make a search (unknown preset or engine, sizes below the minimum)."""


class SearchExistsError(A4nnError):
    """A search of that name exists already (``search_id`` says which)."""

    def __init__(self, name: str, search_id: int):
        super().__init__(f"a search named {name!r} exists (id {search_id})")
        self.name, self.search_id = name, search_id


class RunFolderInUseError(A4nnError):
    """The run folder already holds another search's NSGA-II state."""

    def __init__(self, folder: Path):
        super().__init__(f"{folder} already holds the state of another search")
        self.folder = folder


class NotFoundError(A4nnError):
    """No search with that id or name."""

    def __init__(self, search: int | str):
        super().__init__(f"no search with id or name {str(search)!r}")
        self.search = search


class NotResumableError(A4nnError):
    """The search was not started by this library (an import, another NAS)."""

    def __init__(self, search_id: int, name: str):
        super().__init__(f"search {search_id} ({name}) was not started by 'a4nn-commons search'")
        self.search_id, self.name = search_id, name


class SearchInterrupted(KeyboardInterrupt):
    """Ctrl-C during a search: it is marked ``interrupted`` and ``search_id`` can be resumed."""

    def __init__(self, search_id: int, name: str):
        super().__init__(search_id)
        self.search_id, self.name = search_id, name


# ---------------------------------------------------------------- spec
@dataclass
class SearchSpec:
    """Everything that configures a new search (the options of ``a4nn-commons search``).

    ``None`` for a preset key (``pop``, ``epochs``, ...) means "the preset's value".
    ``run_dir`` is the parent of the search's own run folder; ``cache_dir`` is where
    simulated data sets are cached (``None``: the loaders' default). Neither is part of
    what is searched, and ``cache_dir`` is not stored.
    """

    preset: str = DEFAULT_PRESET
    dataset: str = "xfel-sim"
    beam: str | None = None
    pop: int | None = None
    offspring: int | None = None
    generations: int | None = None
    epochs: int | None = None
    channels: int | None = None
    image_size: int | None = None
    n_images: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    r: float | None = None
    prior_curves: int | None = None
    error_target: float | None = None  # a4nn engine: mean expected fitness error allowed (points)
    precise_bn: bool = True
    recipe: str = DEFAULT_RECIPE    # a4nn.search.recipes: operators, duplicates, training choices
    engine: str = DEFAULT_ENGINE
    workers: int = 1
    ray_address: str | None = None
    overlap: bool = False
    device: str = "auto"
    seed: int = 0
    checkpoints: str = "epoch"
    name: str | None = None
    run_dir: Path = Path("runs")
    cache_dir: Path | None = None

    def options(self) -> dict[str, Any]:
        """The stored search configuration (``searches.config``): the preset, overridden by every set field."""
        if self.preset not in PRESETS:
            raise SpecError(f"unknown preset {self.preset!r}; use one of {', '.join(sorted(PRESETS))}")
        if self.engine not in ENGINES:
            raise SpecError(f"unknown engine {self.engine!r}; use one of {', '.join(ENGINES)}")
        try:
            recipe = get_recipe(self.recipe)
        except RecipeError as exc:
            raise SpecError(str(exc)) from None
        options = dict(PRESETS[self.preset])
        if recipe.batch_size is not None:
            options["batch_size"] = recipe.batch_size  # an explicit --batch-size still wins below
        for key in PRESET_KEYS:
            if getattr(self, key) is not None:
                options[key] = getattr(self, key)
        options.update({key: getattr(self, key) for key in ("dataset", "seed", "preset", "device", "checkpoints",
                                                             "workers", "ray_address", "overlap", "precise_bn")})
        options["engine"] = self.engine
        options["recipe"] = recipe.name
        options["recipe_settings"] = recipe.to_dict()
        options["precise_bn"] = bool(self.precise_bn and recipe.precise_bn)
        options.setdefault("lr", DEFAULT_LR)
        if options["pop"] < 2 or options["offspring"] < 1 or options["generations"] < 1 or options["epochs"] < 1:
            raise SpecError(f"need pop >= 2, offspring >= 1, generations >= 1 and epochs >= 1 (got pop "
                            f"{options['pop']}, offspring {options['offspring']}, generations "
                            f"{options['generations']}, epochs {options['epochs']})")
        return options

    def default_name(self, options: Mapping[str, Any]) -> str:
        """``nsga-<dataset>-<beam>-<engine>-s<seed>-<time>`` where no name is given."""
        return (f"nsga-{Path(options['dataset']).name}-{options['beam']}-{options['engine']}-s{options['seed']}"
                f"-{time.strftime('%Y%m%dT%H%M%S')}")

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))


# ------------------------------------------------------- what callers see
class SearchObserver:
    """Hooks a caller (the CLI's progress bars) gets; every method may be left as is."""

    def resuming(self, search_id: int, name: str) -> None:
        """A resume was resolved, before the data set is loaded."""

    def started(self, context: "SearchContext") -> None:
        """The search row exists and training is about to begin (``context.resumed`` tells which case)."""

    def generation(self, generation: int, results: list) -> None:
        """A generation was trained and told to the algorithm (``results``: its CandidateResults)."""

    def close(self) -> None:
        """Training ended (finished, interrupted or failed)."""


@dataclass
class SearchContext:
    """A prepared search: its row, data, engines and evaluator; what a driver trains with."""

    database: Database
    recorder: Recorder
    search_id: int
    name: str
    options: dict[str, Any]
    data: Any                       # the ImageSplit
    engine_factory: Any             # a4nn.search.engine_factory.EngineFactory
    evaluator: Any                  # an a4nn.search.evaluation.Evaluator
    run_dir: Path                   # this search's own folder (checkpoints, NSGA-II state)
    resumed: bool
    observer: SearchObserver
    search_class: Any = None        # the NSGA loop class matching the evaluator (Ray overlap or in process)
    generations_done: int = 0       # generations finished before this call (a resume)


@dataclass
class SearchResult:
    """What :func:`start` and :func:`resume` return."""

    search_id: int
    name: str
    options: dict[str, Any]
    summary: SearchSummary
    resumed: bool = False
    already_complete: bool = False
    outcome: Any = None             # what the driver returned (the NSGA loop: this call's CandidateResults)


Driver = Callable[[SearchContext], Any]
EvaluatorFactory = Callable[..., tuple[Any, Any]]


# ------------------------------------------------------------- helpers
def open_database(db: Database | str | None) -> Database:
    """An open database for a writer: a URL is created or upgraded to the code's schema first."""
    if isinstance(db, Database):
        return db
    from a4nn.lineage.database import resolve_url
    from a4nn.migrations.runner import upgrade_database

    url = resolve_url(db)
    upgrade_database(url)
    return Database.open(url)


def load_data(options: Mapping[str, Any], *, cache_dir: Path | str | None = None, progress: bool = False):
    """The search's data set as an ImageSplit (simulated data are cached in ``cache_dir``)."""
    from a4nn.search.data import load_dataset
    from a4nn.search.data.loaders import raw_split

    split = load_dataset(options["dataset"], beam=options["beam"], n_images=options["n_images"],
                         image_size=options["image_size"], seed=options["seed"], progress=progress,
                         cache_dir=cache_dir)
    return raw_split(split) if get_recipe(options.get("recipe")).input_transform == "raw" else split


def train_settings(options: Mapping[str, Any]):
    """The TrainSettings of a search's networks from its stored configuration."""
    from a4nn.search.evaluation import TrainSettings

    return TrainSettings(epochs=options["epochs"], batch_size=options["batch_size"], lr=options.get("lr", DEFAULT_LR),
                         channels=options["channels"], n_nodes=options["n_nodes"], seed=options["seed"],
                         device=options["device"], checkpoints=options["checkpoints"],
                         # a search stored before the option existed trained without it
                         precise_bn=options.get("precise_bn", False),
                         shuffle=get_recipe(options.get("recipe")).shuffle,
                         stopped_fitness=get_recipe(options.get("recipe")).stopped_fitness,
                         init_per_network=not get_recipe(options.get("recipe")).reuse_trained)


def choose_evaluator(options: Mapping[str, Any], recorder: Recorder, engine_factory: Any, data: Any, run_dir: Path,
                     progress: bool = False) -> tuple[Any, Any]:
    """(evaluator, NSGA loop class): Ray when ``workers > 1`` or a Ray address is set, else in process."""
    from a4nn.search.evaluation import SerialEvaluator
    from a4nn.search.nsga import NSGANetSearch

    settings = train_settings(options)
    if (options.get("workers") or 1) > 1 or options.get("ray_address"):
        try:
            from a4nn.search.distributed import RayEvaluator
            from a4nn.search.ray_overlap import make_search
        except ImportError as exc:  # pragma: no cover - Ray is a declared dependency
            raise A4nnError(f"parallel training needs Ray and a4nn.search.distributed: {exc}") from exc
        evaluator = RayEvaluator(recorder, engine_factory, data, settings, workers=options.get("workers") or None,
                                 address=options.get("ray_address"), overlap=bool(options.get("overlap")),
                                 run_dir=run_dir, progress=progress)
        return evaluator, make_search
    return SerialEvaluator(recorder, engine_factory, data, settings, run_dir, progress=progress), NSGANetSearch


def make_engine_factory(options: Mapping[str, Any], data: Any):
    """One prediction engine per network, all sharing the search's population prior."""
    from a4nn.search.engine_factory import DEFAULT_PRIOR_CURVES, EngineFactory, chance_band

    return EngineFactory(options["engine"], options["epochs"], options["r"], chance_band(data),
                         prior_curves=options.get("prior_curves") or DEFAULT_PRIOR_CURVES, n_val=len(data.val_y),
                         error_target=options.get("error_target"))


def generations_done(run_dir: Path) -> int:
    """Generations a search's saved NSGA-II state has finished (0 without one); for progress only."""
    path = Path(run_dir) / STATE_FILE
    if not path.exists():
        return 0
    try:
        with open(path, "rb") as handle:
            return int(pickle.load(handle).generation)
    except Exception:  # noqa: BLE001 - only for progress; the search itself reports real errors
        return 0


def nsga_driver(context: SearchContext) -> Any:
    """The default driver: NSGA-II ask/tell over the search's generations (resumes from the saved state)."""
    from a4nn.search.nsga import NSGANetSearch, SearchConfig

    options, data = context.options, context.data
    config = SearchConfig(options["pop"], options["offspring"], options["generations"], options["n_nodes"],
                          options["channels"], (1, data.in_channels, *data.image_size), data.n_classes,
                          options["seed"], recipe=get_recipe(options.get("recipe")).name)
    search_class = context.search_class or NSGANetSearch
    return search_class(context.recorder, context.search_id, config, context.evaluator, context.run_dir,
                        context.observer.generation).run()


def _register(recorder: Recorder, options: Mapping[str, Any], data: Any, engine_factory: Any) -> tuple[int, int | None]:
    dataset_id = recorder.register_dataset(data.name, data.kind, data.attributes)
    engine_config_id = None
    if options["engine"] != STANDALONE:
        engine_config_id = recorder.register_engine_config(**engine_factory().settings())
    return dataset_id, engine_config_id


def _execute(database: Database, recorder: Recorder, search_id: int, name: str, options: dict[str, Any], data: Any,
             engine_factory: Any, run_dir: Path, resumed: bool, observer: SearchObserver, driver: Driver | None,
             evaluator: EvaluatorFactory | None, progress: bool) -> SearchResult:
    make = evaluator or choose_evaluator
    chosen, search_class = make(options, recorder, engine_factory, data, run_dir, progress)
    context = SearchContext(database, recorder, search_id, name, options, data, engine_factory, chosen, run_dir,
                            resumed, observer, search_class, generations_done(run_dir))
    observer.started(context)
    try:
        outcome = (driver or nsga_driver)(context)
    except KeyboardInterrupt as exc:
        recorder.set_search_status(search_id, SearchStatus.INTERRUPTED)
        raise SearchInterrupted(search_id, name) from exc
    except BaseException:
        recorder.set_search_status(search_id, SearchStatus.FAILED)
        raise
    finally:
        observer.close()
        chosen.close()
    recorder.finish_search(search_id)
    return SearchResult(search_id, name, options, summarize(database, search_id), resumed=resumed, outcome=outcome)


# ---------------------------------------------------------------- API
def start(spec: SearchSpec, db: Database | str | None = None, *, observer: SearchObserver | None = None,
          progress: bool = False, data: Any = None, driver: Driver | None = None,
          evaluator: EvaluatorFactory | None = None, nas: str = NAS) -> SearchResult:
    """Start a new search, train it to the end and return its summary.

    ``db``: an open :class:`Database` or a URL (created/upgraded first). ``data``: an
    ImageSplit to use instead of loading ``spec.dataset``. ``driver``/``evaluator``/``nas``:
    see the module docstring. Raises :class:`SpecError`, :class:`SearchExistsError`,
    :class:`RunFolderInUseError`; Ctrl-C raises :class:`SearchInterrupted` after marking
    the search ``interrupted``; any other exception marks it ``failed``.
    """
    from a4nn import __version__

    observer = observer or SearchObserver()
    options = spec.options()
    database = open_database(db)
    recorder = Recorder(database)
    name = spec.name or spec.default_name(options)
    folder = (Path(spec.run_dir) / name).resolve()
    if (folder / STATE_FILE).exists():
        raise RunFolderInUseError(folder)
    existing = search_id_by_name(database, name)
    if existing is not None:
        raise SearchExistsError(name, existing)
    data = data if data is not None else load_data(options, cache_dir=spec.cache_dir, progress=progress)
    engine_factory = make_engine_factory(options, data)
    dataset_id, engine_config_id = _register(recorder, options, data, engine_factory)
    options["run_dir"] = str(folder)
    options["state_path"] = str(folder / STATE_FILE)
    search_id = recorder.start_search(name, nas, dataset_id, engine_config_id, options, seed=options["seed"],
                                      code_version=__version__, host=socket.gethostname())
    return _execute(database, recorder, search_id, name, options, data, engine_factory, folder, False, observer,
                    driver, evaluator, progress)


def resolve_resume(database: Database, search: int | str,
                   nas: str | tuple[str, ...] = NAS) -> tuple[int, str, dict, str]:
    """(id, name, stored options, status) of a search that can be resumed; raises otherwise."""
    from a4nn.lineage.models import Search

    search_id = find_search(database, search)
    if search_id is None:
        raise NotFoundError(search)
    allowed = (nas,) if isinstance(nas, str) else tuple(nas)
    with database.session() as session:
        row = session.get(Search, search_id)
        if row.nas not in allowed or "run_dir" not in (row.config or {}):
            raise NotResumableError(search_id, row.name)
        return search_id, row.name, dict(row.config), row.status


def resume(search: int | str, db: Database | str | None = None, overrides: Mapping[str, Any] | None = None, *,
           observer: SearchObserver | None = None, progress: bool = False, data: Any = None,
           cache_dir: Path | str | None = None, driver: Driver | None = None,
           evaluator: EvaluatorFactory | None = None, nas: str | tuple[str, ...] = NAS) -> SearchResult:
    """Continue a search (id or name) after Ctrl-C or a kill; finished networks are read back, not retrained.

    ``overrides`` may change where and how it trains (``workers``, ``ray_address``,
    ``device``, ``overlap``), never what it searches; other keys raise :class:`SpecError`.
    A search that is already complete is only summarized (``already_complete``).
    """
    observer = observer or SearchObserver()
    database = open_database(db)
    recorder = Recorder(database)
    search_id, name, options, status = resolve_resume(database, search, nas)
    unknown = sorted(set(overrides or {}) - set(RESUME_OVERRIDES))
    if unknown:
        raise SpecError(f"cannot change {', '.join(unknown)} on resume; only {', '.join(RESUME_OVERRIDES)} may change")
    options.update(overrides or {})
    if status == SearchStatus.COMPLETED:
        return SearchResult(search_id, name, options, summarize(database, search_id), resumed=True,
                            already_complete=True)
    observer.resuming(search_id, name)
    data = data if data is not None else load_data(options, cache_dir=cache_dir, progress=progress)
    engine_factory = make_engine_factory(options, data)
    _register(recorder, options, data, engine_factory)
    recorder.set_search_status(search_id, SearchStatus.RUNNING)
    # the population prior learns from the complete curves recorded before the interruption
    engine_factory.teach(resume_population(database, search_id, options["epochs"]))
    return _execute(database, recorder, search_id, name, options, data, engine_factory, Path(options["run_dir"]),
                    True, observer, driver, evaluator, progress)


def summarize(db: Database | str, search: int | str) -> SearchSummary:
    """Epochs trained against the budget, the share saved and the final Pareto front (fitness seen vs MFLOPs)."""
    database = db if isinstance(db, Database) else Database.open(db)
    return search_summary(database, search)
