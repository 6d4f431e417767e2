"""Everything Tessera's own code imports comes with ``pip install tessera``: a package that
only the dev extras bring would pass every test here and break ``make run`` elsewhere.
The one exception is ``kernel.testing`` (contract tests for plugin authors), which nothing
else imports and whose own needs come with ``pip install 'tessera[testing]'``."""

from __future__ import annotations

import sys
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.imports import imported_modules

REPO = Path(__file__).resolve().parent.parent
SHIPPED = ("kernel", "plugins", "admin")
TESTING = REPO / "kernel" / "testing"


def runtime_distributions(name: str, extras: frozenset[str] = frozenset()) -> set[str]:
    """``name`` and every distribution its install with ``extras`` pulls in (extras it asks
    for of its dependencies included)."""
    seen: set[tuple[str, frozenset[str]]] = set()
    pending = [(name, extras)]
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


def third_party_imports(folder: Path, leave_out: Path | None = None) -> set[str]:
    """Top-level names of the absolute imports under ``folder`` (but not ``leave_out``)
    that are not the standard library or Tessera itself."""
    found = {
        module.split(".")[0]
        for path in folder.rglob("*.py")
        if leave_out is None or not path.is_relative_to(leave_out)
        for module in imported_modules(path)
    }
    return found - set(sys.stdlib_module_names) - set(SHIPPED) - {"__future__"}


def not_provided(imports: set[str], installed: set[str]) -> set[str]:
    providers = metadata.packages_distributions()
    return {
        module
        for module in imports
        if not any(canonicalize_name(dist) in installed for dist in providers.get(module, []))
    }


def test_every_import_of_the_shipped_code_is_a_runtime_dependency() -> None:
    imports = set().union(*(third_party_imports(REPO / folder, TESTING) for folder in SHIPPED))
    assert not_provided(imports, runtime_distributions("tessera")) == set()


def test_the_contract_tests_need_only_the_testing_extra() -> None:
    installed = runtime_distributions("tessera", frozenset({"testing"}))
    assert "pytest" in not_provided(third_party_imports(TESTING), runtime_distributions("tessera"))
    assert not_provided(third_party_imports(TESTING), installed) == set()


def test_nothing_outside_kernel_testing_imports_it() -> None:
    importers = {
        str(path.relative_to(REPO))
        for folder in SHIPPED
        for path in (REPO / folder).rglob("*.py")
        if not path.is_relative_to(TESTING)
        and any(m.startswith("kernel.testing") for m in imported_modules(path))
    }
    assert importers == set()


def test_dev_only_packages_are_outside_the_runtime_closure() -> None:
    installed = runtime_distributions("tessera")
    assert "fastapi" in installed and "uvicorn" in installed
    assert "pytest" not in installed and "ruff" not in installed
