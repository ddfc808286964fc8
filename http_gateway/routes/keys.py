"""/api/keys: list, create (the plaintext once), revoke. A signed-in session only (403 for a key)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from http_gateway.auth import ACCOUNTS, require_session
from http_gateway.bodies import AUTH_BODY_LIMIT, json_object
from http_gateway.errors import BadRequest, Forbidden, NotFoundError
from http_gateway.models import ApiKey
from http_gateway.plans import PLANS_KEY
from http_gateway.routes.auth import NO_STORE

MAX_NAME_LENGTH = 100  # the column's width


def key_json(key: ApiKey) -> dict[str, Any]:
    return {
        "id": key.id,
        "name": key.name,
        "prefix": key.prefix,
        "last4": key.last4,
        "createdAt": key.created_at,
        "lastUsedAt": key.last_used_at,
        "revokedAt": key.revoked_at,
        "status": "revoked" if key.revoked_at is not None else "active",
    }


async def list_keys(request: web.Request) -> web.Response:
    principal = require_session(request)
    keys = await request.config_dict[ACCOUNTS].list_keys(principal.user_id)
    return web.json_response({"keys": [key_json(k) for k in keys]}, headers=NO_STORE)


async def create_key(request: web.Request) -> web.Response:
    principal = require_session(request)
    body = await json_object(request, limit=AUTH_BODY_LIMIT)
    name = body.get("name")
    if not isinstance(name, str) or not name.strip():
        raise BadRequest("name required")
    name = name.strip()
    if any(not c.isprintable() for c in name):
        raise BadRequest("name must not contain control characters")
    if len(name) > MAX_NAME_LENGTH:
        raise BadRequest(f"name must be at most {MAX_NAME_LENGTH} characters")
    plan = await request.config_dict[PLANS_KEY].plan_of(principal.user_id)
    if not plan.api_access:
        raise Forbidden(f"API keys need a plan with API access (Business); your account is on the {plan.name} plan")
    plaintext, key = await request.config_dict[ACCOUNTS].create_key(principal.user_id, name)
    # the only time the plaintext leaves the server: never cache it anywhere on the way
    return web.json_response({**key_json(key), "key": plaintext}, status=201,
                             headers={"Cache-Control": "no-store"})


async def revoke_key(request: web.Request) -> web.Response:
    principal = require_session(request)
    key = await request.config_dict[ACCOUNTS].revoke_key(principal.user_id, request.match_info["key_id"])
    if key is None:  # someone else's key is as unknown as a missing one: ids are not probeable
        raise NotFoundError("API key not found")
    return web.json_response(key_json(key), headers=NO_STORE)


def setup(app: web.Application) -> None:
    app.router.add_get("/api/keys", list_keys)
    app.router.add_post("/api/keys", create_key)
    app.router.add_delete("/api/keys/{key_id}", revoke_key)
