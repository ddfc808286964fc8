"""Webhooks: a job that ends is pushed to its receivers, signed per Standard Webhooks, durably.

Two kinds of receivers: the account's endpoints (``/api/webhooks``, each with its own secret) and
a job's own ``webhookUrl`` option (signed with the account's signing secret, created on first use).
Events: ``job.completed`` (manifest URL and clip list) and ``job.failed`` (the reason), as
``{"type": …, "timestamp": …, "data": {…}}`` with the headers ``webhook-id`` (the delivery's id,
the same on every attempt: receivers dedupe on it), ``webhook-timestamp`` and
``webhook-signature: v1,<base64 HMAC-SHA256>``, made by the ``standardwebhooks`` package.

Durable, and never in a job's way: the :class:`Notifier` of every gateway

1. **settles** each job that ended: one transaction writes its ``job_settlements`` row (the row's
   primary key makes this happen once across gateways and restarts), meters its minutes
   (``plans``) and queues one ``webhook_deliveries`` row per receiver;
2. **delivers** due rows: a row is claimed (``claimed_until``) so one gateway sends it, each attempt
   is a ``webhook_attempts`` row, a 2xx ends it, a 410 disables the endpoint, anything else (or no
   answer within ``CLIPORA_WEBHOOK_TIMEOUT_S``) is tried again after the next wait of
   ``CLIPORA_WEBHOOK_RETRY_S`` (5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h) until
   ``CLIPORA_WEBHOOK_MAX_AGE_S`` (24 h) have passed.

It runs every ``CLIPORA_WEBHOOK_POLL_S`` and at once when the event bus reports a job's end, so a
restart picks up whatever was pending. Targets pass the URL-ingest SSRF policy twice: at
registration (and at submit, for ``webhookUrl``) and at every connect (addresses resolved once,
checked and pinned; redirects are not followed: a 3xx is a failed attempt).
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import json
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.abc import AbstractResolver
from sqlalchemy import delete, exists, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from standardwebhooks.webhooks import Webhook
from tenacity import AsyncRetrying, retry_if_result, stop_after_attempt, wait_chain, wait_fixed

from engine.events import JobEvent
from engine.jobs import JobRecord, JobStatus
from engine.service import JobService
from engine.store import JobRow
from http_gateway.models import JobSettlement, UsageRecord, User, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from http_gateway.plans import Plans, period_of, trimmed_minutes
from http_gateway.url_policy import Pins, PolicyResolver, UrlPolicy, UrlRefused, resolve_checked

log = logging.getLogger("clipora.webhooks")

EVENTS = ("job.completed", "job.failed")
USER_AGENT = "Clipora-Webhooks/1.0"
MAX_ERROR = 500
SETTLE_BATCH = 50
SEND_BATCH = 20
RECENT_MS = 24 * 3600 * 1000  # after the first round, jobs that ended this long ago at most are looked at


def new_secret() -> str:
    """A signing secret as Standard Webhooks writes them: ``whsec_`` + base64 of 24 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def new_delivery_id() -> str:
    return "msg_" + secrets.token_urlsafe(18)


def now_ms() -> int:
    return int(time.time() * 1000)


def signed_headers(secret: str, msg_id: str, body: str, at: datetime.datetime | None = None) -> dict[str, str]:
    """The three Standard Webhooks headers for ``body`` (what the receiver's library verifies)."""
    at = at or datetime.datetime.now(tz=datetime.UTC)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, at, body),
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
    }


async def check_target(policy: UrlPolicy, url: str, resolver: AbstractResolver | None = None,
                       timeout_s: float = 10.0) -> str:
    """``url`` when the policy lets the server reach it; UrlRefused (400) with the reason otherwise."""
    target = policy.check_url(url)
    try:
        await asyncio.wait_for(resolve_checked(policy, target, Pins(), resolver), timeout_s)
    except UrlRefused:
        raise
    except (OSError, TimeoutError):
        raise UrlRefused(f"could not resolve the webhook host {target.host}") from None
    return str(target.url)


@dataclass(frozen=True)
class Outcome:
    status: int | None  # the receiver's HTTP status; None when there was no answer
    error: str | None
    duration_ms: int


