"""Clients that stall, linger or read too slowly (gateway hardening issue, items 5, 8 and 9).

A body that stops arriving is dropped (408, its temporary file removed); an account streams a
bounded number of uploads and holds a bounded number of WebSockets; requests without credentials
are bounded per address; a WebSocket whose client cannot keep up is dropped, not buffered; a
client that leaves mid-body is counted as a client disconnect, not a server error; protocol-level
errors are JSON like every other error.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from argon2 import PasswordHasher

from engine.errors import InvalidMedia
from engine.events import JobEvent
from http_gateway.app import create_app
from http_gateway.auth import ACCOUNTS
from http_gateway.config import SERVICE, GatewaySettings
from http_gateway.routes import ws as ws_route
from http_gateway.server import GatewayRunner

PASSWORD = "Correct-Horse-7"
VIDEO = Path(__file__).resolve().parents[1] / "media" / "face_static.mp4"
BOUNDARY = "clipora-test-boundary"


class Blocked:
    """A job function that holds every job until released (then fails it: nothing is rendered)."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.started = threading.Event()

    def __call__(self, job, source, out_dir, work, bus, cancel):
        self.started.set()
        self.release.wait(20)
        raise InvalidMedia("not really processed")


class ServedAsInProduction(TestServer):
    """The app behind ``clipora serve``'s runner (GatewayRunner), not aiohttp's test runner: handlers
    are not cancelled when their client leaves (aiohttp's test server cancels them), protocol errors
    are answered by the gateway's connection handler."""

    async def _make_runner(self, **kwargs):
        kwargs.pop("handler_cancellation", None)
        return GatewayRunner(self.app, **kwargs)


async def _gateway(aiohttp_client, tmp_path: Path, run=None, **settings):
    app = create_app(GatewaySettings(data_dir=tmp_path, workers=0, **settings),
                     run=run or (lambda *a: {"clipCount": 0}))
    app[ACCOUNTS].hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    client = await aiohttp_client(ServedAsInProduction(app))
    origin = {"Origin": f"http://{client.host}:{client.port}"}
    r = await client.post("/api/auth/signup", json={"email": "ann@example.com", "password": PASSWORD},
                          headers=origin)
    assert r.status == 201, await r.text()
    r = await client.post("/api/keys", json={"name": "ci"}, headers=origin)
    client.key = (await r.json())["key"]
    client.session.cookie_jar.clear()
    return client


def _video_form() -> aiohttp.FormData:
    form = aiohttp.FormData()
    form.add_field("video", VIDEO.read_bytes(), filename="v.mp4", content_type="video/mp4")
    return form


async def _open(client) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection(client.host, client.port)


async def _stalled_upload(client, declared: int = 3_000_000, sent: int = 1024, key: str | None = None):
    """A raw upload that declares ``declared`` bytes, sends the headers and ``sent`` bytes, then stops."""
    reader, writer = await _open(client)
    head = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"video\"; filename=\"v.mp4\"\r\n"
            "Content-Type: video/mp4\r\n\r\n").encode()
    writer.write((f"POST /api/upload HTTP/1.1\r\nHost: {client.host}\r\nX-API-Key: {key or client.key}\r\n"
                  f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
                  f"Content-Length: {declared}\r\n\r\n").encode() + head + b"\0" * sent)
    await writer.drain()
    return reader, writer


async def _response(reader: asyncio.StreamReader, timeout: float) -> tuple[int, dict[str, str], bytes]:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
    body = await asyncio.wait_for(reader.readexactly(int(headers.get("content-length", 0))), timeout)
    return status, headers, body


def _part_files(client) -> list[Path]:
    return list(client.server.app[SERVICE].uploads_dir.glob("*.part"))


async def _metric(client, status: str) -> float:
    text = await (await client.get("/metrics")).text()
    total = 0.0
    for line in text.splitlines():
        upload = 'route="/api/upload"' in line and f'status="{status}"' in line
        if line.startswith("clipora_http_requests_total{") and upload:
            total += float(line.rsplit(" ", 1)[1])
    return total


