"""CORS: which browser origins may call the API (settings ``cors_origins``, ``cors_max_age``)."""

from __future__ import annotations

from starlette.responses import Response

from kernel.api.exchange import Exchange, RequestStep

#: Methods a preflight is told the API accepts.
ALLOWED_METHODS = b"GET, POST, PUT, PATCH, DELETE"
#: Response headers a browser script may read besides the CORS-safelisted ones.
EXPOSED_HEADERS = (
    b"X-Request-Id, Retry-After, X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset, "
    b"Deprecation, Link, Tessera-Renamed-Fields, Location"
)


class Cors(RequestStep):
    """Answers preflights and marks answers readable by the configured origins.

    ``origins`` are exact origins (``https://app.example.com``); ``*`` allows any origin.
    A request from an origin that is not allowed, or with no ``Origin``, gets no CORS
    headers, and its preflight goes on to the routes like any ``OPTIONS`` request; the
    browser then refuses it. No cookies are involved (credentials are headers), so
    ``Access-Control-Allow-Credentials`` is never sent; a preflight may ask for any
    request header.
    """

    def __init__(self, origins: list[str], max_age: int) -> None:
        self.any_origin = "*" in origins
        self.origins = frozenset(origin.encode("latin-1") for origin in origins)
        self.max_age = str(max_age).encode("ascii")

    def enter(self, exchange: Exchange) -> Response | None:
        headers = exchange.headers
        origin = headers.get(b"origin")
        if origin is None or not (self.any_origin or origin in self.origins):
            return None
        allowed = [(b"access-control-allow-origin", b"*" if self.any_origin else origin)]
        if not self.any_origin:
            allowed.append((b"vary", b"Origin"))
        if exchange.scope["method"] == "OPTIONS" and b"access-control-request-method" in headers:
            allowed.append((b"access-control-allow-methods", ALLOWED_METHODS))
            requested = headers.get(b"access-control-request-headers")
            if requested:
                allowed.append((b"access-control-allow-headers", requested))
            allowed.append((b"access-control-max-age", self.max_age))
            exchange.response_headers.extend(allowed)
            return Response(status_code=204)
        allowed.append((b"access-control-expose-headers", EXPOSED_HEADERS))
        exchange.response_headers.extend(allowed)
        return None
