"""POST /mcp, driven with the MCP package's own client (streamable HTTP) on both protocol
revisions it speaks: the initialize handshake (2025-11-25, ``ClientSession``) and the
2026-07-28 per-request envelope (``Client`` in auto mode).

The gateway is the real app on a loopback socket with a fast job function
(tests/http_gateway/mcp_gateway.py); URL jobs are fetched from the loopback media server.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import httpx2
import pytest
from mcp import Client, ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from engine.mcp_tools import TOOL_NAMES
from tests.http_gateway.mcp_gateway import FAST, refused, start_gateway, wait_done
from tests.http_gateway.media_server import CLIP, MediaServer

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def media():
    server = MediaServer().start()
    yield server
    server.stop()


@pytest.fixture
async def gateway(tmp_path, media):
    gw = await start_gateway(tmp_path / "data", media.port)
    yield gw
    await gw.close()


@contextlib.asynccontextmanager
async def mcp(url: str, key: str, mode: str = "auto") -> AsyncIterator[Client]:
    async with httpx2.AsyncClient(headers={"X-API-Key": key}) as http, \
            Client(streamable_http_client(url, http_client=http), mode=mode) as client:
        yield client


async def call(client: Client, name: str, **arguments: Any) -> dict[str, Any]:
    result = await client.call_tool(name, arguments)
    assert not result.is_error, result.content
    assert json.loads(result.content[0].text) == result.structured_content  # the text says the same
    return dict(result.structured_content)


async def rest(gateway, key: str, path: str) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as s, s.get(gateway.url + path, headers={"X-API-Key": key}) as r:
        return r.status, await r.json()


async def test_the_tools_are_listed_on_the_handshake_revision(gateway):
    account = await gateway.account("list@example.com")
    async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {account.key}"}) as http, \
            streamable_http_client(gateway.mcp_url, http_client=http) as (read, write), \
            ClientSession(read, write) as session:
        init = await session.initialize()
        assert init.server_info.name == "clipora" and "create_clips" in (init.instructions or "")
        tools = {t.name: t for t in (await session.list_tools()).tools}
        assert tuple(tools) == TOOL_NAMES
        create = tools["create_clips"].input_schema
        assert create["required"] == ["url"] and {"url", "options"} == set(create["properties"])
        assert create["properties"]["options"]["properties"]["numClips"]["maximum"] == 10
        assert tools["get_clip_file"].input_schema["required"] == ["jobId", "filename"]
        result = await session.call_tool("list_jobs", {})
        assert not result.is_error and result.structured_content == {"jobs": []}


async def test_a_url_job_runs_end_to_end(gateway, media):
    account = await gateway.account("e2e@example.com")
    async with mcp(gateway.mcp_url, account.key) as client:
        assert client.protocol_version == "2026-07-28"
        assert tuple(t.name for t in (await client.list_tools()).tools) == TOOL_NAMES
        created = await call(client, "create_clips", url=f"{media.url}/clip.mp4", options=FAST)
        job_id = created["jobId"]
        assert created["status"] == "downloading" and created["wsUrl"] == f"/ws?jobId={job_id}"
        assert created["originalName"] == "clip.mp4" and created["options"]["trimEnd"] == 2
        job = await wait_done(client, job_id)
        assert job["status"] == "completed" and job["clipCount"] == 1, job
        assert job["sizeBytes"] == CLIP.stat().st_size and job["sourceUrl"] == f"{media.url}/clip.mp4"
        # the REST routes' JSON, exactly
        assert (200, await call(client, "get_job", jobId=job_id)) == await rest(gateway, account.key,
                                                                                  f"/api/jobs/{job_id}")
        assert (200, await call(client, "list_jobs")) == await rest(gateway, account.key, "/api/jobs")
        manifest = await call(client, "list_clips", jobId=job_id)
        assert (200, manifest) == await rest(gateway, account.key, f"/api/clips/{job_id}")
        assert manifest["clipCount"] == 1 and manifest["clips"][0]["downloadUrl"].endswith("/clip_01.mp4")

        file = await call(client, "get_clip_file", jobId=job_id, filename="clip_01.mp4")
        assert file["url"] == f"{gateway.url}/api/clips/{job_id}/clip_01.mp4"  # absolute: the host is known
        assert (file["contentType"], file["sizeBytes"]) == ("video/mp4", 4000)
        async with aiohttp.ClientSession() as s, s.get(file["url"], headers={"X-API-Key": account.key}) as r:
            assert r.status == 200 and await r.read() == (gateway.out_dir(job_id) / "clip_01.mp4").read_bytes()
        assert "not found" in await refused(client, "get_clip_file", jobId=job_id, filename="clip_09.mp4")
        # render_clip reaches the re-render route's checks (this stand-in job keeps no analysis to edit)
        assert "captionPreset" in await refused(client, "render_clip", jobId=job_id, index=1,
                                                edit={"captionPreset": "neon"})
        assert "index must be" in await refused(client, "render_clip", jobId=job_id, index=0, edit={})
        assert "no clip 4" in await refused(client, "render_clip", jobId=job_id, index=4,
                                            edit={"captionPreset": "mozi"})
        assert "no longer kept" in await refused(client, "render_clip", jobId=job_id, index=1,
                                                 edit={"captionPreset": "mozi"})

        assert await call(client, "cancel_job", jobId=job_id) == {"deleted": job_id}
        assert await refused(client, "get_job", jobId=job_id) == "job not found"
        assert (await rest(gateway, account.key, f"/api/jobs/{job_id}"))[0] == 404


async def test_what_a_tool_cannot_do_is_a_tool_error(gateway, media):
    account = await gateway.account("refusals@example.com")
    async with mcp(gateway.mcp_url, account.key) as client:
        assert "numClips" in await refused(client, "create_clips", url=f"{media.url}/clip.mp4",
                                           options={"numClips": 11})
        assert "unknown option 'color'" in await refused(client, "create_clips", url=f"{media.url}/clip.mp4",
                                                         options={"color": "red"})
        assert "loopback" in await refused(client, "create_clips", url="http://[::1]/clip.mp4")
        assert "url required" in await refused(client, "create_clips")
        assert "unknown argument 'path'" in await refused(client, "create_clips", path="/etc/passwd")
        assert await refused(client, "get_job", jobId="../../etc") == "job not found"
        with pytest.raises(MCPError, match="unknown tool 'render_everything'"):
            await client.call_tool("render_everything", {})

        slow = await call(client, "create_clips", url=f"{media.url}/slow.mp4", options=FAST)
        message = await refused(client, "list_clips", jobId=slow["jobId"])
        assert message.startswith("clips are not ready (status: "), message
        assert "clips are not ready" in await refused(client, "get_clip_file", jobId=slow["jobId"],
                                                      filename="clip_01.mp4")
        assert await call(client, "cancel_job", jobId=slow["jobId"]) == {"deleted": slow["jobId"]}
        assert (await call(client, "list_jobs"))["jobs"] == []


async def test_another_accounts_job_is_not_yours(gateway, media):
    alice = await gateway.account("alice@example.com")
    bob = await gateway.account("bob@example.com")
    async with mcp(gateway.mcp_url, alice.key) as client:
        job_id = (await call(client, "create_clips", url=f"{media.url}/clip.mp4", options=FAST))["jobId"]
        await wait_done(client, job_id)
    async with mcp(gateway.mcp_url, bob.key, mode="legacy") as client:
        for name, extra in (("get_job", {}), ("list_clips", {}), ("get_clip_file", {"filename": "clip_01.mp4"}),
                            ("render_clip", {"index": 1, "edit": {"captionPreset": "mozi"}}), ("cancel_job", {})):
            assert await refused(client, name, jobId=job_id, **extra) == "this job belongs to another account"
        assert await call(client, "list_jobs") == {"jobs": []}
    status, job = await rest(gateway, alice.key, f"/api/jobs/{job_id}")
    assert status == 200 and job["status"] == "completed"  # bob's cancel_job did nothing


async def test_refusals_before_mcp_are_json_errors(gateway):
    account = await gateway.account("http@example.com")
    url = gateway.mcp_url
    listing = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
    as_json = {"Content-Type": "application/json"}
    cases = [
        ({}, listing, 401, "authentication required"),
        ({"X-API-Key": "ck_live_nope"}, listing, 401, "invalid or revoked API key"),
        # a browser session, same-origin (so past the CSRF check): not accepted here
        ({"Cookie": f"reels_session={account.cookie}", "Origin": gateway.url}, listing, 403, "API key"),
        ({"Cookie": f"reels_session={account.cookie}"}, listing, 403, "CSRF"),
        ({"X-API-Key": account.key, "Content-Type": "text/plain"}, listing, 415, "application/json"),
        ({"X-API-Key": account.key, "Accept": "text/html"}, listing, 406, "Accept"),
        ({"X-API-Key": account.key}, "{not json", 400, "not valid JSON"),
        ({"X-API-Key": account.key}, "x" * (1024 * 1024 + 1), 413, "too large"),
    ]
    async with aiohttp.ClientSession() as s:
        for headers, body, status, words in cases:
            async with s.post(url, data=body, headers=as_json | headers) as r:
                assert r.status == status, (headers, await r.text())
                reply = await r.json()
                assert set(reply) == {"error"} and words in reply["error"], reply
                if status == 401:
                    assert r.headers["WWW-Authenticate"].startswith("Bearer")
        for method in ("GET", "DELETE"):  # stateless: no stream to open, no session to end
            async with s.request(method, url, headers={"X-API-Key": account.key}) as r:
                assert r.status == 405 and r.headers["Allow"] == "POST" and set(await r.json()) == {"error"}

        key = {"Authorization": f"Bearer {account.key}"} | as_json
        async with s.post(url, data=listing, headers=key) as r:  # no handshake needed: stateless
            assert r.status == 200 and r.headers["Cache-Control"] == "no-store"
            assert r.headers["X-Content-Type-Options"] == "nosniff"
            assert [t["name"] for t in (await r.json())["result"]["tools"]] == list(TOOL_NAMES)
        async with s.post(url, data="{}", headers=key) as r:  # JSON, but no JSON-RPC message: MCP's error
            reply = await r.json()
            assert r.status == 400 and reply["jsonrpc"] == "2.0" and reply["id"] is None
            assert isinstance(reply["error"]["code"], int)
        note = json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"})
        async with s.post(url, data=note, headers=key) as r:
            assert r.status == 202 and await r.read() == b"" and "Content-Type" not in r.headers


async def test_a_client_that_leaves_stops_its_call(gateway, monkeypatch):
    from http_gateway.routes import mcp as routes

    account = await gateway.account("leaver@example.com")
    seen: list[str] = []

    async def stuck(self) -> dict[str, Any]:
        seen.append("started")
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise
        return {"jobs": []}

    monkeypatch.setattr(routes.ServiceTools, "list_jobs", stuck)
    body = {"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": "list_jobs", "arguments": {}}}
    async with aiohttp.ClientSession() as s:
        with pytest.raises(TimeoutError):
            async with s.post(gateway.mcp_url, json=body, headers={"X-API-Key": account.key},
                              timeout=aiohttp.ClientTimeout(total=1.0)):
                pass
    async with asyncio.timeout(5):
        while "cancelled" not in seen:
            await asyncio.sleep(0.1)
    assert seen == ["started", "cancelled"]


def test_the_openapi_document_describes_mcp():
    from http_gateway.openapi import build_document

    op = build_document()["paths"]["/mcp"]["post"]
    assert {"200", "202", "400", "401", "403", "406", "413", "415"} <= set(op["responses"])
    assert op["security"] == [{"apiKey": []}, {"bearer": []}]  # no session
    assert op["requestBody"]["content"]["application/json"]["schema"]["required"] == ["jsonrpc", "method"]
