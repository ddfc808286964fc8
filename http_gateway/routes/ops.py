"""Operations: /healthz (the process answers), /readyz (the pipeline takes work), /metrics.

Prometheus metrics live in a registry per app (tests start several apps in one process):
jobs by status and the queue depth are read from the database at scrape time; stage
durations are measured from the job event stream; HTTP requests are counted by route
template (never the raw path, which would carry job ids).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from engine.events import JobEvent
from engine.jobs import JobStatus
from engine.service import JobService
from http_gateway.config import SERVICE, SETTINGS
from http_gateway.middleware import CLIENT_CLOSED_REQUEST

STAGE_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800)


class GatewayMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.jobs = Gauge("clipora_jobs", "Jobs in the database by status", ["status"],
                          registry=self.registry)
        self.queue_depth = Gauge("clipora_queue_depth", "Jobs queued and waiting for a worker",
                                 registry=self.registry)
        self.running = Gauge("clipora_jobs_running", "Jobs running in this process", registry=self.registry)
        self.ready = Gauge("clipora_pipeline_ready", "1 when the pipeline takes work", registry=self.registry)
        self.stage_seconds = Histogram("clipora_stage_duration_seconds", "Wall time of one pipeline stage",
                                       ["stage"], buckets=STAGE_BUCKETS, registry=self.registry)
        self.jobs_finished = Counter("clipora_jobs_finished", "Jobs that ended, by outcome", ["status"],
                                     registry=self.registry)
        self.http_requests = Counter("clipora_http_requests", "HTTP requests by route and status",
                                     ["method", "route", "status"], registry=self.registry)
        self._lock = threading.Lock()
        self._current: dict[str, tuple[str, float]] = {}  # job id -> (stage, started at)

    def on_event(self, event: JobEvent) -> None:
        """Fed every job event: a stage ends when the next one starts or the job ends."""
        now = time.monotonic()
        with self._lock:
            current = self._current.get(event.job_id)
            if event.type == "progress":
                if current is None or current[0] != event.stage:
                    if current is not None:
                        self.stage_seconds.labels(current[0]).observe(now - current[1])
                    self._current[event.job_id] = (event.stage, now)
                return
            if event.type in ("completed", "failed") or (event.type == "status" and event.status == "queued"):
                if current is not None:
                    del self._current[event.job_id]
                    if event.type == "completed":  # an interrupted stage's time says nothing
                        self.stage_seconds.labels(current[0]).observe(now - current[1])
                if event.type != "status":
                    self.jobs_finished.labels(event.type).inc()

    async def refresh(self, service: JobService) -> None:
        stats = await service.stats()
        counts = stats["jobs"]
        for status in JobStatus:
            self.jobs.labels(status.value).set(counts.get(status.value, 0))
        self.queue_depth.set(counts.get(JobStatus.QUEUED.value, 0))
        self.running.set(stats["running"])
        self.ready.set(1 if service.ready else 0)


METRICS: web.AppKey[GatewayMetrics] = web.AppKey("metrics", GatewayMetrics)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def route_label(request: web.Request) -> str:
    route = request.match_info.route
    resource = route.resource if route is not None else None
    return resource.canonical if resource is not None else "unmatched"


@web.middleware
async def metrics_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Outermost: it sees the final status of every response, errors included."""
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    except asyncio.CancelledError:  # aiohttp cancels a handler whose client left (handler_cancellation)
        status = CLIENT_CLOSED_REQUEST
        raise
    finally:
        metrics = request.config_dict.get(METRICS)
        if metrics is not None:
            metrics.http_requests.labels(request.method, route_label(request), str(status)).inc()


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"}, headers={"Cache-Control": "no-store"})


async def _ray_answers(address: str, timeout_s: float = 1.0) -> str | None:
    """None when the Ray head's GCS port accepts a connection; else why jobs wait."""
    from engine.ray_executor import parse_address

    host, port = parse_address(address)
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout_s)
    except (OSError, TimeoutError):
        return f"the Ray cluster at {address} does not answer; jobs wait in the queue until it does"
    writer.close()
    return None


async def readyz(request: web.Request) -> web.Response:
    service = request.config_dict[SERVICE]
    if not service.ready:
        return web.json_response({"error": "the processing pipeline is not running"}, status=503,
                                 headers={"Cache-Control": "no-store"})
    # a gateway that cannot reach the job store takes no uploads: a load balancer sends them elsewhere
    if (why := await service.store_answers()) is not None:
        return web.json_response({"error": why}, status=503, headers={"Cache-Control": "no-store"})
    settings = request.config_dict[SETTINGS]
    if settings.executor == "ray" and (why := await _ray_answers(settings.ray_address)) is not None:
        return web.json_response({"error": why}, status=503, headers={"Cache-Control": "no-store"})
    return web.json_response({"status": "ready"}, headers={"Cache-Control": "no-store"})


async def metrics(request: web.Request) -> web.Response:
    gauges = request.config_dict[METRICS]
    await gauges.refresh(request.config_dict[SERVICE])
    body = generate_latest(gauges.registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST, "Cache-Control": "no-store"})


def setup(app: web.Application) -> None:
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
