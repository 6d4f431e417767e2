"""The ``WorkflowAction`` base class: one step a no-code workflow can run."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

from pydantic import BaseModel


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

    async def check(self, tessera: Any, project_id: str) -> None:
        """Check the step against project ``project_id`` when the workflow is saved (that
        what its options name exists there); raise ``ValidationFailed`` whose ``field`` is
        the option (``webhook_id``) to refuse the workflow with a 422. The default accepts
        any step whose options validated."""

    @abstractmethod
    async def run(self, context: Any) -> dict[str, Any]:
        """Carry out the step; ``context`` holds the triggering event, the run so far and the
        kernel services. Returns a JSON-able summary recorded in the run log; raises to fail
        the run."""
