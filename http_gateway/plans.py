"""Plans, what each allows, and the checks that hold every account to its plan.

The plans are data (``PLANS``; published by GET /api/billing/plans). An account's plan is the one
stored on it (set by ``clipora users set-plan`` or by Stripe's events), or, when none is stored,
the install's default: ``CLIPORA_DEFAULT_PLAN`` (business) with billing off, ``free`` with
``CLIPORA_BILLING=stripe``. What a plan limits, and where it is enforced:

- **monthly minutes** of source processed (the trimmed span, per calendar month in UTC): a job's
  minutes are *reserved* when it is submitted (an upload's from its probe; a URL's once the
  download is probed), *metered* when it completes and dropped when it fails. A job that would
  take the account past its minutes is refused with 403 saying what is left.
- **clips per job**: ``numClips`` above it is refused with 403.
- **upload size**: the plan's limit (never above ``CLIPORA_MAX_UPLOAD_BYTES``) is the upload's and
  the URL download's limit (413).
- **API access**: creating a key needs it (403), and a key of an account whose plan lost it stops
  working (403 naming why) without being revoked: it works again if the plan comes back.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from engine.db import Database
from http_gateway.errors import Forbidden
from http_gateway.models import UsageRecord, User

GIB = 1024**3
MIB = 1024**2


@dataclass(frozen=True)
class Plan:
    id: str
    name: str
    price_monthly_cents: int
    monthly_minutes: int  # of source video processed per calendar month
    max_upload_bytes: int
    clips_per_job: int
    api_access: bool

    def to_api(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "priceMonthly": self.price_monthly_cents,
            "currency": "usd",
            "limits": self.limits(),
        }

    def limits(self) -> dict[str, Any]:
        return {
            "monthlyMinutes": self.monthly_minutes,
            "maxUploadBytes": self.max_upload_bytes,
            "clipsPerJob": self.clips_per_job,
            "apiAccess": self.api_access,
        }


PLANS: tuple[Plan, ...] = (
    Plan("free", "Free", 0, monthly_minutes=60, max_upload_bytes=256 * MIB, clips_per_job=3,
         api_access=False),
    Plan("creator", "Creator", 1900, monthly_minutes=600, max_upload_bytes=GIB, clips_per_job=10,
         api_access=False),
    Plan("business", "Business", 9900, monthly_minutes=3000, max_upload_bytes=GIB, clips_per_job=10,
         api_access=True),
)
PLAN_IDS = tuple(p.id for p in PLANS)
FREE = "free"


def plan_by_id(plan_id: str) -> Plan:
    for plan in PLANS:
        if plan.id == plan_id:
            return plan
    raise KeyError(plan_id)


def period_of(ms: int | None = None) -> str:
    """The calendar month (UTC) a time in ms falls in: ``YYYY-MM``."""
    return time.strftime("%Y-%m", time.gmtime((ms if ms is not None else time.time() * 1000) / 1000))


def _ms() -> int:
    return int(time.time() * 1000)


def _fmt_minutes(minutes: float) -> str:
    return f"{minutes:.1f}".rstrip("0").rstrip(".")


class Plans:
    """Plan lookup and usage for one install (``billing``: off | stripe)."""

    def __init__(self, db: Database, billing: str = "off", default_plan: str = "business",
                 max_upload_bytes: int = GIB) -> None:
        if billing not in ("off", "stripe"):
            raise ValueError("CLIPORA_BILLING must be off or stripe")
        plan_by_id(default_plan)  # KeyError on an unknown plan
        self.db = db
        self.billing = billing
        self.default_plan = default_plan if billing == "off" else FREE
        self.max_upload_bytes = max_upload_bytes

    def of(self, user: User) -> Plan:
        """The account's plan (a stored id no longer offered counts as free)."""
        try:
            return plan_by_id(user.plan or self.default_plan)
        except KeyError:
            return plan_by_id(FREE)

    async def plan_of(self, user_id: str) -> Plan:
        async with self.db.session() as s:
            plan_id = await s.scalar(select(User.plan).where(User.id == user_id))
        try:
            return plan_by_id(plan_id or self.default_plan)
        except KeyError:
            return plan_by_id(FREE)

    def upload_limit(self, plan: Plan) -> int:
        return min(plan.max_upload_bytes, self.max_upload_bytes)

    # -- usage ------------------------------------------------------------------------------

    async def minutes_used(self, user_id: str, period: str | None = None) -> float:
        """Reserved + metered minutes of the month (jobs that have not failed)."""
        async with self.db.session() as s:
            total = await s.scalar(select(func.sum(UsageRecord.minutes)).where(
                UsageRecord.user_id == user_id, UsageRecord.period == (period or period_of())))
        return float(total or 0.0)

    async def usage(self, user: User) -> dict[str, Any]:
        plan = self.of(user)
        used = await self.minutes_used(user.id)
        return {
            "plan": plan.id,
            "period": period_of(),
            "minutesUsed": round(used, 2),
            "minutesLeft": round(max(0.0, plan.monthly_minutes - used), 2),
            "renewsAt": user.plan_renews_at,
            "limits": plan.limits() | {"maxUploadBytes": self.upload_limit(plan)},
            "billing": self.billing,
        }

    # -- checks at submit ----------------------------------------------------------------------

    def check_clips(self, plan: Plan, num_clips: int) -> None:
        if num_clips > plan.clips_per_job:
            raise Forbidden(f"your plan ({plan.name}) allows {plan.clips_per_job} clips per job; "
                            f"numClips {num_clips} needs a larger plan")

    async def check_minutes_left(self, user_id: str, plan: Plan) -> None:
        """Before a URL download starts: refused when nothing is left this month."""
        used = await self.minutes_used(user_id)
        if used >= plan.monthly_minutes:
            raise Forbidden(f"your plan ({plan.name}) includes {plan.monthly_minutes} minutes a month and "
                            f"{_fmt_minutes(used)} are used; none are left until next month")

    async def check_minutes(self, user_id: str, plan: Plan, minutes: float) -> None:
        """Forbidden, saying what is left, unless a job of ``minutes`` fits in this month's minutes."""
        used = await self.minutes_used(user_id)
        left = plan.monthly_minutes - used
        if minutes > left + 1e-9:
            raise Forbidden(f"this video is {_fmt_minutes(minutes)} minutes (after trimming) and your plan "
                            f"({plan.name}) has {_fmt_minutes(max(0.0, left))} of its {plan.monthly_minutes} "
                            "minutes left this month; trim it or upgrade")

    async def reserve(self, job_id: str, user_id: str, minutes: float) -> None:
        """Count a submitted job's minutes in this month until it completes (metered) or fails (dropped).

        Checked first with :meth:`check_minutes`; two jobs of one account submitted at the same instant
        can both pass that check (the month then ends a job's length over)."""
        async with self.db.session() as s, s.begin():
            s.add(UsageRecord(job_id=job_id, user_id=user_id, period=period_of(), minutes=minutes,
                              state="reserved", updated_at=_ms()))

    async def forget(self, job_id: str) -> None:
        """Drop a job's reservation (it never started: its download was deleted)."""
        async with self.db.session() as s, s.begin():
            await s.execute(self.release_statement(job_id))

    def meter_statement(self, job_id: str, user_id: str, minutes: float, period: str | None = None) -> Any:
        """A completed job's minutes as processed, in the month it completed (``period``): an upsert
        for the caller's transaction (the settlement that records the job's end)."""
        t = _ms()
        insert = sqlite_insert if self.db.is_sqlite else pg_insert
        stmt = insert(UsageRecord).values(job_id=job_id, user_id=user_id, period=period or period_of(),
                                          minutes=minutes, state="metered", updated_at=t)
        return stmt.on_conflict_do_update(index_elements=[UsageRecord.job_id], set_={
            "minutes": minutes, "state": "metered", "period": period or period_of(), "updated_at": t})

    @staticmethod
    def release_statement(job_id: str) -> Any:
        """A job that failed uses no minutes (its reservation is dropped)."""
        return delete(UsageRecord).where(UsageRecord.job_id == job_id, UsageRecord.state == "reserved")

    async def set_plan(self, user_id: str, plan_id: str | None, renews_at: int | None = None) -> None:
        if plan_id is not None:
            plan_by_id(plan_id)
        async with self.db.session() as s, s.begin():
            await s.execute(update(User).where(User.id == user_id).values(plan=plan_id, plan_renews_at=renews_at))


def trimmed_minutes(duration_s: float, options: dict[str, Any]) -> float:
    """Minutes of source a job works on: its trimStart..trimEnd span of a ``duration_s`` source."""
    start = float(options.get("trimStart") or 0.0)
    end_opt = options.get("trimEnd")
    end = duration_s if end_opt is None else min(float(end_opt), duration_s)
    return max(0.0, end - start) / 60.0


PLANS_KEY: web.AppKey[Plans] = web.AppKey("plans", Plans)
