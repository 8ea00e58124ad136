"""A small headless-Chromium driver over the Chrome DevTools Protocol, with aiohttp only (no Selenium).

Chromium is started with ``--remote-debugging-port=0``; it writes the port it picked into
``<user-data-dir>/DevToolsActivePort``, the page target's websocket comes from ``/json/list``, and commands are
JSON messages over that websocket. Mouse clicks and typing go through ``Input.dispatchMouseEvent`` and
``Input.insertText``, so the page sees real input events, not ``element.click()`` from a script.
Page errors (uncaught exceptions, ``console.error``) are collected so a test can insist there were none.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import os
import shutil
import signal
from pathlib import Path
from typing import Any

import aiohttp

CHROMIUM_ENV = "IEMDCR_CHROMIUM"
STARTUP_LIMIT_S = 60.0
COMMAND_LIMIT_S = 30.0
POLL_S = 0.05

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
]


class BrowserError(AssertionError):
    """Chromium did not start, or the page did not do what the test waited for."""


def find_chromium() -> str | None:
    """``$IEMDCR_CHROMIUM``, else Debian's ``chromium`` (or a ``chromium-browser``/``google-chrome``) on PATH."""
    configured = os.environ.get(CHROMIUM_ENV)
    if configured:
        return configured if Path(configured).exists() else None
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


