"""Two gateways on one PostgreSQL database and one shared storage root (cluster issue, items 1, 3).

Each test runs its own PostgreSQL server (initdb into a temporary folder, a free port), so it can
restart it without disturbing the other suites, and two real ``clipora serve`` processes on it,
each with its own worker process, sharing one data folder (as gateways on two machines share a
mounted volume):

- a WebSocket client on gateway A follows a job that gateway B's worker runs (events relayed by
  LISTEN/NOTIFY); B is killed with SIGKILL while its worker holds the job's lease; A picks the job
  up once the lease expires and finishes it (attempts 2); a client of B that reconnects to A sees it
  complete; the clip is there once, whole;
- PostgreSQL stopped while both gateways run jobs (``/readyz`` says the job store does not answer)
  and started again: gateways, workers and listeners reconnect and every job completes, once; the
  WebSocket client sees the end.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.http_gateway.conftest import LiveServer, job_status, new_account, upload, wait_for_job, watch_job
from tests.http_gateway.test_durability import _check_outputs

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(300)]

MEDIA = Path(__file__).resolve().parents[1] / "media"
# long enough that the second gateway is up while the first one's worker still renders it
LONG_JOB = '{"mode":"none","trimEnd":24,"captionPreset":"karaoke","aspectRatio":"9:16"}'
FAST_LEASE = {"CLIPORA_LEASE_S": "2", "CLIPORA_HEARTBEAT_S": "0.5", "CLIPORA_WORKER_WARM": "0"}


async def test_a_gateway_killed_mid_job_the_other_finishes_it_and_its_clients_follow(start_server, private_pg,
                                                                                     tmp_path):
    shared = tmp_path / "shared"  # the storage root both gateways mount
    env = {"CLIPORA_DATABASE_URL": private_pg.url, **FAST_LEASE}
    b: LiveServer = start_server(env=env, data_dir=shared)
    account = await new_account(b.url, "cluster@example.com")
    status, body = await upload(b.url, account.key, MEDIA / "speech_topics.mp4", options=LONG_JOB)
    assert status == 200, body
    job_id = body["jobId"]
    while (job := await job_status(b.url, account.key, job_id))["status"] != "processing":
        assert job["status"] == "queued", job
        await asyncio.sleep(0.05)

    a: LiveServer = start_server(env=env, data_dir=shared)  # one database, one storage root
    assert (await job_status(a.url, account.key, job_id))["status"] == "processing", "finished before A was up"
    on_a: list[dict[str, Any]] = []
    on_b: list[dict[str, Any]] = []
    watch_a = asyncio.create_task(watch_job(a.url, account.key, job_id, on_a))
    watch_b = asyncio.create_task(watch_job(b.url, account.key, job_id, on_b))
    # A relays the progress B's worker makes (NOTIFY from B's worker, LISTEN in A)
    deadline = time.monotonic() + 30
    while not any(e["type"] == "progress" for e in on_a):
        assert time.monotonic() < deadline, on_a
        await asyncio.sleep(0.05)
    assert (await job_status(a.url, account.key, job_id))["attempts"] == 1

    b.kill()  # SIGKILL: its worker dies with it, the lease is left to expire
    await asyncio.wait_for(watch_b, 10)  # B's client sees its socket go
    assert not any(e["type"] in ("completed", "failed") for e in on_b)
    again: list[dict[str, Any]] = []
    await asyncio.wait_for(watch_job(a.url, account.key, job_id, again), 240)  # reconnected to the survivor
    await asyncio.wait_for(watch_a, 30)
    assert again[0]["type"] == "status" and again[-1]["type"] == "completed", again
    assert on_a[-1]["type"] == "completed", on_a[-5:]
    job = await wait_for_job(a.url, account.key, job_id, timeout_s=10)
    assert job["status"] == "completed" and job["attempts"] == 2, job
    _check_outputs(a, job)
    async with aiohttp.ClientSession() as s, s.get(f"{a.url}/api/clips/{job_id}/clip_01.mp4",
                                                   headers={"X-API-Key": account.key}) as r:
        assert r.status == 200 and len(await r.read()) > 10_000


async def test_postgresql_restarted_mid_job_every_job_completes_once(start_server, private_pg, tmp_path):
    shared = tmp_path / "shared"
    env = {"CLIPORA_DATABASE_URL": private_pg.url, "CLIPORA_LEASE_S": "6", "CLIPORA_HEARTBEAT_S": "1",
           "CLIPORA_WORKER_WARM": "0"}
    a: LiveServer = start_server(env=env, data_dir=shared)
    b: LiveServer = start_server(env=env, data_dir=shared)
    account = await new_account(a.url, "restart@example.com")
    ids = []
    for server in (a, b, a):
        status, body = await upload(server.url, account.key, MEDIA / "face_static.mp4",
                                    options='{"mode":"none","trimEnd":4,"captionPreset":"karaoke"}')
        assert status == 200, body
        ids.append(body["jobId"])
    while (await job_status(a.url, account.key, ids[0]))["status"] != "processing":
        await asyncio.sleep(0.05)
    seen: list[dict[str, Any]] = []
    watch = asyncio.create_task(watch_job(b.url, account.key, ids[-1], seen))
    await asyncio.sleep(0.5)

    private_pg.pg_ctl("stop", "-m", "fast")  # every connection is cut
    async with aiohttp.ClientSession() as s:
        for server in (a, b):  # a load balancer takes them out while the store is away
            async with s.get(f"{server.url}/readyz") as r:
                assert r.status == 503, await r.text()
                assert "the job store does not answer" in (await r.json())["error"]
            async with s.get(f"{server.url}/healthz") as r:
                assert r.status == 200
    await asyncio.sleep(2.0)
    private_pg.pg_ctl("start")
    jobs = [await wait_for_job(a.url, account.key, job_id, timeout_s=200) for job_id in ids]
    assert [j["status"] for j in jobs] == ["completed"] * 3, jobs
    assert all(j["attempts"] <= 2 for j in jobs), [j["attempts"] for j in jobs]
    for job in jobs:
        _check_outputs(a, job)
    await asyncio.wait_for(watch, 30)
    assert seen and seen[-1]["type"] == "completed", seen[-3:]
    for server in (a, b):  # both still serve
        async with aiohttp.ClientSession() as s, s.get(f"{server.url}/readyz") as r:
            assert r.status == 200, await r.text()
