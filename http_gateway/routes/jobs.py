"""/api/jobs: the caller's jobs (newest first), one job, and deleting one.

Every id route (jobs, clips, files, WebSocket) resolves its job through :func:`owned_job`:
an unknown id is 404, another account's job is 403.
"""

from __future__ import annotations

from aiohttp import web

from engine.events import JobEvent
from engine.jobs import JOB_ID, JobRecord
from http_gateway.auth import Principal, require_user
from http_gateway.config import SERVICE
from http_gateway.errors import Forbidden, NotFoundError
from http_gateway.shapes import job_json

NO_STORE = {"Cache-Control": "no-store"}


async def owned_job(request: web.Request, job_id: str, principal: Principal) -> JobRecord:
    job = await request.config_dict[SERVICE].get(job_id) if JOB_ID.fullmatch(job_id) else None
    if job is None:
        raise NotFoundError("job not found")
    if job.owner_id != principal.user_id:
        raise Forbidden("this job belongs to another account")
    return job


async def list_jobs(request: web.Request) -> web.Response:
    principal = require_user(request)
    jobs = await request.config_dict[SERVICE].list_for(principal.user_id)
    jobs = sorted(jobs, key=lambda j: j.created_at, reverse=True)
    return web.json_response({"jobs": [job_json(j) for j in jobs]}, headers=NO_STORE)


async def get_job(request: web.Request) -> web.Response:
    principal = require_user(request)
    job = await owned_job(request, request.match_info["jobId"], principal)
    return web.json_response(job_json(job), headers=NO_STORE)


async def delete_job(request: web.Request) -> web.Response:
    principal = require_user(request)
    job = await owned_job(request, request.match_info["jobId"], principal)
    service = request.config_dict[SERVICE]
    await service.delete(job.id)
    if not job.terminal:
        # WebSocket watchers would otherwise wait for an end that never comes
        service.bus.publish(JobEvent(job.id, "failed", status="failed", message="the job was deleted",
                                     extra={"error": "the job was deleted"}))
    return web.json_response({"deleted": job.id}, headers=NO_STORE)


def setup(app: web.Application) -> None:
    app.router.add_get("/api/jobs", list_jobs)
    app.router.add_get("/api/jobs/{jobId}", get_job)
    app.router.add_delete("/api/jobs/{jobId}", delete_job)
