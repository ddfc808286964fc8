"""/api/openapi.json: the OpenAPI 3.1 document of every route, maintained by hand.

A test compares the paths here with the app's router, so a route cannot be added without
being described. ProcessOptions' schema is generated from the pydantic model (one definition).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from engine.edits import ClipEdit
from engine.jobs import JOB_ID
from engine.options import ProcessOptions
from http_gateway.accounts import MIN_PASSWORD_LENGTH
from http_gateway.routes.fonts import COVERAGE, FONT_ID, MAX_FONT_BYTES
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
CLIP_INDEX_PARAM = {"name": "index", "in": "path", "required": True,
                    "schema": {"type": "integer", "minimum": 1, "maximum": 99}, "description": "1 = clip_01"}


def _model_schemas(name: str, model: Any) -> dict[str, Any]:
    """A pydantic model and the models it nests (CaptionStyleOptions, WordFix) as components, their refs
    into #/components/schemas."""
    schema = model.model_json_schema(by_alias=True, ref_template="#/components/schemas/{model}")
    nested = schema.pop("$defs", {})
    return {name: schema, **nested}


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


def _schemas() -> dict[str, Any]:
    nullable_int = {"type": ["integer", "null"]}
    return {
        "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}},
        **_model_schemas("ProcessOptions", ProcessOptions),
        **_model_schemas("ClipEdit", ClipEdit),
        "Font": {"type": "object", "required": ["id", "family", "style", "format", "sizeBytes", "coverage"],
                 "description": "An uploaded caption font (captionStyle.font names it by id)", "properties": {
                     "id": {"type": "string", "pattern": f"^{FONT_ID}$"}, "family": {"type": "string"},
                     "style": {"type": "string", "description": "the subfamily: Regular, Bold, Black …"},
                     "fullName": {"type": "string"}, "format": {"enum": ["truetype", "opentype"]},
                     "sizeBytes": {"type": "integer"}, "glyphs": {"type": "integer"},
                     "coverage": {"type": "array", "items": {"enum": list(COVERAGE)},
                                  "description": "the Unicode ranges it has every letter of (basic-latin always)"},
                     "originalName": {"type": "string"}, "createdAt": {"type": "integer"},
                     "fileUrl": {"type": "string", "description": "GET it for the file (the web app's preview)"}}},
        "SavedStyle": {"type": "object", "required": ["id", "name", "style", "captionPreset"], "properties": {
            "id": {"type": "string", "pattern": f"^{STYLE_ID}$"}, "name": {"type": "string"},
            "style": _ref("CaptionStyleOptions"),
            "captionPreset": {"anyOf": [{"enum": list(PRESETS)}, {"type": "null"}],
                              "description": "the preset a job using it gets unless it sets captionPreset"},
            "createdAt": {"type": "integer"}, "updatedAt": {"type": "integer"}}},
        "RenderResponse": {
            "type": "object", "required": ["jobId", "parentJobId", "clipIndex", "status", "wsUrl", "edit"],
            "properties": {"jobId": {"type": "string", "description": "the render's own job id"},
                           "parentJobId": {"type": "string"}, "clipIndex": {"type": "integer"},
                           "status": {"enum": ["queued"]}, "wsUrl": {"type": "string"},
                           "edit": {**_ref("ClipEdit"), "description": "the edit the render applies: this "
                                    "request merged over the clip's current edit"}}},
        "ClipEditor": {
            "type": "object", "description": "What a clip editor shows: the clip as published, the options it "
            "renders with, the transcript's words around it (with the indices corrections name) and its renders",
            "required": ["jobId", "index", "version", "start", "end", "span", "edit", "options", "words", "renders"],
            "properties": {
                "jobId": {"type": "string"}, "index": {"type": "integer"}, "version": {"type": "integer"},
                "start": {"type": "number"}, "end": {"type": "number"}, "duration": {"type": "number"},
                "sourceDuration": {"type": "number"},
                "span": {"type": "array", "items": {"type": "number"}, "description": "the job's trimmed span"},
                "edit": _ref("ClipEdit"), "options": {"type": "object"},
                "limits": {"type": "object", "properties": {"minSeconds": {"type": "number"},
                                                            "maxSeconds": {"type": "number"}}},
                "words": {"type": "array", "items": {"type": "object", "required": ["index", "start", "end", "text"],
                          "properties": {"index": {"type": "integer"}, "start": {"type": "number"},
                                         "end": {"type": "number"}, "text": {"type": "string"},
                                         "heard": {"type": "string", "description": "a corrected word: what "
                                                   "the speech recognition heard"}}}},
                "renders": {"type": "array", "items": {"type": "object"}}}},
        "UploadResponse": {
            "type": "object", "required": ["jobId", "originalName", "sizeBytes", "wsUrl", "options"],
            "properties": {"jobId": {"type": "string"}, "originalName": {"type": "string"},
                           "sizeBytes": {"type": "integer"}, "wsUrl": {"type": "string"},
                           "options": _ref("ProcessOptions"),
                           "webhookSecret": {"type": "string", "description": "the account's signing secret "
                                             "(whsec_…) for webhookUrl deliveries: only in the response of the "
                                             "first job that asks for a webhookUrl"}}},
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
                "updatedAt": {"type": "integer"}, "startedAt": nullable_int, "finishedAt": nullable_int,
                "kind": {"enum": ["render"], "description": "a clip re-render (POST /api/clips/{jobId}/{index}/"
                         "render); absent for a job made from a video. GET /api/jobs lists only those"},
                "parentJobId": {"type": "string", "description": "a render: the job whose clip it renders"},
                "clipIndex": {"type": "integer", "description": "a render: which clip"},
                "webhooks": {"type": "array", "items": _ref("WebhookDelivery"),
                             "description": "GET /api/jobs/{jobId} only: the job's webhook deliveries"}}},
        "JobList": {"type": "object", "required": ["jobs"],
                    "properties": {"jobs": {"type": "array", "items": _ref("Job")}}},
        "Clip": {
            "type": "object",
            "properties": {
                "index": {"type": "integer"}, "start": {"type": "number"}, "end": {"type": "number"},
                "duration": {"type": "number"}, "score": {"type": "number"}, "transcript": {"type": "string"},
                "downloadUrl": {"type": "string"}, "posterUrl": {"type": "string"},
                "captionsUrl": {"type": "string", "description": "clip_NN.ass, the styled caption track"},
                "srtUrl": {"type": "string", "description": "clip_NN.srt: the same cues as SubRip"},
                "vttUrl": {"type": "string", "description": "clip_NN.vtt: the same cues as WebVTT, with "
                           "per-word timestamps"},
                "cropPath": {
                    "type": "array", "minItems": 1,
                    "description": "The rendered framing as keyframes in source pixels: at clip time t "
                                   "(seconds of the clip's own timeline, after any splicing) the output "
                                   "frame shows the source window x, y, w, h (scaled to fill the output; "
                                   "a window of the whole source whose aspect differs from the output's "
                                   "is fitted over a blurred fill). Interpolate x and y linearly in t "
                                   "between neighbouring keyframes, at each output frame's time k / fps, "
                                   "and round: that is the rendered window within 1 px. Two keyframes "
                                   "with the same window are a hold, two one frame apart a cut; the "
                                   "first is at t = 0 and the last at the clip's last frame. Split layout "
                                   "(framing.layout split): x, y, w, h is the top pane, scaled into the "
                                   "output's top half, and `bottom` the bottom pane's window, scaled into "
                                   "the bottom half, interpolated the same way. Per-shot layouts "
                                   "(framing.shots): a keyframe's w, h are those of its shot, the whole "
                                   "source frame in a fit shot (fitted to the output width over a "
                                   "blurred fill), with `bottom` in split shots; a cut between shots is "
                                   "two keyframes one frame apart.",
                    "items": {"type": "object", "required": ["t", "x", "y", "w", "h"], "properties": {
                        "t": {"type": "number", "minimum": 0}, "x": {"type": "integer", "minimum": 0},
                        "y": {"type": "integer", "minimum": 0}, "w": {"type": "integer", "minimum": 1},
                        "h": {"type": "integer", "minimum": 1},
                        "bottom": {"type": "object", "required": ["x", "y", "w", "h"],
                                   "description": "split layout only: the bottom pane's window",
                                   "properties": {k: {"type": "integer", "minimum": 0}
                                                  for k in ("x", "y", "w", "h")}}}}},
                "aspectRatio": {"type": "string"},
                "version": {"type": "integer", "minimum": 2, "description": "a re-rendered clip's version (absent: "
                            "1, as the job made it); its URLs then carry ?v=<version>"},
                "edit": {**_ref("ClipEdit"), "description": "a re-rendered clip: every edit made to it so far"},
                "versions": {"type": "array", "description": "a re-rendered clip's earlier versions, oldest first: "
                             "version, start, end, duration, aspectRatio, their files' URLs (clip_NN.vK.*) and "
                             "the edit that made each", "items": {"type": "object"}},
                "metadata": {"type": "object", "properties": {
                    "title": {"type": "string"}, "viral_hook": {"type": "string"},
                    "key_insight": {"type": "string"}, "dominant_emotion": {"type": "string"},
                    "hashtags": {"type": "array", "items": {"type": "string"}},
                    "viral_score": {"type": "number"}}},
                "provider": {"type": "string", "description": "who chose this moment: local, gemini or openai"},
                "scoreBreakdown": {"type": "object", "additionalProperties": {"type": "number"},
                                   "description": "the score's parts (hook, completeness, energy, relevance, …)"},
                "segments": {"type": "array", "items": {"type": "array", "items": {"type": "number"}},
                             "description": "source [start, end] pieces that play, when something was cut "
                                            "out (the host's turns: removeAiVoice; pauses: removeSilence; "
                                            "fillers: removeFillers); absent otherwise"},
                "framing": {"type": "object", "description": "how the camera framed the clip: layout "
                            "(single, follow or split; shots when its shots were laid out differently; fit "
                            "when every shot was shown whole), per speaker the linked faceTrack and "
                            "confidence, and `shots`",
                            "properties": {
                                "shots": {"type": "array", "description": "the clip's shots, from one hard "
                                          "cut to the next (cuts are found on the exact frame; the camera "
                                          "re-frames on the cut frame and never pans across one): start and "
                                          "end in seconds of the clip's own timeline (after any splicing) "
                                          "and the layout the shot got: face (a crop following a face or "
                                          "the active speaker), split (two stacked panes), fit (no "
                                          "reliable face - graphics, slides, B-roll, wide shots - or, on "
                                          "9:16, two speakers too far apart for one crop: the whole frame "
                                          "at the output width over a blurred, darkened fill, captions "
                                          "below the picture) or full (an output that shows every frame "
                                          "whole anyway)",
                                          "items": {"type": "object", "required": ["start", "end", "layout"],
                                                    "properties": {
                                                        "start": {"type": "number", "minimum": 0},
                                                        "end": {"type": "number", "minimum": 0},
                                                        "layout": {"type": "string",
                                                                   "enum": ["face", "split", "fit", "full"]}}}}}}}},
        "Manifest": {"type": "object", "required": ["jobId", "duration", "clipCount", "clips"],
                     "properties": {"jobId": {"type": "string"}, "duration": {"type": "number"},
                                    "clipCount": {"type": "integer"},
                                    "clips": {"type": "array", "items": _ref("Clip")},
                                    "requestedClips": {"type": "integer"},
                                    "notes": {"type": "array", "items": {"type": "string"},
                                              "description": "why fewer clips than asked, fallbacks, …"},
                                    "options": _ref("ProcessOptions"),
                                    "language": {"type": "object", "description": "the language the words were "
                                                 "transcribed in", "properties": {
                                                     "code": {"type": "string", "description": "ISO 639-1"},
                                                     "requested": {"type": "string",
                                                                   "description": "options.language"},
                                                     "detected": {"type": "boolean", "description": "true: the "
                                                                  "multilingual model detected it (language auto)"},
                                                     "probability": {"type": ["number", "null"], "description":
                                                                     "the model's probability for it; null when "
                                                                     "not detected"}}},
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
        "Usage": {"type": "object", "required": ["plan", "period", "minutesUsed", "minutesLeft", "limits"],
                  "properties": {
                      "plan": {"type": "string"}, "period": {"type": "string", "description": "YYYY-MM (UTC)"},
                      "minutesUsed": {"type": "number", "description": "source minutes (trimmed) of this month's "
                                      "jobs: completed ones and those still running"},
                      "minutesLeft": {"type": "number"}, "renewsAt": nullable_int,
                      "limits": {"type": "object"}, "billing": {"enum": ["off", "stripe"]}}},
        "WebhookEndpoint": {"type": "object", "properties": {
            "id": {"type": "string"}, "url": {"type": "string"}, "description": {"type": "string"},
            "events": {"type": "array", "items": {"enum": ["job.completed", "job.failed"]}},
            "createdAt": {"type": "integer"}, "status": {"enum": ["active", "disabled"]},
            "disabledAt": nullable_int, "disabledReason": {"type": ["string", "null"]}}},
        "WebhookDelivery": {"type": "object", "description": "one event to one receiver: tried until a 2xx "
                            "(delivered), a 410 (disabled) or CLIPORA_WEBHOOK_MAX_AGE_S (failed)", "properties": {
            "id": {"type": "string", "description": "the webhook-id header, the same on every attempt"},
            "event": {"enum": ["job.completed", "job.failed"]}, "url": {"type": "string"},
            "endpointId": {"type": ["string", "null"], "description": "null: the job's own webhookUrl"},
            "status": {"enum": ["pending", "delivered", "failed", "disabled"]},
            "attempts": {"type": "integer"}, "lastStatus": nullable_int, "lastError": {"type": ["string", "null"]},
            "nextAttemptAt": nullable_int, "createdAt": {"type": "integer"}, "finishedAt": nullable_int,
            "log": {"type": "array", "items": {"type": "object", "properties": {
                "attempt": {"type": "integer"}, "at": {"type": "integer"}, "status": nullable_int,
                "error": {"type": ["string", "null"]}, "durationMs": {"type": "integer"}}}}}},
        "Plan": {"type": "object", "properties": {
            "id": {"type": "string"}, "name": {"type": "string"}, "priceMonthly": {"type": "integer"},
            "currency": {"type": "string"}, "limits": {"type": "object"}}},
    }


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
