"""Errors the kernel and plugins raise, each carrying an HTTP status and error codes.

Every error a client sees has one body (API.md, Conventions)::

    {"errors": [{"field": "title" | None, "code": "min_length", "message": "..."}]}

Raise one of these anywhere below the HTTP layer; ``kernel.api.errors`` turns it into that
body in exactly one place. Never raise ``HTTPException`` outside ``kernel.api``.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class ErrorItem:
    """One entry of the ``errors`` list: which field (or ``None``), a stable code, a message."""

    code: str
    message: str
    field: str | None = None

    def as_dict(self) -> dict[str, str | None]:
        return {"field": self.field, "code": self.code, "message": self.message}


class TesseraError(Exception):
    """Base of every client-facing error.

    ``status`` is the HTTP status; ``items`` the error entries; ``headers`` extra response
    headers (``Retry-After`` on a 429, for instance).
    """

    status: int = 400
    default_code: str = "bad_request"

    def __init__(
        self,
        message: str = "",
        *,
        code: str | None = None,
        field: str | None = None,
        items: list[ErrorItem] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.items = items or [ErrorItem(code or self.default_code, message, field)]
        self.headers = headers or {}
        super().__init__(self.items[0].message)

    def body(self) -> dict[str, list[dict[str, str | None]]]:
        return {"errors": [item.as_dict() for item in self.items]}


class BadRequest(TesseraError):
    """400: a malformed query parameter or body (unknown filter field, bad cursor...)."""

    status = 400
    default_code = "bad_request"


class Unauthorized(TesseraError):
    """401: no credentials, or credentials that are not valid."""

    status = 401
    default_code = "unauthorized"


class Forbidden(TesseraError):
    """403: the principal is known but may not do this."""

    status = 403
    default_code = "forbidden"


class NotFound(TesseraError):
    """404: no such project, collection, record or route (or not visible to the principal)."""

    status = 404
    default_code = "not_found"


class Conflict(TesseraError):
    """409: a duplicate name, a unique violation, a referenced row, a busy table."""

    status = 409
    default_code = "conflict"


class PayloadTooLarge(TesseraError):
    """413: the request body is over the configured limit."""

    status = 413
    default_code = "payload_too_large"


class ValidationFailed(TesseraError):
    """422: the body is well-formed but its values break the schema or a rule."""

    status = 422
    default_code = "invalid"


class QuotaExceeded(TesseraError):
    """429: a quota or rate limit; carries ``Retry-After`` and ``X-RateLimit-*`` headers."""

    status = 429
    default_code = "quota_exceeded"


class ServiceUnavailable(TesseraError):
    """503: the server cannot take the request right now (e.g. every database connection
    is busy); carries ``Retry-After``."""

    status = 503
    default_code = "unavailable"


@dataclass(slots=True)
class FieldErrors:
    """Collects field-level problems so a write reports all of them at once."""

    items: list[ErrorItem] = field(default_factory=list)

    def add(self, field_name: str | None, code: str, message: str) -> None:
        self.items.append(ErrorItem(code, message, field_name))

    def raise_if_any(self, error: type[TesseraError] = ValidationFailed) -> None:
        if self.items:
            raise error(items=list(self.items))


class PluginError(Exception):
    """A plugin could not be loaded or configured; stops startup with a one-line message."""


class ConfigError(Exception):
    """The configuration is invalid; the message names the offending key."""
