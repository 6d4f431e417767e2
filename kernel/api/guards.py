"""The request steps that may refuse a request: body size, credentials, quotas."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TYPE_CHECKING

from kernel.api.exchange import PRINCIPAL_KEY, Exchange, RequestStep, body_too_large
from kernel.errors import TesseraError
from kernel.security.principal import ANONYMOUS

if TYPE_CHECKING:
    from kernel.quotas import QuotaPolicy
    from kernel.runtime import Tessera

#: Project routes are ``/api/projects/{project_id}/...``.
PROJECT_PREFIX = "/api/projects/"


class BodyLimit(RequestStep):
    """413 for a body over ``limit`` bytes, before the route runs.

    A declared ``Content-Length`` is checked at once (the server delivers no more than it
    declares). A body of unknown length (``Transfer-Encoding: chunked``) is read here, up
    to the limit, and handed to the route whole: a limit hit while the route read its body
    would surface inside the route's own body parsing (FastAPI turns any error there into
    a 400), not as this step's 413.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit

    def enter(self, exchange: Exchange) -> Awaitable[None] | None:
        headers = exchange.headers
        declared = headers.get(b"content-length")
        if declared is not None:
            if declared.isdigit() and int(declared) > self.limit:
                raise body_too_large(self.limit)
        elif b"transfer-encoding" in headers:
            return self._read_ahead(exchange)
        return None

    async def _read_ahead(self, exchange: Exchange) -> None:
        await exchange.read_body(self.limit)


class Authenticate(RequestStep):
    """Resolves the caller once per request and leaves it in the scope for the routes
    (:func:`kernel.api.exchange.principal_of`). Bad credentials are not refused here: a
    route that needs the caller answers 401, one that does not (sign-in, health) still
    works for a client holding an expired token."""

    def __init__(self, tessera: Tessera) -> None:
        self.tessera = tessera

    def enter(self, exchange: Exchange) -> Awaitable[None] | None:
        headers = exchange.headers
        credentials: dict[str, str] = {}
        authorization = headers.get(b"authorization")
        if authorization is not None:
            credentials["authorization"] = authorization.decode("latin-1")
        key = headers.get(b"x-api-key")
        if key is not None:
            credentials["x-api-key"] = key.decode("latin-1")
        try:
            principal = self.tessera.authenticator.known(credentials)
        except TesseraError as error:
            exchange.scope[PRINCIPAL_KEY] = error
            return None
        if principal is None:  # an API key not seen lately: a lookup
            return self._look_up(exchange, credentials)
        exchange.scope[PRINCIPAL_KEY] = principal
        return None

    async def _look_up(self, exchange: Exchange, credentials: dict[str, str]) -> None:
        try:
            exchange.scope[PRINCIPAL_KEY] = await self.tessera.authenticator.principal(credentials)
        except TesseraError as error:
            exchange.scope[PRINCIPAL_KEY] = error


class QuotaCheck(RequestStep):
    """Before a project route: every quota policy's ``check_request(project_id,
    principal)``; the headers they return go on the response, a
    :class:`~kernel.errors.QuotaExceeded` answers 429. Callers whose credentials failed
    are checked as anonymous (the route then answers 401). Costs a test when no policy is
    registered."""

    def __init__(self, tessera: Tessera) -> None:
        self.tessera = tessera

    def enter(self, exchange: Exchange) -> Awaitable[None] | None:
        policies = self.tessera.quota_policies  # built at start, after the app
        if not policies:
            return None
        path: str = exchange.scope["path"]
        if not path.startswith(PROJECT_PREFIX):
            return None
        project_id = path[len(PROJECT_PREFIX) :].partition("/")[0]
        if not project_id:
            return None
        return self._check(exchange, policies, project_id)

    async def _check(
        self, exchange: Exchange, policies: list[QuotaPolicy], project_id: str
    ) -> None:
        principal = exchange.scope[PRINCIPAL_KEY]
        if isinstance(principal, TesseraError):
            principal = ANONYMOUS
        for policy in policies:
            exchange.add_headers(await policy.check_request(project_id, principal))
