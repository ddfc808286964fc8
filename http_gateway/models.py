"""Account tables (users, sessions, API keys), on the engine's declarative Base.

The schema itself is owned by the migrations in engine/migrations (one history for the
whole database); these classes map onto it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, BigInteger, Float, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from engine.db import Base


class User(Base):
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    #: an explicit plan (set by the operator or by Stripe), or None: the install's default plan
    #: (CLIPORA_DEFAULT_PLAN with billing off, free with CLIPORA_BILLING=stripe)
    plan: Mapped[str | None] = mapped_column(String(32), nullable=True, default=None)
    created_at: Mapped[int] = mapped_column(BigInteger)
    plan_renews_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    stripe_customer_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    stripe_subscription_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    #: signs deliveries to a job's own webhookUrl (whsec_…); created on first use, shown once
    webhook_secret: Mapped[str | None] = mapped_column(String(128), nullable=True)

    def __repr__(self) -> str:  # never the hash
        return f"<User {self.id}>"


class Session(Base):
    __tablename__ = "sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 hex of the cookie value
    user_id: Mapped[str] = mapped_column(String(32), ForeignKey("users.id", ondelete="CASCADE"))
    created_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int] = mapped_column(BigInteger)
    last_seen_at: Mapped[int] = mapped_column(BigInteger)
    csrf_token: Mapped[str] = mapped_column(String(64))

    def __repr__(self) -> str:
        return f"<Session of {self.user_id}>"


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(32), ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(24))
    last4: Mapped[str] = mapped_column(String(4))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[int] = mapped_column(BigInteger)
    last_used_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    revoked_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)

    def __repr__(self) -> str:  # never the hash
        return f"<ApiKey {self.id} {self.prefix}…>"


class WebhookEndpoint(Base):
    """An account's standing webhook: every job of the account that ends is delivered here."""

    __tablename__ = "webhook_endpoints"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(32), ForeignKey("users.id", ondelete="CASCADE"))
    url: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(String(100), default="")
    secret: Mapped[str] = mapped_column(String(128))  # whsec_…: the sender must keep it to sign
    created_at: Mapped[int] = mapped_column(BigInteger)
    disabled_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    disabled_reason: Mapped[str | None] = mapped_column(Text, nullable=True)

    def __repr__(self) -> str:  # never the secret
        return f"<WebhookEndpoint {self.id}>"


class WebhookDelivery(Base):
    """One event on its way to one URL: retried with backoff until a 2xx, a 410 or 24 h."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # msg_…: the webhook-id header
    job_id: Mapped[str] = mapped_column(String(32), ForeignKey("jobs.id", ondelete="CASCADE"))
    user_id: Mapped[str] = mapped_column(String(32))
    endpoint_id: Mapped[str | None] = mapped_column(
        String(32), ForeignKey("webhook_endpoints.id", ondelete="CASCADE"), nullable=True)  # None: webhookUrl
    url: Mapped[str] = mapped_column(Text)
    event_type: Mapped[str] = mapped_column(String(32))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16))  # pending | delivered | failed | disabled
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    claimed_until: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    last_status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[int] = mapped_column(BigInteger)
    finished_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class WebhookAttempt(Base):
    __tablename__ = "webhook_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    delivery_id: Mapped[str] = mapped_column(String(40), ForeignKey("webhook_deliveries.id", ondelete="CASCADE"))
    attempt: Mapped[int] = mapped_column(Integer)
    at: Mapped[int] = mapped_column(BigInteger)
    status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    duration_ms: Mapped[int] = mapped_column(Integer)


class JobSettlement(Base):
    """A job that ended and was accounted for: metered, and its webhooks queued (once, by one gateway)."""

    __tablename__ = "job_settlements"

    job_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    status: Mapped[str] = mapped_column(String(16))
    settled_at: Mapped[int] = mapped_column(BigInteger)


class UsageRecord(Base):
    """Minutes of source a job uses in a calendar month (UTC): reserved at submit, metered when it
    completes, dropped when it fails. Not tied to the job row: deleting a job returns no minutes."""

    __tablename__ = "usage_records"

    job_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(32), ForeignKey("users.id", ondelete="CASCADE"))
    period: Mapped[str] = mapped_column(String(7))  # YYYY-MM
    minutes: Mapped[float] = mapped_column(Float)
    state: Mapped[str] = mapped_column(String(16))  # reserved | metered
    updated_at: Mapped[int] = mapped_column(BigInteger)


class StripeEvent(Base):
    """A Stripe event already applied (events are idempotent by id)."""

    __tablename__ = "stripe_events"

    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    type: Mapped[str] = mapped_column(String(100))
    received_at: Mapped[int] = mapped_column(BigInteger)


class Font(Base):
    """A font an account uploaded (POST /api/fonts): its file is stored once per content under the data root
    (engine.storage: fonts/<sha256>.ttf|otf); the row is the account's name for it."""

    __tablename__ = "fonts"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # font_ + 16 hex
    user_id: Mapped[str] = mapped_column(String(32), ForeignKey("users.id", ondelete="CASCADE"))
    family: Mapped[str] = mapped_column(String(200))
    style: Mapped[str] = mapped_column(String(200))  # the name table's subfamily: Regular, Bold, Black …
    full_name: Mapped[str] = mapped_column(String(300))
    file: Mapped[str] = mapped_column(String(80))  # <sha256>.ttf|otf under <data_dir>/fonts
    format: Mapped[str] = mapped_column(String(16))  # truetype | opentype (CFF)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    glyphs: Mapped[int] = mapped_column(Integer)
    coverage: Mapped[list[Any]] = mapped_column(JSON)  # the Unicode ranges it covers whole (fonts.COVERAGE)
    original_name: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[int] = mapped_column(BigInteger)

    def __repr__(self) -> str:
        return f"<Font {self.id} {self.family!r}>"


class CaptionStyleRecord(Base):
    """An account's saved caption style (POST /api/styles), used as captionStyleId."""

    __tablename__ = "caption_styles"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # sty_ + 16 hex
    user_id: Mapped[str] = mapped_column(String(32), ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    style: Mapped[dict[str, Any]] = mapped_column(JSON)  # a captionStyle object (engine.options)
    caption_preset: Mapped[str | None] = mapped_column(String(16), nullable=True)
    created_at: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[int] = mapped_column(BigInteger)

    def __repr__(self) -> str:
        return f"<CaptionStyle {self.id} {self.name!r}>"
