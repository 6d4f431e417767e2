"""``kernel.KernelSurface`` is what plugins get of the running kernel: the real ``Tessera``
has all of it, and the built-in plugins and the admin UI use nothing else of it."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import httpx

from kernel import KernelSurface
from kernel.config import Settings
from kernel.runtime import Tessera
from tests.imports import REPO, plugin_code_files

#: Set by ``Tessera.start()``, so absent from a kernel that is only built.
AFTER_START = {"db", "bus", "catalog", "event_retention"}
#: A command that builds its own kernel (``Tessera.build``, as ``tessera worker`` does)
#: also starts and stops it; no hook ever does.
OWN_KERNEL = {"start", "stop"}


def surface_members() -> set[str]:
    declared = set(KernelSurface.__annotations__)
    methods = {
        name
        for name, value in vars(KernelSurface).items()
        if inspect.isfunction(value) and not name.startswith("_")
    }
    return declared | methods


def kernel_attributes_used(path: Path) -> set[tuple[str, int]]:
    """``(attribute, line)`` for each ``tessera.<attribute>`` and ``<x>.tessera.<attribute>``
    in the file."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if not isinstance(node, ast.Attribute):
            continue
        owner = node.value
        if (isinstance(owner, ast.Name) and owner.id == "tessera") or (
            isinstance(owner, ast.Attribute) and owner.attr == "tessera"
        ):
            found.add((node.attr, node.lineno))
    return found


def outside_the_surface(path: Path) -> set[str]:
    allowed = surface_members() | OWN_KERNEL
    where = path.relative_to(REPO) if path.is_relative_to(REPO) else path.name
    return {
        f"{where}:{line}: tessera.{name}"
        for name, line in kernel_attributes_used(path)
        if name not in allowed
    }


def test_the_surface_lists_what_the_docs_promise() -> None:
    assert surface_members() >= {
        "settings",
        "plugins",
        "state",
        "field_types",
        "operators",
        "workflow_actions",
        "db",
        "bus",
        "catalog",
        "schema",
        "records",
        "projects",
        "describe_plugins",
    }


def test_a_built_tessera_has_every_member_but_those_start_sets() -> None:
    tessera = Tessera.build(Settings())
    missing = {name for name in surface_members() if not hasattr(tessera, name)}
    assert missing == AFTER_START


async def test_a_started_tessera_satisfies_the_surface(client: httpx.AsyncClient) -> None:
    tessera = client.app.state.tessera  # type: ignore[attr-defined]
    assert {name for name in surface_members() if not hasattr(tessera, name)} == set()
    assert isinstance(tessera, KernelSurface)


def test_built_in_plugins_and_the_admin_use_only_the_surface() -> None:
    assert {use for path in plugin_code_files() for use in outside_the_surface(path)} == set()


def test_the_check_sees_a_member_outside_the_surface(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "def hook(tessera):\n"
        "    tessera.settings\n"
        "    tessera.authenticator.principal\n"
        "    self.tessera.keys.evict()\n"
        "    host.tessera.db.pool\n"
    )
    assert outside_the_surface(sample) == {
        "sample.py:3: tessera.authenticator",
        "sample.py:4: tessera.keys",
    }
