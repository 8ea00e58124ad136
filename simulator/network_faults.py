"""Network faults on a meter's wire: delay, error status, hang, reset, malformed body, refused connection.

A lab needs to see how a driver copes with a flaky link, not only with a faulty meter, so these faults act
before the meter model sees the request (control-api.md §2, ``/network``). They are installed as the
``MeterHost.interceptor`` only while rules exist, so a healthy meter pays nothing for them.

Device side: the rules, their validation (``parse_rules``, ``RuleError``) and the interceptor. Who sets the
rules (the control plane's ``/network`` routes, a scenario's ``fault: {network: ...}`` step) lives above.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import logging
import math
import random
from dataclasses import dataclass, replace
from typing import Any

from aiohttp import web

from iemdcr_twin.simulator.host import NETWORK_FAULT_KEY, Handler, MeterHost
from iemdcr_twin.simulator.model import Refusal

log = logging.getLogger("iemdcr.network")
ACTIONS = ("delay", "status", "hang", "reset", "malformed", "refuse")
RULE_KEYS = {"action", "method", "path", "delay_ms", "status", "count", "probability"}
MAX_RULES = 100
MAX_DELAY_MS = 86_400_000
MALFORMED_BODY = b'{"error": "truncated'
DISCONNECT_POLL_S = 0.1


class RuleError(ValueError):
    """A network-fault body that cannot be applied; ``code`` is the control API's error code (control-api.md §2).

    The control plane answers it as a 400 ``{"error": code, "message": message}``; the message names the key.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Rule:
    """One network-fault rule; ``count`` None means unlimited."""

    action: str
    method: str | None = None
    path: str | None = None
    delay_ms: float = 0.0
    status: int = 503
    count: int | None = None
    probability: float | None = None

    def matches(self, method: str, path: str) -> bool:
        if self.method is not None and self.method != method:
            return False
        if self.path is None:
            return True
        node = path.rstrip("/").rsplit("/", 1)[-1]
        return fnmatch.fnmatchcase(path, self.path) or fnmatch.fnmatchcase(node, self.path)

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"action": self.action}
        if self.method is not None:
            data["method"] = self.method
        if self.path is not None:
            data["path"] = self.path
        if self.action == "delay":
            data["delay_ms"] = self.delay_ms
        if self.action == "status":
            data["status"] = self.status
        if self.count is not None:
            data["count"] = self.count
        if self.probability is not None:
            data["probability"] = self.probability
        return data


# ---- validation ------------------------------------------------------------------------------------------


def parse_rules(body: dict[str, Any]) -> tuple[int | str, list[Rule]]:
    """The seed and rules of a ``PUT /network`` body ``{"seed": int | str, "rules": [rule, ...]}``.

    Raises RuleError naming the first bad key (``rules[2].delay_ms``...), with the control API's error code.
    """
    _only_keys(body, {"seed", "rules"}, "")
    seed = body.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int | str) or (isinstance(seed, str) and len(seed) > 200):
        raise RuleError("bad_type", "seed must be an integer or a string of at most 200 characters")
    rules = body.get("rules")
    if not isinstance(rules, list):
        raise RuleError("bad_type", "rules must be a list of rule objects")
    if len(rules) > MAX_RULES:
        raise RuleError("bad_value", f"rules may hold at most {MAX_RULES} rules")
    return seed, [_parse_rule(raw, f"rules[{index}]") for index, raw in enumerate(rules)]


