"""Typed FastAPI dependencies shared by the routers."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import Depends, Request

from kernel.api.exchange import principal_of
from kernel.errors import BadRequest
from kernel.runtime import Tessera
from kernel.security.principal import Principal


async def get_tessera(request: Request) -> Tessera:
    # async: FastAPI would run a plain function in a thread pool, on every request.
    return request.app.state.tessera


async def current_principal(request: Request) -> Principal:
    """The caller, as the request pipeline's authentication step resolved it."""
    return principal_of(request.scope)


def parse_json_body(raw: bytes) -> Any:
    """A request body parsed with orjson (None when empty); 400 when it is not JSON."""
    if not raw:
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise BadRequest("body is not valid JSON", code="malformed_json") from None


async def json_body(request: Request) -> Any:
    """The request body parsed with orjson; 400 when it is not JSON."""
    return parse_json_body(await request.body())


TesseraDep = Annotated[Tessera, Depends(get_tessera)]
PrincipalDep = Annotated[Principal, Depends(current_principal)]
JsonBody = Annotated[Any, Depends(json_body)]
