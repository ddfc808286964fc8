"""The Ray executor (cluster issue, items 2 and 3) on a real Ray cluster on this machine.

``ray.cluster_utils.Cluster``: a head node (no CPUs for tasks; its GCS on a free port, never Ray's
default 6379, which Redis holds here) and two worker nodes of 2 logical CPUs each; the job store is
SQLite, the dispatcher the ordinary ``InProcessExecutor`` leasing the job and running
:class:`engine.ray_executor.RayJobRunner`, which sends the analysis, each clip and finalize to Ray.

- A 3-clip job: it completes; each clip ran once, as its own task, on both worker nodes, each node's
  stages in one actor (the manifests of four such jobs against the embedded run's are compared in
  tests/http_gateway/test_ray_gateways.py).
- A worker node removed while it renders a clip: that clip runs again on the other node, the job
  completes (attempts 1), and the retry is in the job's events and in its row (``clip_retries``,
  the job JSON's ``clipRetries``: the clip, its try, the node lost).
- Every worker node removed while the analysis runs: the attempt goes back to the executor's retry
  policy and the job runs again as a whole (attempts 2) on the nodes that replace them.
- The cluster away: the dispatcher leases nothing and says why; once it is back, the job runs.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.db import Database
from engine.events import CLIP_RETRY, EventBus, JobEvent
from engine.executor import ExecutorConfig, InProcessExecutor
from engine.jobs import JobStatus
from engine.ray_executor import NODE_ACTOR, NODE_FILE, RayJobRunner
from engine.store import JobStore
from http_gateway.shapes import job_json
from tests.engine.test_store import make_user
from tests.http_gateway.conftest import free_port
from tests.ray_cluster import NODE, local_cluster

ray = pytest.importorskip("ray")

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(420)]

MEDIA = Path(__file__).resolve().parents[1] / "media"
OPTIONS = {"numClips": 3, "clipLength": "short", "captionPreset": "karaoke", "aspectRatio": "1:1", "mode": "ai"}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with local_cluster(tmp_path_factory.mktemp("ray-cache")) as c:
        yield c


def _runner(cluster: Any) -> RayJobRunner:
    from clipora.compose import StageSet, job_graph

    return RayJobRunner(cluster.address, "clipora.compose:cluster_runtime", job_graph(StageSet()))


async def _run_job(tmp_path: Path, runner: RayJobRunner, job_id: str, options: dict[str, Any],
                   during: Any = None, then_render: dict[str, Any] | None = None) -> tuple[Any, list[JobEvent], Path]:
    """One job through the dispatcher on SQLite; returns (its row, its events, its folder).

    ``then_render``: an edit of clip 1, rendered again through the same executor once the job is done
    (the render's row is returned instead)."""
    db = Database.sqlite_in(tmp_path / "db")
    await db.migrate()
    store = JobStore(db)
    await make_user(db)
    folder = tmp_path / "jobs" / job_id
    source = folder / "source.mp4"
    source.parent.mkdir(parents=True)
    source.write_bytes((MEDIA / "speech_topics.mp4").read_bytes())
    bus = EventBus()
    events: list[JobEvent] = []
    bus.subscribe(events.append)
    executor = InProcessExecutor(store, runner, lambda job: (source, folder / "out", folder / "work"), bus,
                                 ExecutorConfig(poll_s=0.2), available=runner.available)
    await store.create(job_id, "u1", "talk.mp4", source.stat().st_size, options)
    await executor.start()
    try:
        if during is not None:
            await during(folder, events)
        deadline = time.monotonic() + 300
        while (job := await store.get(job_id)) is not None and not job.terminal:
            assert time.monotonic() < deadline, job
            await asyncio.sleep(0.2)
        if then_render is not None and job is not None and job.status == JobStatus.COMPLETED:
            render_id = f"{job_id}r"
            await store.create(render_id, "u1", "talk.mp4 · clip 1", 0, {"edit": then_render}, parent_id=job_id,
                               clip_index=1)
            while (job := await store.get(render_id)) is not None and not job.terminal:
                assert time.monotonic() < deadline, job
                await asyncio.sleep(0.2)
    finally:
        await executor.stop()
        await db.close()
        runner.close()
    return job, events, folder


async def test_a_three_clip_job_fans_out_and_matches_the_embedded_run(cluster, tmp_path):
    job, events, folder = await _run_job(tmp_path, _runner(cluster), "rayjob000001", OPTIONS)
    assert job.status == JobStatus.COMPLETED, (job.error, job.message)
    assert job.clip_count == 3
    marks = [(folder / "work" / "clips" / f"{i:02d}" / NODE_FILE).read_text().split() for i in (1, 2, 3)]
    assert all(state == "done" for _, state in marks), marks
    nodes = {node for node, _ in marks}
    assert len(nodes) == 2, nodes  # the clips rendered on both worker nodes
    # in one stages process per node (its models loaded once), whatever ran there
    actors = sorted(n for n in ray.util.list_named_actors() if n.startswith(NODE_ACTOR))
    assert actors == sorted(NODE_ACTOR + n for n in nodes), (actors, nodes)
    stages = [e.stage for e in events if e.type == "progress" and e.stage_progress == 0.0]
    assert stages.count("render") == 3 and stages.count("transcribe") == 1, stages  # each once
    overall = [e.progress for e in events if e.type == "progress"]
    assert overall == sorted(overall)
    # the manifest against the embedded run of the same input and options: four such jobs are compared in
    # tests/http_gateway/test_ray_gateways.py (an embedded run here too would double the cost of this test)
    manifest = json.loads((folder / "out" / "manifest.json").read_text())
    assert [c["index"] for c in manifest["clips"]] == [1, 2, 3]
    assert all((folder / "out" / f"clip_{i:02d}.mp4").stat().st_size > 0 for i in (1, 2, 3)), manifest


async def test_a_clip_re_render_runs_as_one_task(cluster, tmp_path):
    render, _, folder = await _run_job(tmp_path, _runner(cluster), "rayjob000004",
                                       {"mode": "none", "trimEnd": 6, "captionPreset": "none", "aspectRatio": "1:1"},
                                       then_render={"aspectRatio": "9:16"})
    assert render.status == JobStatus.COMPLETED and render.parent_id == "rayjob000004", (render.error, render.message)
    clip = json.loads((folder / "out" / "manifest.json").read_text())["clips"][0]
    assert clip["version"] == 2 and clip["edit"]["aspectRatio"] == "9:16", clip
    assert (folder / "out" / "clip_01.v1.mp4").is_file()


async def test_a_node_lost_while_it_renders_a_clip_the_clip_runs_again_elsewhere(cluster, tmp_path):
    async def kill_a_renderer(folder: Path, events: list[JobEvent]) -> None:
        deadline = time.monotonic() + 200
        while not any(e.type == "progress" and e.stage == "render" for e in events):
            assert time.monotonic() < deadline, "no clip started rendering"
            await asyncio.sleep(0.05)
        victim = None
        while victim is None:  # the node of a clip that is rendering now (its unit folder names it)
            for i in (1, 2, 3):
                marker = folder / "work" / "clips" / f"{i:02d}" / NODE_FILE
                node, state = marker.read_text().split() if marker.is_file() else ("", "")
                if state == "running":
                    victim = next(n for n in cluster.nodes_ if n.node_id == node)
                    break
            assert time.monotonic() < deadline, "no clip unit running"
            await asyncio.sleep(0.05)
        killed.append(victim.node_id)
        cluster.remove_node(victim)  # raylet and its worker processes killed
        cluster.nodes_.remove(victim)
        cluster.nodes_.append(cluster.add_node(**NODE))  # the cluster keeps two worker nodes for what follows

    killed: list[str] = []
    job, events, folder = await _run_job(tmp_path, _runner(cluster), "rayjob000002", OPTIONS, kill_a_renderer)
    assert job.status == JobStatus.COMPLETED, (job.error, job.message)
    assert job.attempts == 1  # the job was not run again: only the lost clip was
    retries = [e for e in events if "running it again" in e.message]
    assert retries, [e.message for e in events][-20:]
    assert retries[0].extra[CLIP_RETRY]["try"] == 2
    # the job's record says so, durably (the events are pruned after minutes): each lost clip, on the node killed
    assert job.clip_retries == [e.extra[CLIP_RETRY] for e in retries], (job.clip_retries, retries)
    assert {r["node"] for r in job.clip_retries} == set(killed)
    assert all(r["try"] == 2 and r["attempt"] == 1 and r["reason"] for r in job.clip_retries), job.clip_retries
    assert job_json(job)["clipRetries"] == job.clip_retries and job_json(job)["attempts"] == 1
    assert json.loads((folder / "out" / "manifest.json").read_text())["clipCount"] == 3


async def test_the_nodes_lost_during_the_analysis_the_job_runs_again(cluster, tmp_path):
    async def kill_the_workers(folder: Path, events: list[JobEvent]) -> None:
        deadline = time.monotonic() + 200
        while not any(e.type == "progress" for e in events):  # the analysis task has begun
            assert time.monotonic() < deadline, "the analysis never started"
            await asyncio.sleep(0.05)
        assert not (folder / "work" / "clips").exists()  # no clip unit yet: it is the analysis that is lost
        for node in list(cluster.nodes_):
            cluster.remove_node(node)
        cluster.nodes_ = [cluster.add_node(**NODE) for _ in range(2)]

    job, _, _ = await _run_job(tmp_path, _runner(cluster), "rayjob000005",
                               {"mode": "none", "trimEnd": 20, "captionPreset": "karaoke", "aspectRatio": "1:1"},
                               kill_the_workers)
    # the lost analysis gave the attempt back to the executor: the job ran again, as a whole
    assert (job.status, job.attempts, job.clip_retries) == (JobStatus.COMPLETED, 2, []), (job.error, job.message)


async def test_while_the_cluster_is_away_jobs_wait_queued_and_run_when_it_is_back(cluster, tmp_path):
    runner = _runner(cluster)
    real = (runner.address, runner.host, runner.port)
    away = free_port()  # nothing listens there
    runner.address, runner.host, runner.port = f"127.0.0.1:{away}", "127.0.0.1", away

    async def wait_then_return(folder: Path, events: list[JobEvent]) -> None:
        db = Database.sqlite_in(tmp_path / "db")
        store = JobStore(db)
        try:
            await asyncio.sleep(2.0)
            job = await store.get("rayjob000003")
            assert job is not None and job.status == JobStatus.QUEUED and job.attempts == 0, job
            assert f"the Ray cluster at 127.0.0.1:{away} does not answer" in (runner.available() or "")
        finally:
            await db.close()
        runner.address, runner.host, runner.port = real  # the cluster is back

    job, _, _ = await _run_job(tmp_path, runner, "rayjob000003",
                               {"mode": "none", "trimEnd": 4, "captionPreset": "none", "aspectRatio": "1:1"},
                               wait_then_return)
    assert job.status == JobStatus.COMPLETED and job.attempts == 1, (job.error, job.message)


async def test_readyz_names_a_ray_cluster_that_does_not_answer(cluster):
    from http_gateway.routes.ops import _ray_answers

    head = cluster.address
    assert await _ray_answers(head) is None
    away = f"127.0.0.1:{free_port()}"
    why = await _ray_answers(away)
    assert why == f"the Ray cluster at {away} does not answer; jobs wait in the queue until it does"
