"""CSRF protection: every admin POST carries a token bound to the browser's session.

The token is an HMAC (with a key derived from the deployment's secret) of the session
cookie's value, so it changes with every sign-in and cannot be computed by another site.
Forms shown before sign-in (login, first-run setup) bind to a random pre-login cookie
instead. A POST with a missing or wrong token is refused with a 403 page.
"""

from __future__ import annotations

import hashlib
import hmac

from starlette.requests import Request

from admin import cookies

FIELD = "csrf"
SESSION = "session"
LOGIN = "login"


class CsrfRejected(Exception):
    """A POST whose CSRF token is missing or does not match the browser's cookie."""


def make_token(key: bytes, purpose: str, binding: str) -> str:
    """The token forms must carry for ``binding`` (a cookie value) and ``purpose``."""
    return hmac.new(key, f"{purpose}:{binding}".encode(), hashlib.sha256).hexdigest()


def token_matches(key: bytes, purpose: str, binding: str | None, token: object) -> bool:
    if not binding or not isinstance(token, str) or not token:
        return False
    return hmac.compare_digest(make_token(key, purpose, binding), token)


async def check(request: Request, key: bytes, purpose: str) -> None:
    """Raise :class:`CsrfRejected` unless a POST's form token matches its cookie.

    ``purpose`` :data:`SESSION` checks against the session cookie, :data:`LOGIN` against
    the pre-login cookie. Requests other than POST pass.
    """
    if request.method != "POST":
        return
    cookie = cookies.SESSION if purpose == SESSION else cookies.LOGIN
    form = await request.form()
    if not token_matches(key, purpose, request.cookies.get(cookie), form.get(FIELD)):
        raise CsrfRejected
