"""Jobs are rows, not memory: kill -9 the real server mid-job, start it again on the same data
dir, and every job ends (completed, or failed with a reason) exactly once. A polite SIGTERM hands
the running job back to the queue too.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.http_gateway.conftest import LiveServer, new_account, upload, wait_for_job

VIDEO = Path(__file__).resolve().parents[1] / "media" / "face_static.mp4"
SLOWER = '{"mode":"none","trimEnd":4,"captionPreset":"karaoke","aspectRatio":"9:16"}'

pytestmark = pytest.mark.timeout(300)


async def _wait_processing(server: LiveServer, key: str, job_id: str, timeout_s: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    async with aiohttp.ClientSession() as s:
        while time.monotonic() < deadline:
            async with s.get(f"{server.url}/api/jobs/{job_id}", headers={"X-API-Key": key}) as r:
                job = await r.json()
            if job["status"] == "processing" and job["progress"] > 0:
                return dict(job)
            assert job["status"] in ("queued", "processing"), job
            await asyncio.sleep(0.05)
    raise AssertionError("the job never started processing")


def _check_outputs(server: LiveServer, job: dict[str, Any]) -> None:
    out = server.data_dir / "jobs" / job["id"] / "out"
    names = sorted(p.name for p in out.iterdir())
    assert names.count("manifest.json") == 1
    assert names == sorted(["manifest.json", *(f"clip_01.{e}" for e in ("ass", "jpg", "mp4", "srt", "vtt"))])
    assert not list(out.glob("*.tmp*")) and not list(out.glob(".*"))


async def test_kill_9_mid_job_then_restart_finishes_every_job_once(start_server, tmp_path):
    data_dir = tmp_path / "data"
    server: LiveServer = start_server(data_dir=data_dir)
    account = await new_account(server.url, "erin@example.com")
    ids = []
    for _ in range(2):
        status, body = await upload(server.url, account.key, VIDEO, options=SLOWER)
        assert status == 200, body
        ids.append(body["jobId"])
    running = await _wait_processing(server, account.key, ids[0])
    assert running["attempts"] == 1
    server.kill()  # no shutdown hook runs: the row still says processing, with a live lease

    again: LiveServer = start_server(data_dir=data_dir)
    jobs = [await wait_for_job(again.url, account.key, job_id, timeout_s=150) for job_id in ids]
    for job in jobs:
        assert job["status"] in ("completed", "failed"), job
        if job["status"] == "failed":
            assert job["error"], job
        else:
            assert job["clipCount"] == 1 and job["finishedAt"] >= job["startedAt"]
            _check_outputs(again, job)
    assert jobs[0]["status"] == "completed" and jobs[0]["attempts"] == 2  # interrupted once, then ran again
    assert jobs[1]["status"] == "completed" and jobs[1]["attempts"] == 1
    async with aiohttp.ClientSession() as s, s.get(f"{again.url}/api/jobs", headers=account.headers) as r:
        listed = (await r.json())["jobs"]
    assert sorted(j["id"] for j in listed) == sorted(ids)  # nothing lost, nothing doubled
    assert list((data_dir / "uploads").iterdir()) == []
    async with aiohttp.ClientSession() as s, s.get(f"{again.url}/metrics") as r:
        text = await r.text()
    assert 'clipora_jobs{status="processing"} 0.0' in text and 'clipora_jobs{status="queued"} 0.0' in text


async def test_sigterm_hands_the_running_job_back(start_server, tmp_path):
    data_dir = tmp_path / "data"
    server: LiveServer = start_server(data_dir=data_dir)
    account = await new_account(server.url, "frank@example.com")
    status, body = await upload(server.url, account.key, VIDEO, options=SLOWER)
    assert status == 200
    await _wait_processing(server, account.key, body["jobId"])
    started = time.monotonic()
    assert server.stop() == 0  # graceful: exits by itself, promptly
    assert time.monotonic() - started < 20
    assert "interrupted by a server shutdown" in server.log() or "pipeline stopped" in server.log()

    again: LiveServer = start_server(data_dir=data_dir)
    job = await wait_for_job(again.url, account.key, body["jobId"], timeout_s=150)
    assert job["status"] == "completed" and job["attempts"] == 2, job
    _check_outputs(again, job)
