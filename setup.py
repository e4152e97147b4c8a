"""Maps the design card's root folders into the single ``a4nn.*`` import namespace.

The sub-systems live at the repository root (``lineage/``, ``engine/``, ...) as the
design fixes; shipping them as top-level packages would put names such as ``api`` or
``search`` into site-packages, so each folder becomes ``a4nn.<folder>`` instead.
Sub-packages are discovered, so a new folder inside a sub-system needs no edit here.
"""
from setuptools import find_packages, setup

NAMESPACE_ROOTS = {
    "a4nn": "a4nn",
    "a4nn.lineage": "lineage",
    "a4nn.migrations": "migrations",
    "a4nn.engine": "engine",
    "a4nn.search": "search",
    "a4nn.commons": "commons",
    "a4nn.api": "api",
}

packages: list[str] = []
for namespace, folder in NAMESPACE_ROOTS.items():
    packages.append(namespace)
    packages.extend(f"{namespace}.{sub}" for sub in find_packages(folder))

setup(packages=packages, package_dir=dict(NAMESPACE_ROOTS))
