"""/api/clips/{jobId} (the manifest, once completed) and /api/clips/{jobId}/{filename} (artifacts).

Artifacts are served with Range support (browsers seek in the mp4) and long cache lifetimes:
a completed job's files never change. They need auth, so caches must keep them private.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp import web

from engine.jobs import JobRecord, JobStatus
from engine.service import JobService
from http_gateway.auth import require_user
from http_gateway.config import SERVICE
from http_gateway.errors import NotFoundError, RangeNotSatisfiable
from http_gateway.routes.jobs import NO_STORE, owned_job

CONTENT_TYPES = {
    ".mp4": "video/mp4",
    ".jpg": "image/jpeg",
    ".ass": "text/x-ssa; charset=utf-8",
    ".srt": "application/x-subrip; charset=utf-8",
    ".vtt": "text/vtt; charset=utf-8",
    ".json": "application/json",
}
IMMUTABLE = "private, max-age=31536000, immutable"


def _ready(job: JobRecord) -> None:
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
        "Cache-Control": IMMUTABLE,
        "Accept-Ranges": "bytes",
        "Content-Disposition": f'inline; filename="{filename}"',
    }
    return web.FileResponse(path, headers=headers)


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


def setup(app: web.Application) -> None:
    app.router.add_get("/api/clips/{jobId}", get_manifest)
    app.router.add_get("/api/clips/{jobId}/{filename}", get_artifact)
