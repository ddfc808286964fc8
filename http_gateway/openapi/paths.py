"""The path table: every route's operations, with the parameters, bodies and long descriptions they
share. A test compares these paths with the app's router, so a route cannot be added without being
described."""

from __future__ import annotations

from typing import Any

from engine.jobs import JOB_ID
from http_gateway.accounts import MIN_PASSWORD_LENGTH
from http_gateway.openapi.common import _json, _op, _ref
from http_gateway.routes.fonts import FONT_ID, MAX_FONT_BYTES
from http_gateway.routes.styles import MAX_NAME, PRESETS, STYLE_ID

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

MCP_DESCRIPTION = """\
The MCP server (Model Context Protocol, streamable HTTP) for agents: one JSON-RPC 2.0 message per
POST, answered with one JSON reply (stateless: no Mcp-Session-Id, no GET stream). Tools:
create_clips (a video URL + ProcessOptions), get_job, list_jobs, list_clips, get_clip_file,
cancel_job, on the key's account with the REST routes' ownership rules. API keys only (a browser
session is 403). Refusals before the body is a JSON-RPC message are `{"error": …}`; after that the
reply is MCP's: a JSON-RPC error (400; 404 for an unknown method on the 2026-07-28 revision), and
a tool that cannot run answers a result with `isError`. Notifications are accepted with 202."""
#: what POST /mcp takes: a JSON-RPC message; with an id it is a request (200), without one a notification (202)
MCP_MESSAGE = {"type": "object", "required": ["jsonrpc", "method"], "properties": {
    "jsonrpc": {"const": "2.0"}, "id": {"description": "a string or an integer: a request; absent: a notification"},
    "method": {"type": "string", "description": "e.g. initialize, tools/list, tools/call"},
    "params": {"type": ["object", "null"]}}}
MCP_REPLY = {"type": "object", "required": ["jsonrpc"], "properties": {
    "jsonrpc": {"const": "2.0"}, "id": {"type": ["string", "integer", "null"]}, "result": {"type": "object"},
    "error": {"type": "object", "required": ["code", "message"],
              "properties": {"code": {"type": "integer"}, "message": {"type": "string"}}}}}


JOB_ID_PARAM = {"name": "jobId", "in": "path", "required": True,
                "schema": {"type": "string", "pattern": f"^{JOB_ID.pattern}$"}}
CLIP_INDEX_PARAM = {"name": "index", "in": "path", "required": True,
                    "schema": {"type": "integer", "minimum": 1, "maximum": 99}, "description": "1 = clip_01"}

FONT_ID_PARAM = {"name": "fontId", "in": "path", "required": True,
                 "schema": {"type": "string", "pattern": f"^{FONT_ID}$"}}
STYLE_ID_PARAM = {"name": "styleId", "in": "path", "required": True,
                  "schema": {"type": "string", "pattern": f"^{STYLE_ID}$"}}
#: POST/PUT/PATCH /api/styles' body
STYLE_INPUT: dict[str, Any] = {"type": "object", "additionalProperties": False, "properties": {
    "name": {"type": "string", "minLength": 1, "maxLength": MAX_NAME, "pattern": r"\S",
             "description": "display text: printable characters, not only spaces"},
    "style": _ref("CaptionStyleOptions"),
    "captionPreset": {"anyOf": [{"enum": list(PRESETS)}, {"type": "null"}]}}}


CHECKOUT_URL = {"type": "object", "required": ["url"], "properties": {"url": {"type": "string", "format": "uri"},
                                                                   "id": {"type": "string"}}}
CREDENTIALS = {"type": "object", "required": ["email", "password"],
               "properties": {"email": {"type": "string", "format": "email"},
                              "password": {"type": "string", "minLength": MIN_PASSWORD_LENGTH}}}



