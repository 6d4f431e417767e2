"""Access checks on a principal: is it a member of the project, may it read the schema.

They sit in the security layer, below the HTTP routers, so that services (the audit log,
the schema history) and plugins check access the same way without importing ``kernel.api``.
"""

from __future__ import annotations

from kernel.errors import Forbidden, Unauthorized
from kernel.security.principal import Principal


def require_member(principal: Principal, project_id: str) -> None:
    """Signed in, and an admin or a principal of this project."""
    if principal.kind == "anonymous":
        raise Unauthorized("sign in or send an API key", code="unauthorized")
    if not principal.belongs_to(project_id):
        raise Forbidden("credentials of another project", code="wrong_project")


def require_schema_reader(principal: Principal, project_id: str) -> None:
    """Admins, and keys of the project that may change its schema."""
    require_member(principal, project_id)
    if not principal.can("schema:write"):
        raise Forbidden("this needs an admin or the schema:write scope", code="missing_scope")