async def send(url: str, body: str, headers: dict[str, str], policy: UrlPolicy, timeout_s: float,
               resolver: AbstractResolver | None = None) -> Outcome:
    """POST one signed event; never raises. The connection goes only to addresses the policy pinned."""
    started = time.monotonic()
    pins = Pins()
    try:
        target = policy.check_url(url)
        if target.ip is not None:
            pins.add(target.ip)
        connector = aiohttp.TCPConnector(resolver=PolicyResolver(policy, pins, resolver), use_dns_cache=False,
                                         socket_factory=pins.socket_factory, force_close=True)
        timeout = aiohttp.ClientTimeout(total=timeout_s)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout, trust_env=False) as session, \
                session.post(target.url, data=body.encode(), headers=headers, allow_redirects=False) as response:
            await response.content.read(64 * 1024)  # the body is not used; a little is read to end cleanly
            error = None if 200 <= response.status < 300 else f"HTTP {response.status}"
            return Outcome(response.status, error, _since(started))
    except UrlRefused as exc:
        return Outcome(None, exc.message, _since(started))
    except aiohttp.ClientConnectorError as exc:
        return Outcome(None, f"could not connect: {exc.os_error.strerror or exc.os_error}", _since(started))
    except TimeoutError:
        return Outcome(None, f"no answer within {timeout_s:g} s", _since(started))
    except (aiohttp.ClientError, OSError) as exc:
        return Outcome(None, f"delivery failed: {type(exc).__name__}", _since(started))


async def deliver_once(url: str, secret: str, event_type: str, data: dict[str, Any], policy: UrlPolicy,
                       timeout_s: float = 10.0, waits: tuple[float, ...] = (2.0, 8.0, 20.0, 30.0)) -> Outcome:
    """Deliver one event without a store (``clipora process --webhook-url``): attempts after each of
    ``waits`` until a 2xx or a 410; the last outcome."""
    msg_id = new_delivery_id()
    body = json.dumps(event_body(event_type, data), separators=(",", ":"))
    retrying = AsyncRetrying(stop=stop_after_attempt(len(waits) + 1), wait=wait_chain(*map(wait_fixed, waits)),
                             retry=retry_if_result(lambda o: not (o.status is not None and (
                                 200 <= o.status < 300 or o.status == 410))),
                             retry_error_callback=lambda state: state.outcome.result())  # type: ignore[union-attr]

    async def attempt() -> Outcome:  # signed anew each time: the timestamp is the attempt's
        return await send(url, body, signed_headers(secret, msg_id, body), policy, timeout_s)

    outcome: Outcome = await retrying(attempt)
    return outcome


