"""Real entry points for throwaway plugins: a distribution written to a temporary folder.

``importlib.metadata`` (and so stevedore) discovers distributions on ``sys.path``; a
``<name>-<version>.dist-info`` folder with an ``entry_points.txt`` is all it takes. Tests
use this to load plugins exactly as installed ones are loaded, including broken ones.
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path


class FakeDistributions:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.modules: list[str] = []

    def add(
        self,
        distribution: str,
        entry_points: dict[str, str],
        modules: dict[str, str],
        version: str = "1.0",
    ) -> None:
        """Write ``modules`` (name → source) and a distribution declaring ``entry_points``
        (plugin name → module) in the group ``tessera.plugins``."""
        info = self.root / f"{distribution.replace('-', '_')}-{version}.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {distribution}\nVersion: {version}\n"
        )
        lines = ["[tessera.plugins]"] + [
            f"{name} = {target}" for name, target in entry_points.items()
        ]
        (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
        for module, source in modules.items():
            (self.root / f"{module}.py").write_text(textwrap.dedent(source))
            self.modules.append(module)

    def activate(self) -> None:
        sys.path.insert(0, str(self.root))

    def deactivate(self) -> None:
        if str(self.root) in sys.path:
            sys.path.remove(str(self.root))
        for module in self.modules:
            sys.modules.pop(module, None)
