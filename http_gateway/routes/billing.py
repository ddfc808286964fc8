"""/api/billing/*: the plans (public), usage, and with ``CLIPORA_BILLING=stripe`` checkout, portal
and Stripe's events.

- ``GET /api/billing/plans``: the plans and their limits (public; http_gateway.plans holds them).
- ``GET /api/billing/usage``: the caller's plan, minutes used and left this month, the limits.
- ``POST /api/billing/checkout`` ``{"plan": "creator"}`` (session only): a Stripe Checkout Session for
  the plan's Price (CLIPORA_STRIPE_PRICES); answers ``{"url": …}`` to send the browser to.
- ``POST /api/billing/portal`` (session only): a Stripe Customer Portal session ``{"url": …}`` to
  change or cancel the subscription (409 before the account ever checked out).
- ``POST /api/billing/webhook``: Stripe's signed events (``Stripe-Signature``, checked with the
  endpoint's secret by the ``stripe`` package; 400 otherwise), applied once per event id: a
  completed checkout or an active subscription sets the account's plan and renewal date, a
  subscription that ends puts it back on free.

With billing off (the self-hosted default) checkout, portal and the Stripe webhook answer 404: plans
are the operator's (``clipora users set-plan``). The Stripe API's base URL is a setting
(CLIPORA_STRIPE_API_BASE) so the tests talk to a fake Stripe on loopback.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import stripe
from aiohttp import web
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from http_gateway.auth import ACCOUNTS, is_https, require_session, require_user
from http_gateway.bodies import AUTH_BODY_LIMIT, json_object, read_body
from http_gateway.config import SETTINGS, GatewaySettings
from http_gateway.errors import BadRequest, Conflict, NotFoundError, ServiceUnavailable, Unauthorized
from http_gateway.models import StripeEvent, User
from http_gateway.plans import FREE, PLANS, PLANS_KEY

log = logging.getLogger("clipora.billing")

NO_STORE = {"Cache-Control": "no-store"}
STRIPE_EVENT_LIMIT = 1024 * 1024
ACTIVE = frozenset({"active", "trialing", "past_due"})  # past_due: Stripe is still retrying the payment

STRIPE: web.AppKey[stripe.StripeClient] = web.AppKey("stripe", stripe.StripeClient)


async def list_plans(request: web.Request) -> web.Response:
    return web.json_response({"plans": [p.to_api() for p in PLANS]},
                             headers={"Cache-Control": "public, max-age=300"})


async def usage(request: web.Request) -> web.Response:
    principal = require_user(request)
    user = await request.config_dict[ACCOUNTS].get_user(principal.user_id)
    if user is None:
        raise Unauthorized("authentication required")
    return web.json_response(await request.config_dict[PLANS_KEY].usage(user), headers=NO_STORE)


def _client(request: web.Request) -> stripe.StripeClient:
    client = request.config_dict.get(STRIPE)
    if client is None:
        raise NotFoundError("billing is not enabled on this server (CLIPORA_BILLING=off): plans are set by "
                            "its operator")
    return client


def _origin(request: web.Request) -> str:
    settings: GatewaySettings = request.config_dict[SETTINGS]
    if settings.public_url:
        return settings.public_url.rstrip("/")
    return f"{'https' if is_https(request) else 'http'}://{request.host}"


async def _user(request: web.Request, user_id: str) -> User:
    user = await request.config_dict[ACCOUNTS].get_user(user_id)
    if user is None:
        raise Unauthorized("authentication required")
    return user


async def checkout(request: web.Request) -> web.Response:
    principal = require_session(request)
    client = _client(request)
    body = await json_object(request, limit=AUTH_BODY_LIMIT)
    plan_id = body.get("plan")
    prices = request.config_dict[SETTINGS].stripe_price_ids()
    if not isinstance(plan_id, str) or plan_id not in prices:
        raise BadRequest(f"plan must be one of {', '.join(sorted(prices))}")
    user = await _user(request, principal.user_id)
    origin = _origin(request)
    try:
        customer = user.stripe_customer_id
        if customer is None:
            created = await client.v1.customers.create_async(params={
                "email": user.email, "metadata": {"clipora_user_id": user.id}})
            customer = created.id
            async with request.config_dict[PLANS_KEY].db.session() as s, s.begin():
                await s.execute(update(User).where(User.id == user.id).values(stripe_customer_id=customer))
        session = await client.v1.checkout.sessions.create_async(params={
            "mode": "subscription",
            "customer": customer,
            "client_reference_id": user.id,
            "line_items": [{"price": prices[plan_id], "quantity": 1}],
            "success_url": f"{origin}/billing?checkout=success",
            "cancel_url": f"{origin}/billing?checkout=cancelled",
            "metadata": {"clipora_user_id": user.id, "plan": plan_id},
            "subscription_data": {"metadata": {"clipora_user_id": user.id, "plan": plan_id}},
        })
    except stripe.StripeError as exc:
        log.warning("stripe checkout failed: %s", exc)
        raise ServiceUnavailable("the payment provider could not start a checkout; try again in a minute") from None
    return web.json_response({"url": session.url, "id": session.id}, headers=NO_STORE)


async def portal(request: web.Request) -> web.Response:
    principal = require_session(request)
    client = _client(request)
    user = await _user(request, principal.user_id)
    if user.stripe_customer_id is None:
        raise Conflict("this account has no subscription yet; choose a plan first")
    try:
        session = await client.v1.billing_portal.sessions.create_async(params={
            "customer": user.stripe_customer_id, "return_url": f"{_origin(request)}/billing"})
    except stripe.StripeError as exc:
        log.warning("stripe portal failed: %s", exc)
        raise ServiceUnavailable("the payment provider could not open the portal; try again in a minute") from None
    return web.json_response({"url": session.url}, headers=NO_STORE)


async def stripe_webhook(request: web.Request) -> web.Response:
    if not request.headers.get("Stripe-Signature"):
        raise BadRequest("Stripe-Signature header required (events come from Stripe, signed)")
    client = _client(request)
    payload = await read_body(request, STRIPE_EVENT_LIMIT)
    try:
        event = client.construct_event(payload, request.headers.get("Stripe-Signature"),
                                       request.config_dict[SETTINGS].stripe_webhook_secret)
    except (stripe.SignatureVerificationError, ValueError):
        raise BadRequest("the event's Stripe-Signature does not verify") from None
    db = request.config_dict[PLANS_KEY].db
    try:
        async with db.session() as s, s.begin():
            s.add(StripeEvent(id=event.id, type=event.type, received_at=int(time.time() * 1000)))
            await s.flush()
            applied = await _apply(s, event.type, event.data.object.to_dict(),
                                   request.config_dict[SETTINGS].stripe_price_ids())
    except IntegrityError:  # Stripe sent it again: already applied
        return web.json_response({"received": True, "duplicate": True})
    return web.json_response({"received": True, "applied": applied})


async def _apply(s: Any, event_type: str, obj: dict[str, Any], prices: dict[str, str]) -> bool:
    """Apply one event in the transaction that records it; whether it changed an account."""
    plan_of_price = {price: plan for plan, price in prices.items()}
    if event_type == "checkout.session.completed":
        user_id = obj.get("client_reference_id") or (obj.get("metadata") or {}).get("clipora_user_id")
        plan = (obj.get("metadata") or {}).get("plan")
        if not user_id or plan not in prices or obj.get("mode") != "subscription":
            return False
        values: dict[str, Any] = {"plan": plan, "stripe_customer_id": obj.get("customer")}
        if obj.get("subscription"):
            values["stripe_subscription_id"] = obj["subscription"]
        result = await s.execute(update(User).where(User.id == user_id).values(**values))
        return bool(result.rowcount)
    if event_type.startswith("customer.subscription."):
        user_id = await _user_of_customer(s, obj)
        if user_id is None:
            return False
        status = obj.get("status")
        items = (obj.get("items") or {}).get("data") or []
        price = ((items[0].get("price") or {}).get("id")) if items else None
        period_end = obj.get("current_period_end") or (items[0].get("current_period_end") if items else None)
        if event_type == "customer.subscription.deleted" or status not in ACTIVE or price not in plan_of_price:
            values = {"plan": FREE, "plan_renews_at": None, "stripe_subscription_id": None}
        else:
            values = {"plan": plan_of_price[price], "stripe_subscription_id": obj.get("id"),
                      "plan_renews_at": int(period_end) * 1000 if period_end else None}
        result = await s.execute(update(User).where(User.id == user_id).values(**values))
        return bool(result.rowcount)
    return False


async def _user_of_customer(s: Any, obj: dict[str, Any]) -> str | None:
    customer = obj.get("customer")
    if customer:
        user_id = await s.scalar(select(User.id).where(User.stripe_customer_id == customer))
        if user_id:
            return str(user_id)
    meta_user = (obj.get("metadata") or {}).get("clipora_user_id")
    return str(meta_user) if meta_user else None


def stripe_client(settings: GatewaySettings) -> stripe.StripeClient | None:
    if settings.billing != "stripe":
        return None
    base = {"api": settings.stripe_api_base.rstrip("/")} if settings.stripe_api_base else None
    return stripe.StripeClient(settings.stripe_secret_key, base_addresses=base,  # type: ignore[arg-type]
                               max_network_retries=2)


def setup(app: web.Application) -> None:
    settings = app.get(SETTINGS)
    if settings is not None and (client := stripe_client(settings)) is not None:
        app[STRIPE] = client
    app.router.add_get("/api/billing/plans", list_plans)
    app.router.add_get("/api/billing/usage", usage)
    app.router.add_post("/api/billing/checkout", checkout)
    app.router.add_post("/api/billing/portal", portal)
    app.router.add_post("/api/billing/webhook", stripe_webhook)
