"""The ``BackupPart`` base class: one plugin's share of a project archive."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from kernel.surface import KernelSurface


class BackupPart(ABC):
    """Base class of backup parts.

    ``name`` is unique and names the part's folder in the archive; ``order`` sorts parts on
    restore (catalog before data before files). The kernel builds each as
    ``Part(tessera)``. ``writer`` and ``reader`` are the kernel's archive objects, with
    ``write_json``/``write_rows``/``read_json``/``read_rows`` scoped to the part's folder.
    """

    name: ClassVar[str]
    order: ClassVar[int] = 100

    def __init__(self, tessera: KernelSurface) -> None:
        self.tessera = tessera

    @abstractmethod
    async def export(self, project_id: str, writer: Any) -> None:
        """Write this part of ``project_id`` into the archive."""

    @abstractmethod
    async def restore(self, project_id: str, reader: Any) -> None:
        """Recreate this part in the new project ``project_id`` from the archive."""
