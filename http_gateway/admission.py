"""What a new job must pass before it is accepted, for every way in (upload, URL, MCP).

:func:`admit` runs before the source is read: the account's plan (clips per job; the upload limit
it returns), and a ``webhookUrl`` checked against the URL policy (resolved now; checked again at
every delivery). :func:`record_job` runs once the job exists: it reserves the job's minutes and,
the first time an account asks for a ``webhookUrl``, creates the account's signing secret, which
the response shows that once.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web
from aiohttp.helpers import ChainMapProxy
from sqlalchemy import select, update

from engine.config import Settings
from engine.options import ProcessOptions
from http_gateway.models import User
from http_gateway.plans import PLANS_KEY, Plan, trimmed_minutes
from http_gateway.webhooks import check_target, new_secret

#: the app, or a request's ``config_dict`` (the app and its parents)
AppState = web.Application | ChainMapProxy

#: the policy and resolver webhook targets are checked with (those of URL ingest)
WEBHOOK_TARGETS: web.AppKey[tuple] = web.AppKey("webhook_targets", tuple)


@dataclass(frozen=True)
class Admission:
    plan: Plan
    upload_limit: int  # bytes: the plan's, never above CLIPORA_MAX_UPLOAD_BYTES


async def admit(app: AppState, user_id: str, options: ProcessOptions) -> Admission:
    """403 past the plan's clips per job; 400 for a webhookUrl the policy refuses, or for a language the
    workers' speech model cannot hear (their CLIPORA_WHISPER_MODEL, read from the same environment)."""
    options.check_speech_model(Settings.from_env().whisper_multilingual)
    plans = app[PLANS_KEY]
    plan = await plans.plan_of(user_id)
    plans.check_clips(plan, options.num_clips)
    if options.webhook_url:
        policy, resolver = app[WEBHOOK_TARGETS]
        await check_target(policy, options.webhook_url, resolver)
    return Admission(plan, plans.upload_limit(plan))


async def check_source_minutes(app: AppState, user_id: str, admission: Admission, duration_s: float,
                               options: ProcessOptions) -> float:
    """The job's minutes (its trimmed span), or 403 when they are more than the month has left."""
    minutes = trimmed_minutes(duration_s, options.to_json())
    await app[PLANS_KEY].check_minutes(user_id, admission.plan, minutes)
    return minutes


async def record_job(app: AppState, job_id: str, user_id: str, options: ProcessOptions,
                     minutes: float | None) -> str | None:
    """Reserve the job's minutes (when known); returns the account's new signing secret when this job
    is the first to ask for a webhookUrl (shown once, like a key), else None."""
    if minutes is not None:
        await app[PLANS_KEY].reserve(job_id, user_id, minutes)
    if not options.webhook_url:
        return None
    return await ensure_signing_secret(app, user_id)


async def ensure_signing_secret(app: AppState, user_id: str) -> str | None:
    """Create the account's signing secret if it has none: the new secret, or None if it existed."""
    db = app[PLANS_KEY].db
    secret = new_secret()
    async with db.session() as s, s.begin():
        result = await s.execute(update(User).where(User.id == user_id, User.webhook_secret.is_(None))
                                 .values(webhook_secret=secret))
        created = int(result.rowcount) == 1  # type: ignore[attr-defined]
    return secret if created else None


async def rotate_signing_secret(app: AppState, user_id: str) -> str:
    db = app[PLANS_KEY].db
    secret = new_secret()
    async with db.session() as s, s.begin():
        await s.execute(update(User).where(User.id == user_id).values(webhook_secret=secret))
    return secret


async def has_signing_secret(app: AppState, user_id: str) -> bool:
    async with app[PLANS_KEY].db.session() as s:
        return bool(await s.scalar(select(User.webhook_secret).where(User.id == user_id)))
