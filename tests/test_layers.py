"""The package layers point down only, and the genome encoding imports without torch.

Layers, lowest first (README "Layout"; issue 16):

    genome encoding + file formats -> lineage -> migrations -> engine -> search -> commons -> api -> cli

A module may import its own layer and any layer below it. Every import counts, the
ones inside functions too (a lazy import is still a dependency), so the check walks
each module's syntax tree rather than what one import happens to load.
"""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: folder at the repository root -> the import name it is installed as (setup.py's NAMESPACE_ROOTS)
FOLDERS = {"a4nn": "a4nn", "lineage": "a4nn.lineage", "migrations": "a4nn.migrations", "engine": "a4nn.engine",
           "search": "a4nn.search", "commons": "a4nn.commons", "api": "a4nn.api"}
#: module-name prefix -> layer (the longest matching prefix decides); lower numbers are lower layers
LAYERS = {
    "a4nn": 0,                              # version, errors, progress helpers
    "a4nn.search.encoding": 0,              # the genome encoding
    "a4nn.commons.random_nn_format": 0,     # the 6000-NN table codec (a file format)
    "a4nn.lineage": 1,
    "a4nn.migrations": 2,
    "a4nn.engine": 3,
    "a4nn.search": 4,
    "a4nn.commons": 5,
    "a4nn.api": 6,
    "a4nn.cli": 7,
}
LAYER_NAMES = {0: "encoding/formats", 1: "lineage", 2: "migrations", 3: "engine", 4: "search", 5: "commons",
               6: "api", 7: "cli"}


def layer(module: str) -> int:
    best = max((prefix for prefix in LAYERS if module == prefix or module.startswith(prefix + ".")), key=len)
    return LAYERS[best]


def modules() -> dict[str, Path]:
    """Every Python module of the package: import name -> file."""
    found = {}
    for folder, package in FOLDERS.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = path.relative_to(ROOT / folder).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join((package, *parts))] = path
    return found


def imports(module: str, path: Path) -> list[tuple[int, str]]:
    """(line, imported a4nn module) for every import statement in the file, lazy ones included."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.append((node.lineno, target))
            # "from a4nn.search import encoding" imports the submodule a4nn.search.encoding
            found += [(node.lineno, f"{target}.{alias.name}") for alias in node.names
                      if f"{target}.{alias.name}" in ALL]
    return [(line, name) for line, name in found if name == "a4nn" or name.startswith("a4nn.")]


ALL = modules()


def upward_imports() -> list[str]:
    problems = []
    for module, path in sorted(ALL.items()):
        own = layer(module)
        for line, target in imports(module, path):
            theirs = layer(target)
            if theirs > own:
                problems.append(f"{path.relative_to(ROOT)}:{line}: {module} ({LAYER_NAMES[own]}) imports "
                                f"{target} ({LAYER_NAMES[theirs]})")
    return problems


def test_the_walk_sees_every_layer() -> None:
    """A guard for the guard: the walk found modules of every layer and their imports."""
    assert {layer(m) for m in ALL} == set(LAYER_NAMES)
    assert ("a4nn.lineage.database", "a4nn.migrations.runner") not in {
        (m, t) for m in ALL for _, t in imports(m, ALL[m])}


def test_imports_point_down_only() -> None:
    problems = upward_imports()
    assert not problems, "imports that point up a layer:\n" + "\n".join(problems)


def test_the_check_catches_an_upward_import(tmp_path: Path) -> None:
    """The rule itself: a lineage module importing the search package is reported."""
    path = tmp_path / "bad.py"
    path.write_text("def f():\n    from a4nn.search.run import start\n    import a4nn.cli.main\n")
    found = imports("a4nn.lineage.bad", path)
    assert [t for _, t in found] == ["a4nn.search.run", "a4nn.cli.main"]
    assert all(layer(t) > layer("a4nn.lineage.bad") for _, t in found)
    assert layer("a4nn.search.encoding") < layer("a4nn.lineage") < layer("a4nn.search.nsga")


def test_nothing_imports_the_cli() -> None:
    users = [f"{module} imports {target}" for module, path in ALL.items() if not module.startswith("a4nn.cli")
             for _, target in imports(module, path) if target.startswith("a4nn.cli")]
    assert not users


def test_the_genome_encoding_imports_without_torch() -> None:
    code = ("import sys\nimport a4nn.search.encoding as e\n"
            "e.describe_network([1] * 21)\n"
            "assert 'torch' not in sys.modules, sorted(m for m in sys.modules if m.startswith('torch'))[:5]\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("module", ["a4nn.lineage.queries", "a4nn.commons.analyzer.architecture"])
def test_readers_of_genomes_do_not_load_torch(module: str) -> None:
    result = subprocess.run([sys.executable, "-c", f"import sys, {module}\nassert 'torch' not in sys.modules"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_the_models_schema_revision_is_the_migrations_head() -> None:
    """lineage states the revision its models map (it may not import migrations); the scripts must end there."""
    from a4nn.lineage.database import SCHEMA_REVISION
    from a4nn.migrations.runner import head_revision

    assert head_revision() == SCHEMA_REVISION
