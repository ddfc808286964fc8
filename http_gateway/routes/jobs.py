"""/api/jobs: the caller's jobs (newest first), one job, and deleting one.

Every id route (jobs, clips, files, WebSocket) resolves its job through :func:`owned_job`:
an unknown id is 404, another account's job is 403.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from engine.events import JobEvent
from engine.jobs import JOB_ID, JobRecord
from engine.service import JobService
from http_gateway.auth import Principal, require_user
from http_gateway.config import SERVICE
from http_gateway.errors import Forbidden, NotFoundError
from http_gateway.shapes import job_json
from http_gateway.webhooks import NOTIFIER

NO_STORE = {"Cache-Control": "no-store"}


async def owned_job(request: web.Request, job_id: str, principal: Principal) -> JobRecord:
    return await job_of(request.config_dict[SERVICE], job_id, principal.user_id)


async def job_of(service: JobService, job_id: str, user_id: str) -> JobRecord:
    """The job, if ``user_id`` owns it: NotFoundError (404) or Forbidden (403) otherwise (the MCP tools too)."""
    job = await service.get(job_id) if JOB_ID.fullmatch(job_id) else None
    if job is None:
        raise NotFoundError("job not found")
    if job.owner_id != user_id:
        raise Forbidden("this job belongs to another account")
    return job


async def list_jobs(request: web.Request) -> web.Response:
    principal = require_user(request)
    return web.json_response(await jobs_list(request.config_dict[SERVICE], principal.user_id), headers=NO_STORE)


async def jobs_list(service: JobService, user_id: str) -> dict[str, list[dict[str, Any]]]:
    """GET /api/jobs's body (and MCP's list_jobs): the account's jobs, newest first."""
    jobs = sorted(await service.list_for(user_id), key=lambda j: j.created_at, reverse=True)
    return {"jobs": [job_json(j) for j in jobs]}


async def get_job(request: web.Request) -> web.Response:
    principal = require_user(request)
    job = await owned_job(request, request.match_info["jobId"], principal)
    return web.json_response(await job_detail(request.app, job), headers=NO_STORE)


async def job_detail(app: web.Application | None, job: JobRecord) -> dict[str, Any]:
    """GET /api/jobs/{id}'s body (and MCP's get_job): the job, with its webhook deliveries where the
    app has a notifier."""
    body = job_json(job)
    if app is not None and (notifier := app.get(NOTIFIER)) is not None:
        body["webhooks"] = await notifier.deliveries_of(job.id)  # each receiver: status, attempts, log
    return body


async def delete_job(request: web.Request) -> web.Response:
    principal = require_user(request)
    job = await owned_job(request, request.match_info["jobId"], principal)
    return web.json_response(await delete(request.config_dict[SERVICE], job), headers=NO_STORE)


async def delete(service: JobService, job: JobRecord) -> dict[str, str]:
    """Cancel ``job`` if it runs, remove it and its files: DELETE /api/jobs/{id} (and MCP's cancel_job)."""
    await service.delete(job.id)
    if not job.terminal:
        # WebSocket watchers would otherwise wait for an end that never comes
        service.bus.publish(JobEvent(job.id, "failed", status="failed", message="the job was deleted",
                                     extra={"error": "the job was deleted"}))
    return {"deleted": job.id}


def setup(app: web.Application) -> None:
    app.router.add_get("/api/jobs", list_jobs)
    app.router.add_get("/api/jobs/{jobId}", get_job)
    app.router.add_delete("/api/jobs/{jobId}", delete_job)
