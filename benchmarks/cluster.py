"""The Ray executor against the in-process one, on this machine (cluster issue, item 5).

One ``ray.cluster_utils.Cluster`` in the same command: a head (no task CPUs) and worker nodes of 2
logical CPUs each, job folders on the local disk (one machine: the "shared storage" is trivially
shared). Measured, each job on the committed talk (69 s), options as ``OPTIONS``:

- **overhead**: the same 3-clip job through ``Worker.run`` in this process (models loaded before,
  as a serving worker) and through :class:`engine.ray_executor.RayJobRunner` on one worker node
  (its Ray worker processes warmed by a first job, as a serving cluster's are); interleaved,
  ``--reps`` each; ratio of medians (target <= 1.10x);
- **fan-out**: a 6-clip job on 1 and on 2 worker nodes (on a 2-core machine both nodes share the
  same two cores, so this shows the scheduling, not the scale).

    python -m benchmarks.cluster [--quick] [--reps N]
"""

from __future__ import annotations

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


def run(quick: bool = False, reps: int | None = None) -> dict[str, Any]:
    import ray
    from ray.cluster_utils import Cluster

    from clipora.compose import StageSet, ray_job_function
    from engine.config import Settings
    from engine.events import EventBus
    from engine.graph import JobInput
    from engine.options import ProcessOptions

    n = reps or (1 if quick else 3)
    rec = Recorder(NAME, quick, {"reps": n, "options": OPTIONS, "node_cpus": NODE["num_cpus"]})
    root = Path(tempfile.mkdtemp(prefix="clipora-cluster-bench-"))
    os.environ.setdefault("CLIPORA_THREADS", "2")
    settings = Settings.from_env()
    worker = StageSet().worker(settings)
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
        results = {"warmup_s": warm, "inprocess_s": base, "ray_s": ours,
                   "overhead": statistics.median(ours) / statistics.median(base), "six_clips_s": fan}
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
    return (md_table(("job", "wall (median)", "ratio"), rows)
            + f"\n\nFirst Ray job (worker processes loading models): {r['warmup_s']:.1f} s.\n\n" + machine_line(data))


def main(argv: list[str] | None = None) -> None:
    harness_main(__doc__, run, table, argv, ("--reps", int))


if __name__ == "__main__":
    main()
