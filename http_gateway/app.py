"""The app factory: ``create_app(settings)`` wires accounts, the job service and every route.

State lives under ``web.AppKey``s (config.SETTINGS, config.SERVICE, auth.ACCOUNTS, DATABASE,
ops.METRICS). The database engine and the job service are built here but only started in the
cleanup context (migrations, executor recovery and dispatchers), and stopped there on shutdown:
running jobs are interrupted and handed back to the queue, so a restart picks them up.

Middlewares, outermost first: metrics (observes the final status) -> errors -> security
headers -> CSRF -> auth.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import sys
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

from aiohttp import web

from engine.db import Database
from engine.executor import JobFunction
from engine.service import JobService
from engine.workers import ProcessExecutor
from http_gateway import auth, openapi
from http_gateway.accounts import AccountStore
from http_gateway.admission import WEBHOOK_TARGETS
from http_gateway.bodies import JSON_BODY_LIMIT
from http_gateway.config import SERVICE, SETTINGS, GatewaySettings
from http_gateway.ingest import PROBE_COMMAND
from http_gateway.middleware import error_middleware, security_headers_middleware
from http_gateway.plans import PLANS_KEY, Plans
from http_gateway.routes import clips, fonts, jobs, mcp, ops, pages, styles, upload_url, uploads, webhooks, ws
from http_gateway.webhooks import NOTIFIER, Notifier

log = logging.getLogger("clipora.gateway")
#: the most one part of the engine (webhooks, pipeline, database) may take to stop at shutdown; the
#: pipeline's own grace for running jobs and worker processes (10-12 s) fits well within it
STOP_STEP_S = 30.0

DATABASE: web.AppKey[Database] = web.AppKey("database", Database)


def database_for(settings: GatewaySettings) -> Database:
    return Database(settings.database_url) if settings.database_url else Database.sqlite_in(settings.data_dir)


def create_app(settings: GatewaySettings, run: JobFunction | None = None,
               worker_command: Sequence[str] | None = None) -> web.Application:
    """The gateway, given how jobs run (by the composition root: ``clipora serve``, or a test).

    ``worker_command`` starts one worker process (``settings.workers`` of them run; the gateway
    never decodes a frame); else ``run`` is the job function, run in threads of this process.
    """
    app = web.Application(
        middlewares=[ops.metrics_middleware, error_middleware, security_headers_middleware,
                     auth.csrf_middleware, auth.auth_middleware],
        client_max_size=JSON_BODY_LIMIT,
    )
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = database_for(settings)
    if worker_command is not None and settings.workers > 0:
        command = list(worker_command)
        service = JobService(db, settings.data_dir, queue_bound=settings.queue_bound,
                             max_jobs_per_user=settings.max_jobs_per_user, executor=lambda store, bus:
                             ProcessExecutor(store, bus, command, settings.workers, settings.executor_config(),
                                             embedded=db.is_sqlite))
    elif run is not None:
        service = JobService(db, settings.data_dir, run, executor_config=settings.executor_config(),
                             queue_bound=settings.queue_bound, max_jobs_per_user=settings.max_jobs_per_user)
    else:
        raise ValueError("create_app needs a job function or a worker command")
    metrics = ops.GatewayMetrics()
    app[SETTINGS] = settings
    app[DATABASE] = db
    app[SERVICE] = service
    app[ops.METRICS] = metrics
    app[auth.ACCOUNTS] = AccountStore(db)
    app[PLANS_KEY] = Plans(db, settings.billing, settings.default_plan, settings.max_upload_bytes)
    app[auth.TRUST_PROXY] = settings.proxies()
    # untrusted files are probed by the probe stage in a child process (killable, sandboxed by
    # FFmpeg whitelists); the factory names it so the routes never import a stage
    app[PROBE_COMMAND] = (sys.executable, "-m", "stages.media.probe")
    app[pages.FONTS_DIR] = Path(str(importlib.util.find_spec("stages").origin)).parent / "fonts"  # type: ignore[union-attr]

    auth.setup_routes(app)
    uploads.setup(app)
    upload_url.setup(app)  # downloads stop on shutdown, before the engine does
    policy, resolver = app[WEBHOOK_TARGETS]
    app[NOTIFIER] = Notifier(service, app[PLANS_KEY], policy, retry_s=settings.webhook_retry_s,
                             timeout_s=settings.webhook_timeout_s, max_age_s=settings.webhook_max_age_s,
                             poll_s=settings.webhook_poll_s, public_url=settings.public_url, resolver=resolver)
    webhooks.setup(app)
    jobs.setup(app)
    clips.setup(app)
    fonts.setup(app)  # /api/fonts: uploaded caption fonts
    styles.setup(app)  # /api/styles: saved caption styles (captionStyleId)
    ws.setup(app)
    mcp.setup(app)  # POST /mcp: the MCP server (streamable HTTP), for API keys
    ops.setup(app)
    openapi.setup(app)
    pages.setup(app)  # the web app (HTML pages + static assets) over the routes above
    app.cleanup_ctx.append(_engine)
    return app


async def _engine(app: web.Application) -> AsyncIterator[None]:
    db, service = app[DATABASE], app[SERVICE]
    unsubscribe = service.bus.subscribe(app[ops.METRICS].on_event)  # every job's events
    await service.start()
    app[NOTIFIER].start()  # settles ended jobs (usage, webhooks) and delivers; catches up after a restart
    log.info("pipeline started", extra={"data_dir": str(app[SETTINGS].data_dir)})
    try:
        yield
    finally:
        unsubscribe()
        # each part gets a bounded time to stop, so one that hangs cannot keep the process from exiting
        for name, stopping in (("webhooks", app[NOTIFIER].stop), ("pipeline", service.stop), ("database", db.close)):
            try:
                await asyncio.wait_for(stopping(), STOP_STEP_S)
            except TimeoutError:
                log.error("%s did not stop within %g s; going on without it", name, STOP_STEP_S)
        log.info("pipeline stopped")
