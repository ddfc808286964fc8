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
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.http_gateway.conftest import LiveServer, free_port, new_account, upload, wait_for_job
from tests.http_gateway.test_durability import _check_outputs

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(300)]

MEDIA = Path(__file__).resolve().parents[1] / "media"
# long enough that the second gateway is up while the first one's worker still renders it
LONG_JOB = '{"mode":"none","trimEnd":24,"captionPreset":"karaoke","aspectRatio":"9:16"}'
FAST_LEASE = {"CLIPORA_LEASE_S": "2", "CLIPORA_HEARTBEAT_S": "0.5", "CLIPORA_WORKER_WARM": "0"}


def _pg_bin() -> Path | None:
    for root in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (root / "initdb").exists() and (root / "pg_ctl").exists():
            return root
    return None


@dataclass
class PrivatePostgres:
    bindir: Path
    data: Path
    port: int
    user: str | None  # run the server as this user (root may not)

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/clipora"

    def _run(self, *args: str, timeout: float = 60) -> None:
        cmd = [str(self.bindir / args[0]), *args[1:]]
        if self.user:
            cmd = ["runuser", "-u", self.user, "--", *cmd]
        subprocess.run(cmd, check=True, timeout=timeout, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)

    def pg_ctl(self, action: str, *extra: str) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-w", "-l", str(self.data.parent / "pg.log"),
                  "-o", f"-p {self.port} -k {self.data.parent} -c listen_addresses=127.0.0.1", action, *extra)


@pytest.fixture
def private_pg() -> Iterator[PrivatePostgres]:
    bindir = _pg_bin()
    if bindir is None:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL's server binaries are missing (.ci/run installs postgresql)")
        pytest.skip("PostgreSQL's server binaries (initdb, pg_ctl) are not installed")
    # not under pytest's own temporary folder: the server's user must be able to reach it
    folder = Path(tempfile.mkdtemp(prefix="clipora-pg-"))
    user = "postgres" if os.geteuid() == 0 else None
    if user:
        shutil.chown(folder, user)
    pg = PrivatePostgres(bindir, folder / "data", free_port(), user)
    pg._run("initdb", "-D", str(pg.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
    pg.pg_ctl("start")
    subprocess.run(["psql", "-h", "127.0.0.1", "-p", str(pg.port), "-U", "postgres", "-qc", "create database clipora"],
                   check=True, timeout=30)
    try:
        yield pg
    finally:
        pg.pg_ctl("stop", "-m", "immediate")
        shutil.rmtree(folder, ignore_errors=True)


async def _status(base: str, key: str, job_id: str) -> dict[str, Any]:
    async with aiohttp.ClientSession() as s, s.get(f"{base}/api/jobs/{job_id}", headers={"X-API-Key": key}) as r:
        assert r.status == 200, await r.text()
        return dict(await r.json())


async def _watch(base: str, key: str, job_id: str, into: list[dict[str, Any]]) -> None:
    """A WebSocket client: appends every message until the job ends or the socket closes."""
    async with aiohttp.ClientSession() as s, s.ws_connect(f"{base}/ws?jobId={job_id}",
                                                          headers={"X-API-Key": key}, heartbeat=2.0) as ws:
        async for msg in ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                break
            into.append(msg.json())
            if into[-1]["type"] in ("completed", "failed"):
                return


async def test_a_gateway_killed_mid_job_the_other_finishes_it_and_its_clients_follow(start_server, private_pg,
                                                                                     tmp_path):
    shared = tmp_path / "shared"  # the storage root both gateways mount
    env = {"CLIPORA_DATABASE_URL": private_pg.url, **FAST_LEASE}
    b: LiveServer = start_server(env=env, data_dir=shared)
    account = await new_account(b.url, "cluster@example.com")
    status, body = await upload(b.url, account.key, MEDIA / "speech_topics.mp4", options=LONG_JOB)
    assert status == 200, body
    job_id = body["jobId"]
    while (job := await _status(b.url, account.key, job_id))["status"] != "processing":
        assert job["status"] == "queued", job
        await asyncio.sleep(0.05)

    a: LiveServer = start_server(env=env, data_dir=shared)  # one database, one storage root
    assert (await _status(a.url, account.key, job_id))["status"] == "processing", "finished before A was up"
    on_a: list[dict[str, Any]] = []
    on_b: list[dict[str, Any]] = []
    watch_a = asyncio.create_task(_watch(a.url, account.key, job_id, on_a))
    watch_b = asyncio.create_task(_watch(b.url, account.key, job_id, on_b))
    # A relays the progress B's worker makes (NOTIFY from B's worker, LISTEN in A)
    deadline = time.monotonic() + 30
    while not any(e["type"] == "progress" for e in on_a):
        assert time.monotonic() < deadline, on_a
        await asyncio.sleep(0.05)
    assert (await _status(a.url, account.key, job_id))["attempts"] == 1

    b.kill()  # SIGKILL: its worker dies with it, the lease is left to expire
    await asyncio.wait_for(watch_b, 10)  # B's client sees its socket go
    assert not any(e["type"] in ("completed", "failed") for e in on_b)
    again: list[dict[str, Any]] = []
    await asyncio.wait_for(_watch(a.url, account.key, job_id, again), 240)  # reconnected to the survivor
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
    while (await _status(a.url, account.key, ids[0]))["status"] != "processing":
        await asyncio.sleep(0.05)
    seen: list[dict[str, Any]] = []
    watch = asyncio.create_task(_watch(b.url, account.key, ids[-1], seen))
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
