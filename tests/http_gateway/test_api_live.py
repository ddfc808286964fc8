"""The HTTP API against the real server (``clipora serve`` in a subprocess, on loopback).

The quickstart's curl calls as written, the documented error codes triggered for real, the
BOLA matrix over every id route, artifacts with Range, the WebSocket, metrics and the OpenAPI
document. Jobs use tiny options (mode none, 2 s) so each takes a few seconds.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import subprocess
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.http_gateway.conftest import (
    FAST_OPTIONS,
    PASSWORD,
    Account,
    LiveServer,
    new_account,
    upload,
    wait_for_job,
)

MEDIA = Path(__file__).resolve().parents[1] / "media"
VIDEO = MEDIA / "face_static.mp4"
UNKNOWN_JOB = "A" * 22

pytestmark = pytest.mark.timeout(300)


def curl(*args: str, env: dict[str, str] | None = None) -> str:
    r = subprocess.run(["curl", "-sS", *args], capture_output=True, text=True, timeout=60,
                       env=dict(os.environ, **(env or {})))
    assert r.returncode == 0, r.stderr
    return r.stdout


async def get(url: str, headers: dict[str, str] | None = None, **kw: Any) -> tuple[int, Any, Any]:
    async with aiohttp.ClientSession() as s, s.get(url, headers=headers, **kw) as r:
        body = await r.read()
        try:
            data = json.loads(body)
        except ValueError:
            data = body
        return r.status, data, r.headers


@pytest.fixture(scope="module")
def alice(live_server: LiveServer) -> Account:
    return asyncio.run(new_account(live_server.url, "alice@example.com"))


@pytest.fixture(scope="module")
def bob(live_server: LiveServer) -> Account:
    return asyncio.run(new_account(live_server.url, "bob@example.com"))


@pytest.fixture(scope="module")
def finished_job(live_server: LiveServer, alice: Account) -> dict[str, Any]:
    """One completed job of alice's, shared by the read-only tests."""
    async def make() -> dict[str, Any]:
        status, body = await upload(live_server.url, alice.key, VIDEO)
        assert status == 200, body
        return await wait_for_job(live_server.url, alice.key, body["jobId"])

    job = asyncio.run(make())
    assert job["status"] == "completed", job
    return job


# -- the quickstart ----------------------------------------------------------------------------

def test_quickstart_three_curl_calls_as_written(live_server: LiveServer, alice: Account):
    base = live_server.url
    env = {"CLIPORA_API_KEY": alice.key}
    options = '{"numClips":3,"captionPreset":"mozi","aspectRatio":"9:16","mode":"none","trimEnd":2}'
    step2 = (f"curl -X POST {base}/api/upload \\\n  -H \"X-API-Key: $CLIPORA_API_KEY\" \\\n"
             f"  -F \"video=@{VIDEO}\" \\\n  -F {shlex.quote('options=' + options)}")
    r = subprocess.run(["bash", "-c", step2], capture_output=True, text=True, timeout=60,
                       env=dict(os.environ, **env))
    assert r.returncode == 0, r.stderr
    body = json.loads(r.stdout)
    job_id = body["jobId"]
    assert set(body) == {"jobId", "originalName", "sizeBytes", "wsUrl", "options"}
    assert body["wsUrl"] == f"/ws?jobId={job_id}"
    assert body["originalName"] == "face_static.mp4" and body["sizeBytes"] == VIDEO.stat().st_size
    assert body["options"]["captionPreset"] == "mozi" and body["options"]["numClips"] == 3
    assert body["options"]["trimEnd"] == 2 and body["options"]["clipLength"] == "medium"  # defaults filled
    assert re.fullmatch(r"[A-Za-z0-9]{16,40}", job_id)

    deadline = time.monotonic() + 120
    while True:  # step 3: poll job status ...
        job = json.loads(curl(f"{base}/api/jobs/{job_id}", "-H", f"X-API-Key: {alice.key}"))
        assert job["status"] in ("queued", "processing", "completed"), job
        if job["status"] == "completed" or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert job["status"] == "completed" and job["clipCount"] == 1 and job["progress"] == 1.0
    assert job["posterUrl"] == f"/api/clips/{job_id}/clip_01.jpg"
    # ... then fetch clips
    manifest = json.loads(curl(f"{base}/api/clips/{job_id}", "-H", f"X-API-Key: {alice.key}"))
    assert manifest["jobId"] == job_id and manifest["clipCount"] == 1
    clip = manifest["clips"][0]
    assert clip["downloadUrl"] == f"/api/clips/{job_id}/clip_01.mp4" and clip["aspectRatio"] == "9:16"
    assert abs(clip["duration"] - 2.0) < 0.2

    on_disk = (live_server.data_dir / "jobs" / job_id / "out" / "clip_01.mp4").read_bytes()
    out = curl("-D", "-", "-o", "/dev/null", "-H", f"X-API-Key: {alice.key}", "-H", "Range: bytes=100-1099",
               f"{base}{clip['downloadUrl']}")
    assert out.startswith("HTTP/1.1 206")
    assert f"content-range: bytes 100-1099/{len(on_disk)}" in out.lower()
    assert "content-type: video/mp4" in out.lower()


