"""JobService + in-process executor with a scripted job function (no video work)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from engine.db import Database
from engine.errors import InvalidMedia, JobCancelled, PipelineUnavailable, QuotaExceeded, RetryableError
from engine.events import JobEvent
from engine.executor import ExecutorConfig
from engine.jobs import JobStatus
from engine.options import ProcessOptions
from engine.service import JobService
from engine.store import now_ms
from http_gateway.models import User


class Script:
    """A job function whose behaviour per job is set by the test."""

    def __init__(self) -> None:
        self.plan: dict[str, list[str]] = {}  # original name -> outcomes per attempt
        self.calls: dict[str, int] = {}
        self.started = threading.Event()

    def __call__(self, job, source: Path, out_dir: Path, work: Path, bus, cancel: threading.Event):
        n = self.calls.get(job.id, 0)
        self.calls[job.id] = n + 1
        outcome = self.plan.get(job.original_name, ["ok"])[min(n, len(self.plan.get(job.original_name, ["ok"])) - 1)]
        assert source.read_bytes() == b"video-bytes"
        for i in range(5):
            bus.publish(JobEvent(job.id, "progress", "render", (i + 1) / 5, f"step {i}"))
            if outcome == "slow":
                self.started.set()
                for _ in range(200):
                    if cancel.is_set():
                        raise JobCancelled()
                    time.sleep(0.01)
        if outcome == "bad":
            raise InvalidMedia("the source has no video stream")
        if outcome == "flaky":
            raise RetryableError("network hiccup")
        if outcome == "crash":
            raise KeyError("/secret/internal/path")
        if outcome == "huge":
            raise MemoryError()
        out_dir.mkdir(parents=True, exist_ok=True)
        manifest = {"jobId": job.id, "clipCount": 2, "clips": []}
        (out_dir / "manifest.json").write_text(json.dumps(manifest))
        return manifest


async def make_service(tmp_path: Path, script: Script, **kw) -> JobService:
    db = Database.sqlite_in(tmp_path)
    cfg = ExecutorConfig(concurrency=kw.pop("concurrency", 1), poll_s=0.05, heartbeat_s=0.2, lease_s=2)
    svc = JobService(db, tmp_path, script, executor_config=cfg, **kw)
    await svc.start()
    async with db.session() as s, s.begin():
        if await s.get(User, "u1") is None:
            s.add(User(id="u1", email="u1@example.com", password_hash="x", plan="free", created_at=now_ms()))
    return svc


async def submit(svc: JobService, tmp_path: Path, name: str):
    f = svc.uploads_dir / f"up-{name}"
    f.write_bytes(b"video-bytes")
    return await svc.submit("u1", f, name, 11, ProcessOptions())


async def wait_terminal(svc: JobService, job_id: str, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = await svc.get(job_id)
        if job is not None and job.terminal:
            return job
        await asyncio.sleep(0.02)
    raise AssertionError(f"job {job_id} did not finish: {await svc.get(job_id)}")


async def test_completed_event_comes_after_the_row_says_completed(tmp_path):
    svc = await make_service(tmp_path, Script())
    seen: list[tuple[str, str | None]] = []
    job = await submit(svc, tmp_path, "a.mp4")

    def on_event(e: JobEvent) -> None:
        # what a client would see if it queried right now
        seen.append((e.type, None))
        if e.type == "completed":
            task = asyncio.get_running_loop().create_task(svc.get(job.id))
            done_checks.append(task)

    done_checks: list[asyncio.Task] = []
    svc.subscribe(job.id, on_event)
    final = await wait_terminal(svc, job.id)
    await asyncio.sleep(0.05)
    assert final.status == JobStatus.COMPLETED and final.clip_count == 2 and final.attempts == 1
    types = [t for t, _ in seen]
    assert types[0] == "status" and types[-1] == "completed" and "progress" in types
    assert (await done_checks[0]).status == JobStatus.COMPLETED
    assert (await svc.manifest(job.id))["clipCount"] == 2
    assert svc.artifact(job.id, "manifest.json").is_file()
    await svc.stop()


async def test_failures_say_why_and_hide_internals(tmp_path):
    script = Script()
    script.plan = {"bad.mp4": ["bad"], "crash.mp4": ["crash"]}
    svc = await make_service(tmp_path, script)
    bad = await wait_terminal(svc, (await submit(svc, tmp_path, "bad.mp4")).id)
    crash = await wait_terminal(svc, (await submit(svc, tmp_path, "crash.mp4")).id)
    assert bad.status == JobStatus.FAILED and bad.error == "the source has no video stream"
    assert crash.status == JobStatus.FAILED and "internal error" in crash.error and "secret" not in crash.error
    assert await svc.manifest(bad.id) is None
    await svc.stop()


async def test_retryable_errors_are_retried_a_bounded_number_of_times(tmp_path):
    script = Script()
    script.plan = {"flaky.mp4": ["flaky", "ok"], "broken.mp4": ["flaky"]}
    svc = await make_service(tmp_path, script)
    flaky = await wait_terminal(svc, (await submit(svc, tmp_path, "flaky.mp4")).id)
    broken = await wait_terminal(svc, (await submit(svc, tmp_path, "broken.mp4")).id)
    assert flaky.status == JobStatus.COMPLETED and flaky.attempts == 2
    assert broken.status == JobStatus.FAILED and broken.attempts == 3 and "network hiccup" in broken.error
    await svc.stop()


async def test_delete_cancels_a_running_job_and_removes_its_files(tmp_path):
    script = Script()
    script.plan = {"slow.mp4": ["slow"]}
    svc = await make_service(tmp_path, script)
    job = await submit(svc, tmp_path, "slow.mp4")
    await asyncio.to_thread(script.started.wait, 5)
    await svc.delete(job.id)
    await asyncio.sleep(0.3)
    assert await svc.get(job.id) is None
    assert not (tmp_path / "jobs" / job.id).exists()
    await svc.stop()


async def test_shutdown_gives_running_jobs_back_and_a_restart_finishes_them(tmp_path):
    script = Script()
    script.plan = {"slow.mp4": ["slow", "ok"]}
    svc = await make_service(tmp_path, script)
    job = await submit(svc, tmp_path, "slow.mp4")
    await asyncio.to_thread(script.started.wait, 5)
    await svc.stop()
    await svc.db.close()
    assert (await JobService(Database.sqlite_in(tmp_path), tmp_path, script).store.get(job.id)).status == (
        JobStatus.QUEUED
    )
    again = await make_service(tmp_path, script)
    final = await wait_terminal(again, job.id)
    assert final.status == JobStatus.COMPLETED and script.calls[job.id] == 2
    await again.stop()


async def test_a_full_queue_refuses_work(tmp_path):
    svc = await make_service(tmp_path, Script(), queue_bound=0)
    with pytest.raises(PipelineUnavailable, match="queue is full"):
        await submit(svc, tmp_path, "a.mp4")
    assert not list((tmp_path / "jobs").iterdir())
    await svc.stop()
    with pytest.raises(PipelineUnavailable, match="not running"):
        await submit(svc, tmp_path, "b.mp4")


async def test_an_account_may_have_only_so_many_jobs_in_flight(tmp_path):
    script = Script()
    script.plan = {"slow.mp4": ["slow"]}
    svc = await make_service(tmp_path, script, max_jobs_per_user=2)
    first = await submit(svc, tmp_path, "slow.mp4")
    await submit(svc, tmp_path, "slow.mp4")
    with pytest.raises(QuotaExceeded, match="2 jobs queued or running") as info:
        await submit(svc, tmp_path, "a.mp4")
    assert info.value.retry_after > 0
    await svc.delete(first.id)  # one ends: room for another
    await submit(svc, tmp_path, "a.mp4")
    await svc.stop()


async def test_a_job_that_runs_out_of_memory_fails_with_that_reason_and_is_not_retried(tmp_path):
    script = Script()
    script.plan = {"huge.mp4": ["huge"]}
    svc = await make_service(tmp_path, script)
    job = await wait_terminal(svc, (await submit(svc, tmp_path, "huge.mp4")).id)
    assert job.status == JobStatus.FAILED and job.attempts == 1
    assert "needs more memory than this server allows" in job.error
    await svc.stop()


def test_the_worker_memory_ceiling_turns_a_huge_allocation_into_memory_error():
    code = ("from engine.workers import limit_memory; import numpy as np; limit_memory(1024)\n"
            "try:\n    np.ones(4 * 1024**3, np.uint8)\nexcept MemoryError:\n    print('MemoryError')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "MemoryError", out.stderr[-2000:]


def test_artifact_names_are_a_closed_set(tmp_path):
    svc = JobService(Database.sqlite_in(tmp_path), tmp_path, Script())
    from engine.errors import NotFound

    out = tmp_path / "jobs" / "abcdefgh12" / "out"
    out.mkdir(parents=True)
    for ext in ("mp4", "jpg", "ass", "srt", "vtt", "sub", "srt.tmp"):
        (out / f"clip_01.{ext}").write_text("x")
    for ext in ("mp4", "jpg", "ass", "srt", "vtt"):  # the caption files beside the .ass
        assert svc.artifact("abcdefgh12", f"clip_01.{ext}") == out / f"clip_01.{ext}"
    for name in ("../clipora.db", "clip_1.mp4", "clip_01.mp4/../x", "source.mp4", "clip_01.MP4", "manifest.json.bak",
                 "clip_01.sub", "clip_01.srt.tmp", "clip_01.SRT", "clip_02.vtt"):
        with pytest.raises(NotFound):
            svc.artifact("abcdefgh12", name)
    with pytest.raises(NotFound):
        svc.artifact("../../etc", "manifest.json")
