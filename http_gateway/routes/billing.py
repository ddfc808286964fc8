"""/api/billing/plans: the plans and their limits, as data (public; enforcement comes later).

The spec reserves API keys for the Business plan; ``apiAccess`` records that, but nothing
enforces it yet. The operator's upload limit (CLIPORA_MAX_UPLOAD_BYTES) caps every plan.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiohttp import web

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
            "limits": {
                "monthlyMinutes": self.monthly_minutes,
                "maxUploadBytes": self.max_upload_bytes,
                "clipsPerJob": self.clips_per_job,
                "apiAccess": self.api_access,
            },
        }


PLANS: tuple[Plan, ...] = (
    Plan("free", "Free", 0, monthly_minutes=60, max_upload_bytes=256 * MIB, clips_per_job=3,
         api_access=False),
    Plan("creator", "Creator", 1900, monthly_minutes=600, max_upload_bytes=GIB, clips_per_job=10,
         api_access=False),
    Plan("business", "Business", 9900, monthly_minutes=3000, max_upload_bytes=GIB, clips_per_job=10,
         api_access=True),
)
DEFAULT_PLAN = "free"


async def list_plans(request: web.Request) -> web.Response:
    return web.json_response({"plans": [p.to_api() for p in PLANS]},
                             headers={"Cache-Control": "public, max-age=300"})


def setup(app: web.Application) -> None:
    app.router.add_get("/api/billing/plans", list_plans)
