"""/api/clips/{jobId} (the manifest, once completed), /api/clips/{jobId}/{filename} (artifacts), and a
clip's re-render: GET /api/clips/{jobId}/{index}/edit (what an editor shows) and POST
/api/clips/{jobId}/{index}/render (render it again with edits, as a job of its own).

Artifacts are served with Range support (browsers seek in the mp4) and long cache lifetimes. A
re-render replaces a clip's files, so the manifest's URLs of a re-rendered clip carry ``?v=N``: that
URL's bytes never change (immutable); the bare name of a clip that has been re-rendered is served
``no-cache`` (revalidated by its ETag), and each earlier version stays at ``clip_NN.vK.*``. They need
auth, so caches must keep them private.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from aiohttp import web

from engine.edits import ClipEdit
from engine.jobs import JobRecord, JobStatus
from engine.service import JobService
from http_gateway.auth import require_user
from http_gateway.bodies import json_object
from http_gateway.config import SERVICE
from http_gateway.errors import NotFoundError, RangeNotSatisfiable
from http_gateway.routes.jobs import NO_STORE, owned_job
from http_gateway.routes.styles import resolve_edit_style

CONTENT_TYPES = {
    ".mp4": "video/mp4",
    ".jpg": "image/jpeg",
    ".ass": "text/x-ssa; charset=utf-8",
    ".srt": "application/x-subrip; charset=utf-8",
    ".vtt": "text/vtt; charset=utf-8",
    ".json": "application/json",
}
IMMUTABLE = "private, max-age=31536000, immutable"
REVALIDATE = "private, no-cache"
#: a clip's number in a path: ASCII digits only (str.isdigit also takes "²" and "١")
CLIP_INDEX = re.compile(r"[0-9]{1,2}")
#: a re-render's request body (the edit: a few fields and at most 2000 corrected words)
EDIT_BODY_LIMIT = 256 * 1024


def _ready(job: JobRecord) -> None:
    if job.is_render:
        raise NotFoundError(f"a clip render has no clips of its own: its clip is in /api/clips/{job.parent_id}")
    if job.status != JobStatus.COMPLETED:
        raise NotFoundError(f"clips are not ready (status: {job.status.value})")


async def get_manifest(request: web.Request) -> web.Response:
    principal = require_user(request)
    job = await owned_job(request, request.match_info["jobId"], principal)
    return web.json_response(await manifest_of(request.config_dict[SERVICE], job), headers=NO_STORE)


async def manifest_of(service: JobService, job: JobRecord) -> dict[str, Any]:
    """The job's manifest, or NotFoundError naming its status while it is not completed (MCP's list_clips too)."""
    _ready(job)
    manifest = await service.manifest(job.id)
    if manifest is None:
        raise NotFoundError(f"clips are not ready (status: {job.status.value})")
    return manifest


async def get_artifact(request: web.Request) -> web.FileResponse:
    principal = require_user(request)
    job = await owned_job(request, request.match_info["jobId"], principal)
    filename = request.match_info["filename"]
    path = artifact_of(request.config_dict[SERVICE], job, filename)
    _check_range(request, path.stat().st_size)
    headers = {
        "Content-Type": CONTENT_TYPES[path.suffix],
        "Cache-Control": IMMUTABLE if "v" in request.query or not _edited(path) else REVALIDATE,
        "Accept-Ranges": "bytes",
        "Content-Disposition": f'inline; filename="{filename}"',
    }
    return web.FileResponse(path, headers=headers)


def _edited(path: Path) -> bool:
    """Whether ``path`` is the current file of a clip that has been rendered again (its name's bytes change)."""
    stem = path.name.split(".")[0]
    return path.name.count(".") == 1 and stem.startswith("clip_") and (path.parent / f"{stem}.v1.mp4").exists()


def artifact_of(service: JobService, job: JobRecord, filename: str) -> Path:
    """A completed job's published file: NotFoundError while not completed, and for any other name."""
    _ready(job)
    return service.artifact(job.id, filename)  # NotFound for any other name


def _check_range(request: web.Request, size: int) -> None:
    """A Range that no byte of the file satisfies is a JSON 416 (aiohttp's own would carry the file's
    Content-Type and cache headers over an empty body)."""
    try:
        wanted = request.http_range
    except ValueError:
        raise RangeNotSatisfiable("malformed Range header", size) from None
    start = wanted.start
    if start is not None and (start >= size if start >= 0 else size == 0):
        raise RangeNotSatisfiable(f"range starts past the end of the file ({size} bytes)", size)


def _index(request: web.Request) -> int:
    raw = request.match_info["index"]
    if not CLIP_INDEX.fullmatch(raw) or not 1 <= int(raw) <= 99:
        raise NotFoundError("clip not found")
    return int(raw)


async def get_edit(request: web.Request) -> web.Response:
    """What a clip editor needs: the clip's window, version, edit, options, words and renders."""
    principal = require_user(request)
    job = await owned_job(request, request.match_info["jobId"], principal)
    _ready(job)
    return web.json_response(await request.config_dict[SERVICE].edit_context(job, _index(request)),
                             headers=NO_STORE)


async def post_render(request: web.Request) -> web.Response:
    """Render clip {index} again with the body's edits (engine.edits.ClipEdit): a job of its own, whose
    progress the WebSocket carries; when it completes the clip's files and manifest entry are the new
    version's."""
    principal = require_user(request)
    job = await owned_job(request, request.match_info["jobId"], principal)
    index = _index(request)
    _ready(job)
    body = await json_object(request, limit=EDIT_BODY_LIMIT)
    # captionStyleId and an uploaded captionStyle.font, as at submit (http_gateway.routes.styles)
    body = await resolve_edit_style(request.config_dict, principal.user_id, body)
    render = await render_clip(request.config_dict[SERVICE], job, index, body)
    return web.json_response(render, headers=NO_STORE)


async def render_clip(service: JobService, job: JobRecord, index: int, body: dict[str, Any]) -> dict[str, Any]:
    """Queue the re-render (POST .../render's body and the CLI's): 400 for a bad edit, 404 for no such
    clip, 409 while the clip renders already, 429/503 as for uploads."""
    edit = ClipEdit.from_json(body)
    render = await service.submit_render(job, index, edit)
    return {"jobId": render.id, "parentJobId": job.id, "clipIndex": index, "status": render.status.value,
            "wsUrl": f"/ws?jobId={render.id}", "edit": render.options.get("edit", {})}


def setup(app: web.Application) -> None:
    app.router.add_get("/api/clips/{jobId}", get_manifest)
    app.router.add_get("/api/clips/{jobId}/{filename}", get_artifact)
    app.router.add_get("/api/clips/{jobId}/{index}/edit", get_edit)
    app.router.add_post("/api/clips/{jobId}/{index}/render", post_render)
