"""The whole OpenAPI 3.1 document (the path table, the component schemas, the shared error responses and
the security schemes) and the route that serves it, /api/openapi.json."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from http_gateway.openapi.common import _json, _ref
from http_gateway.openapi.paths import path_table
from http_gateway.openapi.schemas import component_schemas


def build_document() -> dict[str, Any]:
    codes = (400, 401, 403, 404, 408, 409, 413, 429, 500, 503)
    names = {400: "Bad request / missing field", 401: "Not authenticated",
             403: "Forbidden: not your resource; a session-only route called with a key; or the account's plan: "
                  "numClips above its clips per job, a video longer than the minutes left this month, API keys "
                  "without API access (the message says which)",
             404: "Resource not found", 409: "Conflict (e.g. email exists)",
             408: "The request body stalled (an upload sent nothing for CLIPORA_UPLOAD_IDLE_TIMEOUT_S; a JSON "
                  "body did not arrive within CLIPORA_BODY_TIMEOUT_S); the connection is closed",
             413: "Body too large (uploads: the plan's upload size, at most CLIPORA_MAX_UPLOAD_BYTES; fonts: 10 MiB; "
                  "auth and key bodies: 16 KiB; other JSON: 1 MiB)",
             429: "Too many requests: sign-ups or logins per address, an account's jobs, uploads, downloads or "
                  "WebSockets at once, or requests without credentials in flight per address; wait Retry-After "
                  "seconds", 500: "Internal server error",
             503: "Pipeline unavailable"}
    return {
        "openapi": "3.1.0",
        "info": {"title": "Clipora API", "version": "1.0.0",
                 "description": "Long videos in, face-aware captioned short clips out. Every error is "
                                "`{\"error\": \"...\"}`, a request aiohttp cannot parse (400) included."},
        "servers": [{"url": "/"}],
        "security": [{"apiKey": []}, {"bearer": []}, {"session": []}],
        "paths": path_table(),
        "components": {
            "schemas": component_schemas(),
            "responses": {f"E{c}": _json(_ref("Error"), names[c]) for c in codes},
            "securitySchemes": {
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
                "bearer": {"type": "http", "scheme": "bearer", "description": "an API key (ck_live_…)"},
                "session": {"type": "apiKey", "in": "cookie", "name": "reels_session",
                            "description": "unsafe methods also need a same-origin Origin or X-CSRF-Token"},
            },
        },
    }


async def openapi_json(request: web.Request) -> web.Response:
    return web.json_response(build_document(), headers={"Cache-Control": "public, max-age=60"})


def setup(app: web.Application) -> None:
    app.router.add_get("/api/openapi.json", openapi_json)
