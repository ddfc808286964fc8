"""``clipora mcp`` as an MCP client launches it: a subprocess speaking MCP on its stdin/stdout,
driven with the MCP package's client (``stdio_client``).

Local mode runs the real pipeline, once, on the smallest generated clip; remote mode drives an
in-process gateway (fast job function, tests/http_gateway/mcp_gateway.py) over its REST API.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client

from engine.mcp_tools import TOOL_NAMES
from tests.http_gateway.mcp_gateway import FAST, refused, start_gateway, wait_done
from tests.http_gateway.media_server import MediaServer

ROOT = Path(__file__).resolve().parents[2]
MEDIA = ROOT / "tests" / "media"

pytestmark = pytest.mark.timeout(300)


@contextlib.asynccontextmanager
async def clipora_mcp(tmp: Path, *args: str, **env: str) -> AsyncIterator[Client]:
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "clipora", "mcp", *args], cwd=str(tmp),
        env={"PYTHONPATH": str(ROOT), "XDG_CACHE_HOME": str(tmp / "cache"), "CLIPORA_THREADS": "2", **env})
    with (tmp / "mcp-server.log").open("a") as log:
        async with Client(stdio_client(params, errlog=log)) as client:
            yield client


async def call(client: Client, name: str, **arguments: Any) -> dict[str, Any]:
    result = await client.call_tool(name, arguments)
    assert not result.is_error, result.content
    return dict(result.structured_content)


async def test_local_mode_runs_a_real_job_on_this_machine(tmp_path):
    data = tmp_path / "data"
    async with clipora_mcp(tmp_path, "--data-dir", str(data)) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert tuple(tools) == TOOL_NAMES
        assert tools["create_clips"].input_schema["required"] == ["path"]  # a file here, not a URL

        assert "no such file" in await refused(client, "create_clips", path=str(tmp_path / "nope.mp4"))
        assert "numClips" in await refused(client, "create_clips", path=str(MEDIA / "face_static.mp4"),
                                           options={"numClips": 0})
        assert "webhookUrl needs a Clipora server" in await refused(
            client, "create_clips", path=str(MEDIA / "face_static.mp4"), options={"webhookUrl": "https://example.com/h"})

        assert "English-only" in await refused(client, "create_clips", path=str(MEDIA / "face_static.mp4"),
                                               options={**FAST, "language": "ru"})  # tiny.en, the default model
        created = await call(client, "create_clips", path=str(MEDIA / "face_static.mp4"), options=FAST)
        job_id = created["jobId"]
        assert created["status"] == "queued" and created["originalName"] == "face_static.mp4"
        assert created["wsUrl"] is None  # no WebSocket here
        job = await wait_done(client, job_id, timeout_s=240)
        assert job["status"] == "completed" and job["clipCount"] == 1, job

        manifest = await call(client, "list_clips", jobId=job_id)
        assert manifest["jobId"] == job_id and manifest["clipCount"] == 1
        assert manifest["clips"][0]["duration"] == pytest.approx(2.0, abs=0.2)
        out = data / "jobs" / job_id / "out"
        assert json.loads((out / "manifest.json").read_text()) == manifest
        file = await call(client, "get_clip_file", jobId=job_id, filename="clip_01.mp4")
        assert Path(file["path"]) == (out / "clip_01.mp4").resolve() and file["url"].startswith("file:///")
        assert file["sizeBytes"] == Path(file["path"]).stat().st_size > 10_000
        assert file["contentType"] == "video/mp4"
        assert [j["id"] for j in (await call(client, "list_jobs"))["jobs"]] == [job_id]
        assert (MEDIA / "face_static.mp4").is_file()  # the source was linked or copied, not moved

        # render_clip: the clip again, in 1:1, through the same engine; the job's manifest shows version 2
        render = await call(client, "render_clip", jobId=job_id, index=1, edit={"aspectRatio": "1:1"})
        assert render["parentJobId"] == job_id and render["clipIndex"] == 1
        assert (await wait_done(client, render["jobId"], timeout_s=120))["status"] == "completed"
        clip = (await call(client, "list_clips", jobId=job_id))["clips"][0]
        assert clip["version"] == 2 and clip["aspectRatio"] == "1:1" and (out / "clip_01.v1.mp4").is_file()
        assert [j["id"] for j in (await call(client, "list_jobs"))["jobs"]] == [job_id]

    # the store outlives the process: a new server sees the job, and can cancel (delete) it
    async with clipora_mcp(tmp_path, "--data-dir", str(data)) as client:
        assert (await call(client, "get_job", jobId=job_id))["status"] == "completed"
        assert await call(client, "cancel_job", jobId=job_id) == {"deleted": job_id}
        assert await refused(client, "get_job", jobId=job_id) == "job not found"
    assert not (data / "jobs" / job_id).exists()


async def test_remote_mode_drives_a_server_over_its_rest_api(tmp_path):
    media = MediaServer().start()
    gateway = await start_gateway(tmp_path / "data", media.port)
    try:
        alice = await gateway.account("alice@example.com")
        bob = await gateway.account("bob@example.com")
        async with clipora_mcp(tmp_path, "--server-url", gateway.url, CLIPORA_API_KEY=alice.key) as client:
            tools = {t.name: t for t in (await client.list_tools()).tools}
            assert tuple(tools) == TOOL_NAMES and tools["create_clips"].input_schema["required"] == ["url"]
            assert "numClips" in await refused(client, "create_clips", url=f"{media.url}/clip.mp4",
                                               options={"numClips": 11})
            assert "loopback" in await refused(client, "create_clips", url="http://[::1]/clip.mp4")

            created = await call(client, "create_clips", url=f"{media.url}/clip.mp4", options=FAST)
            job_id = created["jobId"]
            assert created["status"] == "downloading" and created["wsUrl"] == f"/ws?jobId={job_id}"
            job = await wait_done(client, job_id, timeout_s=60)
            assert job["status"] == "completed" and job["sourceUrl"] == f"{media.url}/clip.mp4", job
            manifest = await call(client, "list_clips", jobId=job_id)
            assert manifest == json.loads((gateway.out_dir(job_id) / "manifest.json").read_text())
            file = await call(client, "get_clip_file", jobId=job_id, filename="clip_01.jpg")
            assert file["url"] == f"{gateway.url}/api/clips/{job_id}/clip_01.jpg"
            assert (file["contentType"], file["sizeBytes"]) == ("image/jpeg", 500)
            async with aiohttp.ClientSession() as s, s.get(file["url"], headers={"X-API-Key": alice.key}) as r:
                assert r.status == 200 and len(await r.read()) == 500
            assert "not found" in await refused(client, "get_clip_file", jobId=job_id, filename="clip_07.mp4")

        async with clipora_mcp(tmp_path, CLIPORA_SERVER_URL=gateway.url, CLIPORA_API_KEY=bob.key) as client:
            for name, extra in (("get_job", {}), ("list_clips", {}), ("cancel_job", {}),
                                ("get_clip_file", {"filename": "clip_01.mp4"})):
                assert await refused(client, name, jobId=job_id, **extra) == "this job belongs to another account"
            assert await call(client, "list_jobs") == {"jobs": []}

        async with clipora_mcp(tmp_path, "--server-url", gateway.url, "--api-key", "ck_live_wrong") as client:
            assert await refused(client, "list_jobs") == "invalid or revoked API key"
        async with clipora_mcp(tmp_path, "--server-url", "http://127.0.0.1:9", "--api-key", alice.key) as client:
            assert "cannot reach the Clipora server" in await refused(client, "list_jobs")

        async with clipora_mcp(tmp_path, "--server-url", gateway.url, CLIPORA_API_KEY=alice.key) as client:
            assert await call(client, "cancel_job", jobId=job_id) == {"deleted": job_id}
    finally:
        await gateway.close()
        media.stop()


def test_a_server_url_needs_a_key(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("CLIPORA_API_KEY", None)
    r = subprocess.run([sys.executable, "-m", "clipora", "mcp", "--server-url", "http://127.0.0.1:8080"],
                       capture_output=True, text=True, env=env, timeout=60, cwd=tmp_path, stdin=subprocess.DEVNULL)
    assert r.returncode == 2 and "--server-url and --api-key go together" in r.stderr
    assert r.stdout == ""  # stdout is the protocol's alone
