"""The baseline: a bare aiohttp handler returning a fixed JSON body (``python -m bench.bare BODYFILE``).

Prints ``url=http://127.0.0.1:PORT`` once listening.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from aiohttp import web


def create_app(body: bytes, path: str) -> web.Application:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/json")

    app = web.Application()
    app.router.add_get(path, handler)
    return app


async def serve(body: bytes, path: str) -> None:
    runner = web.AppRunner(create_app(body, path), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    print(f"url=http://127.0.0.1:{port}", flush=True)
    await asyncio.Event().wait()


def main() -> None:
    body = Path(sys.argv[1]).read_bytes()
    path = sys.argv[2] if len(sys.argv) > 2 else "/counter/v1/ocmf/metervalue"
    asyncio.run(serve(body, path))


if __name__ == "__main__":
    main()
