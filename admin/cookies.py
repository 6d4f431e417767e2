"""The admin's cookies: always HttpOnly, SameSite=Strict, scoped to ``/admin``, and Secure
when the request came over https."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

SESSION = "tessera_admin"
LOGIN = "tessera_admin_login"
FLASH = "tessera_admin_flash"
PATH = "/admin"


def set_cookie(
    response: Response, request: Request, name: str, value: str, max_age: int | None = None
) -> None:
    """Set ``name`` for the admin's path; ``max_age`` ``None`` makes it a browser-session
    cookie."""
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=PATH,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def clear_cookie(response: Response, request: Request, name: str) -> None:
    response.delete_cookie(
        name, path=PATH, httponly=True, samesite="strict", secure=request.url.scheme == "https"
    )
