"""``Principal``: who a request acts for, and what that allows before row rules apply."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

SCOPES = (
    "records:read",
    "records:write",
    "schema:write",
    "files:read",
    "files:write",
    "realtime",
)
#: What a signed-in project user (or an anonymous caller) may attempt; row rules decide
#: the rest. Schema changes are for admins and keys that carry ``schema:write``.
END_USER_SCOPES = frozenset(
    {"records:read", "records:write", "files:read", "files:write", "realtime"}
)

Kind = Literal["admin", "user", "key", "anonymous"]


@dataclass(frozen=True)
class Principal:
    """The caller. Admins may do everything in every project; the others are bound to one
    project, limited by ``scopes`` and (keys only) ``collections``, then by policies."""

    kind: Kind
    id: int | None = None
    project_id: str | None = None
    role: str | None = None
    email: str | None = None
    name: str | None = None
    scopes: frozenset[str] = field(default_factory=frozenset)
    collections: frozenset[str] | None = None

    @property
    def is_admin(self) -> bool:
        return self.kind == "admin"

    def can(self, scope: str) -> bool:
        return self.is_admin or scope in self.scopes

    def belongs_to(self, project_id: str) -> bool:
        return self.is_admin or self.project_id == project_id or self.kind == "anonymous"

    def may_use(self, collection: str) -> bool:
        """Whether a key restricted to some collections may touch ``collection``."""
        return self.collections is None or collection in self.collections

    @cached_property
    def context(self) -> dict[str, Any]:
        """The ``@auth.*`` values of the expression language."""
        return {
            "auth.id": self.id,
            "auth.role": self.role,
            "auth.email": self.email,
            "auth.kind": self.kind,
            "auth.project": self.project_id,
        }

    def actor(self) -> dict[str, Any]:
        """How audit logs and ops history name this principal."""
        described: dict[str, Any] = {"kind": self.kind, "id": self.id}
        if self.email:
            described["email"] = self.email
        if self.name:
            described["name"] = self.name
        return described


ANONYMOUS = Principal(kind="anonymous", scopes=END_USER_SCOPES)
