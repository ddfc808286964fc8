"""POST /api/upload/url against the real ``clipora serve``: a loopback media server (allow-listed
by setting) serves the media; the job goes downloading -> queued -> processing -> completed, and
every failure (404, over the limit, a slow drip, a refused hop) fails the job with the reason and
leaves no partial file. With the default settings, the refused-URL corpus is 400 at submit."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiohttp
import pytest

from tests.http_gateway.conftest import LiveServer, new_account, wait_for_job
from tests.http_gateway.media_server import CLIP, MediaServer

pytestmark = pytest.mark.timeout(300)

FAST = {"mode": "none", "trimEnd": 2, "captionPreset": "none", "aspectRatio": "1:1"}
LIMIT = 2 * 1024 * 1024


@pytest.fixture(scope="module")
def media():
    server = MediaServer(drip_s=4.0).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def fetching_server(tmp_path_factory, server_cache, media):
    env = {"CLIPORA_URL_ALLOWLIST": "127.0.0.1", "CLIPORA_URL_PORTS": f"80,443,{media.port}",
           "CLIPORA_MAX_UPLOAD_BYTES": str(LIMIT), "CLIPORA_FETCH_READ_TIMEOUT_S": "1.5"}
    server = LiveServer(tmp_path_factory.mktemp("fetch") / "data", server_cache, env).start()
    yield server
    server.stop()


async def submit(base: str, key: str, body: Any, content_type: str = "application/json") -> tuple[int, dict]:
    data = body if isinstance(body, (str, bytes)) else json.dumps(body)
    async with aiohttp.ClientSession() as s, s.post(
            f"{base}/api/upload/url", data=data, headers={"X-API-Key": key, "Content-Type": content_type}) as r:
        return r.status, await r.json()


def no_partials(server: LiveServer) -> None:
    assert list((server.data_dir / "uploads").iterdir()) == []


async def test_direct_link_downloads_then_runs_as_an_upload(fetching_server, media):
    server = fetching_server
    account = await new_account(server.url, "url-direct@example.com")
    status, body = await submit(server.url, account.key, {"url": f"{media.url}/slow.mp4", "options": FAST})
    assert status == 200, body
    assert body["status"] == "downloading" and body["wsUrl"] == f"/ws?jobId={body['jobId']}"
    assert body["originalName"] == "slow.mp4" and body["options"]["trimEnd"] == 2
    messages: list[dict[str, Any]] = []
    async with aiohttp.ClientSession() as s, s.ws_connect(f"{server.url}{body['wsUrl']}",
                                                          headers=account.headers) as ws:
        async for msg in ws:
            messages.append(json.loads(msg.data))
            if messages[-1]["type"] in ("completed", "failed"):
                break
    assert messages[0]["type"] == "status" and messages[0]["status"] == "downloading", messages[:2]
    downloads = [m for m in messages if m["type"] == "progress" and m["stage"] == "download"]
    assert len(downloads) >= 2, messages
    assert all(m["totalBytes"] == CLIP.stat().st_size and 0 <= m["progress"] <= 1 for m in downloads)
    assert downloads[-1]["bytes"] == CLIP.stat().st_size and downloads[-1]["progress"] == 1.0
    assert [m["bytes"] for m in downloads] == sorted(m["bytes"] for m in downloads)
    statuses = [m["status"] for m in messages if m["type"] == "status"]
    assert statuses.index("downloading") < statuses.index("queued") < statuses.index("processing")
    assert messages[-1]["type"] == "completed" and messages[-1]["clipCount"] == 1
    job = await wait_for_job(server.url, account.key, body["jobId"])
    assert job["status"] == "completed" and job["sizeBytes"] == CLIP.stat().st_size
    assert job["sourceUrl"] == f"{media.url}/slow.mp4" and job["originalName"] == "slow.mp4"
    src = server.data_dir / "jobs" / job["id"] / "source.mp4"
    assert src.read_bytes() == CLIP.read_bytes()
    no_partials(server)


async def test_a_page_with_a_video_goes_through_ytdlp_and_completes(fetching_server, media):
    server = fetching_server
    account = await new_account(server.url, "url-page@example.com")
    status, body = await submit(server.url, account.key, {"url": f"{media.url}/page.html", "options": FAST})
    assert status == 200, body
    job = await wait_for_job(server.url, account.key, body["jobId"])
    assert job["status"] == "completed", job
    assert job["originalName"].startswith("A talk") and job["originalName"].endswith(".mp4")
    assert job["sizeBytes"] == CLIP.stat().st_size
    no_partials(server)


@pytest.mark.parametrize(("path", "reason"), [
    ("/nope.mp4", "HTTP 404"),
    ("/big.mp4", f"larger than the limit of {LIMIT} bytes"),
    ("/big-declared.mp4", f"larger than the limit of {LIMIT} bytes"),
    ("/drip.mp4", "timed out"),
    ("/redirect/3?to=http://127.0.0.2:{port}/clip.mp4", "URL refused: 127.0.0.2 is a loopback address"),
    ("/redirect/1?to=http://169.254.169.254/latest/meta-data/", "cloud metadata"),
    ("/page.html?src=http://[::1]:{port}/clip.mp4", "URL refused: ::1 is a loopback address"),
    ("/page.html?src=http://10.0.0.7/a.mp4", "private address"),
])
async def test_failures_fail_the_job_with_the_reason(fetching_server, media, path, reason):
    server = fetching_server
    account = await new_account(server.url, f"url-fail-{abs(hash(path)) % 10**8}@example.com")
    status, body = await submit(server.url, account.key, {"url": media.url + path.format(port=media.port)})
    assert status == 200, body
    job = await wait_for_job(server.url, account.key, body["jobId"], timeout_s=60)
    assert job["status"] == "failed" and reason in job["error"], job
    assert not (server.data_dir / "jobs" / job["id"]).exists()
    no_partials(server)


REFUSED_AT_SUBMIT = [
    "http://127.0.0.1/v.mp4", "http://2130706433/v.mp4", "http://0x7f.0.0.1/v.mp4", "http://0177.0.0.1/v.mp4",
    "http://[::ffff:127.0.0.1]/v.mp4", "http://0.0.0.0/v.mp4", "http://169.254.169.254/latest/meta-data/",
    "http://[fd00:ec2::254]/", "http://100.100.100.200/", "http://localhost/v.mp4", "http://192.168.0.10/",
    "http://[::1]/v.mp4", "http://user:pw@example.com/v.mp4", "ftp://example.com/v.mp4", "file:///etc/passwd",
    "http://example.com:8080/v.mp4", "not a url",
]


async def test_refused_urls_are_400_with_the_default_settings(live_server, media):
    account = await new_account(live_server.url, "url-refused@example.com")
    corpus = [*REFUSED_AT_SUBMIT, f"{media.url}/clip.mp4"]
    before = len(media.seen)
    for url in corpus:
        status, body = await submit(live_server.url, account.key, {"url": url})
        assert status == 400 and set(body) == {"error"}, (url, body)
        assert "refused" in body["error"] or "URL" in body["error"] or "url" in body["error"], (url, body)
    async with aiohttp.ClientSession() as s, s.get(f"{live_server.url}/api/jobs", headers=account.headers) as r:
        assert (await r.json())["jobs"] == []  # nothing was created
    assert len(media.seen) == before  # and nothing was fetched


@pytest.mark.parametrize(("body", "ctype", "status", "message"), [
    ("{not json", "application/json", 400, "not valid JSON"),
    ("[1, 2]", "application/json", 400, "JSON object"),
    ({}, "application/json", 400, "url required"),
    ({"url": 42}, "application/json", 400, "url required"),
    ({"url": "https://example.com/v.mp4", "options": "x"}, "application/json", 400, "options must be"),
    ({"url": "https://example.com/v.mp4", "options": {"numClips": 12}}, "application/json", 400, "numClips"),
    ("url=https://example.com/v.mp4", "application/x-www-form-urlencoded", 400, "JSON body"),
])
async def test_bad_bodies_are_400(live_server, body, ctype, status, message):
    account = await new_account(live_server.url, f"url-body-{abs(hash(str(body))) % 10**8}@example.com")
    got, answer = await submit(live_server.url, account.key, body, ctype)
    assert got == status and set(answer) == {"error"} and message in answer["error"], answer


async def test_needs_auth(live_server):
    async with aiohttp.ClientSession() as s, s.post(f"{live_server.url}/api/upload/url",
                                                    json={"url": "https://example.com/v.mp4"}) as r:
        assert r.status == 401 and set(await r.json()) == {"error"}


async def test_a_download_cut_by_kill_9_fails_with_a_reason_after_restart(start_server, tmp_path, server_cache):
    slow = MediaServer(drip_s=60.0).start()
    try:
        data_dir = tmp_path / "data"
        env = {"CLIPORA_URL_ALLOWLIST": "127.0.0.1", "CLIPORA_URL_PORTS": f"80,443,{slow.port}",
               "CLIPORA_FETCH_READ_TIMEOUT_S": "120"}
        server: LiveServer = start_server(env, data_dir)
        account = await new_account(server.url, "url-kill@example.com")
        status, body = await submit(server.url, account.key, {"url": f"{slow.url}/drip.mp4"})
        assert status == 200, body
        deadline = time.monotonic() + 20
        while ("/drip.mp4", f"127.0.0.1:{slow.port}") not in slow.seen:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.1)
        job = await wait_for_job(server.url, account.key, body["jobId"], timeout_s=5, until=("downloading",))
        assert job["status"] == "downloading"
        assert any(p.suffix == ".part" for p in (data_dir / "uploads").iterdir())
        server.kill()
        again: LiveServer = start_server(env, data_dir)
        job = await wait_for_job(again.url, account.key, body["jobId"], timeout_s=30)
        assert job["status"] == "failed" and "downloading" in job["error"] and "submit the URL again" in job["error"]
        assert list((data_dir / "uploads").iterdir()) == []
    finally:
        slow.stop()


async def test_download_slots_per_user_and_per_gateway(start_server, media):
    # a drip holds its download for the read timeout: long enough to fill every slot
    server: LiveServer = start_server({
        "CLIPORA_URL_ALLOWLIST": "127.0.0.1", "CLIPORA_URL_PORTS": f"80,443,{media.port}",
        "CLIPORA_FETCH_READ_TIMEOUT_S": "3", "CLIPORA_MAX_DOWNLOADS": "2", "CLIPORA_MAX_DOWNLOADS_PER_USER": "1"})
    alice = await new_account(server.url, "slots-a@example.com")
    bob = await new_account(server.url, "slots-b@example.com")
    carol = await new_account(server.url, "slots-c@example.com")
    drip = {"url": f"{media.url}/drip.mp4", "options": FAST}
    status, first = await submit(server.url, alice.key, drip)
    assert status == 200, first
    async with aiohttp.ClientSession() as s, s.post(
            f"{server.url}/api/upload/url", json=drip, headers=alice.headers) as r:
        assert r.status == 429 and int(r.headers["Retry-After"]) > 0
        assert "downloads are still running" in (await r.json())["error"]
    status, second = await submit(server.url, bob.key, drip)
    assert status == 200, second
    status, body = await submit(server.url, carol.key, drip)
    assert (status, body) == (503, {"error": "too many downloads are running; try again in a minute"})
    # the refused submissions left no job behind
    for account, count in ((alice, 1), (carol, 0)):
        async with aiohttp.ClientSession() as s, s.get(f"{server.url}/api/jobs", headers=account.headers) as r:
            assert len((await r.json())["jobs"]) == count
    # a finished download frees its slot
    failed = await wait_for_job(server.url, alice.key, first["jobId"], timeout_s=60)
    assert failed["status"] == "failed"
    await asyncio.sleep(0.5)
    status, body = await submit(server.url, alice.key, drip)
    assert status == 200, body