class Browser:
    """One headless Chromium process and a CDP session on its first page."""

    def __init__(self, process: asyncio.subprocess.Process, session: aiohttp.ClientSession, log: Path) -> None:
        self.process = process
        self.session = session
        self.log = log
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.errors: list[str] = []
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._reader: asyncio.Task[None] | None = None

    # ---- lifecycle -------------------------------------------------------------------------------------

    @classmethod
    async def launch(cls, executable: str, workdir: Path, *, width: int = 1400, height: int = 1000) -> Browser:
        profile = workdir / "chromium-profile"
        profile.mkdir(parents=True, exist_ok=True)
        (profile / "DevToolsActivePort").unlink(missing_ok=True)  # a stale one names a dead port
        log = workdir / "chromium.log"
        with log.open("wb") as out:
            process = await asyncio.create_subprocess_exec(
                executable,
                *CHROMIUM_FLAGS,
                f"--user-data-dir={profile}",
                f"--window-size={width},{height}",
                "about:blank",
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                start_new_session=True,  # its own process group, so close() can end the helpers too
            )
        browser = cls(process, aiohttp.ClientSession(), log)
        try:
            await browser._connect(profile / "DevToolsActivePort")
            await browser.send("Page.enable")
            await browser.send("Runtime.enable")
            await browser.send("Log.enable")
            await browser.send(
                "Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False
            )
        except BaseException:
            await browser.close()
            raise
        return browser

    async def _connect(self, port_file: Path) -> None:
        async with asyncio.timeout(STARTUP_LIMIT_S):
            while not port_file.exists() or not port_file.read_text().strip():
                if self.process.returncode is not None:
                    raise BrowserError(f"chromium exited with {self.process.returncode}: {self._log_tail()}")
                await asyncio.sleep(POLL_S)
            port = int(port_file.read_text().split()[0])
            while True:
                try:
                    async with self.session.get(f"http://127.0.0.1:{port}/json/list") as resp:
                        targets = await resp.json()
                except aiohttp.ClientError:
                    targets = []  # written before the socket accepts: try again
                pages = [t for t in targets if t.get("type") == "page" and t.get("webSocketDebuggerUrl")]
                if pages:
                    break
                await asyncio.sleep(POLL_S)
        self.ws = await self.session.ws_connect(pages[0]["webSocketDebuggerUrl"], max_msg_size=0)
        self._reader = asyncio.create_task(self._read())

    def _log_tail(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-2000:]
        except OSError:
            return "(no log)"

    async def close(self) -> None:
        if self.ws is not None and not self.ws.closed:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(5):
                    await self.send("Browser.close")
            await self.ws.close()
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)
        await self.session.close()
        if self.process.returncode is None:
            try:
                async with asyncio.timeout(10):
                    await self.process.wait()
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)  # the group of the process this class started
                await self.process.wait()

    # ---- protocol --------------------------------------------------------------------------------------

    async def _read(self) -> None:
        assert self.ws is not None
        async for message in self.ws:
            if message.type != aiohttp.WSMsgType.TEXT:
                continue
            data = json.loads(message.data)
            if "id" in data:
                future = self._pending.pop(data["id"], None)
                if future is not None and not future.done():
                    future.set_result(data)
            else:
                self._note_event(data.get("method", ""), data.get("params", {}))
        for future in self._pending.values():
            if not future.done():
                future.set_exception(BrowserError("the DevTools connection closed"))

    def _note_event(self, method: str, params: dict[str, Any]) -> None:
        if method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            text = details.get("exception", {}).get("description") or details.get("text", "")
            self.errors.append(f"uncaught: {text}")
        elif method == "Runtime.consoleAPICalled" and params.get("type") == "error":
            args = params.get("args", [])
            self.errors.append("console.error: " + " ".join(str(a.get("value", a.get("description"))) for a in args))
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            self.errors.append(f"log: {params['entry'].get('text')} {params['entry'].get('url', '')}")

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        assert self.ws is not None
        ident = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[ident] = future
        await self.ws.send_json({"id": ident, "method": method, "params": params})
        async with asyncio.timeout(COMMAND_LIMIT_S):
            reply = await future
        if "error" in reply:
            raise BrowserError(f"{method}: {reply['error']}")
        return dict(reply.get("result", {}))

    # ---- page helpers ----------------------------------------------------------------------------------

    async def navigate(self, url: str) -> None:
        result = await self.send("Page.navigate", url=url)
        if result.get("errorText"):
            raise BrowserError(f"cannot open {url}: {result['errorText']}")

    async def evaluate(self, expression: str) -> Any:
        result = await self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise BrowserError(f"{expression!r} threw: {result['exceptionDetails']}")
        return result.get("result", {}).get("value")

    async def wait_for(self, expression: str, *, limit_s: float = 20.0, describe: str = "") -> Any:
        """Poll a JavaScript expression until it is truthy; fail with ``describe`` evaluated at the end.

        An expression that throws (say, while the page is still loading) counts as not yet true.
        """
        problem: BrowserError | None = None
        try:
            async with asyncio.timeout(limit_s):
                while True:
                    try:
                        value = await self.evaluate(expression)
                    except BrowserError as exc:
                        problem, value = exc, None
                    if value:
                        return value
                    await asyncio.sleep(POLL_S)
        except TimeoutError:
            seen = await self.evaluate(describe) if describe else None
            raise BrowserError(
                f"timed out waiting for {expression}; page shows: {seen!r}; last error: {problem}"
            ) from None

    async def click(self, selector: str) -> None:
        """A real left click in the middle of the element (scrolled into view first)."""
        box = await self.evaluate(
            f"""(() => {{
                const el = document.querySelector({json.dumps(selector)});
                if (!el) return null;
                el.scrollIntoView({{block: "center", inline: "center"}});
                const r = el.getBoundingClientRect();
                return {{x: r.left + r.width / 2, y: r.top + r.height / 2}};
            }})()"""
        )
        if box is None:
            raise BrowserError(f"no element matches {selector}")
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            await self.send("Input.dispatchMouseEvent", type=kind, x=box["x"], y=box["y"], button="left", clickCount=1)

    async def type_into(self, selector: str, text: str) -> None:
        """Click into an input, clear it, and type ``text`` as keyboard input."""
        await self.click(selector)
        await self.evaluate(f"document.querySelector({json.dumps(selector)}).value = ''")
        await self.send("Input.insertText", text=text)

    async def screenshot(self, path: Path) -> bytes:
        """A PNG of the page's content: all of it when taller than the window, no empty band when shorter."""
        width = await self.evaluate("document.documentElement.clientWidth")
        height = await self.evaluate("Math.ceil(document.body.getBoundingClientRect().height)")
        clip = {"x": 0, "y": 0, "width": width, "height": height, "scale": 1}
        result = await self.send("Page.captureScreenshot", format="png", clip=clip, captureBeyondViewport=True)
        data = base64.b64decode(result["data"])
        path.write_bytes(data)
        return data
