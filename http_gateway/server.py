"""Serving the app: ``serve(app, host, port)``, which ``clipora serve`` runs.

This is aiohttp's ``run_app`` with one difference. A request that aiohttp's parser refuses (a
malformed request line, a bad header, a broken chunked body) never reaches the app or its
middlewares: aiohttp answers it itself, in text/plain. Here the connection's handler answers it
as every other error is answered, ``{"error": "..."}`` with the same status, no-store and the
security headers, and still closes the connection (the stream is unusable after a parse error).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest
from aiohttp.web_server import Server

from http_gateway.middleware import error_response

log = logging.getLogger("clipora.gateway")

_PROTOCOL_REASONS = {400: "malformed HTTP request", 413: "request body too large",
                     431: "request header fields too large", 501: "not implemented"}


class _JsonErrorHandler(RequestHandler):
    def handle_error(self, request: BaseRequest, status: int = 500, exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        if request.writer.output_size > 0:  # as aiohttp: a response has begun, the connection is broken
            raise ConnectionError("a response was sent already; cannot send the error")
        if status >= 500 and status != 501:
            log.error("error handling a request from %s", request.remote, exc_info=exc)
            response = error_response(500, "internal server error")
        else:  # the client's malformed bytes: worth a line, not a traceback
            log.info("refused a malformed request from %s: %s", request.remote,
                     str(exc).replace("\n", " ").strip() if exc else message)
            response = error_response(status, _PROTOCOL_REASONS.get(status, "malformed HTTP request"))
        response.force_close()  # the stream is unusable after a parse error
        return response


class _JsonErrorServer(Server):
    def __init__(self, handler: Any, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self._handler_kwargs = {k: v for k, v in kwargs.items()
                                if k not in {"request_factory", "handler_cancellation", "loop"}}

    def __call__(self) -> RequestHandler:
        return _JsonErrorHandler(self, loop=asyncio.get_running_loop(), **self._handler_kwargs)


class GatewayRunner(web.AppRunner):
    """An AppRunner whose connections answer protocol-level errors as JSON."""

    def __init__(self, app: web.Application, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self._server_kwargs = {k: v for k, v in kwargs.items() if k not in {"handle_signals", "shutdown_timeout"}}

    async def _make_server(self) -> Server:
        plain = await super()._make_server()  # starts the app up and freezes it
        return _JsonErrorServer(plain.request_handler, request_factory=plain.request_factory,
                                **self._server_kwargs)


def serve(app: web.Application, host: str, port: int, *, shutdown_timeout: float = 15.0, **kwargs: Any) -> None:
    """Serve until SIGINT/SIGTERM, then shut down as ``run_app`` does (WebSockets closed, cleanup run)."""

    async def main(runner: GatewayRunner) -> None:
        await runner.setup()
        await web.TCPSite(runner, host, port).start()
        await asyncio.Event().wait()  # until a signal raises GracefulExit

    runner = GatewayRunner(app, handle_signals=True, shutdown_timeout=shutdown_timeout, **kwargs)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        loop.run_until_complete(main(runner))
    except (web.GracefulExit, KeyboardInterrupt):
        pass
    finally:
        loop.run_until_complete(runner.cleanup())
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