def _since(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def event_body(event_type: str, data: dict[str, Any]) -> dict[str, Any]:
    stamp = datetime.datetime.now(tz=datetime.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return {"type": event_type, "timestamp": stamp, "data": data}


def job_data(job: JobRecord, manifest: dict[str, Any] | None, base_url: str) -> tuple[str, dict[str, Any]]:
    """(event type, data) for a job that ended."""
    data: dict[str, Any] = {"jobId": job.id, "status": job.status.value, "originalName": job.original_name,
                            "createdAt": job.created_at, "finishedAt": job.finished_at}
    if job.status != JobStatus.COMPLETED:
        data["error"] = job.error or job.message or "the job failed"
        return "job.failed", data
    data["clipCount"] = job.clip_count or 0
    data["manifestUrl"] = f"{base_url}/api/clips/{job.parent_id or job.id}"
    listed = (manifest or {}).get("clips", [])
    if job.is_render:  # a clip render: its job, and that one clip as now published
        data.update(parentJobId=job.parent_id, clipIndex=job.clip_index)
        listed = [c for c in listed if c.get("index") == job.clip_index]
    clips = []
    for clip in listed:
        entry = {k: clip.get(k) for k in ("index", "start", "end", "duration", "score") if k in clip}
        for key in ("downloadUrl", "posterUrl", "captionsUrl", "srtUrl", "vttUrl"):
            if isinstance(clip.get(key), str):
                entry[key] = base_url + clip[key]
        title = (clip.get("metadata") or {}).get("title")
        if title:
            entry["title"] = title
        if "version" in clip:
            entry["version"] = clip["version"]
        clips.append(entry)
    data["clips"] = clips
    return "job.completed", data


def delivery_json(d: WebhookDelivery, attempts: list[WebhookAttempt]) -> dict[str, Any]:
    return {
        "id": d.id, "event": d.event_type, "url": d.url, "endpointId": d.endpoint_id, "status": d.status,
        "attempts": d.attempts, "lastStatus": d.last_status, "lastError": d.last_error,
        "nextAttemptAt": d.next_attempt_at if d.status == "pending" else None,
        "createdAt": d.created_at, "finishedAt": d.finished_at,
        "log": [{"attempt": a.attempt, "at": a.at, "status": a.status_code, "error": a.error,
                 "durationMs": a.duration_ms} for a in attempts],
    }


class Notifier:
    """Settles ended jobs and delivers their webhooks (see the module docstring); one per gateway."""

    def __init__(self, service: JobService, plans: Plans, policy: UrlPolicy, *, retry_s: tuple[float, ...],
                 timeout_s: float, max_age_s: float, poll_s: float, public_url: str = "",
                 resolver: AbstractResolver | None = None) -> None:
        self.service = service
        self.db = service.store.db
        self.plans = plans
        self.policy = policy
        self.retry_s = retry_s
        self.timeout_s = timeout_s
        self.max_age_ms = int(max_age_s * 1000)
        self.poll_s = poll_s
        self.public_url = public_url.rstrip("/")
        self.resolver = resolver
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._sending: set[asyncio.Task[None]] = set()
        self._caught_up = False  # the first settle() looks at every ended job

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        self._unsubscribe = self.service.bus.subscribe(self._on_event)
        self._task = asyncio.create_task(self._loop(), name="webhooks")

    async def stop(self) -> None:
        if self._unsubscribe:
            self._unsubscribe()
        tasks = [t for t in (self._task, *self._sending) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _on_event(self, event: JobEvent) -> None:
        if event.type in ("completed", "failed"):
            self._wake.set()

    def wake(self) -> None:
        self._wake.set()

    async def _loop(self) -> None:
        while True:
            self._wake.clear()
            try:
                await self.settle()
                await self.deliver_due()
            except asyncio.CancelledError:
                raise
            except Exception:  # the database is away a moment: the next round tries again
                log.exception("webhook round failed")
            wait_s = await self._next_wait()
            try:
                await asyncio.wait_for(self._wake.wait(), wait_s)
            except TimeoutError:
                pass

    async def _next_wait(self) -> float:
        """Until the next poll, or sooner when a delivery falls due before it."""
        try:
            async with self.db.session() as s:
                due = await s.scalar(select(func.min(WebhookDelivery.next_attempt_at)).where(
                    WebhookDelivery.status == "pending"))
        except Exception:
            return self.poll_s
        if due is None:
            return self.poll_s
        return min(self.poll_s, max(0.05, (due - now_ms()) / 1000))

    # -- settling -------------------------------------------------------------------------------

    async def settle(self) -> int:
        """Settle every ended job that is not yet; returns how many this call settled.

        The first call after start looks at every ended job (whatever ended while no gateway ran);
        later ones at jobs that ended in the last day only, which keeps each round cheap."""
        done = 0
        recent = self._caught_up
        while True:
            ended = [JobRow.status.in_([JobStatus.COMPLETED.value, JobStatus.FAILED.value]),
                     ~exists().where(JobSettlement.job_id == JobRow.id)]
            if recent:
                ended.append(JobRow.finished_at >= now_ms() - RECENT_MS)
            async with self.db.session() as s:
                rows = list(await s.scalars(select(JobRow).where(*ended)
                                            .order_by(JobRow.finished_at).limit(SETTLE_BATCH)))
            if not rows:
                break
            for row in rows:
                done += await self._settle_one(row.record())
            if len(rows) < SETTLE_BATCH:
                break
        async with self.db.session() as s, s.begin():  # a job deleted before it ended uses nothing
            await s.execute(delete(UsageRecord).where(
                UsageRecord.state == "reserved", ~exists().where(JobRow.id == UsageRecord.job_id)))
        self._caught_up = True
        return done

    async def _settle_one(self, job: JobRecord) -> int:
        manifest = None
        if job.status == JobStatus.COMPLETED:
            try:
                manifest = await self.service.manifest(job.parent_id or job.id)  # a clip render: its job's
            except (OSError, ValueError):
                log.warning("completed job without a readable manifest", extra={"job_id": job.id})
        event_type, data = job_data(job, manifest, self.public_url)
        t = now_ms()
        try:
            async with self.db.session() as s, s.begin():
                s.add(JobSettlement(job_id=job.id, status=job.status.value, settled_at=t))
                await s.flush()  # another gateway settled it: IntegrityError here, nothing else written
                for url, endpoint_id in await self._receivers(s, job):
                    s.add(WebhookDelivery(
                        id=new_delivery_id(), job_id=job.id, user_id=job.owner_id, endpoint_id=endpoint_id,
                        url=url, event_type=event_type, payload=event_body(event_type, data), status="pending",
                        attempts=0, next_attempt_at=t, created_at=t, updated_at=t))
                if job.status == JobStatus.COMPLETED:
                    # a clip render processes no new source minutes (the job's were metered)
                    duration = 0.0 if job.is_render else float((manifest or {}).get("duration") or 0.0)
                    await s.execute(self.plans.meter_statement(
                        job.id, job.owner_id, trimmed_minutes(duration, job.options), period_of(job.finished_at)))
                else:
                    await s.execute(self.plans.release_statement(job.id))
        except IntegrityError:
            return 0
        return 1

    async def _receivers(self, s: Any, job: JobRecord) -> list[tuple[str, str | None]]:
        """(url, endpoint id or None for the job's own webhookUrl) of a job that just ended; none for a
        job that ended longer ago than deliveries are tried (settled late, e.g. after an upgrade)."""
        if job.finished_at is not None and now_ms() - job.finished_at > self.max_age_ms:
            return []
        receivers: list[tuple[str, str | None]] = [
            (e.url, e.id) for e in await s.scalars(select(WebhookEndpoint).where(
                WebhookEndpoint.user_id == job.owner_id, WebhookEndpoint.disabled_at.is_(None)))]
        own = job.options.get("webhookUrl")
        if isinstance(own, str) and own:
            receivers.append((own, None))
        return receivers

    # -- delivering -----------------------------------------------------------------------------

    async def deliver_due(self) -> int:
        """Send every due delivery this gateway can claim; returns how many attempts it made."""
        t = now_ms()
        async with self.db.session() as s:
            ids = list(await s.scalars(
                select(WebhookDelivery.id).where(
                    WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= t,
                    or_(WebhookDelivery.claimed_until.is_(None), WebhookDelivery.claimed_until < t))
                .order_by(WebhookDelivery.next_attempt_at).limit(SEND_BATCH)))
        claimed = [i for i in ids if await self._claim(i, t)]
        if claimed:  # one failing attempt (the database away) does not lose the others' records
            for result in await asyncio.gather(*(self._attempt(i) for i in claimed), return_exceptions=True):
                if isinstance(result, Exception):
                    log.error("webhook attempt not recorded: %s", result)
        return len(claimed)

    async def _claim(self, delivery_id: str, t: int) -> bool:
        until = t + int((self.timeout_s + 30) * 1000)
        async with self.db.session() as s, s.begin():
            result = await s.execute(update(WebhookDelivery).where(
                WebhookDelivery.id == delivery_id, WebhookDelivery.status == "pending",
                or_(WebhookDelivery.claimed_until.is_(None), WebhookDelivery.claimed_until < t),
            ).values(claimed_until=until))
            return int(result.rowcount) == 1  # type: ignore[attr-defined]

    async def _secret(self, d: WebhookDelivery) -> str | None:
        async with self.db.session() as s:
            if d.endpoint_id is not None:
                return await s.scalar(select(WebhookEndpoint.secret).where(WebhookEndpoint.id == d.endpoint_id))
            return await s.scalar(select(User.webhook_secret).where(User.id == d.user_id))

    async def _attempt(self, delivery_id: str) -> None:
        async with self.db.session() as s:
            d = await s.get(WebhookDelivery, delivery_id)
        if d is None:  # its job was deleted meanwhile
            return
        secret = await self._secret(d)
        body = json.dumps(d.payload, separators=(",", ":"))
        if secret is None:
            outcome = Outcome(None, "no signing secret for this receiver", 0)
        else:
            outcome = await send(d.url, body, signed_headers(secret, d.id, body), self.policy, self.timeout_s,
                                 self.resolver)
        await self._record(d, outcome)

    async def _record(self, d: WebhookDelivery, outcome: Outcome) -> None:
        t = now_ms()
        n = d.attempts + 1
        values: dict[str, Any] = {"attempts": n, "last_status": outcome.status, "updated_at": t,
                                  "last_error": (outcome.error or "")[:MAX_ERROR] or None, "claimed_until": None}
        disable_endpoint = False
        if outcome.status is not None and 200 <= outcome.status < 300:
            values.update(status="delivered", finished_at=t, next_attempt_at=None)
        elif outcome.status == 410:
            values.update(status="disabled", finished_at=t, next_attempt_at=None,
                          last_error="the receiver answered 410 Gone: it is not sent to again")
            disable_endpoint = d.endpoint_id is not None
        else:
            wait_ms = int(self.retry_s[min(n - 1, len(self.retry_s) - 1)] * 1000)
            if n > len(self.retry_s) or t + wait_ms - d.created_at > self.max_age_ms:
                values.update(status="failed", finished_at=t, next_attempt_at=None,
                              last_error=f"given up after {n} attempts: {outcome.error}"[:MAX_ERROR])
            else:
                values.update(next_attempt_at=t + wait_ms)
        try:
            await self._write_attempt(d, n, t, outcome, values, disable_endpoint)
        except IntegrityError:  # the job (and its deliveries) was deleted while this one was in flight
            return
        log.info("webhook attempt", extra={"job_id": d.job_id, "delivery": d.id, "attempt": n,
                                            "status": outcome.status, "outcome": values.get("status", "retry")})

    async def _write_attempt(self, d: WebhookDelivery, n: int, t: int, outcome: Outcome, values: dict[str, Any],
                             disable_endpoint: bool) -> None:
        async with self.db.session() as s, s.begin():
            s.add(WebhookAttempt(delivery_id=d.id, attempt=n, at=t, status_code=outcome.status,
                                 error=(outcome.error or "")[:MAX_ERROR] or None, duration_ms=outcome.duration_ms))
            await s.execute(update(WebhookDelivery).where(WebhookDelivery.id == d.id).values(**values))
            if disable_endpoint:
                await s.execute(update(WebhookEndpoint).where(WebhookEndpoint.id == d.endpoint_id).values(
                    disabled_at=t, disabled_reason="the receiver answered 410 Gone"))
                await s.execute(update(WebhookDelivery).where(
                    WebhookDelivery.endpoint_id == d.endpoint_id, WebhookDelivery.status == "pending").values(
                    status="disabled", finished_at=t, next_attempt_at=None, updated_at=t,
                    last_error="the endpoint was disabled (410 Gone)"))

    async def deliveries_of(self, job_id: str) -> list[dict[str, Any]]:
        async with self.db.session() as s:
            rows = list(await s.scalars(select(WebhookDelivery).where(WebhookDelivery.job_id == job_id)
                                        .order_by(WebhookDelivery.created_at, WebhookDelivery.id)))
            attempts: dict[str, list[WebhookAttempt]] = {r.id: [] for r in rows}
            if rows:
                for a in await s.scalars(select(WebhookAttempt).where(
                        WebhookAttempt.delivery_id.in_(list(attempts))).order_by(WebhookAttempt.id)):
                    attempts[a.delivery_id].append(a)
        return [delivery_json(r, attempts[r.id]) for r in rows]


NOTIFIER: web.AppKey[Notifier] = web.AppKey("notifier", Notifier)
