"""Worker processes: `clipora serve` runs jobs in workers, never in the gateway's own process.

SIGKILL a worker while its job renders: the gateway keeps serving, starts another worker, and the
job (its lease expired) runs again and completes, once, with attempts 2. WebSocket clients of the
gateway see the progress of a job that runs in a worker (relayed through the job store).
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import aiohttp
import pytest

from tests.http_gateway.conftest import LiveServer, new_account, upload, wait_for_job
from tests.http_gateway.test_durability import SLOWER, VIDEO, _check_outputs, _wait_processing

pytestmark = pytest.mark.timeout(300)

SHORT_LEASE = {"CLIPORA_LEASE_S": "3", "CLIPORA_HEARTBEAT_S": "1"}


def children(pid: int) -> list[int]:
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        out += [int(c) for c in text]
    return out


def cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()


def workers_of(server: LiveServer) -> list[int]:
    assert server.proc is not None
    return [c for c in children(server.proc.pid) if " worker " in cmdline(c)]


def maps(pid: int) -> str:
    return Path(f"/proc/{pid}/maps").read_text()


async def test_sigkill_of_a_worker_mid_job_the_job_runs_again_and_the_gateway_keeps_serving(start_server):
    server: LiveServer = start_server(env=SHORT_LEASE)
    account = await new_account(server.url, "wanda@example.com")
    status, body = await upload(server.url, account.key, VIDEO, options=SLOWER)
    assert status == 200
    running = await _wait_processing(server, account.key, body["jobId"])
    assert running["attempts"] == 1
    (victim,) = workers_of(server)
    os.kill(victim, signal.SIGKILL)
    # the gateway answers at once while the job waits for its lease to expire
    async with aiohttp.ClientSession() as s:
        t0 = time.monotonic()
        async with s.get(f"{server.url}/api/jobs", headers={"X-API-Key": account.key}) as r:
            assert r.status == 200
        assert time.monotonic() - t0 < 2.0
    job = await wait_for_job(server.url, account.key, body["jobId"], timeout_s=150)
    assert job["status"] == "completed" and job["attempts"] == 2, job
    _check_outputs(server, job)
    replacement = workers_of(server)
    assert len(replacement) == 1 and replacement[0] != victim
    assert "exited with -9; starting another" in server.log_path.read_text(errors="replace")


async def test_the_gateway_never_decodes_and_relays_a_workers_progress(start_server):
    server: LiveServer = start_server()
    account = await new_account(server.url, "xavier@example.com")
    status, body = await upload(server.url, account.key, VIDEO, options=SLOWER)
    assert status == 200
    job_id = body["jobId"]
    seen: list[dict] = []
    async with aiohttp.ClientSession() as s, s.ws_connect(f"{server.url}/ws?jobId={job_id}",
                                                          headers={"X-API-Key": account.key}) as ws:
        async for msg in ws:
            event = msg.json()
            seen.append(event)
            if event["type"] in ("completed", "failed"):
                break
    assert seen[-1]["type"] == "completed" and seen[-1]["clipCount"] == 1, seen[-1]
    progress = [e for e in seen if e["type"] == "progress"]
    stages = {e["stage"] for e in progress}
    assert {"transcribe", "faces", "render"} <= stages, stages
    assert all(0.0 <= e["stageProgress"] <= 1.0 for e in progress)
    overall = [e["progress"] for e in progress]
    assert overall == sorted(overall)
    # the rendering happened in the worker: the gateway process never even loaded a video codec
    assert server.proc is not None
    gateway, (worker,) = maps(server.proc.pid), workers_of(server)
    assert "libavcodec" in maps(worker) and "libavcodec" not in gateway
