"""POST /api/upload/url: a video by URL becomes a job that is ``downloading`` until the file is here.

``{"url": "https://…", "options": {…}}`` is checked against the URL policy (400 with the reason
when the URL itself or its host's addresses are refused), a job is created in ``downloading``
and the response comes at once. A background task then fetches the file: a direct media link
with aiohttp, anything else with yt-dlp behind the policy proxy (see ``url_fetch``), with the
upload size limit, connect/read/total timeouts and progress events (``bytes``, ``totalBytes``,
fraction) on the job's WebSocket. The file is probed like an upload (``ingest``) and handed to
the engine: the job goes ``queued`` and runs as an upload would. Any failure fails the job with
the reason; partial files are always removed. The task holds the row's lease while it runs, so
a server that dies mid-download has the job failed with a reason on restart, never stuck.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import secrets
import shutil
import time
from dataclasses import replace
from typing import Any
from urllib.parse import unquote

from aiohttp import web
from aiohttp.abc import AbstractResolver

from engine.errors import PermanentError
from engine.jobs import JobRecord
from engine.options import ProcessOptions
from engine.service import JobService
from http_gateway.admission import WEBHOOK_TARGETS, Admission, AppState, admit, record_job
from http_gateway.auth import Principal, require_user
from http_gateway.bodies import JSON_BODY_LIMIT, json_object
from http_gateway.config import SERVICE, SETTINGS, GatewaySettings
from http_gateway.errors import BadRequest, Forbidden, ServiceUnavailable, TooManyRequests
from http_gateway.ingest import PROBE_COMMAND, probe_untrusted
from http_gateway.plans import PLANS_KEY, Plans, trimmed_minutes
from http_gateway.routes.styles import resolve_caption_style
from http_gateway.routes.uploads import container_ext, display_name
from http_gateway.url_fetch import FetchLimits, fetch_direct, fetch_with_ytdlp
from http_gateway.url_policy import Pins, UrlPolicy, UrlRefused, resolve_checked

log = logging.getLogger("clipora.upload_url")

PUBLISH_S = 0.25  # progress events at most this often
WRITE_S = 1.0  # the row (progress + lease) at most this often


class Downloads:
    """The download tasks of this gateway, by job id."""

    def __init__(self, service: JobService, settings: GatewaySettings, probe_command: tuple[str, ...],
                 plans: Plans, resolver: AbstractResolver | None = None):
        self.service = service
        self.probe_command = probe_command
        self.policy = UrlPolicy(settings.url_allowlist, settings.url_ports)
        self.limits = FetchLimits(settings.max_upload_bytes, settings.fetch_connect_timeout_s,
                                  settings.fetch_read_timeout_s, settings.fetch_total_timeout_s,
                                  settings.fetch_max_redirects)
        self.settings = settings
        self.plans = plans
        self.resolver = resolver  # tests pass a stub DNS; None = the system resolver
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.owners: dict[str, str] = {}  # job id -> user id, while its download runs
        # yt-dlp holds a thread for a whole download: its own bounded pool, never the loop's
        # default one (name lookups, password hashing)
        self.pool = concurrent.futures.ThreadPoolExecutor(settings.max_downloads, thread_name_prefix="clipora-ytdlp")

    def check_capacity(self, user_id: str) -> None:
        """429 past the per-user bound, 503 past the gateway's; checked before a job is created."""
        mine = sum(1 for owner in self.owners.values() if owner == user_id)
        if mine >= self.settings.max_downloads_per_user:
            raise TooManyRequests(f"{mine} of your downloads are still running; wait for one to finish",
                                  retry_after=30)
        if len(self.tasks) >= self.settings.max_downloads:
            raise ServiceUnavailable("too many downloads are running; try again in a minute")

    def start(self, job_id: str, url: str, user_id: str, admission: Admission, options: ProcessOptions) -> None:
        task = asyncio.create_task(self._run(job_id, url, user_id, admission, options), name=f"download-{job_id}")
        self.tasks[job_id] = task
        self.owners[job_id] = user_id

        def done(_: asyncio.Task[None]) -> None:
            self.tasks.pop(job_id, None)
            self.owners.pop(job_id, None)

        task.add_done_callback(done)

    async def close(self, app: web.Application | None = None) -> None:
        """Shutdown: stop every download (their rows are failed with a reason at the next start)."""
        for task in list(self.tasks.values()):
            task.cancel()
        if self.tasks:
            await asyncio.wait(list(self.tasks.values()), timeout=40)
        self.pool.shutdown(wait=False, cancel_futures=True)

    async def _run(self, job_id: str, url: str, user_id: str, admission: Admission, options: ProcessOptions) -> None:
        service = self.service
        limits = replace(self.limits, max_bytes=min(self.limits.max_bytes, admission.upload_limit))
        service.uploads_dir.mkdir(parents=True, exist_ok=True)
        token = secrets.token_hex(16)
        part = service.uploads_dir / f"{token}.part"
        workdir = service.uploads_dir / f"{token}.ytdlp"
        state: dict[str, Any] = {"done": 0, "total": None}

        def progress(done: int, total: int | None) -> None:  # also from yt-dlp's thread: plain stores
            state["done"], state["total"] = done, total

        main = asyncio.current_task()
        reporter = asyncio.create_task(self._report(job_id, state, main))
        try:
            try:
                async with asyncio.timeout(limits.total_timeout_s):
                    fetched = await fetch_direct(url, part, self.policy, limits, progress, self.resolver)
                    if fetched is None:  # a page, not a media file: a site link for yt-dlp
                        workdir.mkdir()
                        fetched = await fetch_with_ytdlp(url, workdir, self.policy, limits, progress,
                                                         self.resolver, pool=self.pool)
            except TimeoutError:
                raise PermanentError(f"the download took longer than {limits.total_timeout_s:g} s") from None
            reporter.cancel()
            await service.download_progress(job_id, fetched.size, fetched.size, write=False)
            info = await probe_untrusted(self.probe_command, fetched.path, self.settings.probe_timeout_s,
                                         self.settings.max_duration_s)
            try:
                minutes = trimmed_minutes(info.duration, options.to_json())
                await self.plans.check_minutes(user_id, admission.plan, minutes)
            except Forbidden as exc:
                raise PermanentError(exc.message) from None
            ext = container_ext(info)
            name = display_name(fetched.title.replace("/", " ")) if fetched.title else "video"
            if not name.lower().endswith(f".{ext}"):
                name = f"{name[:250]}.{ext}"
            await self.plans.reserve(job_id, user_id, minutes)
            if not await service.finish_download(job_id, fetched.path, name, fetched.size, ext):
                await self.plans.forget(job_id)
        except PermanentError as exc:  # refused, HTTP error, timeout, too large, not a video
            log.info("download failed: %s", exc.message, extra={"job_id": job_id})
            await service.fail_download(job_id, exc.message)
        except asyncio.CancelledError:
            raise  # deleted, or the server stops: the row is gone or recovered at the next start
        except Exception:
            log.exception("download crashed", extra={"job_id": job_id})
            await service.fail_download(job_id, "internal error while downloading the video")
        finally:
            reporter.cancel()
            part.unlink(missing_ok=True)
            await asyncio.to_thread(shutil.rmtree, workdir, True)

    async def _report(self, job_id: str, state: dict[str, Any], main: asyncio.Task[Any] | None) -> None:
        """Publish progress, renew the lease; stop the download when the row is no longer ours."""
        seen: tuple[int, int | None] = (-1, None)
        last_write = 0.0
        while True:
            await asyncio.sleep(PUBLISH_S)
            now = time.monotonic()
            current = (int(state["done"]), state["total"])
            write = now - last_write >= WRITE_S
            if current == seen and not write:
                continue
            seen = current
            if write:
                last_write = now
            try:
                ours = await self.service.download_progress(job_id, current[0], current[1], write=write)
            except Exception:  # a database blip: try again at the next tick
                log.exception("could not record download progress", extra={"job_id": job_id})
                continue
            if not ours and main is not None:
                main.cancel()
                return


