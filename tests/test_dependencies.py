"""Everything Tessera's own code imports comes with ``pip install tessera``: a package that
only the dev extras bring would pass every test here and break ``make run`` elsewhere."""

from __future__ import annotations

import sys
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.imports import imported_modules

REPO = Path(__file__).resolve().parent.parent
SHIPPED = ("kernel", "plugins", "admin")


def runtime_distributions(name: str) -> set[str]:
    """``name`` and every distribution its plain install pulls in (extras it asks for of
    its dependencies included, its own extras not)."""
    seen: set[tuple[str, frozenset[str]]] = set()
    pending = [(name, frozenset[str]())]
    while pending:
        dist, extras = pending.pop()
        key = (canonicalize_name(dist), extras)
        if key in seen:
            continue
        seen.add(key)
        try:
            requirements = metadata.requires(dist) or []
        except metadata.PackageNotFoundError:
            continue  # a requirement for another platform, never installed here
        for raw in requirements:
            requirement = Requirement(raw)
            marker = requirement.marker
            if marker is not None and not any(
                marker.evaluate({"extra": extra}) for extra in (extras or {""})
            ):
                continue
            pending.append((requirement.name, frozenset(requirement.extras)))
    return {dist for dist, _ in seen}


def third_party_imports(folder: Path) -> set[str]:
    """Top-level names of the absolute imports under ``folder`` that are not the standard
    library or Tessera itself."""
    found = {
        module.split(".")[0] for path in folder.rglob("*.py") for module in imported_modules(path)
    }
    return found - set(sys.stdlib_module_names) - set(SHIPPED) - {"__future__"}


def test_every_import_of_the_shipped_code_is_a_runtime_dependency() -> None:
    installed = runtime_distributions("tessera")
    providers = metadata.packages_distributions()
    imports = set().union(*(third_party_imports(REPO / folder) for folder in SHIPPED))
    missing = {
        module
        for module in imports
        if not any(canonicalize_name(dist) in installed for dist in providers.get(module, []))
    }
    assert missing == set()


def test_dev_only_packages_are_outside_the_runtime_closure() -> None:
    installed = runtime_distributions("tessera")
    assert "fastapi" in installed and "uvicorn" in installed
    assert "pytest" not in installed and "ruff" not in installed