async def test_a_stalled_upload_is_dropped_and_its_temporary_file_removed(aiohttp_client, tmp_path):
    client = await _gateway(aiohttp_client, tmp_path, upload_idle_timeout_s=1.0)
    reader, writer = await _stalled_upload(client)
    try:
        started = time.monotonic()
        await asyncio.sleep(0.3)
        assert len(_part_files(client)) == 1  # it was being received
        status, headers, body = await _response(reader, timeout=5)
        waited = time.monotonic() - started
        assert status == 408 and json.loads(body) == {"error": "no data received for 1 s; the request was dropped"}
        assert headers["connection"] == "close" and headers["cache-control"] == "no-store"
        assert 0.9 <= waited <= 4.0, waited  # the idle timeout (1 s), noticed within a poll or so
        assert _part_files(client) == []
        assert await asyncio.wait_for(reader.read(), 5) == b""  # and the connection is closed
    finally:
        writer.close()


async def test_an_upload_that_keeps_moving_is_not_dropped(aiohttp_client, tmp_path):
    """The timeout is on silence, not on duration: a slow upload that never pauses for 1 s succeeds."""
    client = await _gateway(aiohttp_client, tmp_path, upload_idle_timeout_s=1.0)
    payload = VIDEO.read_bytes()
    head = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"video\"; filename=\"v.mp4\"\r\n"
            "Content-Type: video/mp4\r\n\r\n").encode()
    body = head + payload + f"\r\n--{BOUNDARY}--\r\n".encode()
    reader, writer = await _open(client)
    try:
        writer.write((f"POST /api/upload HTTP/1.1\r\nHost: {client.host}\r\nX-API-Key: {client.key}\r\n"
                      f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
                      f"Content-Length: {len(body)}\r\n\r\n").encode())
        pieces = 8  # 8 pieces 0.35 s apart: 2.5 s in all, more than twice the idle timeout
        step = -(-len(body) // pieces)
        for i in range(0, len(body), step):
            writer.write(body[i:i + step])
            await writer.drain()
            await asyncio.sleep(0.35)
        status, _, answer = await _response(reader, timeout=30)
        assert status == 200, answer
        assert json.loads(answer)["sizeBytes"] == len(payload)
    finally:
        writer.close()


async def test_a_stalled_json_body_is_dropped(aiohttp_client, tmp_path):
    client = await _gateway(aiohttp_client, tmp_path, body_timeout_s=1.0)
    reader, writer = await _open(client)
    try:
        writer.write((f"POST /api/auth/login HTTP/1.1\r\nHost: {client.host}\r\nContent-Type: application/json\r\n"
                      "Content-Length: 200\r\n\r\n{\"email\": \"ann@").encode())
        await writer.drain()
        status, headers, body = await _response(reader, timeout=5)
        assert status == 408 and headers["connection"] == "close"
        assert json.loads(body) == {"error": "the request body did not arrive within 1 s"}
    finally:
        writer.close()


async def test_an_account_streams_a_bounded_number_of_uploads(aiohttp_client, tmp_path):
    client = await _gateway(aiohttp_client, tmp_path, max_uploads_per_user=2, upload_idle_timeout_s=30.0)
    stalled = [await _stalled_upload(client) for _ in range(2)]
    await asyncio.sleep(0.3)
    r = await client.post("/api/upload", data=_video_form(), headers={"X-API-Key": client.key})
    assert r.status == 429 and int(r.headers["Retry-After"]) > 0
    assert (await r.json())["error"] == "at most 2 uploads at once per account; wait for one to finish"
    # the clients leave mid-body: their slots and files are freed, and that is not a server error
    for _, writer in stalled:
        writer.close()
    for _ in range(50):
        if not _part_files(client):
            break
        await asyncio.sleep(0.1)
    assert _part_files(client) == []
    r = await client.post("/api/upload", data=_video_form(), headers={"X-API-Key": client.key})
    assert r.status == 200, await r.text()
    assert await _metric(client, "500") == 0
    assert await _metric(client, "499") == 2  # counted as clients that went away
    assert await _metric(client, "429") == 1


async def test_requests_without_credentials_are_bounded_per_address(aiohttp_client, tmp_path):
    client = await _gateway(aiohttp_client, tmp_path, max_anonymous_per_ip=3, body_timeout_s=30.0)
    held = []
    for _ in range(3):  # three unauthenticated logins that stall in their bodies
        reader, writer = await _open(client)
        writer.write((f"POST /api/auth/login HTTP/1.1\r\nHost: {client.host}\r\nContent-Type: application/json\r\n"
                      "Content-Length: 200\r\n\r\n{").encode())
        await writer.drain()
        held.append(writer)
    await asyncio.sleep(0.3)
    try:
        r = await client.get("/api/auth/me")
        assert r.status == 429 and r.headers["Retry-After"] == "1"
        assert "too many requests in progress from this address" in (await r.json())["error"]
        r = await client.get("/api/auth/me", headers={"X-API-Key": client.key})  # credentials: not this cap
        assert r.status == 200
    finally:
        for writer in held:
            writer.close()
    for _ in range(50):
        r = await client.get("/api/auth/me")
        if r.status == 401:
            break
        await asyncio.sleep(0.1)
    assert r.status == 401  # the slots came back once those clients left


async def _blocked_job(client) -> str:
    r = await client.post("/api/upload", data=_video_form(), headers={"X-API-Key": client.key})
    assert r.status == 200, await r.text()
    return (await r.json())["jobId"]


async def test_an_account_holds_a_bounded_number_of_websockets(aiohttp_client, tmp_path):
    blocked = Blocked()
    client = await _gateway(aiohttp_client, tmp_path, run=blocked, max_sockets_per_user=2)
    try:
        job_id = await _blocked_job(client)
        key = {"X-API-Key": client.key}
        sockets = [await client.ws_connect(f"/ws?jobId={job_id}", headers=key) for _ in range(2)]
        for ws in sockets:
            assert (await ws.receive_json(timeout=5))["type"] == "status"
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await client.ws_connect(f"/ws?jobId={job_id}", headers=key)
        assert refused.value.status == 429
        await sockets[0].close()
        for _ in range(50):  # the slot is released once the server has seen the close
            try:
                again = await client.ws_connect(f"/ws?jobId={job_id}", headers=key)
                break
            except aiohttp.WSServerHandshakeError:
                await asyncio.sleep(0.1)
        assert (await again.receive_json(timeout=5))["type"] == "status"
        await again.close()
        await sockets[1].close()
    finally:
        blocked.release.set()


async def test_a_websocket_that_cannot_keep_up_is_dropped_not_buffered(aiohttp_client, tmp_path, monkeypatch):
    monkeypatch.setattr(ws_route, "QUEUE_BOUND", 8)
    blocked = Blocked()
    client = await _gateway(aiohttp_client, tmp_path, run=blocked)
    try:
        job_id = await _blocked_job(client)
        ws = await client.ws_connect(f"/ws?jobId={job_id}", headers={"X-API-Key": client.key})
        assert (await ws.receive_json(timeout=5))["type"] == "status"
        bus = client.server.app[SERVICE].bus
        # a burst the socket cannot send before the next arrives: 50 events land before it runs again
        for i in range(50):
            bus.publish(JobEvent(job_id, "progress", "render", 0.5 + i / 1000, f"frame {i}"))
        received = []
        while True:
            msg = await ws.receive(timeout=5)
            if msg.type != aiohttp.WSMsgType.TEXT:
                break
            received.append(json.loads(msg.data))
        assert msg.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.ERROR)
        assert len(received) <= 8  # what was queued before the overflow, at most
        # the same burst with room for it is delivered whole (the drop is the bound, not the burst)
        monkeypatch.setattr(ws_route, "QUEUE_BOUND", 256)
        ws = await client.ws_connect(f"/ws?jobId={job_id}", headers={"X-API-Key": client.key})
        assert (await ws.receive_json(timeout=5))["type"] == "status"
        for i in range(50):
            bus.publish(JobEvent(job_id, "progress", "render", 0.6 + i / 1000, f"frame {i}"))
        got = [await ws.receive_json(timeout=5) for _ in range(50)]
        assert [m["message"] for m in got] == [f"frame {i}" for i in range(50)]
        await ws.close()
    finally:
        blocked.release.set()


@pytest.mark.parametrize("request_bytes", [
    b"GET / HTTP/1.1\r\nHost: x\r\nThis is not a header\r\n\r\n",
    b"GET /\x01 HTTP/1.1\r\nHost: x\r\n\r\n",
    b"POST /api/auth/login HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
])
async def test_protocol_level_errors_are_json(aiohttp_client, tmp_path, request_bytes):
    client = await _gateway(aiohttp_client, tmp_path)
    reader, writer = await _open(client)
    try:
        writer.write(request_bytes)
        await writer.drain()
        status, headers, body = await _response(reader, timeout=5)
        assert await asyncio.wait_for(reader.read(), 5) == b""  # and the connection is closed
    finally:
        writer.close()
    assert status == 400
    assert headers["content-type"].startswith("application/json")
    assert json.loads(body) == {"error": "malformed HTTP request"}
    assert headers["cache-control"] == "no-store" and headers["x-content-type-options"] == "nosniff"