DOWNLOADS: web.AppKey[Downloads] = web.AppKey("downloads", Downloads)


def _name_from_url(url: str) -> str:
    path = url.split("?", 1)[0].split("#", 1)[0]
    segment = unquote(path.rstrip("/").rsplit("/", 1)[-1]) if path.count("/") > 2 else ""
    return display_name(segment) if segment else "video"


async def submit_url(app: AppState, principal: Principal, url: str, options: ProcessOptions) -> JobRecord:
    """A job for ``principal`` that downloads ``url`` and then runs with ``options``: what
    POST /api/upload/url does once its body is read (the MCP server's create_clips too).

    Raises the route's errors: 400 (URL refused, host unresolvable), 429/503 (capacity)."""
    service = app[SERVICE]
    downloads = app[DOWNLOADS]
    if not service.ready:
        raise ServiceUnavailable("the processing pipeline is not running")
    admission = await admit(app, principal.user_id, options)  # 403 plan, 400 webhookUrl
    await app[PLANS_KEY].check_minutes_left(principal.user_id, admission.plan)  # the length is known later
    target = downloads.policy.check_url(url)  # UrlRefused (400): scheme, userinfo, port, IP literal
    try:  # a name whose addresses are refused is decided now; connect time checks again
        await asyncio.wait_for(resolve_checked(downloads.policy, target, Pins(), downloads.resolver),
                               downloads.limits.connect_timeout_s)
    except UrlRefused:
        raise
    except (OSError, TimeoutError):
        raise BadRequest(f"could not resolve the host {target.host}") from None
    downloads.check_capacity(principal.user_id)
    job = await service.create_download(principal.user_id, url, _name_from_url(url), options)
    downloads.start(job.id, url, principal.user_id, admission, options)
    return job


