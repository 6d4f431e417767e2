"""Built-in plugins and the admin UI use only the kernel's public surface (docs/plugins.md),
so everything they do, a third-party plugin can do too. A new kernel module is internal
until it is added here and documented."""

from __future__ import annotations

from pathlib import Path

from tests.imports import REPO, imported_modules, plugin_code_files

#: docs/plugins.md, "What `tessera` gives your hooks": the modules a plugin may import.
PUBLIC = {
    "kernel",
    "kernel.runtime",
    "kernel.config",
    "kernel.expr",
    "kernel.events.reader",
    "kernel.events.bus",
    "kernel.db.schema",
    "kernel.db.migrate",
    "kernel.commands",
    "kernel.audit",
    "kernel.api.deps",
    "kernel.security.access",
    "kernel.api.responses",
    "kernel.testing",
    "kernel.api.project_openapi",
    "kernel.query",
}


def kernel_imports(path: Path) -> set[str]:
    """Every ``kernel`` module a file imports (``from kernel.x import y`` names ``kernel.x``)."""
    return {
        module
        for module in imported_modules(path)
        if module == "kernel" or module.startswith("kernel.")
    }


def test_plugins_and_admin_import_only_public_kernel_modules() -> None:
    private = {
        f"{path.relative_to(REPO)}: {module}"
        for path in plugin_code_files()
        for module in kernel_imports(path) - PUBLIC
    }
    assert private == set()


def test_the_check_sees_a_private_import(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "from kernel import hookimpl\nfrom kernel.catalog.model import ACTIONS\n"
        "import kernel.db.pool\nfrom . import sibling\n"
    )
    assert kernel_imports(sample) - PUBLIC == {"kernel.catalog.model", "kernel.db.pool"}
