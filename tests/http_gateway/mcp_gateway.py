"""An in-process gateway for the MCP tests (tests/http_gateway/test_mcp.py, tests/clipora/test_mcp_stdio.py).

The real app on a real loopback socket (aiohttp's TestServer, on the test's event loop), with a
fast job function instead of the pipeline: URL jobs are fetched (from the loopback media server,
allow-listed as the URL-ingest tests do), probed by the real ingest probe, then "rendered" in a
few milliseconds. A job whose name says ``slow`` runs until it is cancelled.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer
from argon2 import PasswordHasher

from engine.errors import JobCancelled
from http_gateway.app import create_app
from http_gateway.auth import ACCOUNTS
from http_gateway.config import SERVICE, GatewaySettings

PASSWORD = "Correct-Horse-7"
#: the fast options of the live tests (tests/http_gateway/conftest.py)
FAST = {"mode": "none", "trimEnd": 2, "captionPreset": "none", "aspectRatio": "1:1"}


def fake_job(job, source: Path, out_dir: Path, work: Path, bus, cancel) -> dict[str, Any]:
    if "slow" in job.original_name and cancel.wait(30):
        raise JobCancelled("cancelled")
    out_dir.mkdir(parents=True, exist_ok=True)
    for ext, size in (("mp4", 4000), ("jpg", 500), ("ass", 200)):
        (out_dir / f"clip_01.{ext}").write_bytes(bytes([len(ext)]) * size)
    clip = {"index": 1, "start": 0.0, "end": 2.0, "duration": 2.0, "score": 5.0, "transcript": "hello",
            "downloadUrl": f"/api/clips/{job.id}/clip_01.mp4", "posterUrl": f"/api/clips/{job.id}/clip_01.jpg"}
    (out_dir / "manifest.json").write_text(json.dumps({"jobId": job.id, "duration": 10.0, "clipCount": 1,
                                                       "clips": [clip]}))
    return {"clipCount": 1}


@dataclass
class Account:
    user_id: str
    key: str
    cookie: str


@dataclass
class Gateway:
    app: web.Application
    server: TestServer

    @property
    def url(self) -> str:
        return str(self.server.make_url("")).rstrip("/")

    @property
    def mcp_url(self) -> str:
        return f"{self.url}/mcp"

    def out_dir(self, job_id: str) -> Path:
        return self.app[SERVICE].job_dir(job_id) / "out"

    async def account(self, email: str) -> Account:
        store = self.app[ACCOUNTS]
        user = await store.create_user(email, PASSWORD)
        key, _ = await store.create_key(user.id, "mcp")
        cookie, _ = await store.create_session(user.id)
        return Account(user.id, key, cookie)

    async def close(self) -> None:
        await self.server.close()


async def start_gateway(data_dir: Path, media_port: int) -> Gateway:
    settings = GatewaySettings(data_dir=data_dir, workers=0, url_allowlist=("127.0.0.1",),
                               url_ports=(80, 443, media_port))
    app = create_app(settings, run=fake_job)
    app[ACCOUNTS].hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    return Gateway(app, server)


# -- MCP client helpers both transports' tests use -------------------------------------------------

async def refused(client: Any, name: str, **arguments: Any) -> str:
    """The tool error's text (the call must be refused)."""
    result = await client.call_tool(name, arguments)
    assert result.is_error, result.structured_content
    return str(result.content[0].text)


async def wait_done(client: Any, job_id: str, timeout_s: float = 60, poll_s: float = 0.2) -> dict[str, Any]:
    """get_job until the job has ended."""
    async with asyncio.timeout(timeout_s):
        while True:
            result = await client.call_tool("get_job", {"jobId": job_id})
            assert not result.is_error, result.content
            job = dict(result.structured_content)
            if job["status"] in ("completed", "failed"):
                return job
            await asyncio.sleep(poll_s)
