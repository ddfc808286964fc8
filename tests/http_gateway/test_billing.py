"""Billing and plan enforcement against the real server, with a fake Stripe on loopback.

``CLIPORA_BILLING=stripe``: new accounts start on free, checkout and portal go to the fake Stripe
(which checks the secret key and records what it is sent), Stripe's signed events change plans.
Billing off (the default): every account is on CLIPORA_DEFAULT_PLAN and the operator sets plans.
"""

from __future__ import annotations

import asyncio
import json
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.http_gateway.conftest import ROOT, Account, LiveServer, create_key, new_account, signup
from tests.http_gateway.fake_stripe import FakeStripe, signed_event
from tests.http_gateway.media_server import MediaServer

MEDIA = Path(__file__).resolve().parents[1] / "media"
VIDEO = MEDIA / "face_static.mp4"  # 10 s
FAST = {"mode": "none", "trimEnd": 2, "captionPreset": "none", "aspectRatio": "1:1"}
SECRET_KEY = "sk_test_clipora"
WEBHOOK_SECRET = "whsec_test_stripe_events"
PRICES = {"creator": "price_creator_m", "business": "price_business_m"}

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
async def fake_stripe() -> AsyncIterator[FakeStripe]:
    fake = await FakeStripe(SECRET_KEY).start()
    yield fake
    await fake.stop()


def stripe_env(fake: FakeStripe) -> dict[str, str]:
    return {"CLIPORA_BILLING": "stripe", "CLIPORA_STRIPE_SECRET_KEY": SECRET_KEY,
            "CLIPORA_STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET, "CLIPORA_STRIPE_API_BASE": fake.url,
            "CLIPORA_STRIPE_PRICES": ",".join(f"{k}={v}" for k, v in PRICES.items()),
            "CLIPORA_PUBLIC_URL": "https://clips.example.test", "CLIPORA_WEBHOOK_POLL_S": "0.2"}


async def session_account(base: str, email: str) -> Account:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as s:
        cookies, csrf = await signup(s, base, email)
    return Account(email, "", cookies, csrf)


async def call(base: str, method: str, path: str, account: Account | None = None, *, body: Any = None,
               key: str | None = None, data: bytes | None = None, headers: dict[str, str] | None = None
               ) -> tuple[int, Any]:
    h = {"Origin": base, **(headers or {})}
    cookies = None
    if key is not None:
        h["X-API-Key"] = key
    elif account is not None:
        cookies = account.cookies
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as s, \
            s.request(method, f"{base}{path}", json=body, data=data, headers=h, cookies=cookies) as r:
        text = await r.text()
        return r.status, json.loads(text) if text else None


async def upload_as(base: str, account: Account, options: dict[str, Any], path: Path = VIDEO,
                    key: str | None = None) -> tuple[int, dict[str, Any]]:
    form = aiohttp.FormData()
    form.add_field("options", json.dumps(options))  # first: the plan's clip check comes before the upload
    form.add_field("video", path.read_bytes(), filename=path.name, content_type="video/mp4")
    headers = {"X-API-Key": key} if key else {"Origin": base}
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as s, \
            s.post(f"{base}/api/upload", data=form, headers=headers,
                   cookies=None if key else account.cookies) as r:
        return r.status, await r.json()


