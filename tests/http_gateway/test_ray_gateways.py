"""Gateways on Ray (cluster issue): real ``clipora serve`` processes, ``CLIPORA_EXECUTOR=ray``.

Each gateway runs one worker process, which leases jobs from the job store and drives the Ray cluster
as a driver (on this machine it joins the cluster through the head's raylet: a driver needs a raylet on
its own machine, which a gateway machine of a real cluster gets from ``ray start --num-cpus=0``, see
README "Cluster mode"). The Ray nodes run every phase, with the environment the test gives them.

- Four 3-clip jobs submitted through two gateways on one PostgreSQL database (a private server,
  ``private_pg``) and one storage root, on a head and two worker nodes (``ray.cluster_utils``): all
  complete, each once (attempts 1), each clip rendered once (as its own task, no clip run again), and
  every manifest is the one the embedded run of the same input and options writes.
- The whole Ray cluster killed (SIGKILL, every process of every node) while a gateway's worker is
  connected to it: ``/readyz`` says the cluster does not answer, a job submitted meanwhile waits in
  ``queued``; the cluster started again on the same port, the same worker process joins it again and
  runs the job (Ray never reconnects a driver that lost its raylet, and ends it ~60 s later unless it
  is shut down: engine.ray_executor.RayJobRunner does so).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from engine.ray_executor import unit_marker
from tests.http_gateway.conftest import (
    FAST_OPTIONS,
    LiveServer,
    PrivatePostgres,
    job_status,
    new_account,
    upload,
    wait_for_job,
)
from tests.ray_cluster import RayProcesses, comparable_manifest, embedded_manifest, local_cluster, node_environment

pytest.importorskip("ray")

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(420)]

MEDIA = Path(__file__).resolve().parents[1] / "media"
THREE_CLIPS = {"numClips": 3, "clipLength": "short", "captionPreset": "karaoke", "aspectRatio": "1:1", "mode": "ai"}


def ray_gateway_env(pg: PrivatePostgres, ray_address: str) -> dict[str, str]:
    """A gateway of the cluster: the shared database, one worker process driving Ray."""
    return {"CLIPORA_DATABASE_URL": pg.url, "CLIPORA_EXECUTOR": "ray", "CLIPORA_RAY_ADDRESS": ray_address,
            "CLIPORA_WORKERS": "1", "CLIPORA_WORKER_WARM": "0"}


@pytest.fixture
def ray_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("ray-cache")


async def _readyz(server: LiveServer) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as s, s.get(f"{server.url}/readyz") as r:
        return r.status, dict(await r.json())


async def test_four_three_clip_jobs_through_two_gateways_on_ray(start_server, private_pg, ray_cache, tmp_path):
    shared = tmp_path / "shared"  # the storage root both gateways and every Ray node see
    with local_cluster(ray_cache) as cluster:
        env = ray_gateway_env(private_pg, cluster.address)
        a: LiveServer = start_server(env=env, data_dir=shared)
        b: LiveServer = start_server(env=env, data_dir=shared)
        account = await new_account(a.url, "ray@example.com")
        ids = []
        for server in (a, b, a, b):
            status, body = await upload(server.url, account.key, MEDIA / "speech_topics.mp4",
                                        options=json.dumps(THREE_CLIPS))
            assert status == 200, body
            ids.append(body["jobId"])
        jobs = [await wait_for_job((a, b)[i % 2].url, account.key, job_id, timeout_s=300)
                for i, job_id in enumerate(ids)]
        # the reference: the embedded run, with the settings the Ray worker processes read
        with node_environment(ray_cache):
            reference = embedded_manifest(MEDIA / "speech_topics.mp4", tmp_path / "embedded", THREE_CLIPS, ids[0])
    assert [(j["status"], j["attempts"], j["clipCount"]) for j in jobs] == [("completed", 1, 3)] * 4, jobs
    assert all(j["clipRetries"] == [] for j in jobs), [j["clipRetries"] for j in jobs]  # no clip ran again
    want = comparable_manifest(reference, ids[0])
    nodes: set[str] = set()
    for job in jobs:
        folder = shared / "jobs" / job["id"]
        marks = [unit_marker(folder / "work", i).read_text().split() for i in (1, 2, 3)]
        assert [state for _, state in marks] == ["done"] * 3, marks  # each clip's one task ran to its end
        nodes.update(node for node, _ in marks)
        assert comparable_manifest(json.loads((folder / "out" / "manifest.json").read_text()), job["id"]) == want
        assert sorted(p.name for p in (folder / "out").iterdir()) == sorted(
            p.name for p in (tmp_path / "embedded" / "out").iterdir())
    assert len(nodes) == 2, nodes  # the twelve clips rendered on both worker nodes
    # and through either gateway: one record
    assert (await job_status(b.url, account.key, ids[0]))["finishedAt"] == jobs[0]["finishedAt"]


@pytest.fixture
def ray_processes(ray_cache: Path, tmp_path: Path) -> Iterator[RayProcesses]:
    logs = tmp_path / "ray-logs"
    logs.mkdir()
    cluster = RayProcesses(ray_cache, logs).start()
    try:
        yield cluster
    finally:
        cluster.kill(wait_closed=False)


async def test_the_ray_cluster_killed_and_started_again_jobs_wait_then_run(start_server, private_pg,
                                                                           ray_processes, tmp_path):
    gateway: LiveServer = start_server(env=ray_gateway_env(private_pg, ray_processes.address))
    account = await new_account(gateway.url, "away@example.com")
    status, body = await upload(gateway.url, account.key, MEDIA / "face_static.mp4", options=FAST_OPTIONS)
    assert status == 200, body
    first = await wait_for_job(gateway.url, account.key, body["jobId"], timeout_s=120)
    assert first["status"] == "completed", first  # the worker joined the cluster and ran a job on it

    ray_processes.kill()  # the head and its nodes, every process at once
    why = f"the Ray cluster at {ray_processes.address} does not answer; jobs wait in the queue until it does"
    assert await _readyz(gateway) == (503, {"error": why})
    status, body = await upload(gateway.url, account.key, MEDIA / "face_static.mp4", options=FAST_OPTIONS)
    assert status == 200, body  # accepted: it waits in the queue
    job_id = body["jobId"]
    await asyncio.sleep(4.0)  # several dispatcher polls
    waiting = await job_status(gateway.url, account.key, job_id)
    assert (waiting["status"], waiting["attempts"]) == ("queued", 0), waiting
    assert await _readyz(gateway) == (503, {"error": why})

    ray_processes.start()  # a new cluster on the same port
    done = await wait_for_job(gateway.url, account.key, job_id, timeout_s=150)
    assert (done["status"], done["attempts"]) == ("completed", 1), (done, gateway.log())
    assert await _readyz(gateway) == (200, {"status": "ready"})
    # the same worker process let its lost connection go and joined the new cluster: it was not started again
    log = gateway.log_path.read_text(errors="replace")
    assert "joining it again once it answers" in log and "exited with" not in log, log[-5000:]
