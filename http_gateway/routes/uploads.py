"""POST /api/upload: a multipart video (streamed to disk, counted, probed) becomes a queued job.

The body is never held in memory: the ``video`` part is copied in chunks into a temporary file
in the service's uploads folder and the gateway counts the bytes itself, so the limit holds
whatever Content-Length says (chunked uploads have none). Past the limit: 413 and the partial
file is removed. The container is decided by probing the content; the client's file name is
only display text and never reaches a path.

An upload that sends no byte for CLIPORA_UPLOAD_IDLE_TIMEOUT_S is dropped (408, file removed),
and an account streams at most CLIPORA_MAX_UPLOADS_PER_USER uploads at once (more: 429).
"""

from __future__ import annotations

import secrets
import unicodedata
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import HttpProcessingError

from engine.options import ProcessOptions
from engine.types import MediaInfo
from http_gateway.admission import admit, check_source_minutes, record_job
from http_gateway.auth import require_user
from http_gateway.bodies import loads, receiving
from http_gateway.config import SERVICE, SETTINGS
from http_gateway.errors import BadRequest, PayloadTooLarge
from http_gateway.ingest import PROBE_COMMAND, probe_untrusted
from http_gateway.plans import PLANS_KEY, Plan
from http_gateway.ratelimit import ConcurrencyCap
from http_gateway.routes.styles import resolve_caption_style

CHUNK = 256 * 1024
MAX_OPTIONS_BYTES = 64 * 1024
MULTIPART_SLACK = 1024 * 1024  # boundaries, part headers and the options part around the video
MAX_NAME = 255

#: uploads streaming at once, per account
UPLOADING: web.AppKey[ConcurrencyCap] = web.AppKey("uploading", ConcurrencyCap)


def display_name(filename: str | None) -> str:
    """The client's file name as display text: no path parts, no control characters, <= 255.

    Percent-escapes are decoded first: browsers escape quotes and line breaks that way and
    aiohttp's client escapes everything, so an escaped "/" must still count as a path part.
    """
    name = unquote(filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if unicodedata.category(c)[0] != "C").strip()
    if not name.strip(". "):  # "." and ".." name directories, not files
        return "upload"
    return name[:MAX_NAME]


def container_ext(info: MediaInfo) -> str:
    """mp4 for the ISO/QuickTime family (one demuxer reads MP4 and MOV), mkv or webm for Matroska."""
    formats = set(info.container.split(","))
    if "matroska" in formats or "webm" in formats:
        return "webm" if info.video_codec in {"vp8", "vp9", "av1"} else "mkv"
    return "mp4"


def _too_large(limit: int, plan: Plan | None = None) -> PayloadTooLarge:
    if plan is not None and limit == plan.max_upload_bytes:
        return PayloadTooLarge(f"upload too large: your plan ({plan.name}) allows {limit} bytes")
    return PayloadTooLarge(f"upload too large: the limit is {limit} bytes")


async def _save_video(part: BodyPartReader, path: Path, limit: int, plan: Plan | None = None) -> int:
    size = 0
    with path.open("wb") as out:
        while chunk := await part.read_chunk(CHUNK):
            size += len(chunk)
            if size > limit:
                raise _too_large(limit, plan)
            # a blocking write of 256 KiB is short; a thread per chunk would cost more than it saves
            out.write(chunk)
    return size


async def _read_options(part: BodyPartReader) -> dict[str, Any]:
    raw = bytearray()
    while chunk := await part.read_chunk(8192):
        raw += chunk
        if len(raw) > MAX_OPTIONS_BYTES:
            raise BadRequest("options is too large")
    text = raw.decode("utf-8", errors="replace").strip()
    if not text:
        return {}
    data = loads(text, "options must be a JSON object, e.g. {\"numClips\": 3}")
    if not isinstance(data, dict):
        raise BadRequest("options must be a JSON object, e.g. {\"numClips\": 3}")
    return data


