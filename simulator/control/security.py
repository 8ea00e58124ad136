"""Who may drive the control API: an optional bearer token (control-api.md §1), and no foreign web page (§2).

A lab may expose the control port on a shared network; whoever holds it can power meters off and fake
records, so with a token set every control request needs it. ``/healthz`` stays open for orchestrators, the
dashboard page and its static files stay open (the page asks for the token), and the event stream also takes
``?token=`` because browsers cannot set headers on EventSource. The meter API is never affected. Which routes
those are is said once, in the route table (routes.py), and handed to the middlewares as a ``RouteAccess``.
"""

from __future__ import annotations

import argparse
import hmac
import ipaddress
import os
from collections.abc import Iterable
from dataclasses import dataclass

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from iemdcr_twin.simulator.control.errors import ControlError
from iemdcr_twin.simulator.limits import BodyTimeout, UnreadableBody, read_body

TOKEN_ENV = "IEMDCR_CONTROL_TOKEN"


@dataclass(frozen=True)
class RouteAccess:
    """The routes the token and the browser guard treat apart (built from the route table: routes.ACCESS).

    ``public_get_paths`` and ``public_get_prefixes`` (a static folder) need no token; ``query_token_paths``
    also take it as ``?token=``; ``unguarded_get_paths`` skip the Host/Origin/content-type guard.
    """

    public_get_paths: frozenset[str]
    public_get_prefixes: tuple[str, ...]
    query_token_paths: frozenset[str]
    unguarded_get_paths: frozenset[str]

    def is_public(self, request: web.Request) -> bool:
        if request.method != "GET":
            return False
        return request.path in self.public_get_paths or request.path.startswith(self.public_get_prefixes)

    def is_guarded(self, request: web.Request) -> bool:
        return not (request.method == "GET" and request.path in self.unguarded_get_paths)

    def presented_token(self, request: web.Request) -> str | None:
        header = request.headers.get("Authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
        if request.path in self.query_token_paths:
            return request.query.get("token")
        return None


class EmptyToken(ValueError):
    """A control token given but empty (or blank): it would silently turn authentication off."""


def token_arg(text: str) -> str:
    """``--control-token``: any non-blank text; an empty one is refused rather than taken as "no token"."""
    if not text.strip():
        raise argparse.ArgumentTypeError(
            "an empty token would turn authentication off; give a token, or leave --control-token out to run "
            "without one"
        )
    return text


def token_from_env(flag: str | None) -> str | None:
    """The flag wins, else ``IEMDCR_CONTROL_TOKEN``; None when neither is set (no authentication). ``EmptyToken``
    for a variable that is set but empty or blank: unset it to run without a token."""
    if flag is not None:
        token_arg(flag)
        return flag
    value = os.environ.get(TOKEN_ENV)
    if value is None:
        return None
    if not value.strip():
        raise EmptyToken(
            f"{TOKEN_ENV} is set but empty, which would turn authentication off; give it a token, or unset it "
            "to run without one"
        )
    return value


def token_middleware(token: str, access: RouteAccess) -> Middleware:
    """Refuse every non-public control request whose bearer token differs (compared in constant time)."""
    expected = token.encode()

    @web.middleware
    async def require_token(request: web.Request, handler: Handler) -> web.StreamResponse:
        if access.is_public(request):
            return await handler(request)
        given = access.presented_token(request)
        if given is None or not hmac.compare_digest(given.encode(), expected):
            return web.json_response(
                {"error": "unauthorized", "message": "this control API needs Authorization: Bearer <token>"},
                status=401,
                headers={"WWW-Authenticate": 'Bearer realm="iemdcr-twin"'},
            )
        return await handler(request)

    return require_token


# ---- browsers: foreign pages and rebound names (control-api.md §2) -----------------------------------------
#
# A web page can make a browser send simple requests (GET, POST with a text/plain or form body, no custom
# headers) to any address, the twin's loopback control port included; with DNS rebinding it can even read the
# answers, under a name of its own. So on the control port: a body must be JSON (a page cannot send that without
# a CORS preflight, and no CORS grant is ever sent), a foreign ``Origin`` is refused, and so is a ``Host`` that
# is not one of the names this control plane answers to.

JSON_MEDIA_TYPE = "application/json"
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
ANY_HOST = "*"


def host_name(text: str) -> str:
    """The name in a ``Host`` header or an ``--allow-host`` value: lower case, without port, brackets or final dot.

    ``"LocalHost:8090"`` -> ``"localhost"``, ``"[::1]:8090"`` -> ``"::1"``, ``"::1"`` -> ``"::1"``; a malformed
    bracket gives ``""`` (which no rule allows).
    """
    text = text.strip().lower()
    if text.startswith("["):
        end = text.find("]")
        return text[1:end] if end > 0 else ""
    if text.count(":") == 1:  # name:port (an IPv6 literal without brackets has more colons)
        text = text.partition(":")[0]
    return text.rstrip(".")


def origin_arg(text: str) -> str:
    """An ``--allow-origin`` value: ``scheme://host[:port]`` as a browser sends it (lower case, no path)."""
    origin = text.strip().lower().rstrip("/")
    scheme, sep, rest = origin.partition("://")
    if not sep or scheme not in ("http", "https") or not rest or "/" in rest or "*" in rest:
        raise argparse.ArgumentTypeError(f"--allow-origin {text!r}: give an origin such as http://lab.example:8090")
    return origin


def host_arg(text: str) -> str:
    """An ``--allow-host`` value: a host name or address (a port is ignored), or ``*`` for any."""
    if text.strip() == ANY_HOST:
        return ANY_HOST
    name = host_name(text)
    if not name or any(c.isspace() or c in "/@?#*" for c in text.strip()):
        raise argparse.ArgumentTypeError(f"--allow-host {text!r}: give a host name or address, or '*'")
    return name


def is_loopback(bind: str) -> bool:
    """True when ``bind`` (a ``--host`` value) listens on loopback only."""
    name = host_name(bind)
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False  # a name we do not resolve here: assume it reaches beyond this machine


@dataclass(frozen=True)
class BrowserGuard:
    """Which ``Host`` names and ``Origin`` values the control port accepts (control-api.md §2).

    Hosts: the loopback names, the bound address and ``--allow-host`` names, or any with ``*``. Origins: none at
    all (curl, drivers, scripts), the control plane's own (``http(s)://`` + the request's ``Host``), or an
    ``--allow-origin`` value (e.g. the public origin of a reverse proxy in front of the dashboard).
    """

    hosts: frozenset[str]
    origins: frozenset[str] = frozenset()
    any_host: bool = False

    @classmethod
    def for_bind(cls, bind: str, allow_hosts: Iterable[str] = (), allow_origins: Iterable[str] = ()) -> BrowserGuard:
        allowed = [host_arg(host) for host in allow_hosts]
        names = LOOPBACK_NAMES | {host_name(bind)} | {name for name in allowed if name != ANY_HOST}
        return cls(frozenset(names), frozenset(origin_arg(o) for o in allow_origins), ANY_HOST in allowed)

    def host_allowed(self, host: str | None) -> bool:
        return host is None or self.any_host or host_name(host) in self.hosts

    def origin_allowed(self, origin: str, host: str | None) -> bool:
        origin = origin.strip().lower().rstrip("/")
        if origin in self.origins:
            return True
        own = (host or "").strip().lower()
        return bool(own) and origin in (f"http://{own}", f"https://{own}")


def _refusal(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": code, "message": message}, status=status)


async def _has_body(request: web.Request) -> bool:
    if not request.body_exists:
        return False
    if request.content_length is not None:
        return request.content_length > 0
    try:  # chunked: read it (bounded by client_max_size and the body timeout; the handler reads the cached bytes)
        return bool(await read_body(request))
    except BodyTimeout as exc:
        raise ControlError(exc.status, exc.code, str(exc)) from None
    except UnreadableBody:  # a body that does not decode, or a client gone: a body all the same
        return True


def browser_guard_middleware(guard: BrowserGuard, access: RouteAccess) -> Middleware:
    """Refuse a foreign ``Host`` or ``Origin`` (403) and a non-empty body that is not JSON (415)."""

    @web.middleware
    async def browser_guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not access.is_guarded(request):
            return await handler(request)
        host = request.headers.get("Host")
        if not guard.host_allowed(host):
            return _refusal(
                403,
                "host_not_allowed",
                f"this control plane does not answer to the host {host_name(host or '')[:100]!r}; "
                "allow a name with --allow-host",
            )
        origin = request.headers.get("Origin")
        if origin is not None and not guard.origin_allowed(origin, host):
            return _refusal(
                403,
                "origin_not_allowed",
                f"requests from the web origin {origin[:100]!r} are refused; allow one with --allow-origin",
            )
        if request.content_type != JSON_MEDIA_TYPE and await _has_body(request):
            return _refusal(
                415,
                "unsupported_media_type",
                f"a request body must be {JSON_MEDIA_TYPE}, not {request.content_type[:100]!r} (curl --json sends it)",
            )
        return await handler(request)

    return browser_guard
