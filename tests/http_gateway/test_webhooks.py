"""Webhooks against the real server: signed per Standard Webhooks (verified with the library),
retried with growing gaps, durable across a restart, SSRF-checked at registration.

The receiver is an aiohttp server on loopback in the test's process; the server under test is
``clipora serve`` with loopback allowed (CLIPORA_URL_ALLOWLIST) and short retry waits.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from tests.http_gateway.conftest import Account, LiveServer, new_account, upload, wait_for_job

MEDIA = Path(__file__).resolve().parents[1] / "media"
VIDEO = MEDIA / "face_static.mp4"
FAST = {"mode": "none", "trimEnd": 2, "captionPreset": "none", "aspectRatio": "1:1"}

pytestmark = pytest.mark.timeout(300)


@dataclass
class Receiver:
    """Answers each POST with the next status of ``script`` (then 200), verifying every signature."""

    script: list[int] = field(default_factory=list)
    secrets: list[str] = field(default_factory=list)
    hits: list[dict[str, Any]] = field(default_factory=list)
    port: int = 0

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        headers = {k.lower(): v for k, v in request.headers.items()}
        verified = None
        for secret in self.secrets:
            try:
                verified = Webhook(secret).verify(body, headers)
                break
            except WebhookVerificationError:
                continue
        status = self.script.pop(0) if self.script else 200
        self.hits.append({"at": time.monotonic(), "id": headers.get("webhook-id"), "verified": verified,
                          "status": status, "path": request.path})
        if 300 <= status < 400:  # a redirect, elsewhere on this receiver: it must not be followed
            return web.Response(status=status, headers={"Location": f"http://127.0.0.1:{self.port}/elsewhere"})
        return web.json_response({"ok": status < 300}, status=status)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = Receiver()
    app = web.Application()
    app.router.add_post("/{tail:.*}", r.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    r.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield r
    await runner.cleanup()


def server_env(receiver: Receiver, retry: str = "0.6,1.8,5") -> dict[str, str]:
    return {"CLIPORA_URL_ALLOWLIST": "127.0.0.1", "CLIPORA_URL_PORTS": f"80,443,{receiver.port}",
            "CLIPORA_WEBHOOK_RETRY_S": retry, "CLIPORA_WEBHOOK_POLL_S": "0.2"}


async def post(base: str, path: str, account: Account, body: dict[str, Any], *, key: bool = False
               ) -> tuple[int, dict[str, Any]]:
    headers = {"X-API-Key": account.key} if key else {"Origin": base}
    cookies = None if key else account.cookies
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as s, \
            s.post(f"{base}{path}", json=body, headers=headers, cookies=cookies) as r:
        return r.status, await r.json()


async def until(predicate: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


async def job_record(base: str, account: Account, job_id: str) -> dict[str, Any]:
    async with aiohttp.ClientSession() as s, s.get(f"{base}/api/jobs/{job_id}", headers=account.headers) as r:
        assert r.status == 200
        return dict(await r.json())


async def test_endpoint_retried_with_growing_gaps_and_signed(start_server: Any, receiver: Receiver) -> None:
    server: LiveServer = start_server(server_env(receiver, retry="0.5,3,5"))
    alice = await new_account(server.url, "alice@example.com")
    status, endpoint = await post(server.url, "/api/webhooks", alice, {"url": receiver.url, "description": "ci"})
    assert status == 201, endpoint
    assert endpoint["secret"].startswith("whsec_") and endpoint["status"] == "active"
    receiver.secrets.append(endpoint["secret"])
    receiver.script[:] = [500, 500, 200]

    status, job = await upload(server.url, alice.key, VIDEO, json.dumps(FAST))
    assert status == 200, job
    assert "webhookSecret" not in job  # no webhookUrl: the account secret is not made
    done = await wait_for_job(server.url, alice.key, job["jobId"])
    assert done["status"] == "completed"
    await until(lambda: len(receiver.hits) >= 3, 30, "three attempts")
    await asyncio.sleep(1.0)  # nothing after the 2xx
    hits = receiver.hits
    assert [h["status"] for h in hits] == [500, 500, 200]
    assert all(h["verified"] is not None for h in hits), "every attempt is signed with the endpoint's secret"
    assert len({h["id"] for h in hits}) == 1, "one delivery: the same webhook-id on every attempt"
    event = hits[-1]["verified"]
    assert event["type"] == "job.completed"
    data = event["data"]
    assert data["jobId"] == job["jobId"] and data["clipCount"] == 1
    assert data["manifestUrl"].endswith(f"/api/clips/{job['jobId']}")
    assert data["clips"][0]["downloadUrl"].endswith(f"/api/clips/{job['jobId']}/clip_01.mp4")
    # never early, and growing: waits of 0.5 s then 3 s. Lower bounds, plus one upper bound with 2.5 s of
    # room: on a loaded CI machine an attempt can start ~1 s late (gaps of 1.40 and 1.87 s were read
    # for waits of 0.6 and 1.8 s), never early
    gaps = [b["at"] - a["at"] for a, b in zip(hits, hits[1:], strict=False)]
    assert 0.5 <= gaps[0] < 3.0 <= gaps[1], gaps

    record = await job_record(server.url, alice, job["jobId"])
    [delivery] = record["webhooks"]
    assert delivery["status"] == "delivered" and delivery["attempts"] == 3 and delivery["lastStatus"] == 200
    assert [a["status"] for a in delivery["log"]] == [500, 500, 200]
    logged = [b["at"] - a["at"] for a, b in zip(delivery["log"], delivery["log"][1:], strict=False)]
    assert 500 <= logged[0] < 3000 <= logged[1], logged  # the gateway's own attempt times (ms)
    assert delivery["endpointId"] == endpoint["id"]

    # a key cannot manage webhooks; listing never shows a secret
    status, body = await post(server.url, "/api/webhooks", alice, {"url": receiver.url}, key=True)
    assert status == 403 and "session" in body["error"]
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as s, \
            s.get(f"{server.url}/api/webhooks", cookies=alice.cookies) as r:
        listed = await r.json()
    assert [e["id"] for e in listed["endpoints"]] == [endpoint["id"]]
    assert "secret" not in listed["endpoints"][0]


async def test_job_webhook_url_signed_with_account_secret_and_failed_event(start_server: Any,
                                                                           receiver: Receiver) -> None:
    server: LiveServer = start_server(server_env(receiver))
    bob = await new_account(server.url, "bob@example.com")
    options = {**FAST, "webhookUrl": receiver.url}
    status, job = await upload(server.url, bob.key, VIDEO, json.dumps(options))
    assert status == 200, job
    secret = job["webhookSecret"]  # created on first use, shown once
    assert secret.startswith("whsec_")
    receiver.secrets.append(secret)
    await wait_for_job(server.url, bob.key, job["jobId"])
    await until(lambda: len(receiver.hits) >= 1, 30, "the delivery")
    assert receiver.hits[0]["verified"]["type"] == "job.completed"

    # the second job reuses the secret (not shown again); a job that fails sends job.failed with the
    # reason: a URL job whose download is refused (the receiver answers GET with 405)
    missing = f"http://127.0.0.1:{receiver.port}/gone.mp4"
    status, job2 = await post(server.url, "/api/upload/url", bob, {"url": missing, "options": options}, key=True)
    assert status == 200 and "webhookSecret" not in job2, job2
    failed = await wait_for_job(server.url, bob.key, job2["jobId"])
    assert failed["status"] == "failed"
    await until(lambda: len(receiver.hits) >= 2, 30, "the failure delivery")
    event = receiver.hits[1]["verified"]
    assert event["type"] == "job.failed" and event["data"]["jobId"] == job2["jobId"]
    assert event["data"]["error"] == failed["error"] and "405" in failed["error"]


async def test_delivery_survives_a_restart_and_is_delivered_once(start_server: Any, receiver: Receiver,
                                                                 tmp_path: Path) -> None:
    env = server_env(receiver, retry="4,4,4")
    data_dir = tmp_path / "restart-data"
    server: LiveServer = start_server(env, data_dir=data_dir)
    carol = await new_account(server.url, "carol@example.com")
    status, endpoint = await post(server.url, "/api/webhooks", carol, {"url": receiver.url})
    assert status == 201
    receiver.secrets.append(endpoint["secret"])
    receiver.script[:] = [307]  # a redirect (to /elsewhere): a failed attempt, never followed
    status, job = await upload(server.url, carol.key, VIDEO, json.dumps(FAST))
    await wait_for_job(server.url, carol.key, job["jobId"])
    await until(lambda: len(receiver.hits) >= 1, 30, "the first attempt")
    # the attempt is recorded just after the receiver answers: stop once it is (a stop in between loses
    # that record, and the next server sends the same message again, counted as its first attempt)
    deadline = asyncio.get_running_loop().time() + 10
    while not (await job_record(server.url, carol, job["jobId"]))["webhooks"][0]["attempts"]:
        assert asyncio.get_running_loop().time() < deadline, "the first attempt was never recorded"
        await asyncio.sleep(0.05)
    server.stop()  # the retry is due in 4 s: it must come from the next server
    first = len(receiver.hits)
    again: LiveServer = start_server(env, data_dir=data_dir)
    await until(lambda: any(h["status"] == 200 for h in receiver.hits), 40, "the retry after the restart")
    await asyncio.sleep(1.5)
    assert first == 1 and [h["status"] for h in receiver.hits] == [307, 200]
    assert {h["path"] for h in receiver.hits} == {"/hook"}
    assert len({h["id"] for h in receiver.hits}) == 1
    record = await job_record(again.url, carol, job["jobId"])
    assert [(d["status"], d["attempts"]) for d in record["webhooks"]] == [("delivered", 2)]


async def test_gone_disables_the_endpoint(start_server: Any, receiver: Receiver) -> None:
    server: LiveServer = start_server(server_env(receiver))
    dana = await new_account(server.url, "dana@example.com")
    status, endpoint = await post(server.url, "/api/webhooks", dana, {"url": receiver.url})
    receiver.script[:] = [410]
    status, job = await upload(server.url, dana.key, VIDEO, json.dumps(FAST))
    await wait_for_job(server.url, dana.key, job["jobId"])
    await until(lambda: len(receiver.hits) >= 1, 30, "the attempt")
    await asyncio.sleep(2.5)  # past the first retry wait: nothing more is sent
    assert len(receiver.hits) == 1
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as s, \
            s.get(f"{server.url}/api/webhooks", cookies=dana.cookies) as r:
        [listed] = (await r.json())["endpoints"]
    assert listed["status"] == "disabled" and "410" in listed["disabledReason"]
    record = await job_record(server.url, dana, job["jobId"])
    assert record["webhooks"][0]["status"] == "disabled"


@pytest.mark.parametrize("url", [
    "http://10.0.0.5/hook", "http://192.168.1.20/hook", "http://169.254.169.254/latest/meta-data",
    "http://[::1]/hook", "http://127.0.0.1/hook", "http://localhost/hook", "http://100.100.100.200/",
    "ftp://example.com/hook", "http://user:pw@example.com/hook",
])
async def test_internal_and_metadata_targets_refused(live_server: LiveServer, url: str) -> None:
    account = await new_account(live_server.url, f"erin-{abs(hash(url))}@example.com")
    status, body = await post(live_server.url, "/api/webhooks", account, {"url": url})
    assert status == 400 and "refused" in body["error"].lower(), body
    # the same policy for a job's own webhookUrl, refused at submit before the upload is kept
    status, body = await upload(live_server.url, account.key, VIDEO, json.dumps({**FAST, "webhookUrl": url}))
    assert status == 400, body