async def _read_form(request: web.Request, path: Path, limit: int,
                     plan: Plan | None = None) -> tuple[int | None, str, dict[str, Any]]:
    """(video bytes or None when absent, display name, raw options) from the multipart body.

    The plan's checks need the options, so an options part that comes first is checked before
    the video is read (browsers and the CLI send it first); one after the video, once it is in."""
    size: int | None = None
    name = "upload"
    raw_options: dict[str, Any] = {}
    try:
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                raise BadRequest("nested multipart bodies are not accepted")
            if part.name == "video" and size is None:
                name = display_name(part.filename)
                size = await _save_video(part, path, limit, plan)
            elif part.name == "options":
                raw_options = await _read_options(part)
                if size is None and plan is not None:  # before the video: refuse it before it is sent
                    request.config_dict[PLANS_KEY].check_clips(
                        plan, ProcessOptions.from_json(raw_options).num_clips)
            else:
                await part.release()  # unknown fields are read past, not stored
    except (ValueError, AssertionError, HttpProcessingError):  # aiohttp's parser on a malformed body/part header
        raise BadRequest("malformed multipart/form-data body") from None
    return size, name, raw_options


async def upload(request: web.Request) -> web.Response:
    principal = require_user(request)
    cap = request.config_dict[UPLOADING]
    with cap.hold(principal.user_id, f"at most {cap.per_key} uploads at once per account; wait for one to finish", 5):
        return await _upload(request, principal.user_id)


async def _upload(request: web.Request, user_id: str) -> web.Response:
    settings = request.config_dict[SETTINGS]
    service = request.config_dict[SERVICE]
    plan = await request.config_dict[PLANS_KEY].plan_of(user_id)
    limit = request.config_dict[PLANS_KEY].upload_limit(plan)
    if request.content_length is not None and request.content_length > limit + MULTIPART_SLACK:
        raise _too_large(limit, plan)
    if not request.content_type.startswith("multipart/"):
        raise BadRequest("video file required (send multipart/form-data with a 'video' file field)")
    # refuse before the client spends an upload on a queue that cannot take it
    await service.check_capacity(user_id)  # the same check submit makes once the file is here

    service.uploads_dir.mkdir(parents=True, exist_ok=True)
    path = service.uploads_dir / f"{secrets.token_hex(16)}.part"
    try:
        async with receiving(request, idle_s=settings.upload_idle_timeout_s):
            size, name, raw_options = await _read_form(request, path, limit, plan)
        if size is None:
            raise BadRequest("video file required")
        options = ProcessOptions.from_json(raw_options)  # InvalidOptions (400) names the field
        options = await resolve_caption_style(request.config_dict, user_id, options)  # captionStyleId, fonts
        admission = await admit(request.config_dict, user_id, options)  # 403 plan, 400 webhookUrl
        # InvalidMedia (400) when it is not a usable video, a media bomb, or too long
        info = await probe_untrusted(request.config_dict[PROBE_COMMAND], path, settings.probe_timeout_s,
                                     settings.max_duration_s)
        minutes = await check_source_minutes(request.config_dict, user_id, admission, info.duration, options)
        job = await service.submit(user_id, path, name, size, options, container_ext(info))
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    body = {
        "jobId": job.id,
        "originalName": job.original_name,
        "sizeBytes": job.size_bytes,
        "wsUrl": f"/ws?jobId={job.id}",
        "options": options.to_json(),
    }
    if secret := await record_job(request.config_dict, job.id, user_id, options, minutes):
        body["webhookSecret"] = secret  # the account's signing secret, created for this job: shown once
    return web.json_response(body, headers={"Cache-Control": "no-store"})


def setup(app: web.Application) -> None:
    app[UPLOADING] = ConcurrencyCap(app[SETTINGS].max_uploads_per_user)
    app.router.add_post("/api/upload", upload)
