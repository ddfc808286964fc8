"""What a hostile client found (gateway hardening issue, items 1-4), each against the real app.

Parallel guesses at one email are limited as they arrive; oversized credentials are refused before
they cost anything; deeply nested JSON and malformed multipart part headers are 400s, never 500s.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest
from argon2 import PasswordHasher
from limits import RateLimitItemPerSecond

from http_gateway.app import create_app
from http_gateway.auth import ACCOUNTS, LOGIN_LIMITER
from http_gateway.config import SERVICE, GatewaySettings

PASSWORD = "Correct-Horse-7"
NESTED = "[" * 100_000 + "]" * 100_000  # past any recursion limit
VIDEO = Path(__file__).resolve().parents[1] / "media" / "face_static.mp4"


@pytest.fixture
async def gateway(aiohttp_client, tmp_path):
    app = create_app(GatewaySettings(data_dir=tmp_path, workers=0), run=lambda *a: {"clipCount": 0})
    # a fast argon2 for the tests: the limits are what is tested, not the hash
    app[ACCOUNTS].hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    client = await aiohttp_client(app)
    client.origin = {"Origin": f"http://{client.host}:{client.port}"}
    r = await client.post("/api/auth/signup", json={"email": "ann@example.com", "password": PASSWORD},
                          headers=client.origin)
    assert r.status == 201, await r.text()
    r = await client.post("/api/keys", json={"name": "ci"}, headers=client.origin)
    client.key = (await r.json())["key"]
    client.session.cookie_jar.clear()
    return client


async def test_parallel_guesses_at_one_email_are_limited_as_they_arrive(gateway):
    creds = {"email": "ann@example.com", "password": "Wrong-Pass-99"}
    verified = []
    store = gateway.app[ACCOUNTS]
    authenticate = store.authenticate

    async def counting(email, password):
        verified.append(email)
        await asyncio.sleep(0.05)  # a verify that takes a while, as argon2 does
        return await authenticate(email, password)

    store.authenticate = counting
    replies = await asyncio.gather(*(gateway.post("/api/auth/login", json=creds) for _ in range(30)))
    statuses = sorted(r.status for r in replies)
    # 5 failures per email per minute: at most 5 guesses reach the password check, the rest are 429
    assert len(verified) <= 5 and statuses.count(401) == len(verified) >= 1, statuses
    assert statuses.count(429) == 30 - len(verified)
    assert all("Retry-After" in r.headers for r in replies if r.status == 429)
    # the right password now is refused too until the window passes; later it clears the email's count
    r = await gateway.post("/api/auth/login", json={**creds, "password": PASSWORD})
    assert r.status == 429


async def test_at_most_a_few_password_checks_run_at_once_per_address(gateway):
    limiter = gateway.app[LOGIN_LIMITER]  # only the concurrency cap is under test here
    limiter.by_email = RateLimitItemPerSecond(1000, 60, namespace="test-email")
    limiter.by_ip = RateLimitItemPerSecond(1000, 60, namespace="test-ip")
    running, peak = [0], [0]
    store = gateway.app[ACCOUNTS]
    authenticate = store.authenticate

    async def slow(email, password):
        running[0] += 1
        peak[0] = max(peak[0], running[0])
        await asyncio.sleep(0.1)
        running[0] -= 1
        return await authenticate(email, password)

    store.authenticate = slow
    replies = await asyncio.gather(*(gateway.post("/api/auth/login", json={
        "email": f"u{i}@example.com", "password": "Wrong-Pass-99"}) for i in range(12)))
    assert peak[0] <= 4
    busy = [(await r.json())["error"] for r in replies if r.status == 429]
    assert busy and all("in progress" in e for e in busy), busy


@pytest.mark.parametrize(("field", "value", "status", "words"), [
    ("email", "a" * 400 + "@example.com", 400, "at most 320"),
    ("password", "P4ss-" * 300, 400, "at most 1024"),
    ("email", "a" * 40_000 + "@example.com", 413, "too large"),  # past the auth body limit
])
async def test_oversized_credentials_are_refused_before_anything_else(gateway, field, value, status, words):
    body = {"email": "ann@example.com", "password": "Wrong-Pass-99", field: value}
    for route in ("/api/auth/login", "/api/auth/signup"):
        r = await gateway.post(route, json=body, headers=gateway.origin)
        assert r.status == status, (route, r.status, await r.text())
        assert words in (await r.json())["error"]
    # nothing was counted under a giant key
    assert all(len(k) < 400 for k in gateway.app[LOGIN_LIMITER].storage.events)


async def test_deeply_nested_json_is_a_400_everywhere(gateway):
    headers = {"Content-Type": "application/json"}
    key = {"X-API-Key": gateway.key}
    for route, extra in (("/api/auth/login", {}), ("/api/auth/signup", gateway.origin),
                         ("/api/upload/url", key)):
        r = await gateway.post(route, data="[" * 5000 + "]" * 5000, headers={**headers, **extra})
        assert r.status in (400, 413), (route, r.status)
        assert set(await r.json()) == {"error"}
    r = await gateway.post("/api/upload/url", data=NESTED[:900_000], headers={**headers, **key})
    assert r.status in (400, 413)
    # keys (session only) with a nested body small enough to be read
    await gateway.post("/api/auth/login", json={"email": "ann@example.com", "password": PASSWORD})
    r = await gateway.post("/api/keys", data="[" * 5000 + "]" * 5000, headers={**headers, **gateway.origin})
    assert r.status == 400, await r.text()
    # the options part of an upload
    form = aiohttp.FormData()
    form.add_field("video", VIDEO.read_bytes(), filename="v.mp4", content_type="video/mp4")
    form.add_field("options", "[" * 5000 + "]" * 5000)
    r = await gateway.post("/api/upload", data=form, headers=key)
    assert r.status == 400 and "options must be a JSON object" in (await r.json())["error"]
    assert not list(gateway.app[SERVICE].uploads_dir.iterdir())  # no partial upload left


@pytest.mark.parametrize("part_header", [
    b'Content-Disposition: form-data; name="video"; filename="v\x07.mp4"',
    b"\xc2\x83\xf1\x97\xb6\xaan",
])
async def test_a_malformed_multipart_part_header_is_a_400(gateway, part_header):
    boundary = "xyzBOUNDARYzyx"
    body = (f"--{boundary}\r\n".encode() + part_header + b"\r\nContent-Type: video/mp4\r\n\r\n" + b"\0" * 64
            + f"\r\n--{boundary}--\r\n".encode())
    r = await gateway.post("/api/upload", data=body, headers={
        "X-API-Key": gateway.key, "Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert r.status == 400, (r.status, await r.text())
    assert set(await r.json()) == {"error"}
