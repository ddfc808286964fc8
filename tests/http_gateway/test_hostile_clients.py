"""What a hostile client found (gateway hardening issue, items 1-4), each against the real app.

Parallel guesses at one email are limited as they arrive; oversized credentials are refused before
they cost anything; deeply nested JSON and malformed multipart part headers are 400s, never 500s.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import aiohttp
import pytest
from argon2 import PasswordHasher
from limits import RateLimitItemPerSecond

from engine.errors import InvalidMedia
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


# -- smaller gaps (item 8) ---------------------------------------------------------------------------


async def test_errors_are_not_cached_name_their_scheme_and_do_not_echo_everything(gateway):
    r = await gateway.get("/api/jobs")
    assert r.status == 401
    assert r.headers["Cache-Control"] == "no-store" and r.headers["WWW-Authenticate"].startswith("Bearer")
    r = await gateway.get("/api/jobs/doesnotexist1", headers={"X-API-Key": gateway.key})
    assert r.status == 404 and r.headers["Cache-Control"] == "no-store"
    form = aiohttp.FormData()
    form.add_field("video", VIDEO.read_bytes(), filename="v.mp4", content_type="video/mp4")
    form.add_field("options", '{"captionPreset": "' + "x" * 50_000 + '"}')
    r = await gateway.post("/api/upload", data=form, headers={"X-API-Key": gateway.key})
    message = (await r.json())["error"]
    assert r.status == 400 and "captionPreset" in message and len(message) <= 300


async def test_key_names_refuse_control_characters_and_key_listings_are_not_cached(gateway):
    await gateway.post("/api/auth/login", json={"email": "ann@example.com", "password": PASSWORD})
    r = await gateway.post("/api/keys", json={"name": "laptop\x07\x1b[2J"}, headers=gateway.origin)
    assert r.status == 400 and "control characters" in (await r.json())["error"]
    r = await gateway.get("/api/keys")
    assert r.status == 200 and r.headers["Cache-Control"] == "no-store"


async def test_redirects_carry_the_security_headers_and_https_gets_hsts(aiohttp_client, tmp_path):
    app = create_app(GatewaySettings(data_dir=tmp_path, workers=0, trust_proxy=True), run=lambda *a: {})
    client = await aiohttp_client(app)
    r = await client.get("/", allow_redirects=False)
    assert r.status in (301, 302, 303, 307, 308) and r.headers["X-Content-Type-Options"] == "nosniff"
    assert "Strict-Transport-Security" not in r.headers
    r = await client.get("/healthz", headers={"X-Forwarded-Proto": "https"})
    assert r.headers["Strict-Transport-Security"].startswith("max-age=")


async def test_an_unsatisfiable_range_is_a_json_416(aiohttp_client, tmp_path):
    def run(job, source, out_dir, work, bus, cancel):
        out_dir.mkdir(parents=True, exist_ok=True)
        for ext in ("mp4", "jpg", "ass"):
            (out_dir / f"clip_01.{ext}").write_bytes(b"x" * 1000)
        (out_dir / "manifest.json").write_text('{"clipCount": 1, "clips": []}')
        return {"clipCount": 1}

    app = create_app(GatewaySettings(data_dir=tmp_path, workers=0), run=run)
    app[ACCOUNTS].hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    client = await aiohttp_client(app)
    origin = {"Origin": f"http://{client.host}:{client.port}"}
    await client.post("/api/auth/signup", json={"email": "ben@example.com", "password": PASSWORD}, headers=origin)
    key = (await (await client.post("/api/keys", json={"name": "k"}, headers=origin)).json())["key"]
    client.session.cookie_jar.clear()
    form = aiohttp.FormData()
    form.add_field("video", VIDEO.read_bytes(), filename="v.mp4", content_type="video/mp4")
    job_id = (await (await client.post("/api/upload", data=form, headers={"X-API-Key": key})).json())["jobId"]
    for _ in range(100):
        if (await (await client.get(f"/api/jobs/{job_id}", headers={"X-API-Key": key})).json())["status"] == \
                "completed":
            break
        await asyncio.sleep(0.05)
    url = f"/api/clips/{job_id}/clip_01.mp4"
    r = await client.get(url, headers={"X-API-Key": key, "Range": "bytes=100-199"})
    assert r.status == 206 and len(await r.read()) == 100
    r = await client.get(url, headers={"X-API-Key": key, "Range": "bytes=5000-"})
    assert r.status == 416 and r.headers["Content-Type"].startswith("application/json")
    assert set(await r.json()) == {"error"} and r.headers["Content-Range"] == "bytes */1000"
    assert r.headers["Cache-Control"] == "no-store"


async def test_one_account_cannot_fill_the_queue(aiohttp_client, tmp_path):
    release = threading.Event()

    def run(job, source, out_dir, work, bus, cancel):
        release.wait(10)
        raise InvalidMedia("not really processed")

    app = create_app(GatewaySettings(data_dir=tmp_path, workers=0, max_jobs_per_user=2), run=run)
    app[ACCOUNTS].hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    client = await aiohttp_client(app)
    origin = {"Origin": f"http://{client.host}:{client.port}"}
    await client.post("/api/auth/signup", json={"email": "cat@example.com", "password": PASSWORD}, headers=origin)
    key = {"X-API-Key": (await (await client.post("/api/keys", json={"name": "k"}, headers=origin)).json())["key"]}
    client.session.cookie_jar.clear()

    def video() -> aiohttp.FormData:
        form = aiohttp.FormData()
        form.add_field("video", VIDEO.read_bytes(), filename="v.mp4", content_type="video/mp4")
        return form

    try:
        assert [(await client.post("/api/upload", data=video(), headers=key)).status for _ in range(2)] == [200, 200]
        r = await client.post("/api/upload", data=video(), headers=key)
        assert r.status == 429 and int(r.headers["Retry-After"]) > 0
        assert "2 jobs queued or running" in (await r.json())["error"]
    finally:
        release.set()