async def wait_job(base: str, account: Account, job_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while True:
        status, job = await call(base, "GET", f"/api/jobs/{job_id}", account)
        assert status == 200, job
        if job["status"] in ("completed", "failed"):
            return dict(job)
        assert time.monotonic() < deadline, job
        await asyncio.sleep(0.25)


def set_plan(server: LiveServer, email: str, plan: str) -> str:
    r = subprocess.run([sys.executable, "-m", "clipora", "users", "set-plan", email, plan, "--data-dir",
                        str(server.data_dir)], capture_output=True, text=True, timeout=60,
                       env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", **server.extra_env})
    assert r.returncode == 0, r.stderr
    return r.stdout


async def test_checkout_webhook_portal_and_plan_changes(start_server: Any, fake_stripe: FakeStripe) -> None:
    server: LiveServer = start_server(stripe_env(fake_stripe))
    base = server.url
    ann = await session_account(base, "ann@example.com")
    status, me = await call(base, "GET", "/api/auth/me", ann)
    assert me["user"]["plan"] == "free" and me["usage"]["limits"]["monthlyMinutes"] == 60
    assert me["usage"]["minutesUsed"] == 0 and me["usage"]["billing"] == "stripe"

    # the portal needs a customer first; an unknown plan is a 400
    assert (await call(base, "POST", "/api/billing/portal", ann))[0] == 409
    status, body = await call(base, "POST", "/api/billing/checkout", ann, body={"plan": "platinum"})
    assert status == 400 and "creator" in body["error"]

    status, body = await call(base, "POST", "/api/billing/checkout", ann, body={"plan": "creator"})
    assert status == 200, body
    assert body["url"].startswith("https://checkout.stripe.test/cs_test_")
    [customer_call] = fake_stripe.calls("/v1/customers")
    [session_call] = fake_stripe.calls("/v1/checkout/sessions")
    assert customer_call["auth"] == f"Bearer {SECRET_KEY}" and customer_call["form"]["email"] == "ann@example.com"
    form = session_call["form"]
    assert form["mode"] == "subscription" and form["line_items[0][price]"] == PRICES["creator"]
    assert form["client_reference_id"] == me["user"]["id"] and form["metadata[plan]"] == "creator"
    assert form["success_url"] == "https://clips.example.test/billing?checkout=success"
    assert form["customer"].startswith("cus_")
    customer = form["customer"]
    # a second checkout reuses the customer
    await call(base, "POST", "/api/billing/checkout", ann, body={"plan": "business"})
    assert len(fake_stripe.calls("/v1/customers")) == 1

    # Stripe's events: a forged signature is refused; the completed checkout sets the plan, once
    payload, sig = signed_event(WEBHOOK_SECRET, "checkout.session.completed", {
        "id": "cs_test_1", "object": "checkout.session", "mode": "subscription", "customer": customer,
        "subscription": "sub_1", "client_reference_id": me["user"]["id"], "metadata": {"plan": "creator"}},
        event_id="evt_checkout_1")
    status, body = await call(base, "POST", "/api/billing/webhook", data=payload,
                              headers={"Stripe-Signature": sig.replace("v1=", "v1=00"),
                                       "Content-Type": "application/json"})
    assert status == 400 and "Stripe-Signature" in body["error"]
    for expect_duplicate in (False, True):
        status, body = await call(base, "POST", "/api/billing/webhook", data=payload,
                                  headers={"Stripe-Signature": sig, "Content-Type": "application/json"})
        assert status == 200 and body.get("duplicate", False) is expect_duplicate, body
    status, me = await call(base, "GET", "/api/auth/me", ann)
    assert me["user"]["plan"] == "creator" and me["usage"]["limits"]["monthlyMinutes"] == 600

    # the subscription moves to business (renewal date recorded), then ends: back on free
    renews = int(time.time()) + 30 * 86400
    sub = {"id": "sub_1", "object": "subscription", "customer": customer, "status": "active",
           "current_period_end": renews, "items": {"data": [{"price": {"id": PRICES["business"]}}]}}
    payload, sig = signed_event(WEBHOOK_SECRET, "customer.subscription.updated", sub)
    assert (await call(base, "POST", "/api/billing/webhook", data=payload,
                       headers={"Stripe-Signature": sig}))[0] == 200
    status, usage = await call(base, "GET", "/api/billing/usage", ann)
    assert usage["plan"] == "business" and usage["renewsAt"] == renews * 1000

    status, body = await call(base, "POST", "/api/billing/portal", ann)
    assert status == 200 and body["url"] == "https://billing.stripe.test/p/session"
    [portal_call] = fake_stripe.calls("/v1/billing_portal/sessions")
    assert portal_call["form"] == {"customer": customer, "return_url": "https://clips.example.test/billing"}

    # on business, a key works, and cannot open checkout or the portal (session only)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as s:
        key = await create_key(s, base, ann.cookies)
    for route in ("/api/billing/checkout", "/api/billing/portal"):
        status, body = await call(base, "POST", route, key=key, body={"plan": "creator"})
        assert status == 403 and "session" in body["error"]

    payload, sig = signed_event(WEBHOOK_SECRET, "customer.subscription.deleted", {**sub, "status": "canceled"})
    assert (await call(base, "POST", "/api/billing/webhook", data=payload,
                       headers={"Stripe-Signature": sig}))[0] == 200
    status, me = await call(base, "GET", "/api/auth/me", ann)
    assert me["user"]["plan"] == "free"
    # the key of an account that lost API access: 403 naming why (not revoked)
    status, body = await call(base, "GET", "/api/jobs", key=key)
    assert status == 403 and "Business" in body["error"] and "Free" in body["error"]


@pytest.fixture
def media() -> Any:
    server = MediaServer().start()
    yield server
    server.stop()


async def test_free_plan_limits_are_enforced_and_minutes_metered(start_server: Any, fake_stripe: FakeStripe,
                                                                  media: MediaServer) -> None:
    server: LiveServer = start_server({**stripe_env(fake_stripe), "CLIPORA_URL_ALLOWLIST": "127.0.0.1",
                                       "CLIPORA_URL_PORTS": f"80,443,{media.port}"})
    base = server.url
    bea = await session_account(base, "bea@example.com")

    # no API keys on free
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as s, \
            s.post(f"{base}/api/keys", json={"name": "k"}, cookies=bea.cookies, headers={"Origin": base}) as r:
        assert r.status == 403 and "Business" in (await r.json())["error"]
    # clips per job
    status, body = await upload_as(base, bea, {**FAST, "mode": "ai", "numClips": 4})
    assert status == 403 and "3 clips per job" in body["error"], body
    # upload size: the plan's 256 MiB, refused from Content-Length before a byte of the body is read
    assert raw_upload_status(server.port, bea, 300 * 1024 * 1024) == 413
    # URL downloads are refused the same way as uploads when numClips is over
    status, body = await call(base, "POST", "/api/upload/url", bea,
                              body={"url": "https://example.com/v.mp4", "options": {"numClips": 5}})
    assert status == 403 and "clips per job" in body["error"]

    # a job completes and its trimmed minutes are metered (2 s of the 10 s source)
    status, job = await upload_as(base, bea, FAST)
    assert status == 200, job
    done = await wait_job(base, bea, job["jobId"])
    assert done["status"] == "completed"
    deadline = time.monotonic() + 20
    while True:
        status, usage = await call(base, "GET", "/api/billing/usage", bea)
        if usage["minutesUsed"] > 0 or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    assert usage["minutesUsed"] == pytest.approx(2 / 60, abs=0.006), usage
    assert usage["minutesLeft"] == pytest.approx(60 - 2 / 60, abs=0.006)

    # a month nearly used up (earlier jobs, written as the store would): the 10 s source no longer
    # fits, its first 5 s do
    with sqlite3.connect(server.data_dir / "clipora.db") as db:
        user_id = db.execute("SELECT id FROM users WHERE email = ?", ("bea@example.com",)).fetchone()[0]
        period = time.strftime("%Y-%m", time.gmtime())
        db.execute("INSERT INTO usage_records (job_id, user_id, period, minutes, state, updated_at) "
                   "VALUES ('earlier', ?, ?, ?, 'metered', 0)", (user_id, period, 59.9 - 2 / 60))
    status, body = await upload_as(base, bea, {**FAST, "trimEnd": None})
    assert status == 403 and "0.1 of its 60 minutes left" in body["error"], body
    status, job = await upload_as(base, bea, {**FAST, "trimEnd": 5})
    assert status == 200, job
    # a URL's length is known once it has arrived: 0.02 minutes left now, the 10 s video fails saying so
    status, url_job = await call(base, "POST", "/api/upload/url", bea,
                                 body={"url": f"{media.url}/clip.mp4", "options": {**FAST, "trimEnd": None}})
    assert status == 200, url_job
    failed = await wait_job(base, bea, url_job["jobId"])
    assert failed["status"] == "failed" and "minutes left this month" in failed["error"], failed
    assert list((server.data_dir / "uploads").iterdir()) == []  # the download is not kept


def raw_upload_status(port: int, account: Account, length: int) -> int:
    """The status of an upload that announces ``length`` bytes and sends none of them."""
    cookie = "; ".join(f"{k}={v}" for k, v in account.cookies.items())
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall((f"POST /api/upload HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nOrigin: http://127.0.0.1:{port}\r\n"
                      f"Cookie: {cookie}\r\nContent-Type: multipart/form-data; boundary=x\r\n"
                      f"Content-Length: {length}\r\n\r\n").encode())
        head = sock.recv(4096).decode(errors="replace")
    return int(head.split(" ", 2)[1])


async def test_billing_off_default_plan_and_operator_set_plan(live_server: LiveServer) -> None:
    base = live_server.url
    cy = await new_account(base, "cy@example.com")  # billing off: business, so a key could be made
    status, me = await call(base, "GET", "/api/auth/me", key=cy.key)
    assert me["user"]["plan"] == "business" and me["usage"]["billing"] == "off"
    for route in ("/api/billing/checkout", "/api/billing/portal", "/api/billing/webhook"):
        status, body = await call(base, "POST", route, cy, body={"plan": "creator"},
                                  headers={"Stripe-Signature": "t=1,v1=00"})
        assert status == 404 and "billing is not enabled" in body["error"]
    assert "Free" in set_plan(live_server, "cy@example.com", "free")
    status, body = await call(base, "GET", "/api/jobs", key=cy.key)
    assert status == 403 and "API keys need" in body["error"]
    status, me = await call(base, "GET", "/api/auth/me", cy)  # the session still works
    assert status == 200 and me["user"]["plan"] == "free"
    assert "Business" in set_plan(live_server, "cy@example.com", "default")
    status, _ = await call(base, "GET", "/api/jobs", key=cy.key)
    assert status == 200
    status, plans = await call(base, "GET", "/api/billing/plans")
    assert [p["id"] for p in plans["plans"]] == ["free", "creator", "business"]
