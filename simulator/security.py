"""Optional bearer token for the control API (control-api.md §1).

A lab may expose the control port on a shared network; whoever holds it can power meters off and fake
records, so with a token set every control request needs it. ``/healthz`` stays open for orchestrators, the
dashboard page and its static files stay open (the page asks for the token), and the event stream also takes
``?token=`` because browsers cannot set headers on EventSource. The meter API is never affected.
"""

from __future__ import annotations

import hmac
import os

from aiohttp import web

from iemdcr_twin.simulator.host import Handler, Interceptor

TOKEN_ENV = "IEMDCR_CONTROL_TOKEN"
PUBLIC_GET_PATHS = frozenset({"/healthz", "/"})
PUBLIC_GET_PREFIXES = ("/static/",)
QUERY_TOKEN_PATHS = frozenset({"/api/events"})


def token_from_env(flag: str | None) -> str | None:
    """The flag wins; an empty environment variable means no token."""
    if flag:
        return flag
    return os.environ.get(TOKEN_ENV) or None


def is_public(request: web.Request) -> bool:
    if request.method != "GET":
        return False
    return request.path in PUBLIC_GET_PATHS or request.path.startswith(PUBLIC_GET_PREFIXES)


def presented_token(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    if request.path in QUERY_TOKEN_PATHS:
        return request.query.get("token")
    return None


def token_middleware(token: str) -> Interceptor:
    """Refuse every non-public control request whose bearer token differs (compared in constant time)."""
    expected = token.encode()

    @web.middleware
    async def require_token(request: web.Request, handler: Handler) -> web.StreamResponse:
        if is_public(request):
            return await handler(request)
        given = presented_token(request)
        if given is None or not hmac.compare_digest(given.encode(), expected):
            return web.json_response(
                {"error": "unauthorized", "message": "this control API needs Authorization: Bearer <token>"},
                status=401,
                headers={"WWW-Authenticate": 'Bearer realm="iemdcr-twin"'},
            )
        return await handler(request)

    return require_token
