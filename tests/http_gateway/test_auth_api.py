"""The accounts/keys/billing HTTP API through aiohttp's test client, on SQLite.

The app here is minimal: a small error middleware, CSRF, auth, the routes of http_gateway.auth,
and one probe route (POST /api/test/echo) that any authenticated caller may use.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from argon2 import PasswordHasher
from sqlalchemy import update

from engine.db import Database
from http_gateway.accounts import AccountStore, now_ms
from http_gateway.auth import (
    ACCOUNTS,
    LOGIN_LIMITER,
    SESSION_COOKIE,
    TRUST_PROXY,
    auth_middleware,
    csrf_middleware,
    require_user,
    setup_routes,
)
from http_gateway.config import SETTINGS, GatewaySettings
from http_gateway.errors import ApiError
from http_gateway.models import Session
from http_gateway.proxies import TrustedProxies
from http_gateway.ratelimit import LoginLimiter

PASSWORD = "Correct-Horse-7"
ORIGIN = {"Origin": "http://127.0.0.1"}  # rewritten per client to its real host:port below


@web.middleware
async def errors(request: web.Request, handler):
    try:
        return await handler(request)
    except ApiError as exc:
        return web.json_response({"error": exc.message}, status=exc.status, headers=exc.headers)


async def echo(request: web.Request) -> web.Response:
    principal = require_user(request)
    return web.json_response({"userId": principal.user_id, "via": principal.via})


def build_app(db: Database, *, trust_proxy: bool | TrustedProxies = False,
              settings: GatewaySettings | None = None) -> web.Application:
    app = web.Application(middlewares=[errors, csrf_middleware, auth_middleware])
    if settings is not None:
        app[SETTINGS] = settings
    app[ACCOUNTS] = AccountStore(db, session_ttl_s=3600,
                                 hasher=PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    app[LOGIN_LIMITER] = LoginLimiter(per_email=5, per_ip=20, window_s=60)
    app[TRUST_PROXY] = (trust_proxy if isinstance(trust_proxy, TrustedProxies)
                        else TrustedProxies(count=1 if trust_proxy else 0))
    setup_routes(app)
    app.router.add_post("/api/test/echo", echo)
    return app


@pytest.fixture
async def db(tmp_path) -> AsyncIterator[Database]:
    database = Database.sqlite_in(tmp_path)
    await database.migrate()
    yield database
    await database.close()


@pytest.fixture
async def client(aiohttp_client, db) -> TestClient:
    return await aiohttp_client(build_app(db))


def origin(client: TestClient) -> dict[str, str]:
    return {"Origin": f"http://{client.host}:{client.port}"}


async def signup(client: TestClient, email: str = "ann@example.com", password: str = PASSWORD):
    return await client.post("/api/auth/signup", json={"email": email, "password": password},
                             headers=origin(client))


def set_cookie_header(resp) -> str:
    return next(v for v in resp.headers.getall("Set-Cookie") if v.startswith(SESSION_COOKIE + "="))


async def new_key(client: TestClient, name: str = "ci") -> dict:
    resp = await client.post("/api/keys", json={"name": name}, headers=origin(client))
    assert resp.status == 201, await resp.text()
    return await resp.json()


# -- accounts -------------------------------------------------------------------------------------

async def test_signup_me_logout(client):
    resp = await signup(client)
    assert resp.status == 201
    body = await resp.json()
    assert body["user"]["email"] == "ann@example.com" and body["user"]["plan"] == "business"
    assert resp.headers["Cache-Control"] == "no-store"
    me = await client.get("/api/auth/me")
    assert me.status == 200
    got = await me.json()
    assert got["via"] == "session" and got["user"] == body["user"]
    assert set(got["user"]) == {"id", "email", "plan", "createdAt"}
    out = await client.post("/api/auth/logout", headers=origin(client))
    assert out.status == 200 and "Max-Age=0" in set_cookie_header(out)
    assert (await client.get("/api/auth/me")).status == 401


async def test_duplicate_email_409_and_bad_input_400(client):
    assert (await signup(client)).status == 201
    client.session.cookie_jar.clear()
    dup = await signup(client, email="ANN@example.com")
    assert dup.status == 409 and "already exists" in (await dup.json())["error"]
    bad = await signup(client, email="not-an-email")
    assert bad.status == 400 and "email" in (await bad.json())["error"]
    weak = await signup(client, email="ben@example.com", password="short")
    assert weak.status == 400 and (await weak.json()) == {"error": "password must be at least 10 characters"}
    common = await signup(client, email="ben@example.com", password="password123")
    assert (await common.json()) == {"error": "password is too common"}
    missing = await client.post("/api/auth/signup", json={"email": "x@example.com"}, headers=origin(client))
    assert missing.status == 400 and (await missing.json()) == {"error": "email and password required"}
    notjson = await client.post("/api/auth/signup", data=b"{", headers=origin(client))
    assert notjson.status == 400


async def test_login_401_same_message_and_rotation(client, db):
    await signup(client)
    old_cookie = client.session.cookie_jar.filter_cookies(client.make_url("/"))[SESSION_COOKIE].value
    wrong = await client.post("/api/auth/login",
                              json={"email": "ann@example.com", "password": "Wrong-Pass-99"})
    unknown = await client.post("/api/auth/login", json={"email": "who@example.com", "password": PASSWORD})
    assert wrong.status == unknown.status == 401
    assert await wrong.json() == await unknown.json() == {"error": "invalid email or password"}
    ok = await client.post("/api/auth/login", json={"email": "Ann@Example.com", "password": PASSWORD},
                           headers=origin(client))
    assert ok.status == 200
    new_cookie = ok.cookies[SESSION_COOKIE].value
    assert new_cookie and new_cookie != old_cookie
    store: AccountStore = client.app[ACCOUNTS]
    assert await store.session_user(old_cookie) is None  # the pre-login session is gone
    assert (await store.session_user(new_cookie))[0].email == "ann@example.com"


async def test_login_rate_limited_with_retry_after(client):
    await signup(client)
    client.session.cookie_jar.clear()
    creds = {"email": "ann@example.com", "password": "Wrong-Pass-99"}
    for _ in range(5):
        assert (await client.post("/api/auth/login", json=creds)).status == 401
    limited = await client.post("/api/auth/login", json={**creds, "password": PASSWORD})
    assert limited.status == 429  # even the right password, until the window passes
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    assert "too many" in (await limited.json())["error"]
    other = await client.post("/api/auth/login", json={"email": "zed@example.com", "password": "x" * 10})
    assert other.status == 401  # a different email from the same IP is not yet blocked


SIGNUP_LIMITED = {"error": "too many sign-ups from this address; try again later"}


async def test_signup_rate_limited_per_ip_with_retry_after(client, monkeypatch):
    for i in range(10):  # the default: 10 sign-ups per address per hour
        assert (await signup(client, f"user{i}@example.com")).status == 201
        client.session.cookie_jar.clear()
    limited = await signup(client, "eleventh@example.com")
    assert limited.status == 429 and await limited.json() == SIGNUP_LIMITED
    assert 3500 <= int(limited.headers["Retry-After"]) <= 3600
    # X-Forwarded-For is ignored unless the operator trusts the proxy
    spoofed = await client.post("/api/auth/signup", json={"email": "spoof@example.com", "password": PASSWORD},
                                headers={**origin(client), "X-Forwarded-For": "203.0.113.9"})
    assert spoofed.status == 429
    later = time.time() + 3601  # the window moves on: the address may sign up again
    monkeypatch.setattr(time, "time", lambda: later)
    assert (await signup(client, "eleventh@example.com")).status == 201


async def test_signup_limit_is_a_setting_and_keyed_on_the_trusted_client_ip(aiohttp_client, db):
    proxied = await aiohttp_client(build_app(db, trust_proxy=True,
                                             settings=GatewaySettings(signups_per_ip_per_hour=1)))

    async def from_ip(ip: str, email: str):
        proxied.session.cookie_jar.clear()
        return await proxied.post("/api/auth/signup", json={"email": email, "password": PASSWORD},
                                  headers={**origin(proxied), "X-Forwarded-For": ip})  # as the proxy appends it

    assert (await from_ip("198.51.100.1", "a@example.com")).status == 201
    second = await from_ip("198.51.100.1", "b@example.com")
    assert second.status == 429 and await second.json() == SIGNUP_LIMITED and "Retry-After" in second.headers
    assert (await from_ip("198.51.100.2", "b@example.com")).status == 201  # another client, own budget


async def test_behind_an_appending_proxy_a_client_cannot_choose_its_address(aiohttp_client, db):
    """The proxy appends the address it saw; whatever the client wrote stays to its left and is ignored."""
    proxied = await aiohttp_client(build_app(db, trust_proxy=True,
                                             settings=GatewaySettings(signups_per_ip_per_hour=1)))

    async def spoofing(fake: str, email: str):
        proxied.session.cookie_jar.clear()
        return await proxied.post("/api/auth/signup", json={"email": email, "password": PASSWORD},
                                  headers={**origin(proxied), "X-Forwarded-For": f"{fake}, 198.51.100.7"})

    assert (await spoofing("203.0.113.1", "a@example.com")).status == 201
    for i in range(2, 5):  # a new made-up address each time: still the same client
        assert (await spoofing(f"203.0.113.{i}", f"b{i}@example.com")).status == 429


@pytest.mark.parametrize(("proxies", "forwarded", "peer", "client"), [
    ("1", "203.0.113.9, 198.51.100.7", "10.0.0.2", "198.51.100.7"),
    ("2", "203.0.113.9, 198.51.100.7, 10.0.0.3", "10.0.0.2", "198.51.100.7"),
    ("2", "", "10.0.0.2", "10.0.0.2"),  # fewer hops than proxies: the leftmost there is
    ("10.0.0.0/8", "203.0.113.9, 198.51.100.7, 10.0.0.3", "10.0.0.2", "198.51.100.7"),
    ("10.0.0.0/8, ::1", "198.51.100.7", "::1", "198.51.100.7"),
    ("10.0.0.0/8", "10.1.1.1", "10.0.0.2", "10.1.1.1"),  # all trusted: the leftmost
    ("", "203.0.113.9", "10.0.0.2", "10.0.0.2"),  # nothing trusted: the peer
])
def test_the_client_is_the_rightmost_hop_no_trusted_proxy_owns(proxies, forwarded, peer, client):
    assert TrustedProxies.parse(proxies).client(peer, forwarded) == client


def test_trusted_proxies_setting():
    assert GatewaySettings.from_env({"CLIPORA_TRUST_PROXY": "1"}).proxies() == TrustedProxies(count=1)
    assert GatewaySettings.from_env({"CLIPORA_TRUSTED_PROXIES": "2"}).proxies().count == 2
    assert len(GatewaySettings.from_env({"CLIPORA_TRUSTED_PROXIES": "10.0.0.0/8,fd00::/8"}).proxies().networks) == 2
    with pytest.raises(ValueError, match="neither a proxy count"):
        GatewaySettings.from_env({"CLIPORA_TRUSTED_PROXIES": "proxy.internal"})


async def test_cookie_flags_and_secure_only_over_https(aiohttp_client, db):
    plain = await aiohttp_client(build_app(db))
    cookie = set_cookie_header(await signup(plain))
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/" in cookie
    assert "Max-Age=3600" in cookie and "Secure" not in cookie
    # X-Forwarded-Proto is ignored unless the operator trusts the proxy
    spoofed = await plain.post("/api/auth/signup", json={"email": "b@example.com", "password": PASSWORD},
                               headers={**origin(plain), "X-Forwarded-Proto": "https"})
    assert "Secure" not in set_cookie_header(spoofed)
    proxied = await aiohttp_client(build_app(db, trust_proxy=True))
    behind_tls = await proxied.post("/api/auth/signup", json={"email": "c@example.com", "password": PASSWORD},
                                    headers={**origin(proxied), "X-Forwarded-Proto": "https"})
    assert behind_tls.status == 201 and "Secure" in set_cookie_header(behind_tls)


async def test_expired_session_is_401(client, db):
    await signup(client)
    async with db.session() as s, s.begin():
        await s.execute(update(Session).values(expires_at=now_ms() - 1))
    resp = await client.get("/api/auth/me")
    assert resp.status == 401 and (await resp.json()) == {"error": "authentication required"}


# -- API keys -------------------------------------------------------------------------------------

async def test_key_lifecycle(client):
    await signup(client)
    created = await new_key(client)
    key = created["key"]
    assert re.fullmatch(r"ck_live_[A-Za-z0-9_-]{43}", key)
    assert created["prefix"] == key[:12] and created["last4"] == key[-4:] and created["status"] == "active"
    listed = (await (await client.get("/api/keys")).json())["keys"]
    assert [k["id"] for k in listed] == [created["id"]] and "key" not in listed[0]
    assert listed[0]["lastUsedAt"] is None

    anon = client.session.cookie_jar
    anon.clear()  # from here on the key alone authenticates
    by_header = await client.get("/api/auth/me", headers={"X-API-Key": key})
    by_bearer = await client.get("/api/auth/me", headers={"Authorization": f"Bearer {key}"})
    assert by_header.status == by_bearer.status == 200
    assert (await by_header.json())["via"] == "key"
    assert (await by_bearer.json())["user"]["email"] == "ann@example.com"

    login = await client.post("/api/auth/login", json={"email": "ann@example.com", "password": PASSWORD})
    assert login.status == 200
    listed = (await (await client.get("/api/keys")).json())["keys"]
    assert listed[0]["lastUsedAt"] is not None
    revoked = await client.delete(f"/api/keys/{created['id']}", headers=origin(client))
    assert revoked.status == 200 and (await revoked.json())["status"] == "revoked"
    after = await client.get("/api/auth/me", headers={"X-API-Key": key})
    assert after.status == 401 and "API key" in (await after.json())["error"]
    assert (await client.delete("/api/keys/nope", headers=origin(client))).status == 404


async def test_wrong_key_with_valid_cookie_is_401_not_fallback(client):
    await signup(client)
    assert (await client.get("/api/auth/me")).status == 200
    for headers in ({"X-API-Key": "ck_live_" + "A" * 43}, {"Authorization": "Bearer nonsense"},
                    {"X-API-Key": ""}):
        resp = await client.get("/api/auth/me", headers=headers)
        assert resp.status == 401, headers


async def test_keys_are_session_only_and_owner_scoped(client, aiohttp_client, db):
    await signup(client)
    key = (await new_key(client))["key"]
    for method, path in (("GET", "/api/keys"), ("POST", "/api/keys"), ("DELETE", "/api/keys/x")):
        resp = await client.request(method, path, headers={"X-API-Key": key}, json={"name": "n"})
        assert resp.status == 403, (method, path)
        assert "session" in (await resp.json())["error"]
    other = await aiohttp_client(client.server)  # a second browser on the same server
    await signup(other, email="eve@example.com")
    mine = (await (await client.get("/api/keys")).json())["keys"][0]["id"]
    assert (await other.delete(f"/api/keys/{mine}", headers=origin(other))).status == 404
    assert (await (await other.get("/api/keys")).json())["keys"] == []
    nameless = await client.post("/api/keys", json={}, headers=origin(client))
    assert nameless.status == 400 and (await nameless.json()) == {"error": "name required"}


async def test_eleventh_active_key_is_409(client):
    await signup(client)
    for i in range(10):
        await new_key(client, f"k{i}")
    resp = await client.post("/api/keys", json={"name": "k10"}, headers=origin(client))
    assert resp.status == 409
    assert (await resp.json()) == {"error": "you already have 10 active API keys; revoke one first"}


# -- CSRF -----------------------------------------------------------------------------------------

async def test_csrf_for_cookie_requests(client):
    body = await (await signup(client)).json()
    bare = await client.post("/api/test/echo")
    assert bare.status == 403 and "CSRF" in (await bare.json())["error"]
    cross = await client.post("/api/test/echo", headers={"Origin": "https://evil.example"})
    assert cross.status == 403
    same = await client.post("/api/test/echo", headers=origin(client))
    assert same.status == 200 and (await same.json())["via"] == "session"
    referer = await client.post("/api/test/echo", headers={"Referer": f"http://{client.host}:{client.port}/x"})
    assert referer.status == 200
    token = await client.post("/api/test/echo", headers={"X-CSRF-Token": body["csrfToken"]})
    assert token.status == 200
    wrong = await client.post("/api/test/echo", headers={"X-CSRF-Token": "x" * 43})
    assert wrong.status == 403
    me = await (await client.get("/api/auth/me")).json()
    assert me["csrfToken"] == body["csrfToken"]


async def test_csrf_exempts_api_keys_and_checks_login_origin(client):
    await signup(client)
    key = (await new_key(client))["key"]
    client.session.cookie_jar.clear()
    via_key = await client.post("/api/test/echo", headers={"X-API-Key": key})
    assert via_key.status == 200 and (await via_key.json())["via"] == "key"
    creds = {"email": "ann@example.com", "password": PASSWORD}
    forged = await client.post("/api/auth/login", json=creds, headers={"Origin": "https://evil.example"})
    assert forged.status == 403
    assert (await client.post("/api/auth/login", json=creds)).status == 200  # no Origin: a CLI client


# -- billing, logs --------------------------------------------------------------------------------

async def test_billing_plans_are_public_data(client):
    resp = await client.get("/api/billing/plans")
    assert resp.status == 200
    plans = {p["id"]: p for p in (await resp.json())["plans"]}
    assert list(plans) == ["free", "creator", "business"]
    assert [p["limits"]["apiAccess"] for p in plans.values()] == [False, False, True]
    for plan in plans.values():
        limits = plan["limits"]
        assert limits["monthlyMinutes"] > 0 and limits["maxUploadBytes"] > 0
        assert 1 <= limits["clipsPerJob"] <= 10
    prices = [p["priceMonthly"] for p in plans.values()]
    assert prices[0] == 0 < prices[1] < prices[2]


async def test_keys_and_passwords_never_logged(client, caplog):
    caplog.set_level(logging.DEBUG)
    await signup(client)
    created = await new_key(client)
    key = created["key"]
    await client.get("/api/auth/me", headers={"X-API-Key": key})
    await client.get("/api/auth/me", headers={"Authorization": f"Bearer {key}x"})
    await client.delete(f"/api/keys/{created['id']}", headers=origin(client))
    await client.get("/api/auth/me", headers={"X-API-Key": key})
    await client.post("/api/auth/login", json={"email": "ann@example.com", "password": PASSWORD})
    assert caplog.records  # aiohttp's access log and sqlalchemy did log something
    assert key not in caplog.text and key[12:-4] not in caplog.text and PASSWORD not in caplog.text
