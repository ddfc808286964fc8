"""/api/openapi.json: the OpenAPI 3.1 document of every route, maintained by hand.

A test compares the paths here with the app's router, so a route cannot be added without
being described. ProcessOptions' schema is generated from the pydantic model (one definition).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from engine.jobs import JOB_ID
from engine.options import ProcessOptions
from http_gateway.accounts import MIN_PASSWORD_LENGTH

WS_DESCRIPTION = """\
Upgrade to a WebSocket that streams one job's progress. Auth and ownership are checked before
the upgrade (cookie `reels_session`, `X-API-Key` or `Authorization: Bearer`); refusals are
ordinary JSON errors: 400 (missing/invalid jobId), 401, 403 (another account's job), 404.

Server messages (JSON text frames), in order:

1. `{"type":"status","jobId":"…","status":"queued|downloading|processing|completed|failed",
   "stage":"transcribe","progress":0.42,"message":"…"}` — the current state, at once.
2. Any number of `{"type":"progress","jobId":"…","stage":"render","progress":0.0-1.0,
   "message":"frame 120/480"}` (progress is the whole job's fraction) and
   `{"type":"status","jobId":"…","status":"processing|queued","stage":"…","message":"…"}`.
3. Finally `{"type":"completed","jobId":"…","status":"completed","message":"3 clips ready","clipCount":3}`
   or `{"type":"failed","jobId":"…","status":"failed","message":"…","error":"…"}`; then the
   server closes the socket (1000). When the server shuts down it closes with 1001.

Several clients may watch one job. Clients send nothing. An account holds at most
CLIPORA_MAX_SOCKETS_PER_USER (50) sockets at once (more: 429 before the upgrade); a client that
falls 256 events behind is disconnected and may reconnect (it gets the current state first)."""


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*codes: int) -> dict[str, Any]:
    """References to the shared error responses. Every route may answer 500, and 429 to a client
    without credentials that has CLIPORA_MAX_ANONYMOUS_PER_IP requests in flight already."""
    return {str(c): {"$ref": f"#/components/responses/E{c}"} for c in sorted({*codes, 429, 500})}


def _op(summary: str, responses: dict[str, Any], *, tag: str, errors: tuple[int, ...] = (),
        security: bool = True, session_only: bool = False, **extra: Any) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "tags": [tag], "responses": responses | _errors(*errors)}
    if not security:
        op["security"] = []
    elif session_only:
        op["security"] = [{"session": []}]
    op.update(extra)
    return op


JOB_ID_PARAM = {"name": "jobId", "in": "path", "required": True,
                "schema": {"type": "string", "pattern": f"^{JOB_ID.pattern}$"}}
CREDENTIALS = {"type": "object", "required": ["email", "password"],
               "properties": {"email": {"type": "string", "format": "email"},
                              "password": {"type": "string", "minLength": MIN_PASSWORD_LENGTH}}}


def _schemas() -> dict[str, Any]:
    nullable_int = {"type": ["integer", "null"]}
    return {
        "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}},
        "ProcessOptions": ProcessOptions.model_json_schema(by_alias=True),
        "UploadResponse": {
            "type": "object", "required": ["jobId", "originalName", "sizeBytes", "wsUrl", "options"],
            "properties": {"jobId": {"type": "string"}, "originalName": {"type": "string"},
                           "sizeBytes": {"type": "integer"}, "wsUrl": {"type": "string"},
                           "options": _ref("ProcessOptions")}},
        "Job": {
            "type": "object", "required": ["id", "originalName", "status", "createdAt", "clipCount"],
            "properties": {
                "id": {"type": "string"}, "originalName": {"type": "string"},
                "status": {"enum": ["queued", "downloading", "processing", "completed", "failed"]},
                "stage": {"type": "string"}, "progress": {"type": "number", "minimum": 0, "maximum": 1},
                "message": {"type": "string"}, "error": {"type": ["string", "null"]},
                "sizeBytes": {"type": "integer"}, "sourceUrl": {"type": ["string", "null"]},
                "options": {"type": "object"}, "clipCount": {"type": "integer"},
                "posterUrl": {"type": ["string", "null"]}, "attempts": {"type": "integer"},
                "createdAt": {"type": "integer", "description": "ms since the epoch"},
                "updatedAt": {"type": "integer"}, "startedAt": nullable_int, "finishedAt": nullable_int}},
        "JobList": {"type": "object", "required": ["jobs"],
                    "properties": {"jobs": {"type": "array", "items": _ref("Job")}}},
        "Clip": {
            "type": "object",
            "properties": {
                "index": {"type": "integer"}, "start": {"type": "number"}, "end": {"type": "number"},
                "duration": {"type": "number"}, "score": {"type": "number"}, "transcript": {"type": "string"},
                "downloadUrl": {"type": "string"}, "posterUrl": {"type": "string"},
                "captionsUrl": {"type": "string"}, "aspectRatio": {"type": "string"},
                "metadata": {"type": "object", "properties": {
                    "title": {"type": "string"}, "viral_hook": {"type": "string"},
                    "key_insight": {"type": "string"}, "dominant_emotion": {"type": "string"},
                    "hashtags": {"type": "array", "items": {"type": "string"}},
                    "viral_score": {"type": "number"}}},
                "provider": {"type": "string", "description": "who chose this moment: local, gemini or openai"},
                "scoreBreakdown": {"type": "object", "additionalProperties": {"type": "number"},
                                   "description": "the score's parts (hook, completeness, energy, relevance, …)"},
                "segments": {"type": "array", "items": {"type": "array", "items": {"type": "number"}},
                             "description": "source [start, end] pieces that play, when the host's turns "
                                            "were cut out (removeAiVoice); absent otherwise"},
                "framing": {"type": "object", "description": "how the camera framed the clip: layout "
                            "(single, follow or split) and per speaker the linked faceTrack and confidence"}}},
        "Manifest": {"type": "object", "required": ["jobId", "duration", "clipCount", "clips"],
                     "properties": {"jobId": {"type": "string"}, "duration": {"type": "number"},
                                    "clipCount": {"type": "integer"},
                                    "clips": {"type": "array", "items": _ref("Clip")},
                                    "requestedClips": {"type": "integer"},
                                    "notes": {"type": "array", "items": {"type": "string"},
                                              "description": "why fewer clips than asked, fallbacks, …"},
                                    "options": _ref("ProcessOptions"),
                                    "moments": {"type": "object", "description": "genre scored for, providers"},
                                    "speakers": {"type": "object", "description": "diarization and the "
                                                 "AI-host decision (interview sources)"}}},
        "User": {"type": "object", "properties": {"id": {"type": "string"}, "email": {"type": "string"},
                                                  "plan": {"type": "string"},
                                                  "createdAt": {"type": "integer"}}},
        "SignedIn": {"type": "object", "properties": {"user": _ref("User"), "csrfToken": {"type": "string"}}},
        "ApiKey": {"type": "object", "properties": {
            "id": {"type": "string"}, "name": {"type": "string"}, "prefix": {"type": "string"},
            "last4": {"type": "string"}, "createdAt": {"type": "integer"}, "lastUsedAt": nullable_int,
            "revokedAt": nullable_int, "status": {"enum": ["active", "revoked"]}}},
        "Plan": {"type": "object", "properties": {
            "id": {"type": "string"}, "name": {"type": "string"}, "priceMonthly": {"type": "integer"},
            "currency": {"type": "string"}, "limits": {"type": "object"}}},
    }


def build_document() -> dict[str, Any]:
    j, auth, keys, ops = "jobs", "auth", "keys", "operations"
    paths: dict[str, Any] = {
        "/api/auth/signup": {"post": _op(
            "Create an account; sets the reels_session cookie", {"201": _json(_ref("SignedIn"), "Created")},
            tag=auth, errors=(400, 403, 408, 409, 413, 429), security=False,
            requestBody={"required": True, "content": {"application/json": {"schema": CREDENTIALS}}})},
        "/api/auth/login": {"post": _op(
            "Sign in (rotates the session cookie)", {"200": _json(_ref("SignedIn"))}, tag=auth,
            errors=(400, 401, 403, 408, 413, 429), security=False,
            requestBody={"required": True, "content": {"application/json": {"schema": CREDENTIALS}}})},
        "/api/auth/logout": {"post": _op("Sign out", {"200": _json({"type": "object"})}, tag=auth,
                                         errors=(403,), security=False)},
        "/api/auth/me": {"get": _op("The signed-in user", {"200": _json({
            "type": "object", "properties": {"user": _ref("User"), "via": {"enum": ["session", "key"]},
                                             "csrfToken": {"type": "string"}}})}, tag=auth, errors=(401,))},
        "/api/keys": {
            "get": _op("List your API keys (session only)", {"200": _json({
                "type": "object", "properties": {"keys": {"type": "array", "items": _ref("ApiKey")}}})},
                tag=keys, errors=(401, 403), session_only=True),
            "post": _op("Create an API key; the plaintext `key` (ck_live_…) is returned once",
                        {"201": _json({"allOf": [_ref("ApiKey"), {"type": "object", "properties": {
                            "key": {"type": "string"}}}]}, "Created")},
                        tag=keys, errors=(400, 401, 403, 408, 409, 413), session_only=True,
                        requestBody={"required": True, "content": {"application/json": {"schema": {
                            "type": "object", "required": ["name"],
                            "properties": {"name": {
                                "type": "string", "minLength": 1, "maxLength": 100, "pattern": r"\S",
                                "description": "display text: printable characters, not only spaces"}}}}}}),
        },
        "/api/keys/{keyId}": {"delete": _op(
            "Revoke an API key", {"200": _json(_ref("ApiKey"))}, tag=keys, errors=(401, 403, 404),
            session_only=True,
            parameters=[{"name": "keyId", "in": "path", "required": True, "schema": {"type": "string"}}])},
        "/api/billing/plans": {"get": _op("Plans and their limits (public)", {"200": _json({
            "type": "object", "properties": {"plans": {"type": "array", "items": _ref("Plan")}}})},
            tag="billing", security=False)},
        "/api/upload": {"post": _op(
            "Upload a video (multipart); returns the new job", {"200": _json(_ref("UploadResponse"))}, tag=j,
            errors=(400, 401, 403, 408, 413, 429, 503),
            requestBody={"required": True, "content": {"multipart/form-data": {"schema": {
                "type": "object", "required": ["video"],
                "properties": {"video": {"type": "string", "format": "binary",
                                         "description": "MP4/MOV/MKV/WEBM, decided by content"},
                               "options": {"type": "string", "description": "JSON-encoded ProcessOptions",
                                           "contentMediaType": "application/json",
                                           "contentSchema": _ref("ProcessOptions")}}}}}})},
        "/api/upload/url": {"post": _op(
            "Submit a video by URL; returns the new job at once (status downloading while it arrives)",
            {"200": _json(_ref("UploadResponse"))}, tag=j, errors=(400, 401, 403, 408, 413, 429, 503),
            requestBody={"required": True, "content": {"application/json": {"schema": {
                "type": "object", "required": ["url"],
                "properties": {"url": {"type": "string", "format": "uri", "maxLength": 2048,
                                       "description": "public http/https URL: a direct media link or a site "
                                                      "link (yt-dlp); private and internal addresses are refused"},
                               "options": _ref("ProcessOptions")}}}}})},
        "/api/jobs": {"get": _op("Your jobs, newest first", {"200": _json(_ref("JobList"))}, tag=j,
                                 errors=(401,))},
        "/api/jobs/{jobId}": {
            "get": _op("One job's status and metadata", {"200": _json(_ref("Job"))}, tag=j,
                       errors=(401, 403, 404), parameters=[JOB_ID_PARAM]),
            "delete": _op("Cancel a job and remove its files", {"200": _json({
                "type": "object", "required": ["deleted"], "properties": {"deleted": {"type": "string"}}})},
                tag=j, errors=(401, 403, 404), parameters=[JOB_ID_PARAM]),
        },
        "/api/clips/{jobId}": {"get": _op(
            "The clips manifest (404 until the job is completed)", {"200": _json(_ref("Manifest"))}, tag=j,
            errors=(401, 403, 404), parameters=[JOB_ID_PARAM])},
        "/api/clips/{jobId}/{filename}": {"get": _op(
            "One artifact; Range requests supported (206)", {
                "200": {"description": "The file", "content": {
                    "video/mp4": {"schema": {"type": "string", "format": "binary"}},
                    "image/jpeg": {"schema": {"type": "string", "format": "binary"}},
                    "text/x-ssa": {"schema": {"type": "string"}},
                    "application/json": {"schema": _ref("Manifest")}}},
                "206": {"description": "Partial content (Range)"},
                "304": {"description": "Not modified (If-None-Match / If-Modified-Since)"},
                "416": {"description": "Range not satisfiable: `{\"error\": …}` with Content-Range: bytes */size",
                        "content": {"application/json": {"schema": _ref("Error")}}}},
            tag=j, errors=(401, 403, 404),
            parameters=[JOB_ID_PARAM, {"name": "filename", "in": "path", "required": True, "schema": {
                "type": "string", "pattern": r"^(clip_\d{2}\.(mp4|jpg|ass)|manifest\.json)$"}}])},
        "/ws": {"get": _op(
            "Job progress over WebSocket", {"101": {"description": "Switching protocols"}}, tag=j,
            errors=(400, 401, 403, 404, 429), description=WS_DESCRIPTION,
            parameters=[{"name": "jobId", "in": "query", "required": True,
                         "schema": {"type": "string", "pattern": f"^{JOB_ID.pattern}$"}}])},
        "/healthz": {"get": _op("Liveness", {"200": _json({"type": "object"})}, tag=ops, security=False)},
        "/readyz": {"get": _op("Readiness: 503 while the pipeline is not running",
                               {"200": _json({"type": "object"})}, tag=ops, errors=(503,), security=False)},
        "/metrics": {"get": _op("Prometheus metrics", {"200": {"description": "text exposition format",
                                                               "content": {"text/plain": {"schema": {
                                                                   "type": "string"}}}}},
                                tag=ops, security=False)},
        "/api/openapi.json": {"get": _op("This document", {"200": _json({"type": "object"})}, tag=ops,
                                         security=False)},
    }
    codes = (400, 401, 403, 404, 408, 409, 413, 429, 500, 503)
    names = {400: "Bad request / missing field", 401: "Not authenticated",
             403: "Forbidden (not your resource)",
             404: "Resource not found", 409: "Conflict (e.g. email exists)",
             408: "The request body stalled (an upload sent nothing for CLIPORA_UPLOAD_IDLE_TIMEOUT_S; a JSON "
                  "body did not arrive within CLIPORA_BODY_TIMEOUT_S); the connection is closed",
             413: "Body too large (uploads: CLIPORA_MAX_UPLOAD_BYTES; auth and key bodies: 16 KiB; other JSON: 1 MiB)",
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
        "paths": paths,
        "components": {
            "schemas": _schemas(),
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