def _only_keys(raw: dict[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(raw) - allowed)
    if unknown:
        prefix = f"{where}: " if where else ""
        raise RuleError("unknown_key", f"{prefix}unknown key {unknown[0]!r}; allowed: {', '.join(sorted(allowed))}")


def _parse_rule(raw: Any, where: str) -> Rule:
    if not isinstance(raw, dict):
        raise RuleError("bad_type", f"{where} must be an object")
    _only_keys(raw, RULE_KEYS, where)
    action = raw.get("action")
    if action not in ACTIONS:
        raise RuleError("bad_value", f"{where}.action must be one of {', '.join(ACTIONS)}")
    rule = Rule(action)
    if "method" in raw:
        method = raw["method"]
        if not isinstance(method, str) or not method.isalpha() or len(method) > 16:
            raise RuleError("bad_value", f"{where}.method must be an HTTP method such as GET or POST")
        rule = replace(rule, method=method.upper())
    if "path" in raw:
        path = raw["path"]
        if not isinstance(path, str) or not path or len(path) > 200:
            raise RuleError("bad_value", f"{where}.path must be a glob of 1 to 200 characters")
        rule = replace(rule, path=path)
    rule = replace(rule, **_action_fields(raw, action, where))
    if "count" in raw:
        count = raw["count"]
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 1_000_000_000:
            raise RuleError("bad_value", f"{where}.count must be a whole number from 1 to 1000000000")
        rule = replace(rule, count=count)
    if "probability" in raw:
        rule = replace(rule, probability=_number(raw, "probability", where, 0, 1))
    return rule


def _action_fields(raw: dict[str, Any], action: str, where: str) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for key, owner in (("delay_ms", "delay"), ("status", "status")):
        if key in raw and action != owner:
            raise RuleError("bad_value", f"{where}.{key} only applies to action {owner}")
    if action == "delay":
        if "delay_ms" not in raw:
            raise RuleError("missing_key", f"{where}.delay_ms is required for action delay")
        fields["delay_ms"] = _number(raw, "delay_ms", where, 0, MAX_DELAY_MS)
    if action == "status":
        status = raw.get("status")
        if isinstance(status, bool) or not isinstance(status, int) or not 200 <= status <= 599:
            raise RuleError("bad_value", f"{where}.status must be a whole number from 200 to 599")
        fields["status"] = status
    return fields


def _number(raw: dict[str, Any], key: str, where: str, low: float, high: float) -> float:
    value = raw[key]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise RuleError("bad_type", f"{where}.{key} must be a number")
    if not low <= value <= high:
        raise RuleError("bad_value", f"{where}.{key} must be from {low:g} to {high:g}")
    return float(value)


# ---- the interceptor -------------------------------------------------------------------------------------


class NetworkFaults:
    """The network-fault rules of one meter, and the interceptor that applies them."""

    def __init__(self, host: MeterHost) -> None:
        self.host = host
        self.seed: int | str = 0
        self.rules: list[Rule] = []
        self.fired: dict[str, int] = dict.fromkeys(ACTIONS, 0)
        self._random = random.Random(0)
        self._release = asyncio.Event()
        host.meter.listeners.append(self._on_meter_event)

    @classmethod
    def of(cls, host: MeterHost) -> NetworkFaults:
        """The host's rule set (``host.network_faults``), created on first use."""
        faults = host.network_faults
        if not isinstance(faults, NetworkFaults):  # None until first use; only this class sets the field
            faults = cls(host)
            host.network_faults = faults
        return faults

    def replace(self, seed: int | str, rules: list[Rule]) -> None:
        """New rules and a fresh seeded random source; hung requests of the old set are let go."""
        self.seed, self.rules = seed, list(rules)
        self._random = random.Random(seed)
        self.release_hangs()
        self._install()

    def clear(self) -> None:
        self.replace(self.seed, [])

    def release_hangs(self) -> None:
        self._release.set()
        self._release = asyncio.Event()

    def as_dict(self) -> dict[str, Any]:
        return {"seed": self.seed, "rules": [rule.as_dict() for rule in self.rules], "fired": dict(self.fired)}

    def _install(self) -> None:
        self.host.interceptor = self if self.rules else None

    def _on_meter_event(self, kind: str, data: dict[str, Any]) -> None:
        if kind == "power" and data.get("on") is False:
            self.release_hangs()

    def pick(self, method: str, path: str) -> Rule | None:
        """The first rule that matches and (for a probability) wins its draw; spends its count."""
        for index, rule in enumerate(self.rules):
            if not rule.matches(method, path):
                continue
            if rule.probability is not None and self._random.random() >= rule.probability:
                continue
            if rule.count is not None:
                if rule.count <= 1:
                    del self.rules[index]
                    self._install()
                else:
                    self.rules[index] = replace(rule, count=rule.count - 1)
            return rule
        return None

    async def __call__(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        rule = self.pick(request.method, request.path)
        if rule is None:
            return await handler(request)
        self.fired[rule.action] += 1
        log.info(
            "network fault %s on %s %s",
            rule.action,
            request.method,
            request.path,
            extra={
                "meter": self.host.meter.serial,
                "fault": rule.action,
                "method": request.method,
                "path": request.path,
            },
        )
        if rule.action == "delay":
            await self.host.clock.sleep(rule.delay_ms / 1000, for_busy=True)
            return await handler(request)
        request[NETWORK_FAULT_KEY] = "network_" + rule.action
        if rule.action == "status":
            raise Refusal(rule.status, "network_status", f"the twin answered {rule.status} (injected network fault)")
        if rule.action == "malformed":
            return web.Response(status=200, body=MALFORMED_BODY, content_type="application/json")
        if rule.action == "hang":
            await self._hang(request)
        _abort(request)
        raise Refusal(0, "network_" + rule.action, f"connection closed without an answer ({rule.action})")

    async def _hang(self, request: web.Request) -> None:
        """Wait until the rules change, the meter powers off, or the client goes away."""
        release = self._release
        while not release.is_set() and _connected(request):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(release.wait(), DISCONNECT_POLL_S)


def _connected(request: web.Request) -> bool:
    transport = request.transport
    return transport is not None and not transport.is_closing()


def _abort(request: web.Request) -> None:
    transport = request.transport
    if transport is not None:
        transport.abort()