async def test_range_request_returns_exact_bytes(live_server: LiveServer, alice: Account, finished_job):
    url = f"{live_server.url}/api/clips/{finished_job['id']}/clip_01.mp4"
    on_disk = (live_server.data_dir / "jobs" / finished_job["id"] / "out" / "clip_01.mp4").read_bytes()
    status, body, headers = await get(url, {**alice.headers, "Range": "bytes=1000-1999"})
    assert status == 206 and body == on_disk[1000:2000]
    assert headers["Content-Range"] == f"bytes 1000-1999/{len(on_disk)}"
    status, body, headers = await get(url, alice.headers)
    assert status == 200 and body == on_disk
    assert headers["Accept-Ranges"] == "bytes"
    assert headers["Cache-Control"] == "private, max-age=31536000, immutable"
    status, _, _ = await get(url, {**alice.headers, "Range": f"bytes={len(on_disk) + 10}-"})
    assert status == 416


async def test_artifacts_have_their_content_types_and_nothing_else_is_served(live_server, alice, finished_job):
    base = f"{live_server.url}/api/clips/{finished_job['id']}"
    expected = {"clip_01.jpg": "image/jpeg", "clip_01.ass": "text/x-ssa; charset=utf-8",
                "clip_01.srt": "application/x-subrip; charset=utf-8", "clip_01.vtt": "text/vtt; charset=utf-8",
                "manifest.json": "application/json"}
    for name, ctype in expected.items():
        status, body, headers = await get(f"{base}/{name}", alice.headers)
        assert status == 200, (name, body)
        assert headers["Content-Type"] == ctype
        assert headers["X-Content-Type-Options"] == "nosniff"
    status, body, _ = await get(f"{base}/clip_01.jpg", alice.headers)
    assert body[:3] == b"\xff\xd8\xff"  # a JPEG
    for name in ("source.mp4", "clip_1.mp4", "clip_99.mp4", "..%2F..%2Fclipora.db", "%2e%2e", "work",
                 "clip_01.mp4.tmp", "manifest.json%00", "clip_01.srt.tmp", "clip_01.sub", "clip_99.vtt"):
        status, body, _ = await get(f"{base}/{name}", alice.headers)
        assert status == 404, name
        assert set(body) == {"error"}


# -- errors ------------------------------------------------------------------------------------

async def _post_form(base: str, key: str | None, fields: list[tuple[str, Any, dict[str, str]]]) -> tuple[int, Any]:
    form = aiohttp.FormData(default_to_multipart=True)
    for name, value, extra in fields:
        form.add_field(name, value, **extra)
    headers = {"X-API-Key": key} if key else {}
    async with aiohttp.ClientSession() as s, s.post(f"{base}/api/upload", data=form, headers=headers) as r:
        return r.status, await r.json()


