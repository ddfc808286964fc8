"""GET /ws?jobId=: a job's progress, live.

Auth is the same as the REST routes (cookie or API key) and is checked, with ownership, before
the upgrade, so refusals are ordinary JSON errors (400/401/403/404). Messages (JSON text frames):

    {"type": "status",    "jobId", "status", "stage", "progress", "message"}   first, then on changes
    {"type": "progress",  "jobId", "stage", "progress": 0.0-1.0, "message"}
    {"type": "completed", "jobId", "status": "completed", "message", "clipCount"}   then close
    {"type": "failed",    "jobId", "status": "failed", "message", "error"}          then close

Several clients may watch one job; each gets every event. The server closes after the final
message (or with 1001 when it shuts down).

Bounded: an account holds at most CLIPORA_MAX_SOCKETS_PER_USER sockets at once (more: 429 before
the upgrade), and each socket buffers at most ``QUEUE_BOUND`` undelivered events: a client that
reads slower than its job progresses is disconnected (it can reconnect and gets the current
state first), never buffered without end.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from aiohttp import WSMsgType, web

from engine.events import JobEvent
from engine.jobs import JobRecord, JobStatus, clips_ready
from http_gateway.auth import origin_matches, require_user
from http_gateway.config import SERVICE, SETTINGS
from http_gateway.errors import BadRequest, Forbidden
from http_gateway.ratelimit import ConcurrencyCap
from http_gateway.routes.jobs import JOB_ID, owned_job
from http_gateway.shapes import event_json


class OpenSockets(set[web.WebSocketResponse]):
    """The app's open WebSockets, closed with 1001 on shutdown."""


SOCKETS: web.AppKey[OpenSockets] = web.AppKey("sockets", OpenSockets)
#: open sockets per account
WATCHING: web.AppKey[ConcurrencyCap] = web.AppKey("watching", ConcurrencyCap)
#: events waiting for one socket's client before it is dropped as too slow
QUEUE_BOUND = 256
RECHECK_S = 15.0  # with no event for this long, re-read the row (the job may have ended elsewhere)


def snapshot(job: JobRecord) -> dict[str, Any]:
    return {"type": "status", "jobId": job.id, "status": job.status.value, "stage": job.stage,
            "progress": round(job.progress, 4), "message": job.message}


def final_message(job: JobRecord) -> dict[str, Any]:
    if job.status == JobStatus.COMPLETED:
        return {"type": "completed", "jobId": job.id, "status": "completed",
                "message": clips_ready(job.clip_count), "clipCount": job.clip_count or 0}
    return {"type": "failed", "jobId": job.id, "status": "failed", "message": job.error or "failed",
            "error": job.error or "failed"}


async def _until_closed(ws: web.WebSocketResponse) -> None:
    async for msg in ws:  # clients have nothing to say; this only notices them leave
        if msg.type == WSMsgType.ERROR:
            return


async def watch(request: web.Request) -> web.WebSocketResponse:
    job_id = request.query.get("jobId", "")
    if not JOB_ID.fullmatch(job_id):
        raise BadRequest("jobId query parameter required" if not job_id else "jobId is not a valid job id")
    principal = require_user(request)
    # A browser sends the session cookie with a WebSocket handshake from any page: without this
    # check another site could watch a signed-in user's jobs (cross-site WebSocket hijacking).
    if principal.via == "session" and origin_matches(request) is False:
        raise Forbidden("cross-site WebSocket rejected: Origin does not match this host")
    job = await owned_job(request, job_id, principal)
    ws = web.WebSocketResponse(heartbeat=30.0)
    if not ws.can_prepare(request).ok:
        raise BadRequest("a WebSocket upgrade is required (Connection: Upgrade, Upgrade: websocket)")
    cap = request.config_dict[WATCHING]
    with cap.hold(principal.user_id, f"at most {cap.per_key} open WebSockets per account; close one first", 5):
        return await _stream(request, job, ws)


async def _stream(request: web.Request, job: JobRecord, ws: web.WebSocketResponse) -> web.WebSocketResponse:
    service = request.config_dict[SERVICE]
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[JobEvent] = asyncio.Queue(QUEUE_BOUND)
    # subscribe before reading the state, so no event falls between the snapshot and the stream

    def enqueue(event: JobEvent) -> None:
        try:
            queue.put_nowait(event)
        except asyncio.QueueFull:  # the client is not reading: drop it (its pending sends included)
            transport = request.transport
            if transport is not None and not transport.is_closing():
                transport.abort()

    def deliver(event: JobEvent) -> None:  # may be called from a worker thread
        loop.call_soon_threadsafe(enqueue, event)

    unsubscribe = service.subscribe(job.id, deliver)
    reader: asyncio.Task[None] | None = None
    try:
        await ws.prepare(request)
        request.config_dict[SOCKETS].add(ws)
        job = await service.get(job.id) or job
        await ws.send_json(snapshot(job))
        if job.terminal:
            await ws.send_json(final_message(job))
            return ws
        floor = job.progress
        reader = asyncio.create_task(_until_closed(ws))
        while True:
            getter = asyncio.ensure_future(queue.get())
            done, _ = await asyncio.wait({getter, reader}, timeout=RECHECK_S,
                                         return_when=asyncio.FIRST_COMPLETED)
            if reader in done:  # the client left
                getter.cancel()
                return ws
            if getter not in done:
                getter.cancel()
                current = await service.get(job.id)
                if current is None:
                    await ws.send_json({"type": "failed", "jobId": job.id, "status": "failed",
                                        "message": "the job was deleted", "error": "the job was deleted"})
                    return ws
                if current.terminal:
                    await ws.send_json(final_message(current))
                    return ws
                continue
            event = getter.result()
            if event.type == "progress" and event.progress < floor:
                continue  # queued before the snapshot: older than what the client already saw
            floor = event.progress if event.type == "progress" else 0.0 if event.status == "queued" else floor
            await ws.send_json(event_json(event))
            if event.type in ("completed", "failed"):
                return ws
    except ConnectionError:  # the client went away (or was dropped as too slow)
        return ws
    finally:
        unsubscribe()
        request.config_dict[SOCKETS].discard(ws)
        if not ws.closed and ws.prepared:
            with contextlib.suppress(Exception):
                await ws.close()  # also ends the reader: aiohttp hands it the close
        if reader is not None:
            reader.cancel()
            await asyncio.wait({reader}, timeout=1.0)


async def _close_sockets(app: web.Application) -> None:
    sockets = app[SOCKETS]
    for ws in list(sockets):
        with contextlib.suppress(Exception):
            await ws.close(code=1001, message=b"server shutting down")


def setup(app: web.Application) -> None:
    app[SOCKETS] = OpenSockets()
    app[WATCHING] = ConcurrencyCap(app[SETTINGS].max_sockets_per_user)
    app.on_shutdown.append(_close_sockets)
    app.router.add_get("/ws", watch)
