"""The ``RuleType`` base class: a no-code validation rule on a field's value."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import BaseModel


@dataclass(frozen=True, slots=True)
class RuleViolation:
    """Why a value breaks a rule: a stable ``code`` and a message for people."""

    code: str
    message: str


class RuleType(ABC):
    """Base class of validation rule types (``min_length``, ``pattern``, ``required_if`` ...).

    Class attributes: ``name`` (unique across plugins), ``label``, ``Options`` (pydantic
    model validated when the rule is attached to a field) and ``field_types`` (names of the
    field types the rule applies to; empty means every type). An instance is bound to one
    rule's validated options.
    """

    name: ClassVar[str]
    label: ClassVar[str]
    Options: ClassVar[type[BaseModel]]
    field_types: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, options: BaseModel) -> None:
        self.options = options

    @abstractmethod
    def check(self, value: Any, record: dict[str, Any]) -> RuleViolation | None:
        """Check ``value`` (already coerced; may be ``None``) within the whole candidate
        ``record``. Return ``None`` when it passes. Must be pure and deterministic."""
