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
import random
from dataclasses import dataclass, replace
from typing import Any

from aiohttp import web

from iemdcr_twin.simulator.host import NETWORK_FAULT_KEY, Handler, MeterHost
from iemdcr_twin.simulator.model import Refusal
from iemdcr_twin.simulator.schemas import NETWORK_ACTIONS, NETWORK_RULES, first_problem, whole_numbers

log = logging.getLogger("iemdcr.network")
ACTIONS = NETWORK_ACTIONS
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
    """The seed and rules of a ``PUT /network`` body ``{"seed": int | str, "rules": [rule, ...]}``, checked
    against ``schemas.NETWORK_RULES`` (the schema the OpenAPI document and scenario files use too).

    Raises RuleError naming the first bad key (``rules[2].delay_ms``...), with the control API's error code.
    """
    problem = first_problem(NETWORK_RULES, body)
    if problem is not None:
        raise RuleError(problem.code, problem.message())
    body = whole_numbers(NETWORK_RULES, body)
    return body.get("seed", 0), [_rule(raw) for raw in body["rules"]]


def _rule(raw: dict[str, Any]) -> Rule:
    """A Rule from one rule object the schema accepted (methods upper case, numbers as the Rule holds them)."""
    method = raw.get("method")
    delay = raw.get("delay_ms")
    probability = raw.get("probability")
    return Rule(
        raw["action"],
        method=None if method is None else method.upper(),
        path=raw.get("path"),
        delay_ms=0.0 if delay is None else float(delay),
        status=raw.get("status", 503),
        count=raw.get("count"),
        probability=None if probability is None else float(probability),
    )


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
