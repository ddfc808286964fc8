"""Ray clusters on this machine for the cluster tests (tests/engine/test_ray_executor.py, the gateway tests).

- :func:`local_cluster`: a ``ray.cluster_utils.Cluster`` in the test's process: a head without task
  CPUs (its GCS on a free port, never Ray's default 6379, which Redis holds here) and worker nodes of
  2 logical CPUs; every Ray worker process inherits the environment set here (the model cache, one
  thread), which is also what :func:`embedded_manifest` runs the reference with.
- :class:`RayProcesses`: the same cluster started as ``ray start --block`` processes, as the README's
  cluster mode does, so a test can kill the whole cluster (SIGKILL, every process of it) and start it
  again on the same port: a ``cluster_utils`` head cannot be started twice in one process.
- :func:`comparable_manifest`: a manifest without what differs between any two runs of a job.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.http_gateway.conftest import free_port

#: a worker node: 2 logical CPUs, a small object store (what the 2-core machines here afford)
NODE = {"num_cpus": 2, "object_store_memory": 80 * 1024 * 1024}


@contextlib.contextmanager
def node_environment(cache: Path) -> Iterator[dict[str, str]]:
    """What every Ray node started meanwhile (and so every Ray worker process) inherits."""
    mp = pytest.MonkeyPatch()
    mp.setenv("CLIPORA_CACHE_DIR", str(cache))
    mp.setenv("CLIPORA_THREADS", "1")
    try:
        yield {"CLIPORA_CACHE_DIR": str(cache), "CLIPORA_THREADS": "1"}
    finally:
        mp.undo()


@contextlib.contextmanager
def local_cluster(cache: Path, nodes: int = 2) -> Iterator[Any]:
    """A head (no task CPUs) and ``nodes`` worker nodes (``cluster.nodes_``), shut down at the end."""
    ray = pytest.importorskip("ray")
    cluster_utils = pytest.importorskip("ray.cluster_utils")
    with node_environment(cache):
        c = cluster_utils.Cluster(initialize_head=True, connect=False, head_node_args={
            "num_cpus": 0, "gcs_server_port": free_port(), "object_store_memory": 80 * 1024 * 1024,
            "include_dashboard": False})
        c.nodes_ = [c.add_node(**NODE) for _ in range(nodes)]
        c.wait_for_nodes()
        try:
            yield c
        finally:
            if ray.is_initialized():
                ray.shutdown()
            c.shutdown()


class RayProcesses:
    """A Ray cluster of ``ray start --block`` processes: a head without task CPUs and worker nodes."""

    def __init__(self, cache: Path, logs: Path, nodes: int = 1) -> None:
        self.port = free_port()
        self.nodes = nodes
        self.logs = logs
        self.env = dict(os.environ, CLIPORA_CACHE_DIR=str(cache), CLIPORA_THREADS="1", RAY_USAGE_STATS_ENABLED="0")
        self.procs: list[subprocess.Popen[bytes]] = []

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _start(self, *args: str) -> Path:
        """One node's ``ray start --block``, in a session of its own (kill() takes every process of it)."""
        ray_cli = str(Path(sys.executable).with_name("ray"))
        log = self.logs / f"ray-{len(self.procs)}-{int(time.time() * 1000)}.log"
        with log.open("wb") as out:
            self.procs.append(subprocess.Popen(
                [ray_cli, "start", "--block", "--disable-usage-stats", f"--object-store-memory={80 * 1024 * 1024}",
                 *args], env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True))
        return log

    def start(self, timeout_s: float = 60.0) -> RayProcesses:
        """The head on :attr:`port` (the same one every time), then the worker nodes; returns once all run."""
        logs = [self._start("--head", f"--port={self.port}", "--num-cpus=0", "--include-dashboard=false")]
        self._wait(lambda: "Ray runtime started" in logs[0].read_text(errors="replace"), timeout_s, logs[0])
        logs += [self._start(f"--address={self.address}", f"--num-cpus={NODE['num_cpus']}")
                 for _ in range(self.nodes)]
        for log in logs[1:]:
            self._wait(lambda log=log: "Ray runtime started" in log.read_text(errors="replace"), timeout_s, log)
        return self

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return True
        except OSError:
            return False

    def _wait(self, ready: Callable[[], bool], timeout_s: float, log: Path | None = None) -> None:
        deadline = time.monotonic() + timeout_s
        while not ready():
            if time.monotonic() > deadline:
                self.kill(wait_closed=False)
                raise RuntimeError(f"the Ray cluster did not get there in {timeout_s:.0f} s:\n"
                                   + (log.read_text(errors="replace")[-3000:] if log else ""))
            time.sleep(0.2)

    def kill(self, wait_closed: bool = True) -> None:
        """SIGKILL every process of every node (GCS, raylets, Ray workers): the cluster is gone at once."""
        for proc in self.procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        for proc in self.procs:
            proc.wait(timeout=30)
        self.procs.clear()
        if wait_closed:
            self._wait(lambda: not self._answers(), 30)


def comparable_manifest(manifest: dict[str, Any], job_id: str | None = None) -> dict[str, Any]:
    """The manifest without what differs between any two runs (when it was made; the job's id, if given)."""
    text = json.dumps(manifest)
    if job_id is not None:
        text = text.replace(job_id, "<job>")
    out = json.loads(text)
    for key in ("createdAt", "generatedAt", "processingSeconds", "timings"):
        out.pop(key, None)
    return dict(out)


def embedded_manifest(source: Path, folder: Path, options: dict[str, Any], job_id: str) -> dict[str, Any]:
    """The manifest the embedded run (``clipora.compose.run_job``, in this process) writes for the same input
    and options, with the settings the Ray worker processes read (the environment :func:`node_environment`
    gives; call it inside that block)."""
    from clipora.compose import run_job
    from engine.config import Settings
    from engine.options import ProcessOptions

    return dict(run_job(source, folder / "out", ProcessOptions.from_json(options), Settings.from_env(),
                        job_id=job_id, workdir=folder / "work"))
