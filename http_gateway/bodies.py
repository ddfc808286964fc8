"""Request bodies: size-bounded, time-bounded, and as JSON every malformed form (bad syntax, bad
UTF-8, nesting deep enough to exhaust the parser's recursion) a 400, never a 500.

aiohttp has no timeout on reading a body: a client that declares a length and stalls holds its
connection, its handler and (for uploads) a temporary file for as long as it likes. ``receiving``
bounds that: inside it a body read fails with 408 once no byte has arrived for ``idle_s`` or the
block has run ``total_s``; the caller's cleanup (an upload's ``.part`` file) runs as for any error.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from http_gateway.config import SETTINGS
from http_gateway.errors import BadRequest, PayloadTooLarge, RequestTimeout

#: auth and key bodies (email + password, a name) are tiny: read no more than this before refusing (413)
AUTH_BODY_LIMIT = 16 * 1024
#: any other JSON body (URL ingest); uploads stream and count on their own
JSON_BODY_LIMIT = 1024 * 1024


def body_timeout(request: web.Request) -> float:
    """The app's CLIPORA_BODY_TIMEOUT_S (the default where the app has no settings, as in unit tests)."""
    settings = request.config_dict.get(SETTINGS)
    return settings.body_timeout_s if settings is not None else DEFAULT_BODY_TIMEOUT_S


def loads(raw: bytes | str, message: str) -> Any:
    """``json.loads``, or BadRequest(``message``) for anything that is not a JSON document."""
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        raise BadRequest(message) from None


#: JSON bodies must arrive whole within this many seconds unless the settings say otherwise
DEFAULT_BODY_TIMEOUT_S = 10.0


@contextlib.asynccontextmanager
async def receiving(request: web.Request, *, idle_s: float | None = None,
                    total_s: float | None = None) -> AsyncIterator[None]:
    """Body reads inside fail with RequestTimeout (408) after ``idle_s`` without a byte or ``total_s`` in all.

    Progress is the request stream's byte count (what the transport delivered, before any
    parsing), checked a few times per idle period, so the stall is noticed within 1.25 x ``idle_s``.
    """
    if idle_s is None and total_s is None:
        raise ValueError("receiving needs idle_s or total_s")
    loop = asyncio.get_running_loop()
    content = request.content
    started = last_byte = loop.time()
    seen = content.total_bytes

    def deadline() -> float:
        ends = [t for t in (idle_s and last_byte + idle_s, total_s and started + total_s) if t]
        return min(ends)

    poll = min(1.0, (idle_s or total_s or 1.0) / 4)
    handle: asyncio.TimerHandle | None = None
    try:
        async with asyncio.timeout_at(deadline()) as scope:
            def check() -> None:
                nonlocal seen, last_byte, handle
                if content.total_bytes != seen:
                    seen, last_byte = content.total_bytes, loop.time()
                    scope.reschedule(deadline())
                handle = loop.call_later(poll, check)

            if idle_s is not None:
                handle = loop.call_later(poll, check)
            yield
    except TimeoutError:
        if not scope.expired():
            raise
        if total_s is not None and loop.time() >= started + total_s:
            raise RequestTimeout(f"the request body did not arrive within {total_s:g} s") from None
        raise RequestTimeout(f"no data received for {idle_s:g} s; the request was dropped") from None
    finally:
        if handle is not None:
            handle.cancel()


async def read_body(request: web.Request, limit: int, timeout_s: float = DEFAULT_BODY_TIMEOUT_S) -> bytes:
    """The whole body within ``timeout_s``, or 413 once it is past ``limit`` bytes (declared or sent)."""
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge("request body too large")
    raw = bytearray()
    async with receiving(request, total_s=timeout_s):
        # read() returns what has arrived so far, not n bytes: read until the body ends
        while chunk := await request.content.read(limit + 1 - len(raw)):
            raw += chunk
            if len(raw) > limit:
                raise PayloadTooLarge("request body too large")
    return bytes(raw)


async def json_object(request: web.Request, *, limit: int, not_json: str = "request body must be JSON",
                      not_object: str = "request body must be a JSON object") -> dict[str, Any]:
    """The body as a JSON object (at most ``limit`` bytes, within the body timeout), or 400/408/413."""
    body = loads(await read_body(request, limit, body_timeout(request)), not_json)
    if not isinstance(body, dict):
        raise BadRequest(not_object)
    return body