async def test_upload_errors_are_400_with_a_clear_message(live_server: LiveServer, alice: Account):
    base, key = live_server.url, alice.key
    video = (VIDEO.read_bytes(), {"filename": "v.mp4"})
    status, body = await _post_form(base, key, [("options", FAST_OPTIONS, {})])
    assert (status, body) == (400, {"error": "video file required"})
    status, body = await _post_form(base, key, [("video", *video), ("options", '{"numClips": 11}', {})])
    assert status == 400 and "numClips" in body["error"]
    status, body = await _post_form(base, key, [("video", *video), ("options", '{"aspectRatio": "2:3"}', {})])
    assert status == 400 and "aspectRatio" in body["error"]
    # a language the (default, English-only) speech model cannot hear is refused at submit, not by the job
    status, body = await _post_form(base, key, [("video", *video), ("options", '{"language": "ru"}', {})])
    assert status == 400 and "language" in body["error"] and "English-only" in body["error"], body
    status, body = await _post_form(base, key, [("video", *video), ("options", '{"numClips": 3', {})])
    assert status == 400 and "JSON" in body["error"]
    not_video = (MEDIA / "not_a_video.mp4").read_bytes()
    status, body = await _post_form(base, key, [("video", not_video, {"filename": "x.mp4"})])
    assert status == 400 and "video" in body["error"] and set(body) == {"error"}
    audio = (MEDIA / "audio_only.m4a").read_bytes()
    status, body = await _post_form(base, key, [("video", audio, {"filename": "talk.mp4"})])
    assert (status, body) == (400, {"error": "the source has no video stream"})
    async with aiohttp.ClientSession() as s, s.post(f"{base}/api/upload", json={"video": "x"},
                                                    headers={"X-API-Key": key}) as r:
        assert r.status == 400 and "multipart" in (await r.json())["error"]
    # nothing half-written stays behind, and none of these became a job
    assert list((live_server.data_dir / "uploads").iterdir()) == []
    status, jobs, _ = await get(f"{base}/api/jobs", alice.headers)
    assert all(j["originalName"] not in ("v.mp4", "x.mp4", "talk.mp4") for j in jobs["jobs"])


async def test_original_name_is_display_text_only(live_server: LiveServer, alice: Account):
    status, body = await upload(live_server.url, alice.key, VIDEO, filename="../../etc/pass\u200bwd.mp4")
    assert status == 200, body
    assert body["originalName"] == "pass" "wd.mp4"
    job_dir = live_server.data_dir / "jobs" / body["jobId"]
    assert sorted(p.name for p in job_dir.iterdir() if p.is_file()) == ["source.mp4"]
    async with aiohttp.ClientSession() as s, s.delete(f"{live_server.url}/api/jobs/{body['jobId']}",
                                                      headers=alice.headers) as r:
        assert (r.status, await r.json()) == (200, {"deleted": body["jobId"]})
    assert not job_dir.exists()
    status, _, _ = await get(f"{live_server.url}/api/jobs/{body['jobId']}", alice.headers)
    assert status == 404


def test_display_name_strips_paths_and_control_characters():
    from http_gateway.routes.uploads import display_name

    assert display_name("C:\\Users\\me\\talk.mov") == "talk.mov"
    assert display_name("a/b/\x00ev\x07il\r\n.mp4") == "evil.mp4"
    # "." and ".." name directories: never offered as a file name (issue 5)
    assert display_name("../..") == "upload" and display_name(" . ") == "upload" and display_name("..a") == "..a"
    assert display_name("") == "upload" and display_name(None) == "upload"
    assert len(display_name("x" * 1000 + ".mp4")) == 255


async def test_auth_conflict_and_routing_errors(live_server: LiveServer, alice: Account):
    base = live_server.url
    for path in ("/api/jobs", f"/api/jobs/{UNKNOWN_JOB}", "/api/auth/me"):
        status, body, _ = await get(base + path)
        assert (status, body) == (401, {"error": "authentication required"}), path
    status, body, _ = await get(f"{base}/api/jobs", {"X-API-Key": "ck_live_wrong"})
    assert status == 401 and body == {"error": "invalid or revoked API key"}
    status, body = await _post_form(base, None, [("video", b"x", {"filename": "v.mp4"})])
    assert status == 401
    status, body, _ = await get(f"{base}/api/keys", alice.headers)  # keys take a session only
    assert status == 403 and set(body) == {"error"}
    async with aiohttp.ClientSession() as s, s.post(f"{base}/api/auth/signup", headers={"Origin": base},
                                                    json={"email": alice.email, "password": PASSWORD}) as r:
        assert r.status == 409 and "exists" in (await r.json())["error"]
    status, body, headers = await get(f"{base}/api/nothing-here")
    assert (status, body) == (404, {"error": "not found"})
    assert headers["Content-Security-Policy"] == "default-src 'self'" and headers["X-Frame-Options"] == "DENY"
    async with aiohttp.ClientSession() as s, s.put(f"{base}/api/jobs", headers=alice.headers) as r:
        assert r.status == 405 and (await r.json()) == {"error": "method not allowed"}
    status, body, _ = await get(f"{base}/api/jobs/{UNKNOWN_JOB}", alice.headers)
    assert (status, body) == (404, {"error": "job not found"})


