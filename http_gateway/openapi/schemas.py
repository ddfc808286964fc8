"""components.schemas: every object the routes take or answer with. ProcessOptions' and ClipEdit's are
generated from their pydantic models (one definition); the rest are written here."""

from __future__ import annotations

from typing import Any

from engine.edits import ClipEdit
from engine.options import ProcessOptions
from http_gateway.openapi.common import _model_schemas, _ref
from http_gateway.routes.fonts import COVERAGE, FONT_ID
from http_gateway.routes.styles import PRESETS, STYLE_ID


def component_schemas() -> dict[str, Any]:
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
                "clipRetries": {"type": "array", "description": "clip tasks run again after their node or worker "
                                "was lost (CLIPORA_EXECUTOR=ray), oldest first, over every attempt",
                                "items": {"type": "object", "properties": {
                                    "clip": {"type": "integer"}, "try": {"type": "integer"},
                                    "attempt": {"type": "integer"}, "node": {"type": ["string", "null"]},
                                    "reason": {"type": "string"}, "at": {"type": "integer"}}}},
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