async def upload_url(request: web.Request) -> web.Response:
    principal = require_user(request)
    if request.content_type != "application/json":
        raise BadRequest('send a JSON body: {"url": "https://…", "options": {…}}')
    body = await json_object(request, limit=JSON_BODY_LIMIT, not_json="the body is not valid JSON",
                             not_object='the body must be a JSON object: {"url": "https://…", "options": {…}}')
    url = body.get("url")
    if not isinstance(url, str) or not url.strip():
        raise BadRequest("url required")
    raw_options = body.get("options")
    if raw_options is not None and not isinstance(raw_options, dict):
        raise BadRequest('options must be a JSON object, e.g. {"numClips": 3}')
    options = ProcessOptions.from_json(raw_options or {})  # InvalidOptions (400) names the field
    options = await resolve_caption_style(request.config_dict, principal.user_id, options)  # captionStyleId, fonts
    job = await submit_url(request.config_dict, principal, url.strip(), options)
    body = {
        "jobId": job.id,
        "originalName": job.original_name,
        "sizeBytes": job.size_bytes,
        "status": job.status.value,
        "wsUrl": f"/ws?jobId={job.id}",
        "options": options.to_json(),
    }
    if secret := await record_job(request.config_dict, job.id, principal.user_id, options, None):
        body["webhookSecret"] = secret  # the account's signing secret, created for this job: shown once
    return web.json_response(body, headers={"Cache-Control": "no-store"})


def setup(app: web.Application, resolver: AbstractResolver | None = None) -> None:
    downloads = Downloads(app[SERVICE], app[SETTINGS], app[PROBE_COMMAND], app[PLANS_KEY], resolver)
    app[DOWNLOADS] = downloads
    app[WEBHOOK_TARGETS] = (downloads.policy, resolver)  # webhook receivers pass the same policy
    app.on_shutdown.append(downloads.close)
    app.router.add_post("/api/upload/url", upload_url)
