"""``Command``: a ``tessera`` subcommand a plugin adds (``tessera worker``, ``tessera backup``)."""

from __future__ import annotations

import argparse
from abc import ABC, abstractmethod
from typing import ClassVar

from kernel.config import Settings


class Command(ABC):
    """Base class of CLI commands.

    ``name`` is the subcommand (unique; the kernel's own names are reserved) and ``help``
    its one-line description. The kernel builds the parser, calls :meth:`add_arguments`,
    and on use calls :meth:`run` with the parsed arguments and the deployment settings.
    Raise :class:`kernel.errors.TesseraError` (or ``ConfigError``/``PluginError``) for a
    one-line failure; return the exit code.
    """

    name: ClassVar[str]
    help: ClassVar[str]

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """Declare the command's options (none by default)."""

    @abstractmethod
    def run(self, args: argparse.Namespace, settings: Settings) -> int:
        """Do the work; the return value is the process exit code."""
