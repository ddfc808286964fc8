"""The Ray executor against the in-process one, on this machine (cluster issue, item 5).

One ``ray.cluster_utils.Cluster`` in the same command: a head (no task CPUs) and worker nodes of 2
logical CPUs each, job folders on the local disk (one machine: the "shared storage" is trivially
shared). Measured, each job on the committed talk (69 s), options as ``OPTIONS``:

- **overhead**: the same 3-clip job through ``Worker.run`` in this process (models loaded before,
  as a serving worker) and through :class:`engine.ray_executor.RayJobRunner` on one worker node
  (its Ray worker processes warmed by a first job, as a serving cluster's are); interleaved,
  ``--reps`` each; ratio of medians (target <= 1.10x);
- **fan-out**: a 6-clip job on 1 and on 2 worker nodes (on a 2-core machine both nodes share the
  same two cores, so this shows the scheduling, not the scale);
- **throughput**: ``--jobs`` short jobs (20; the talk's first 8 s as one karaoke clip, ``SHORT``)
  queued at once in a job store (SQLite) and run by the ordinary dispatcher (``InProcessExecutor``,
  2 at a time) through the Ray executor on the 2 worker nodes, then, as the reference, through the
  in-process job function (the warm ``Worker``, 2 threads); jobs/hour = jobs / (the last one's end -
  the first one's queueing).

    python -m benchmarks.cluster [--quick] [--reps N] [--jobs N]
"""

from __future__ import annotations

import asyncio
import os
import socket
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from benchmarks.common import TALK, Recorder, harness_main, machine_line, md_table

