"""/api/webhooks: an account's webhook endpoints and its signing secret (a signed-in session only).

- ``GET /api/webhooks``: the endpoints (never their secrets) and whether the account has a signing
  secret for jobs' own ``webhookUrl``.
- ``POST /api/webhooks`` ``{"url": "https://…", "description": "…"}``: 201 with the endpoint and its
  ``secret`` (whsec_…), shown this once. The URL passes the URL-ingest policy (400 with the reason).
- ``DELETE /api/webhooks/{id}``: removes it (its pending deliveries go with it).
- ``POST /api/webhooks/signing-secret``: a new signing secret for ``webhookUrl`` deliveries (201, shown
  once); the old one stops signing at once.
"""

from __future__ import annotations

import secrets
from typing import Any

from aiohttp import web
from sqlalchemy import delete, func, select

from http_gateway.admission import WEBHOOK_TARGETS, has_signing_secret, rotate_signing_secret
from http_gateway.auth import require_session
from http_gateway.bodies import AUTH_BODY_LIMIT, json_object
from http_gateway.errors import BadRequest, Conflict, NotFoundError
from http_gateway.models import WebhookEndpoint
from http_gateway.plans import PLANS_KEY
from http_gateway.webhooks import EVENTS, check_target, new_secret, now_ms

MAX_ENDPOINTS = 10
MAX_DESCRIPTION = 100
NO_STORE = {"Cache-Control": "no-store"}


def endpoint_json(e: WebhookEndpoint) -> dict[str, Any]:
    return {"id": e.id, "url": e.url, "description": e.description, "events": list(EVENTS),
            "createdAt": e.created_at, "status": "disabled" if e.disabled_at else "active",
            "disabledAt": e.disabled_at, "disabledReason": e.disabled_reason}


async def list_endpoints(request: web.Request) -> web.Response:
    principal = require_session(request)
    async with request.config_dict[PLANS_KEY].db.session() as s:
        rows = list(await s.scalars(select(WebhookEndpoint).where(WebhookEndpoint.user_id == principal.user_id)
                                    .order_by(WebhookEndpoint.created_at, WebhookEndpoint.id)))
    return web.json_response({
        "endpoints": [endpoint_json(e) for e in rows],
        "signingSecret": {"exists": await has_signing_secret(request.config_dict, principal.user_id)},
    }, headers=NO_STORE)


async def create_endpoint(request: web.Request) -> web.Response:
    principal = require_session(request)
    body = await json_object(request, limit=AUTH_BODY_LIMIT)
    url, description = body.get("url"), body.get("description", "")
    if not isinstance(url, str) or not url.strip():
        raise BadRequest("url required")
    if not isinstance(description, str) or len(description) > MAX_DESCRIPTION \
            or any(not c.isprintable() for c in description):
        raise BadRequest(f"description must be printable text of at most {MAX_DESCRIPTION} characters")
    policy, resolver = request.config_dict[WEBHOOK_TARGETS]
    checked = await check_target(policy, url.strip(), resolver)  # 400 with the reason
    db = request.config_dict[PLANS_KEY].db
    endpoint = WebhookEndpoint(id=secrets.token_hex(8), user_id=principal.user_id, url=checked,
                               description=description.strip(), secret=new_secret(), created_at=now_ms())
    async with db.session() as s, s.begin():
        count = await s.scalar(select(func.count()).select_from(WebhookEndpoint)
                               .where(WebhookEndpoint.user_id == principal.user_id))
        if (count or 0) >= MAX_ENDPOINTS:
            raise Conflict(f"an account has at most {MAX_ENDPOINTS} webhook endpoints; delete one first")
        s.add(endpoint)
    # the only time the secret leaves the server
    return web.json_response({**endpoint_json(endpoint), "secret": endpoint.secret}, status=201, headers=NO_STORE)


async def delete_endpoint(request: web.Request) -> web.Response:
    principal = require_session(request)
    endpoint_id = request.match_info["endpoint_id"]
    async with request.config_dict[PLANS_KEY].db.session() as s, s.begin():
        endpoint = await s.get(WebhookEndpoint, endpoint_id)
        if endpoint is None or endpoint.user_id != principal.user_id:  # others' ids are as unknown
            raise NotFoundError("webhook endpoint not found")
        await s.execute(delete(WebhookEndpoint).where(WebhookEndpoint.id == endpoint_id))
    return web.json_response({"deleted": endpoint_id}, headers=NO_STORE)


async def new_signing_secret(request: web.Request) -> web.Response:
    principal = require_session(request)
    secret = await rotate_signing_secret(request.config_dict, principal.user_id)
    return web.json_response({"secret": secret}, status=201, headers=NO_STORE)


def setup(app: web.Application) -> None:
    app.router.add_get("/api/webhooks", list_endpoints)
    app.router.add_post("/api/webhooks", create_endpoint)
    app.router.add_post("/api/webhooks/signing-secret", new_signing_secret)
    # ids are 16 hex digits, so /api/webhooks/signing-secret is never taken for one
    app.router.add_delete(r"/api/webhooks/{endpoint_id:[0-9a-f]{16}}", delete_endpoint)
