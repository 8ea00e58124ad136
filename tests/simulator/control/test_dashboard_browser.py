"""The dashboard in a real headless Chromium (control-api.md §3), driven over the DevTools protocol.

A twin of three meters on a frozen virtual clock serves its control app on a free port; Chromium opens the
page, the test types a load into a meter's card and clicks its button, starts a transaction through the meter
API (POST gw, user, receipt B), and polls the page until the new values, the running transaction and the
meter's display appear. It also uses the power-cycle and fault controls. Set ``IEMDCR_DASHBOARD_SCREENSHOT``
to a path to keep the final screenshot (that is how docs/dashboard.png is made).
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from iemdcr_twin.simulator.app import create_control_app
from iemdcr_twin.simulator.clock import SimClock
from iemdcr_twin.simulator.control.keys import EVENTS_KEY
from iemdcr_twin.simulator.fleet import MeterSpec, Twin
from tests.support.browser import Browser, find_chromium
from tests.support.clock import frozen_clock
from tests.support.http import V1, until
from tests.support.meter import GW, USER

CHROMIUM = find_chromium()
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        CHROMIUM is None,
        reason="no chromium found: install Debian's `chromium` package (.ci/run does) or set IEMDCR_CHROMIUM",
    ),
]

S1, S2, S3 = "1ISA0200000001", "1ISA0200000002", "1ISA0200000003"
SCREENSHOT_ENV = "IEMDCR_DASHBOARD_SCREENSHOT"


@pytest.fixture
async def lab() -> AsyncIterator[tuple[Twin, SimClock, str]]:
    clock = frozen_clock()
    twin = Twin(clock, seed="dashboard")
    for index in range(3):
        twin.add_meter(MeterSpec(port=0), index)
    app = create_control_app(twin)
    app[EVENTS_KEY].values_interval_s = 0.1  # live values reach the page quickly
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield twin, clock, f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


@pytest.fixture
async def browser(tmp_path: Path) -> AsyncIterator[Browser]:
    assert CHROMIUM is not None
    browser = await Browser.launch(CHROMIUM, tmp_path)
    try:
        yield browser
    finally:
        await browser.close()


def card(serial: str, inner: str = "") -> str:
    return f'article.card[data-serial="{serial}"] {inner}'.strip()


def text_of(serial: str, field: str) -> str:
    selector = json.dumps(card(serial, f'[data-field="{field}"]'))
    return f"(document.querySelector({selector}) || {{}}).textContent"


def card_text(serial: str) -> str:
    return f"(document.querySelector({json.dumps(card(serial))}) || {{}}).innerText"


async def meter_api(session: aiohttp.ClientSession, twin: Twin, serial: str, node: str, body: Any) -> Any:
    async with session.post(twin.slot(serial).url + V1 + node, json=body) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.json()


async def wait_text(browser: Browser, serial: str, field: str, expected: str) -> None:
    await browser.wait_for(f"{text_of(serial, field)} === {json.dumps(expected)}", describe=card_text(serial))


async def test_dashboard_controls_and_live_updates(
    lab: tuple[Twin, SimClock, str], browser: Browser, tmp_path: Path
) -> None:
    twin, clock, url = lab
    await browser.navigate(url + "/")
    await browser.wait_for(
        "document.body.dataset.connection === 'live' && document.querySelectorAll('article.card').length === 3",
        describe="document.body.innerText",
    )
    assert await browser.evaluate("document.title") == "IEM-DCR twin"

    # 1. the page's load control sets the voltage: the twin changes, and the card shows it
    form = card(S1, "form.load-form")
    await browser.type_into(f"{form} input[name=voltage_V]", "400")
    await browser.type_into(f"{form} input[name=current_A]", "0")
    await browser.click(f"{form} button[type=submit]")
    await wait_text(browser, S1, "voltage", "400.0 V")
    assert twin.slot(S1).meter.voltage_V == 400.0

    # 2. a transaction started through the meter API appears: badge, and the meter's display with the ID
    async with aiohttp.ClientSession() as session:
        await meter_api(session, twin, S1, "gw", GW)
        await meter_api(session, twin, S1, "user", USER)
        assert (await meter_api(session, twin, S1, "receipt", {"TX": "B"}))["XT"] is True
    await wait_text(browser, S1, "tx-badge", "transaction")
    await wait_text(browser, S1, "lcd-1", "0.000 kWh")
    await wait_text(browser, S1, "lcd-2", USER["ID"])

    # 3. charging current through the page; then half an hour of simulated time fills the display
    await browser.type_into(f"{form} input[name=current_A]", "32")
    await browser.click(f"{form} button[type=submit]")
    await wait_text(browser, S1, "current", "32.00 A")
    await wait_text(browser, S1, "power", "12.80 kW")
    assert twin.slot(S1).meter.current_A == 32.0
    clock.advance(1800)
    await wait_text(browser, S1, "lcd-1", "6.400 kWh")
    await wait_text(browser, S1, "tx-energy", "6.400 kWh")
    await browser.wait_for(
        f"{card_text(S1)}.includes('POST') && {card_text(S1)}.includes('receipt')", describe=card_text(S1)
    )

    # 4. power-cycle from the page; then a driver-like init shows the tariff text on the idle display
    await browser.click(card(S2, '[data-action="power-cycle"]'))
    await until(lambda: twin.slot(S2).meter.counters["power_cycles"] == 1)
    await browser.wait_for(f"{text_of(S2, 'power-badge')} === 'on'", describe=card_text(S2))
    async with aiohttp.ClientSession() as session:
        await meter_api(session, twin, S2, "gw", GW)
        await meter_api(session, twin, S2, "tariff", {"TT": "0,39 EUR/kWh"})
    await wait_text(browser, S2, "lcd-1", "0,39 EUR/kWh")
    await wait_text(browser, S2, "gw", f"{GW['CT']} {GW['CI']}")

    # 5. raise a fault from the page: the display shows the error, the chip is pressed; clear it again
    chip = card(S3, '[data-fault="tamper_detected"]')
    await browser.click(chip)
    await wait_text(browser, S3, "lcd-1", "Error")
    await browser.wait_for(
        f"document.querySelector({json.dumps(chip)}).getAttribute('aria-pressed') === 'true'",
        describe=card_text(S3),
    )
    assert twin.slot(S3).meter.faults == frozenset({"tamper_detected"})
    await wait_text(browser, S3, "status-badge", "ST M · EF E")

    png = await browser.screenshot(tmp_path / "dashboard.png")
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 10_000
    keep = os.environ.get(SCREENSHOT_ENV)
    if keep:
        Path(keep).write_bytes(png)

    await browser.click(chip)
    await browser.wait_for(f"{text_of(S3, 'lcd-1')} !== 'Error'", describe=card_text(S3))
    assert twin.slot(S3).meter.faults == frozenset()
    assert browser.errors == []


async def test_dashboard_asks_for_the_token(browser: Browser, tmp_path: Path) -> None:
    """With a control token the page is still served, asks for the token, then goes live with it."""
    twin = Twin(frozen_clock(), seed="dashboard")
    twin.add_meter(MeterSpec(port=0), 0)
    app = create_control_app(twin, token="s3cret")
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        await browser.navigate(f"http://127.0.0.1:{runner.addresses[0][1]}/")
        await browser.wait_for("!document.getElementById('token-form').hidden", describe="document.body.innerText")
        await browser.type_into("#token-input", "s3cret")
        await browser.click("#token-form button[type=submit]")
        await browser.wait_for(
            "document.body.dataset.connection === 'live' && document.querySelectorAll('article.card').length === 1",
            describe="document.body.innerText",
        )
        await wait_text(browser, S1, "power-badge", "on")
        assert await browser.evaluate("sessionStorage.getItem('iemdcr-control-token')") == "s3cret"
    finally:
        await runner.cleanup()
    # the 401s before the token was given are expected console noise; nothing else is
    assert [e for e in browser.errors if "401" not in e] == []


ATTACK_PAGE = """<!doctype html><title>a page from elsewhere</title><script>
const meter = TWIN + "/api/meters/SERIAL";
const plain = {"Content-Type": "text/plain"};
async function attack() {
  // simple requests: the browser sends them without asking (no-cors), only the answer stays hidden
  const shots = await Promise.allSettled([
    fetch(meter + "/power", {method: "POST", mode: "no-cors", headers: plain, body: '{"on":false}'}),
    fetch(meter + "/factory-reset", {method: "POST", mode: "no-cors", headers: plain, body: "{}"}),
    fetch(meter + "/factory-reset", {method: "POST", mode: "no-cors"}),
    fetch(meter + "/power-cycle", {method: "POST", mode: "no-cors"}),
  ]);
  // a JSON body needs a CORS preflight, and reading an answer needs a grant: both must fail
  const json = await fetch(meter + "/power", {
    method: "POST", headers: {"Content-Type": "application/json"}, body: '{"on":false}'
  }).then(() => "sent", () => "blocked");
  const read = await fetch(TWIN + "/api/meters").then((r) => r.json()).then(() => "read", () => "blocked");
  window.attack = {shots: shots.map((s) => s.status), json, read};
}
attack();
</script>"""


async def test_a_page_from_another_origin_cannot_drive_the_twin(browser: Browser) -> None:
    """Cross-site requests (control-api.md §2): a page served from another origin fires the no-cors POSTs that
    powered a meter off and factory-reset it; each arrives at the twin and is refused, and nothing changes."""
    twin = Twin(frozen_clock(), seed="dashboard")
    twin.add_meter(MeterSpec(port=0), 0)
    meter = twin.slot(S1).meter
    key, cycles = meter.signer.fingerprint, meter.counters["power_cycles"]
    app = create_control_app(twin)
    seen: list[tuple[str, str, int]] = []

    async def note(request: web.Request, response: web.StreamResponse) -> None:
        seen.append((request.method, request.path.rpartition("/")[2], response.status))

    app.on_response_prepare.append(note)
    runners = [web.AppRunner(app, handle_signals=False)]
    try:
        await runners[0].setup()
        await web.TCPSite(runners[0], "127.0.0.1", 0).start()
        control = f"http://127.0.0.1:{runners[0].addresses[0][1]}"
        page = ATTACK_PAGE.replace("TWIN", json.dumps(control)).replace("SERIAL", S1)

        async def serve_page(request: web.Request) -> web.Response:
            return web.Response(text=page, content_type="text/html")

        elsewhere = web.Application()
        elsewhere.router.add_get("/", serve_page)
        runners.append(web.AppRunner(elsewhere, handle_signals=False))
        await runners[1].setup()
        await web.TCPSite(runners[1], "127.0.0.1", 0).start()

        await browser.navigate(f"http://127.0.0.1:{runners[1].addresses[0][1]}/")
        result = await browser.wait_for("window.attack", describe="document.title")
        assert result == {"shots": ["fulfilled"] * 4, "json": "blocked", "read": "blocked"}
        # every simple request reached the twin and was refused; the JSON one never left the preflight
        assert sorted(s for s in seen if s[0] == "POST") == [
            ("POST", "factory-reset", 403),
            ("POST", "factory-reset", 403),
            ("POST", "power", 403),
            ("POST", "power-cycle", 403),
        ]
        assert ("GET", "meters", 403) in seen
        assert meter.powered and meter.signer.fingerprint == key and meter.counters["power_cycles"] == cycles
    finally:
        for runner in reversed(runners):
            await runner.cleanup()
