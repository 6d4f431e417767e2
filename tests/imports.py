"""What a Python file imports, read from its syntax tree, and which files are plugin code
(for the architecture tests)."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
#: Code written against the kernel's public surface only: the built-in plugins, the admin
#: UI and the documented examples.
PLUGIN_CODE = ("plugins", "admin", "docs/examples")


def plugin_code_files() -> list[Path]:
    """Every Python file of :data:`PLUGIN_CODE`, in a stable order."""
    return [path for folder in PLUGIN_CODE for path in sorted((REPO / folder).rglob("*.py"))]


def imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports absolutely (``from a.b import c`` names ``a.b``;
    relative imports are left out)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found