async def test_an_internal_fault_is_500_without_internals(live_server: LiveServer, alice: Account):
    status, body = await upload(live_server.url, alice.key, VIDEO)
    job = await wait_for_job(live_server.url, alice.key, body["jobId"])
    assert job["status"] == "completed"
    # break the job's files behind the server's back: reading the manifest now fails inside it
    manifest = live_server.data_dir / "jobs" / job["id"] / "out" / "manifest.json"
    manifest.unlink()
    manifest.mkdir()
    status, body, _ = await get(f"{live_server.url}/api/clips/{job['id']}", alice.headers)
    assert (status, body) == (500, {"error": "internal server error"})
    log = live_server.log()
    assert "IsADirectoryError" in log and f"job_id={job['id']}" in log  # logged, with the job, not sent


async def test_upload_limit_is_counted_by_the_server(start_server, alice: Account):
    limit = 4 * 1024 * 1024
    server: LiveServer = start_server({"CLIPORA_MAX_UPLOAD_BYTES": str(limit)})
    account = await new_account(server.url, "carol@example.com")
    data = os.urandom(limit + 1)
    status, body = await _post_form(server.url, account.key, [("video", data, {"filename": "big.mp4"})])
    assert status == 413 and str(limit) in body["error"]
    assert list((server.data_dir / "uploads").iterdir()) == []
    # exactly the limit is allowed through to the probe (and refused there: random bytes)
    status, body = await _post_form(server.url, account.key, [("video", data[:limit], {"filename": "ok.mp4"})])
    assert status == 400, body

    # a streamed (chunked, no Content-Length) body 4x the limit: refused, memory stays flat
    before = server.rss_peak_kib()
    boundary = "clipora-test-boundary"

    async def body_stream():
        yield (f"--{boundary}\r\nContent-Disposition: form-data; name=\"video\"; filename=\"big.mp4\"\r\n"
               "Content-Type: video/mp4\r\n\r\n").encode()
        chunk = os.urandom(256 * 1024)
        for _ in range(4 * limit // len(chunk) + 1):
            yield chunk
        yield f"\r\n--{boundary}--\r\n".encode()

    try:
        async with aiohttp.ClientSession() as s, s.post(
                f"{server.url}/api/upload", data=body_stream(), headers={
                    "X-API-Key": account.key, "Content-Type": f"multipart/form-data; boundary={boundary}"}) as r:
            assert r.status == 413
    except aiohttp.ClientError:
        pass  # the server may close the connection before the client has sent everything
    assert server.rss_peak_kib() - before < limit // 1024  # never held the body
    assert list((server.data_dir / "uploads").iterdir()) == []
    # a declared Content-Length far past the limit is refused before a byte of the body is read
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write((f"POST /api/upload HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nX-API-Key: {account.key}\r\n"
                  "Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 10000000000\r\n"
                  "Connection: close\r\n\r\n").encode())
    await writer.drain()
    head = await asyncio.wait_for(reader.read(4096), 10)
    writer.close()
    assert head.startswith(b"HTTP/1.1 413"), head[:200]
    status, jobs, _ = await get(f"{server.url}/api/jobs", account.headers)
    assert jobs == {"jobs": []}


async def test_full_queue_is_503(start_server):
    server: LiveServer = start_server({"CLIPORA_QUEUE_BOUND": "0"})
    account = await new_account(server.url, "dave@example.com")
    status, body = await upload(server.url, account.key, VIDEO)
    assert (status, body) == (503, {"error": "the processing queue is full; try again later"})
    assert list((server.data_dir / "uploads").iterdir()) == []
    status, body, _ = await get(f"{server.url}/readyz")
    assert status == 200  # the pipeline runs; it only refuses more work


# -- ownership ---------------------------------------------------------------------------------

async def test_bola_matrix_over_every_id_route(live_server: LiveServer, alice: Account, bob: Account,
                                               finished_job):
    base, job_id = live_server.url, finished_job["id"]
    routes = [("GET", "/api/jobs/{}"), ("GET", "/api/clips/{}"), ("GET", "/api/clips/{}/clip_01.mp4"),
              ("GET", "/api/clips/{}/clip_01.jpg"), ("GET", "/api/clips/{}/manifest.json"),
              ("GET", "/ws?jobId={}"), ("DELETE", "/api/jobs/{}")]
    bob_cookie = {"Cookie": f"reels_session={bob.cookies['reels_session']}", "Origin": base}
    async with aiohttp.ClientSession() as s:
        for method, template in routes:
            for who, headers in (("bob-key", bob.headers), ("bob-cookie", bob_cookie)):
                async with s.request(method, base + template.format(job_id), headers=headers) as r:
                    assert r.status == 403, (who, method, template, r.status)
                    assert await r.json() == {"error": "this job belongs to another account"}
                async with s.request(method, base + template.format(UNKNOWN_JOB), headers=headers) as r:
                    assert r.status == 404, (who, method, template, r.status)
            async with s.request(method, base + template.format(job_id)) as r:
                assert r.status == 401, (method, template)
        for method, template in routes[:-2]:  # the owner still reads everything
            async with s.request(method, base + template.format(job_id), headers=alice.headers) as r:
                assert r.status == 200, (method, template)
        async with s.get(f"{base}/api/jobs", headers=bob.headers) as r:
            assert job_id not in {j["id"] for j in (await r.json())["jobs"]}
        async with s.get(f"{base}/ws?jobId=", headers=alice.headers) as r:
            assert r.status == 400 and "jobId" in (await r.json())["error"]


async def test_websocket_with_a_session_cookie_refuses_other_origins(live_server: LiveServer, alice: Account,
                                                                     finished_job):
    base, job_id = live_server.url, finished_job["id"]
    cookie = f"reels_session={alice.cookies['reels_session']}"
    async with aiohttp.ClientSession() as s:
        async with s.get(f"{base}/ws?jobId={job_id}",
                         headers={"Cookie": cookie, "Origin": "https://evil.example"}) as r:
            assert r.status == 403
            assert "cross-site" in (await r.json())["error"]
        async with s.ws_connect(f"{base}/ws?jobId={job_id}", headers={"Cookie": cookie, "Origin": base}) as ws:
            first = await ws.receive_json(timeout=10)
            assert first["type"] == "status" and first["status"] == "completed"


# -- jobs, WebSocket, operations ---------------------------------------------------------------

async def test_jobs_list_is_newest_first_with_the_spec_fields(live_server, alice: Account, finished_job):
    status, body, _ = await get(f"{live_server.url}/api/jobs", alice.headers)
    assert status == 200
    jobs = body["jobs"]
    assert [j["createdAt"] for j in jobs] == sorted((j["createdAt"] for j in jobs), reverse=True)
    mine = next(j for j in jobs if j["id"] == finished_job["id"])
    for field in ("id", "originalName", "status", "createdAt", "clipCount", "posterUrl", "stage", "progress"):
        assert field in mine
    assert mine["clipCount"] == 1 and mine["posterUrl"].endswith("/clip_01.jpg")


async def _watch(base: str, key: str, job_id: str) -> tuple[list[dict[str, Any]], bool]:
    messages: list[dict[str, Any]] = []
    async with aiohttp.ClientSession() as s, s.ws_connect(f"{base}/ws?jobId={job_id}",
                                                          headers={"X-API-Key": key}) as ws:
        async for msg in ws:
            assert msg.type == aiohttp.WSMsgType.TEXT
            messages.append(json.loads(msg.data))
        return messages, ws.closed


async def test_websocket_streams_progress_to_completion(live_server: LiveServer, alice: Account):
    status, body = await upload(live_server.url, alice.key, VIDEO)
    assert status == 200
    job_id = body["jobId"]
    (first, closed), (second, _) = await asyncio.wait_for(asyncio.gather(
        _watch(live_server.url, alice.key, job_id), _watch(live_server.url, alice.key, job_id)), 120)
    assert closed
    for messages in (first, second):
        assert messages[0]["type"] == "status" and messages[0]["jobId"] == job_id
        assert messages[0]["status"] in ("queued", "processing")
        progress = [m["progress"] for m in messages if m["type"] == "progress"]
        assert len(progress) >= 5
        assert progress == sorted(progress) and 0.0 <= progress[0] and progress[-1] <= 1.0
        assert {m["stage"] for m in messages if m["type"] == "progress"} >= {"probe", "render"}
        assert messages[-1] == {"type": "completed", "jobId": job_id, "status": "completed",
                                "message": "1 clip ready", "clipCount": 1}
    # a late watcher hears the final state at once
    late, closed = await _watch(live_server.url, alice.key, job_id)
    assert [m["type"] for m in late] == ["status", "completed"] and late[1]["clipCount"] == 1 and closed


async def test_operations_endpoints(live_server: LiveServer, alice: Account, finished_job):
    base = live_server.url
    assert (await get(f"{base}/healthz"))[:2] == (200, {"status": "ok"})
    assert (await get(f"{base}/readyz"))[:2] == (200, {"status": "ready"})
    status, text, headers = await get(f"{base}/metrics")
    assert status == 200 and headers["Content-Type"].startswith("text/plain")
    text = text.decode()
    completed = re.search(r'^clipora_jobs\{status="completed"\} (\S+)$', text, re.M)
    assert completed and float(completed.group(1)) >= 1
    assert re.search(r"^clipora_queue_depth \S+$", text, re.M)
    renders = re.search(r'^clipora_stage_duration_seconds_count\{stage="render"\} (\S+)$', text, re.M)
    assert renders and float(renders.group(1)) >= 1
    assert re.search(r'^clipora_http_requests_total\{method="GET",route="/api/jobs/\{jobId\}",status="200"\}',
                     text, re.M)

    status, doc, _ = await get(f"{base}/api/openapi.json")
    assert status == 200 and doc["openapi"].startswith("3.1")
    for name in ("completed", "progress", "failed", "clipCount"):
        assert name in doc["paths"]["/ws"]["get"]["description"]


def test_openapi_describes_every_route(tmp_path):
    from http_gateway.app import create_app
    from http_gateway.config import GatewaySettings
    from http_gateway.openapi import build_document

    app = create_app(GatewaySettings(data_dir=tmp_path), run=lambda *a: {})
    served = set()
    for route in app.router.routes():
        if route.method == "HEAD" or (route.resource and (route.resource.name or "").startswith("web.")):
            continue  # web.* are the web app's pages and assets (routes/pages.py), not the API
        path = re.sub(r"\{[^}]+\}", "{}", route.resource.canonical)
        served.add((route.method.lower(), path))
    doc = build_document()
    documented = {(m, re.sub(r"\{[^}]+\}", "{}", p)) for p, ops in doc["paths"].items() for m in ops}
    assert served == documented
    refs = re.findall(r'"\$ref": "#/components/(\w+)/(\w+)"', json.dumps(doc))
    for section, name in refs:
        assert name in doc["components"][section], name
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            assert op["responses"], (path, method)
            params = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
            assert params == set(re.findall(r"\{(\w+)\}", path)), (path, method)


async def test_readyz_and_uploads_are_503_when_the_pipeline_stops(aiohttp_client, tmp_path):
    from http_gateway.app import create_app
    from http_gateway.config import SERVICE, GatewaySettings

    app = create_app(GatewaySettings(data_dir=tmp_path), run=lambda *a: {"clipCount": 0})
    client = await aiohttp_client(app)
    assert (await client.get("/readyz")).status == 200
    await app[SERVICE].stop()  # as if the executor died
    r = await client.get("/readyz")
    assert (r.status, await r.json()) == (503, {"error": "the processing pipeline is not running"})
    r = await client.post("/api/auth/signup", json={"email": "gina@example.com", "password": PASSWORD},
                          headers={"Origin": f"http://{client.host}:{client.port}"})
    assert r.status == 201
    form = aiohttp.FormData(default_to_multipart=True)
    form.add_field("video", VIDEO.read_bytes(), filename="v.mp4")
    r = await client.post("/api/upload", data=form, headers={"Origin": f"http://{client.host}:{client.port}"})
    assert (r.status, await r.json()) == (503, {"error": "the processing pipeline is not running"})
