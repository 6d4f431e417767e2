"""The ``WorkflowAction`` base class: one step a no-code workflow can run."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel

from kernel.references import SchemaChange

if TYPE_CHECKING:
    from kernel.surface import KernelSurface

#: A name stored options refer to: ``(collection, None)`` or ``(collection, field)``.
NameRef = tuple[str, str | None]


class WorkflowAction(ABC):
    """Base class of workflow action types (send webhook, create record, set field ...).

    ``name`` is unique across plugins; ``label`` is shown in the workflow builder;
    ``Options`` is the pydantic model of the action's settings, validated when the workflow
    is saved (its JSON schema drives the builder form). An instance is bound to one step's
    validated options.
    """

    name: ClassVar[str]
    label: ClassVar[str]
    Options: ClassVar[type[BaseModel]]

    def __init__(self, options: BaseModel) -> None:
        self.options = options

    @classmethod
    def names(cls, options: dict[str, Any], trigger: str) -> list[NameRef]:
        """The collections and fields these stored (validated) ``options`` name; ``trigger``
        is the triggering collection's name. A workflow is listed as a dependent of a drop,
        purge or type change of any of them. The default: none."""
        return []

    @classmethod
    def renamed(cls, options: dict[str, Any], trigger: str, change: SchemaChange) -> dict[str, Any]:
        """``options`` with the rename ``change`` applied (``trigger`` is the triggering
        collection's name before it). Called inside the rename's transaction; the default
        returns ``options`` unchanged, so an action naming collections or fields in its
        options must override both this and :meth:`names`."""
        return options

    async def check(self, tessera: KernelSurface, project_id: str) -> None:
        """Check the step against project ``project_id`` when the workflow is saved (that
        what its options name exists there); raise ``ValidationFailed`` whose ``field`` is
        the option (``webhook_id``) to refuse the workflow with a 422. The default accepts
        any step whose options validated."""

    @abstractmethod
    async def run(self, context: Any) -> dict[str, Any]:
        """Carry out the step; ``context`` holds the triggering event, the run so far and the
        kernel services. Returns a JSON-able summary recorded in the run log; raises to fail
        the run."""