NAME = "cluster"
OPTIONS: dict[str, Any] = {"clipLength": "short", "captionPreset": "karaoke", "aspectRatio": "9:16", "mode": "ai"}
NODE = {"num_cpus": 2, "object_store_memory": 80 * 1024 * 1024}
#: a short job: one clip of the talk's first 8 s, karaoke captions (transcription, faces, render, finalize)
SHORT: dict[str, Any] = {"mode": "none", "trimEnd": 8, "captionPreset": "karaoke", "aspectRatio": "9:16"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _record(job_id: str, options: dict[str, Any]) -> Any:
    from engine.jobs import JobRecord, JobStatus

    return JobRecord(id=job_id, owner_id="bench", status=JobStatus.PROCESSING, stage="", progress=0.0, message="",
                     error=None, original_name="talk.mp4", size_bytes=0, options=options, source_url=None,
                     clip_count=None, attempts=1, created_at=0, updated_at=0, started_at=None, finished_at=None)


def _job(root: Path, name: str) -> tuple[Path, Path, Path]:
    folder = root / name
    folder.mkdir(parents=True)
    source = folder / "source.mp4"
    source.write_bytes(TALK.read_bytes())
    return source, folder / "out", folder / "work"


async def _throughput(root: Path, run: Any, jobs: int, available: Any = None) -> dict[str, Any]:
    """``jobs`` short jobs queued at once, run 2 at a time by the dispatcher with job function ``run``."""
    from engine.db import Database
    from engine.events import EventBus
    from engine.executor import ExecutorConfig, InProcessExecutor
    from engine.jobs import JobStatus
    from engine.store import JobStore, now_ms
    from http_gateway.models import User

    db = Database.sqlite_in(root / "db")
    await db.migrate()
    store = JobStore(db)
    async with db.session() as s, s.begin():
        s.add(User(id="bench", email="bench@example.com", password_hash="x", plan="free", created_at=now_ms()))
    ids = [f"tp{i:06d}" for i in range(jobs)]
    folders = {job_id: _job(root, job_id) for job_id in ids}
    executor = InProcessExecutor(store, run, lambda job: folders[job.id], EventBus(),
                                 ExecutorConfig(concurrency=2, poll_s=0.2), available=available)
    await executor.start()
    try:
        t0 = time.perf_counter()
        for job_id in ids:
            await store.create(job_id, "bench", "talk.mp4", 0, SHORT)
        while (left := [j for j in ids if not (await store.get(j)).terminal]):  # type: ignore[union-attr]
            await asyncio.sleep(0.2)
        wall = time.perf_counter() - t0
        statuses = [(await store.get(j)).status for j in ids]  # type: ignore[union-attr]
    finally:
        await executor.stop()
        await db.close()
    assert not left and all(st == JobStatus.COMPLETED for st in statuses), statuses
    return {"jobs": jobs, "wall_s": wall, "jobs_per_hour": jobs * 3600 / wall}


def run(quick: bool = False, reps: int | None = None, jobs: int | None = None) -> dict[str, Any]:
    import ray
    from ray.cluster_utils import Cluster

    from clipora.compose import StageSet, job_function, ray_job_function
    from engine.config import Settings
    from engine.events import EventBus
    from engine.graph import JobInput
    from engine.options import ProcessOptions

    n = reps or (1 if quick else 3)
    short_jobs = jobs or (6 if quick else 20)
    rec = Recorder(NAME, quick, {"reps": n, "options": OPTIONS, "node_cpus": NODE["num_cpus"],
                                 "short_jobs": short_jobs, "short_options": SHORT, "dispatchers": 2})
    root = Path(tempfile.mkdtemp(prefix="clipora-cluster-bench-"))
    os.environ.setdefault("CLIPORA_THREADS", "2")
    settings = Settings.from_env()
    stages = StageSet()
    worker = stages.worker(settings)
    worker.warm()
    cluster = Cluster(initialize_head=True, connect=False, head_node_args={
        "num_cpus": 0, "gcs_server_port": _free_port(), "object_store_memory": 80 * 1024 * 1024,
        "include_dashboard": False})
    nodes = [cluster.add_node(**NODE)]
    cluster.wait_for_nodes()
    runner = ray_job_function(cluster.address)
    counter = iter(range(1000))

    def inprocess(clips: int) -> float:
        source, out, work = _job(root, f"in{next(counter)}")
        job = JobInput(f"bench{next(counter):06d}", source, ProcessOptions.from_json({**OPTIONS, "numClips": clips}))
        t0 = time.perf_counter()
        worker.run(job, out, EventBus(), workdir=work)
        return time.perf_counter() - t0

    def on_ray(clips: int) -> float:
        source, out, work = _job(root, f"ray{next(counter)}")
        job = _record(f"bench{next(counter):06d}", {**OPTIONS, "numClips": clips})
        t0 = time.perf_counter()
        runner(job, source, out, work, EventBus(), threading.Event())
        return time.perf_counter() - t0

    try:
        warm = on_ray(3)  # the Ray worker processes load their models once
        ours: list[float] = []
        base: list[float] = []
        for _ in range(n):
            base.append(inprocess(3))
            ours.append(on_ray(3))
        fan: dict[str, float] = {"1 node": on_ray(6)}
        nodes.append(cluster.add_node(**NODE))
        cluster.wait_for_nodes()
        on_ray(2)  # the new node's workers warm up
        fan["2 nodes"] = on_ray(6)
        through = {"ray": asyncio.run(_throughput(root / "tp-ray", runner, short_jobs, runner.available)),
                   "inprocess": asyncio.run(_throughput(root / "tp-in", job_function(settings, stages), short_jobs))}
        results = {"warmup_s": warm, "inprocess_s": base, "ray_s": ours,
                   "overhead": statistics.median(ours) / statistics.median(base), "six_clips_s": fan,
                   "throughput": through}
    finally:
        runner.close()
        ray.shutdown()
        cluster.shutdown()
    return rec.save(results, ["One machine: the Ray nodes are local processes sharing its cores and disk."])


def table(data: dict[str, Any]) -> str:
    r = data["results"]
    rows = [("3-clip job, in-process (Worker.run, warm)", f"{statistics.median(r['inprocess_s']):.1f} s", "1.00x"),
            ("3-clip job, Ray executor, 1 worker node (warm)", f"{statistics.median(r['ray_s']):.1f} s",
             f"**{r['overhead']:.2f}x**"),
            ("6-clip job, Ray, 1 worker node", f"{r['six_clips_s']['1 node']:.1f} s", ""),
            ("6-clip job, Ray, 2 worker nodes", f"{r['six_clips_s']['2 nodes']:.1f} s",
             f"{r['six_clips_s']['2 nodes'] / r['six_clips_s']['1 node']:.2f}x of 1 node")]
    out = (md_table(("job", "wall (median)", "ratio"), rows)
           + f"\n\nFirst Ray job (worker processes loading models): {r['warmup_s']:.1f} s.\n\n")
    if "throughput" in r:
        t = r["throughput"]
        out += md_table(("short jobs queued at once, 2 at a time", "jobs", "wall", "jobs/hour", "ratio"), [
            ("in-process job function (warm Worker, 2 threads)", t["inprocess"]["jobs"],
             f"{t['inprocess']['wall_s']:.1f} s", f"{t['inprocess']['jobs_per_hour']:.0f}", "1.00x"),
            ("Ray executor, 2 worker nodes of 2 CPUs", t["ray"]["jobs"], f"{t['ray']['wall_s']:.1f} s",
             f"**{t['ray']['jobs_per_hour']:.0f}**",
             f"{t['ray']['jobs_per_hour'] / t['inprocess']['jobs_per_hour']:.2f}x")]) + "\n\n"
    return out + machine_line(data)


def main(argv: list[str] | None = None) -> None:
    harness_main(__doc__, run, table, argv, ("--reps", int), ("--jobs", int))


if __name__ == "__main__":
    main()
