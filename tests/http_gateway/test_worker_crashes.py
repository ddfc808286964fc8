"""Workers killed at random points (gateway hardening issue, item 10).

The real ``clipora serve`` with one worker process and a short lease renders a queue of real
jobs while the test SIGKILLs the worker ``KILLS`` times, each at a seeded random moment of
whichever job it is running (from its first progress to the end of a reference job's run time,
measured first in the same run, so publishing is hit as well as decoding). Meanwhile a poller
asks for every job's manifest and clip file again and again.

Asserted: every job ends, completed or failed with a reason, never stuck; no job runs more than
its attempts allow; every file served at any moment is byte for byte the file the completed job
serves at the end (no partial file is ever served); the gateway answers throughout.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import signal
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.http_gateway.conftest import LiveServer, new_account, upload, wait_for_job
from tests.http_gateway.test_workers import workers_of

VIDEO = Path(__file__).resolve().parents[1] / "media" / "face_static.mp4"
SEED = 1201
KILLS = 10
JOBS = 6
MAX_ATTEMPTS = 3

pytestmark = pytest.mark.timeout(420)


async def _status(s: aiohttp.ClientSession, base: str, key: str, job_id: str) -> dict[str, Any]:
    async with s.get(f"{base}/api/jobs/{job_id}", headers={"X-API-Key": key}) as r:
        assert r.status == 200, await r.text()
        return dict(await r.json())


async def _poll_files(base: str, key: str, job_ids: list[str], served: dict[tuple[str, str], set[str]],
                      stop: asyncio.Event) -> int:
    """GETs every job's manifest and clip until ``stop``; records the sha256 of every 200 body."""
    requests = 0
    async with aiohttp.ClientSession() as s:
        while not stop.is_set():
            for job_id in job_ids:
                for name in ("manifest.json", "clip_01.mp4"):
                    async with s.get(f"{base}/api/clips/{job_id}/{name}", headers={"X-API-Key": key}) as r:
                        body = await r.read()
                        requests += 1
                        assert r.status in (200, 404), (r.status, body[:200])
                        if r.status == 200:
                            served.setdefault((job_id, name), set()).add(hashlib.sha256(body).hexdigest())
            await asyncio.sleep(0.25)
    return requests


async def test_workers_killed_at_random_points_never_leave_a_job_stuck_or_a_file_partial(start_server):
    rng = random.Random(SEED)
    # a short lease so a dead worker's job is queued again soon; models load at the first job, so a
    # replacement worker is up at once and a kill can land while a job loads them too
    server: LiveServer = start_server(env={"CLIPORA_LEASE_S": "2", "CLIPORA_HEARTBEAT_S": "0.5",
                                           "CLIPORA_WORKER_WARM": "0"})
    account = await new_account(server.url, "crash@example.com")

    # the reference: one job, undisturbed, timed from its first progress to its end
    status, body = await upload(server.url, account.key, VIDEO)
    assert status == 200, body
    async with aiohttp.ClientSession() as s:
        while (job := await _status(s, server.url, account.key, body["jobId"]))["status"] != "processing":
            await asyncio.sleep(0.05)
        started = time.monotonic()
        reference = await wait_for_job(server.url, account.key, body["jobId"], timeout_s=120)
        run_s = time.monotonic() - started
    assert reference["status"] == "completed", reference

    ids = []
    for _ in range(JOBS):
        status, body = await upload(server.url, account.key, VIDEO)
        assert status == 200, body
        ids.append(body["jobId"])
    served: dict[tuple[str, str], set[str]] = {}
    stop = asyncio.Event()
    poller = asyncio.create_task(_poll_files(server.url, account.key, ids, served, stop))
    kills: list[tuple[str, float]] = []
    dead_runs: set[tuple[str, int]] = set()
    try:
        async with aiohttp.ClientSession() as s:
            deadline = time.monotonic() + 300
            while len(kills) < KILLS and time.monotonic() < deadline:
                rows = {j: await _status(s, server.url, account.key, j) for j in ids}
                # a job being run now: processing, and not the run a kill already ended (that row
                # says processing until its lease expires and the job is queued again)
                running = [j for j, row in rows.items() if row["status"] == "processing"
                           and (j, row["attempts"]) not in dead_runs]
                workers = workers_of(server)
                if not running or len(workers) != 1:
                    if all(row["status"] in ("completed", "failed") for row in rows.values()):
                        break  # the queue ran dry before every kill was spent
                    await asyncio.sleep(0.05)
                    continue
                at = rng.uniform(0.0, run_s)
                await asyncio.sleep(at)
                os.kill(workers[0], signal.SIGKILL)
                dead_runs.add((running[0], rows[running[0]]["attempts"]))
                kills.append((running[0], round(at, 2)))
                t0 = time.monotonic()  # the gateway answers at once while its worker is gone
                await _status(s, server.url, account.key, running[0])
                assert time.monotonic() - t0 < 2.0
                while workers_of(server) in ([], workers):  # until the replacement is up
                    await asyncio.sleep(0.05)
        jobs = [await wait_for_job(server.url, account.key, j, timeout_s=180) for j in ids]
    finally:
        stop.set()
        requests = await poller
    assert len(kills) >= KILLS // 2, f"only {len(kills)} kills landed: {kills}"
    for job in jobs:
        assert job["status"] in ("completed", "failed"), job
        assert 1 <= job["attempts"] <= MAX_ATTEMPTS, job
        if job["status"] == "failed":
            assert job["error"], job
    async with aiohttp.ClientSession() as s:
        for job in jobs:
            for name in ("manifest.json", "clip_01.mp4"):
                async with s.get(f"{server.url}/api/clips/{job['id']}/{name}",
                                 headers={"X-API-Key": account.key}) as r:
                    if job["status"] != "completed":
                        assert r.status == 404
                        assert (job["id"], name) not in served, f"{name} of unfinished {job['id']} was served"
                        continue
                    assert r.status == 200
                    final = hashlib.sha256(await r.read()).hexdigest()
                assert served.get((job["id"], name), {final}) == {final}, f"{name} of {job['id']} was served partial"
    completed = sum(j["status"] == "completed" for j in jobs)
    print(f"\ncrash test: reference run {run_s:.1f} s, {len(kills)} kills at {kills}, "
          f"attempts {[j['attempts'] for j in jobs]}, {completed}/{len(jobs)} completed, "
          f"failures {sorted({j['error'] for j in jobs if j['status'] == 'failed'})}, "
          f"{requests} file requests, {sum(len(v) for v in served.values())} distinct bodies served")
    assert sum(j["attempts"] for j in jobs) >= len(jobs) + len({j for j, _ in kills}) - 1  # the kills cost reruns
