"""Typed FastAPI dependencies shared by the routers."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Annotated, Any

import orjson
from fastapi import Depends, Request

from kernel.api.exchange import principal_of, signed_in_principal
from kernel.errors import BadRequest
from kernel.json_values import PARSE_DEPTH
from kernel.runtime import Tessera
from kernel.security.principal import Principal


async def get_tessera(request: Request) -> Tessera:
    # async: FastAPI would run a plain function in a thread pool, on every request.
    return request.app.state.tessera


async def current_principal(request: Request) -> Principal:
    """The caller, as the request pipeline's authentication step resolved it (the
    anonymous principal without credentials; 401 for bad ones)."""
    return principal_of(request.scope)


async def signed_in(request: Request) -> None:
    """For a router whose routes all need a caller who signed in or sent an API key:
    ``APIRouter(dependencies=[SignedIn])``. 401 otherwise, before the body is validated."""
    signed_in_principal(request.scope)


#: The check on the pipeline's principal each caller dependency makes, for the request
#: steps that must refuse a caller as the route would, before the route runs.
CALLER_CHECKS: dict[Callable[..., Any], Callable[[Any], object]] = {
    current_principal: principal_of,
    signed_in: signed_in_principal,
}


#: Nineteen digits in a row: maybe an integer beyond 64 bits, which orjson reads as a float.
_LONG_NUMBER = re.compile(rb"[0-9]{19}")


def parse_json_body(raw: bytes) -> Any:
    """A request body parsed with orjson (None when empty); 400 when it is not JSON or
    nests more than 1,024 levels (``too_deep``).

    Integers are kept exact: orjson reads one beyond 64 bits as a float, so a body holding
    a long run of digits is read again with the standard library, whose integers are exact,
    and the value checks that follow refuse them (422) rather than store a rounded number.
    """
    if not raw:
        return None
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        if "depth" in str(error):
            raise BadRequest(
                f"body nests arrays and objects more than {PARSE_DEPTH} levels", code="too_deep"
            ) from None
        raise BadRequest("body is not valid JSON", code="malformed_json") from None
    if _LONG_NUMBER.search(raw) is None:
        return value
    try:
        return json.loads(raw)
    except RecursionError:
        raise BadRequest("body nests arrays and objects too deeply", code="too_deep") from None


async def json_body(request: Request) -> Any:
    """The request body parsed with orjson; 400 when it is not JSON."""
    return parse_json_body(await request.body())


TesseraDep = Annotated[Tessera, Depends(get_tessera)]
PrincipalDep = Annotated[Principal, Depends(current_principal)]
SignedIn = Depends(signed_in)
JsonBody = Annotated[Any, Depends(json_body)]
