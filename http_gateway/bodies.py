"""Request bodies as JSON: size-bounded, and every malformed form (bad syntax, bad UTF-8, nesting deep
enough to exhaust the parser's recursion) a 400, never a 500."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from http_gateway.errors import BadRequest, PayloadTooLarge

#: auth and key bodies (email + password, a name) are tiny: read no more than this before refusing (413)
AUTH_BODY_LIMIT = 16 * 1024
#: any other JSON body (URL ingest); uploads stream and count on their own
JSON_BODY_LIMIT = 1024 * 1024


def loads(raw: bytes | str, message: str) -> Any:
    """``json.loads``, or BadRequest(``message``) for anything that is not a JSON document."""
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        raise BadRequest(message) from None


async def read_body(request: web.Request, limit: int) -> bytes:
    """The whole body, or 413 once it is past ``limit`` bytes (declared or sent)."""
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge("request body too large")
    raw = await request.content.read(limit + 1)
    if len(raw) > limit:
        raise PayloadTooLarge("request body too large")
    return raw


async def json_object(request: web.Request, *, limit: int, not_json: str = "request body must be JSON",
                      not_object: str = "request body must be a JSON object") -> dict[str, Any]:
    """The body as a JSON object (at most ``limit`` bytes), or 400/413."""
    body = loads(await read_body(request, limit), not_json)
    if not isinstance(body, dict):
        raise BadRequest(not_object)
    return body
