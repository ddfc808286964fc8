"""A loopback media server for the URL-ingest tests: an mp4, pages with <video src>, redirects,
a 404, an over-limit file, a slow drip, a clip sent slowly enough to watch. It records every
request (path, Host) it receives.

``MediaServer`` runs it in a thread with its own event loop, so a live ``clipora serve`` (a
subprocess) and any test's loop can use it alike.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from aiohttp import web

MEDIA = Path(__file__).resolve().parents[1] / "media"
CLIP = MEDIA / "face_static.mp4"
SEEN: web.AppKey[list[tuple[str, str]]] = web.AppKey("seen", list)


def media_app(clip: Path = CLIP, big_bytes: int = 3 * 1024 * 1024, drip_s: float = 5.0) -> web.Application:
    seen: list[tuple[str, str]] = []
    data = clip.read_bytes()

    @web.middleware
    async def record(request: web.Request, handler):  # type: ignore[no-untyped-def]
        seen.append((request.path, request.headers.get("Host", "")))
        return await handler(request)

    async def clip_mp4(request: web.Request) -> web.Response:
        return web.Response(body=data, content_type="video/mp4")

    async def octet(request: web.Request) -> web.Response:  # generic type, media extension
        return web.Response(body=data, content_type="application/octet-stream")

    async def page(request: web.Request) -> web.Response:
        src = request.query.get("src", "/clip.mp4")
        html = (f"<!doctype html><html><head><title>A talk</title></head><body><h1>A talk</h1>"
                f'<video controls src="{src}" width="1280" height="720"></video></body></html>')
        return web.Response(text=html, content_type="text/html")

    async def redirect(request: web.Request) -> web.Response:
        n = int(request.match_info["n"])
        to = request.query.get("to", "/clip.mp4")
        raise web.HTTPFound(f"/redirect/{n - 1}?to={to}" if n > 1 else to)

    async def big(request: web.Request) -> web.StreamResponse:
        # chunked, no Content-Length: only counting the bytes can stop it
        resp = web.StreamResponse(headers={"Content-Type": "video/mp4"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        chunk = data[: 64 * 1024].ljust(64 * 1024, b"\0")
        sent = 0
        try:
            while sent < big_bytes:
                await resp.write(chunk)
                sent += len(chunk)
        except (ConnectionError, RuntimeError):
            return resp
        await resp.write_eof()
        return resp

    async def big_declared(request: web.Request) -> web.Response:
        return web.Response(body=b"\0" * big_bytes, content_type="video/mp4")

    async def drip(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "video/mp4", "Content-Length": str(len(data))})
        await resp.prepare(request)
        try:
            await resp.write(data[:1024])
            await asyncio.sleep(drip_s)  # longer than the read timeout
            await resp.write(data[1024:])
        except (ConnectionError, RuntimeError):
            pass
        return resp

    async def slow(request: web.Request) -> web.StreamResponse:
        # the whole clip in 10 steps over ~1.5 s: long enough to watch the job download
        resp = web.StreamResponse(headers={"Content-Type": "video/mp4", "Content-Length": str(len(data))})
        await resp.prepare(request)
        step = len(data) // 10 + 1
        for i in range(0, len(data), step):
            await resp.write(data[i:i + step])
            await asyncio.sleep(0.15)
        await resp.write_eof()
        return resp

    app = web.Application(middlewares=[record])
    app[SEEN] = seen
    app.router.add_get("/clip.mp4", clip_mp4)
    app.router.add_get("/download/clip.mov", octet)
    app.router.add_get("/page.html", page)
    app.router.add_get("/redirect/{n}", redirect)
    app.router.add_get("/big.mp4", big)
    app.router.add_get("/big-declared.mp4", big_declared)
    app.router.add_get("/drip.mp4", drip)
    app.router.add_get("/slow.mp4", slow)
    return app


class MediaServer:
    """media_app on 127.0.0.1:<free port> in a background thread."""

    def __init__(self, **kwargs: object) -> None:
        self.app = media_app(**kwargs)  # type: ignore[arg-type]
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner = web.AppRunner(self.app, shutdown_timeout=0.5)  # a dripping handler is cut, not awaited

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def seen(self) -> list[tuple[str, str]]:
        return list(self.app[SEEN])

    def start(self) -> MediaServer:
        self._thread.start()

        async def up() -> int:
            await self._runner.setup()
            site = web.TCPSite(self._runner, "127.0.0.1", 0)
            await site.start()
            return int(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]

        self.port = asyncio.run_coroutine_threadsafe(up(), self._loop).result(10)
        return self

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