def path_table() -> dict[str, Any]:
    j, auth, keys, ops = "jobs", "auth", "keys", "operations"
    return {
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
                                             "csrfToken": {"type": "string"}, "usage": _ref("Usage")}})},
            tag=auth, errors=(401, 403))},
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
        "/api/billing/usage": {"get": _op("Your plan, this month's minutes used and left, the limits",
                                          {"200": _json(_ref("Usage"))}, tag="billing", errors=(401, 403))},
        "/api/billing/checkout": {"post": _op(
            "A Stripe Checkout Session for a paid plan (session only; 404 with billing off)",
            {"200": _json(CHECKOUT_URL)}, tag="billing", errors=(400, 401, 403, 404, 408, 413, 503),
            session_only=True, requestBody={"required": True, "content": {"application/json": {"schema": {
                "type": "object", "required": ["plan"], "properties": {"plan": {"enum": ["creator", "business"]}}}}}})},
        "/api/billing/portal": {"post": _op(
            "A Stripe Customer Portal session (session only; 409 before a first checkout; 404 with billing off)",
            {"200": _json(CHECKOUT_URL)}, tag="billing", errors=(401, 403, 404, 409, 503), session_only=True)},
        "/api/billing/webhook": {"post": _op(
            "Stripe's signed events (Stripe-Signature); applied once per event id (404 with billing off)",
            {"200": _json({"type": "object", "properties": {"received": {"type": "boolean"},
                                                           "duplicate": {"type": "boolean"},
                                                           "applied": {"type": "boolean"}}})},
            tag="billing", errors=(400, 404, 408, 413), security=False,
            parameters=[{"name": "Stripe-Signature", "in": "header", "required": True,
                         "schema": {"type": "string", "minLength": 1}}],
            requestBody={"required": True, "content": {"application/json": {"schema": {"type": "object"}}}})},
        "/api/webhooks": {
            "get": _op("Your webhook endpoints (session only; secrets are never listed)", {"200": _json({
                "type": "object", "properties": {
                    "endpoints": {"type": "array", "items": _ref("WebhookEndpoint")},
                    "signingSecret": {"type": "object", "properties": {"exists": {"type": "boolean"}}}}})},
                tag="webhooks", errors=(401, 403), session_only=True),
            "post": _op("Add a webhook endpoint; its `secret` (whsec_…) is returned once. The URL must pass "
                        "the URL-ingest policy (400 with the reason)",
                        {"201": _json({"allOf": [_ref("WebhookEndpoint"), {"type": "object", "properties": {
                            "secret": {"type": "string"}}}]}, "Created")},
                        tag="webhooks", errors=(400, 401, 403, 408, 409, 413), session_only=True,
                        requestBody={"required": True, "content": {"application/json": {"schema": {
                            "type": "object", "required": ["url"], "properties": {
                                "url": {"type": "string", "format": "uri", "maxLength": 2048},
                                "description": {"type": "string", "maxLength": 100}}}}}}),
        },
        "/api/webhooks/signing-secret": {"post": _op(
            "A new signing secret for jobs' webhookUrl deliveries (returned once; the old one stops at once)",
            {"201": _json({"type": "object", "properties": {"secret": {"type": "string"}}}, "Created")},
            tag="webhooks", errors=(401, 403), session_only=True)},
        "/api/webhooks/{endpointId}": {"delete": _op(
            "Remove a webhook endpoint (its pending deliveries too)", {"200": _json({
                "type": "object", "properties": {"deleted": {"type": "string"}}})},
            tag="webhooks", errors=(401, 403, 404), session_only=True,
            parameters=[{"name": "endpointId", "in": "path", "required": True,
                         "schema": {"type": "string", "pattern": "^[0-9a-f]{16}$"}}])},
        "/api/fonts": {
            "get": _op("Your uploaded caption fonts", {"200": _json({"type": "object", "required": ["fonts"],
                       "properties": {"fonts": {"type": "array", "items": _ref("Font")}}})},
                       tag="styles", errors=(401, 403)),
            "post": _op(f"Upload a caption font (TTF/OTF, at most {MAX_FONT_BYTES} bytes); 201 with the font",
                        {"201": _json(_ref("Font"), "Created")}, tag="styles", errors=(400, 401, 403, 408, 409, 413),
                        description="The content decides: one TrueType or OpenType font, parsed with fontTools and "
                        "opened with FreeType (never executed), with glyphs for basic Latin letters and digits; "
                        "collections, WOFF and anything else are 400. Multipart (a `font` file field) or the raw "
                        "file as the body. 409 past 20 fonts per account.",
                        requestBody={"required": True, "content": {
                            "multipart/form-data": {"schema": {"type": "object", "required": ["font"], "properties": {
                                "font": {"type": "string", "format": "binary"}}}},
                            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}),
        },
        "/api/fonts/{fontId}": {
            "get": _op("One of your fonts", {"200": _json(_ref("Font"))}, tag="styles", errors=(401, 403, 404),
                       parameters=[FONT_ID_PARAM]),
            "delete": _op("Delete a font (409 while a saved style names it); jobs already rendered keep their pixels",
                          {"200": _json({"type": "object", "properties": {"deleted": {"type": "string"}}})},
                          tag="styles", errors=(401, 403, 404, 409), parameters=[FONT_ID_PARAM]),
        },
        "/api/fonts/{fontId}/file": {"get": _op(
            "The font's file", {"200": {"description": "the TTF/OTF file", "content": {
                "font/ttf": {"schema": {"type": "string", "format": "binary"}},
                "font/otf": {"schema": {"type": "string", "format": "binary"}}}}},
            tag="styles", errors=(401, 403, 404), parameters=[FONT_ID_PARAM])},
        "/api/styles": {
            "get": _op("Your saved caption styles", {"200": _json({"type": "object", "required": ["styles"],
                       "properties": {"styles": {"type": "array", "items": _ref("SavedStyle")}}})},
                       tag="styles", errors=(401, 403)),
            "post": _op("Save a caption style (a job names it as captionStyleId); 201 with it",
                        {"201": _json(_ref("SavedStyle"), "Created")}, tag="styles",
                        errors=(400, 401, 403, 408, 409, 413),
                        description="`style` is a captionStyle object, validated as a job's is (400 naming "
                        "`style.<field>`); `style.font` may be one of your uploaded fonts. 409 past 50 styles.",
                        requestBody={"required": True, "content": {"application/json": {"schema": {
                            **STYLE_INPUT, "required": ["name", "style"]}}}}),
        },
        "/api/styles/{styleId}": {
            "get": _op("One of your saved styles", {"200": _json(_ref("SavedStyle"))}, tag="styles",
                       errors=(401, 403, 404), parameters=[STYLE_ID_PARAM]),
            "patch": _op("Change a saved style: the fields given (style replaced whole); jobs already submitted keep "
                         "the style they were given", {"200": _json(_ref("SavedStyle"))}, tag="styles",
                         errors=(400, 401, 403, 404, 408, 413), parameters=[STYLE_ID_PARAM],
                         requestBody={"required": True, "content": {"application/json": {"schema": STYLE_INPUT}}}),
            "put": _op("Replace a saved style (name and style; captionPreset null when left out)",
                       {"200": _json(_ref("SavedStyle"))}, tag="styles", errors=(400, 401, 403, 404, 408, 413),
                       parameters=[STYLE_ID_PARAM], requestBody={"required": True, "content": {"application/json": {
                           "schema": {**STYLE_INPUT, "required": ["name", "style"]}}}}),
            "delete": _op("Delete a saved style (jobs that used it keep their copy)",
                          {"200": _json({"type": "object", "properties": {"deleted": {"type": "string"}}})},
                          tag="styles", errors=(401, 403, 404), parameters=[STYLE_ID_PARAM]),
        },
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
                    "application/x-subrip": {"schema": {"type": "string"}},
                    "text/vtt": {"schema": {"type": "string"}},
                    "application/json": {"schema": _ref("Manifest")}}},
                "206": {"description": "Partial content (Range)"},
                "304": {"description": "Not modified (If-None-Match / If-Modified-Since)"},
                "416": {"description": "Range not satisfiable: `{\"error\": …}` with Content-Range: bytes */size",
                        "content": {"application/json": {"schema": _ref("Error")}}}},
            tag=j, errors=(401, 403, 404),
            parameters=[JOB_ID_PARAM, {"name": "filename", "in": "path", "required": True, "schema": {
                "type": "string", "pattern": r"^(clip_\d{2}(\.v\d{1,4})?\.(mp4|jpg|ass|srt|vtt)|manifest\.json)$"},
                "description": "clip_NN.mp4 (the clip, video/mp4), clip_NN.jpg (its poster), clip_NN.ass "
                               "(the styled caption track, text/x-ssa), clip_NN.srt (SubRip, "
                               "application/x-subrip), clip_NN.vtt (WebVTT with a `<hh:mm:ss.ttt>` "
                               "timestamp before each word after a cue's first, text/vtt), manifest.json. "
                               "The three caption files hold the same cues (one per caption group) on the "
                               "clip's own timeline; with captionPreset none nothing is burned in but they "
                               "still hold the words. Text files are UTF-8. A re-rendered clip's earlier "
                               "versions stay as clip_NN.vK.* until the job is deleted; its current files "
                               "are served no-cache (their bytes changed), and immutable under the "
                               "manifest's ?v=N URLs."}])},
        "/api/clips/{jobId}/{index}/edit": {"get": _op(
            "What an editor of clip {index} needs: its window, version, edit, options and the words around it",
            {"200": _json(_ref("ClipEditor"))}, tag=j, errors=(401, 403, 404),
            parameters=[JOB_ID_PARAM, CLIP_INDEX_PARAM])},
        "/api/clips/{jobId}/{index}/render": {"post": _op(
            "Render clip {index} again with edits, as a job of its own (progress on /ws?jobId=<its id>); "
            "when it completes the clip's files and manifest entry are the new version's",
            {"200": _json(_ref("RenderResponse"))}, tag=j, errors=(400, 401, 403, 404, 408, 409, 413, 503),
            description="Any of the ClipEdit fields; those left out keep what the clip has now (edits "
                        "accumulate). `captionStyleId` (a saved style, /api/styles) may be sent too: it is copied "
                        "into captionStyle (and its captionPreset, unless the edit sets one). The job's cached "
                        "analysis is reused: no transcription, and faces are detected only where the window grows. "
                        "404 while the job is not completed or has no such clip; 409 while a render of this clip is "
                        "queued or running.",
            parameters=[JOB_ID_PARAM, CLIP_INDEX_PARAM],
            requestBody={"required": True, "content": {"application/json": {"schema": _ref("ClipEdit")}}})},
        "/ws": {"get": _op(
            "Job progress over WebSocket", {"101": {"description": "Switching protocols"}}, tag=j,
            errors=(400, 401, 403, 404, 429), description=WS_DESCRIPTION,
            parameters=[{"name": "jobId", "in": "query", "required": True,
                         "schema": {"type": "string", "pattern": f"^{JOB_ID.pattern}$"}}])},
        "/mcp": {"post": {**_op(
            "MCP server (streamable HTTP): one JSON-RPC message in, one JSON reply out", {
                "200": {"description": "The JSON-RPC reply: a result, or a JSON-RPC error for the request",
                        "content": {"application/json": {"schema": MCP_REPLY},
                                    "text/event-stream": {"schema": {"type": "string"}}}},
                "202": {"description": "A notification (or a response) accepted; no body"},
                "400": {"description": "Not JSON (`{\"error\"}`), or not a valid JSON-RPC/MCP message (a JSON-RPC "
                                       "error)", "content": {"application/json": {"schema": {
                                           "anyOf": [_ref("Error"), MCP_REPLY]}}}},
                "404": {"description": "Unknown method (2026-07-28 revision): a JSON-RPC error",
                        "content": {"application/json": {"schema": MCP_REPLY}}},
                "406": _json(_ref("Error"), "The Accept header does not admit application/json"),
                "415": _json(_ref("Error"), "The body is not application/json")},
            tag="mcp", errors=(401, 403, 408, 413, 503), description=MCP_DESCRIPTION,
            requestBody={"required": True, "content": {"application/json": {"schema": MCP_MESSAGE}}}),
            "security": [{"apiKey": []}, {"bearer": []}]}},
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
