"""Worker processes: jobs run outside the gateway's process.

``ProcessExecutor`` is what a gateway runs when ``CLIPORA_WORKERS`` >= 1: it starts that many
worker processes (the command the composition root gives, ``clipora worker``), starts a new one
when one dies, recovers and reaps expired leases, and relays the workers' job events from the
store onto the gateway's bus. The gateway itself never decodes a frame.

``run_worker`` is a worker process's life: it leases jobs from the job store (the same
InProcessExecutor a single-process server uses, one job at a time per dispatcher), keeps its
models warm across jobs, hands its events to the gateways through the store, and on SIGTERM
stops: the running job goes back to the queue. A worker killed outright leaves its lease to
expire; the gateway's reaper queues the job again and another worker runs it (attempt 2).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import resource
import secrets
import signal
from collections.abc import Callable, Sequence
from pathlib import Path

from engine.events import EventBus, JobEvent
from engine.executor import ExecutorConfig, InProcessExecutor, JobFunction, reap, recover
from engine.jobs import JobRecord, JobStatus
from engine.relay import EventReceiver, EventSender
from engine.store import JobStore

log = logging.getLogger("clipora.workers")

PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """A worker never outlives its gateway (Linux): SIGKILL when the parent goes, however it goes."""
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


#: the longest a crash-looping worker waits before its next start
MAX_RESTART_DELAY_S = 30.0


class ProcessExecutor:
    def __init__(self, store: JobStore, bus: EventBus, command: Sequence[str], workers: int,
                 config: ExecutorConfig, embedded: bool = True, env: dict[str, str] | None = None,
                 restart_backoff_s: float = 1.0) -> None:
        self.store = store
        self.bus = bus
        self.command = list(command)
        self.workers = workers
        self.config = config
        self.embedded = embedded
        self.env = env
        self.restart_backoff_s = restart_backoff_s
        self.worker_id = f"g-{secrets.token_hex(6)}"  # the gateway's own leases (URL downloads)
        self.receiver = EventReceiver(store, bus)
        self.procs: dict[int, asyncio.subprocess.Process] = {}
        #: every restart's delay, per slot, newest last (the policy's record: logs and tests read it)
        self.restart_delays: dict[int, list[float]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False
        self._running_jobs: set[str] = set()
        self._unsubscribe = bus.subscribe(self._track)
        self.running = False

    def _track(self, event: JobEvent) -> None:
        if event.type == "status" and event.status == JobStatus.PROCESSING.value:
            self._running_jobs.add(event.job_id)
        elif event.type in ("completed", "failed") or (event.type == "status" and event.status != "processing"):
            self._running_jobs.discard(event.job_id)

    async def start(self) -> None:
        await recover(self.store, self.config, self.embedded)  # before any worker leases
        await self.receiver.start()
        self._stopping = False
        self._tasks = [asyncio.create_task(self._supervise(i), name=f"worker-{i}") for i in range(self.workers)]
        self._tasks.append(asyncio.create_task(reap(self.store, self.config, lambda: self._stopping, self.wake),
                                               name="lease-reaper"))
        self.running = True

    async def _supervise(self, slot: int) -> None:
        """Keep one worker running. A worker that dies before it is ready (a crash loop: bad settings,
        a broken install) is restarted after 1, 2, 4 ... 30 s; one that was ready and serving (killed
        by an operator or the OOM killer, a crash inside a job) is restarted after the base delay."""
        backoff = self.restart_backoff_s
        loop = asyncio.get_running_loop()
        while not self._stopping:
            ready_r, ready_w = os.pipe()  # the worker writes one line to it once it is ready
            env = dict(self.env if self.env is not None else os.environ, **{READY_FD: str(ready_w)})
            try:
                proc = await asyncio.create_subprocess_exec(*self.command, env=env, pass_fds=(ready_w,),
                                                            preexec_fn=_die_with_parent)
            finally:
                os.close(ready_w)
            self.procs[slot] = proc
            log.info("worker %d started (pid %d)", slot, proc.pid)
            ready = loop.run_in_executor(None, os.read, ready_r, 64)  # b"" once the worker is gone
            code = await proc.wait()
            became_ready = bool(await ready)
            os.close(ready_r)
            if self._stopping:
                return
            if became_ready:
                backoff = self.restart_backoff_s  # it was serving: not a crash loop
            log.warning("worker %d (pid %d) exited with %s%s; starting another in %.1f s", slot, proc.pid, code,
                        "" if became_ready else " before it was ready", backoff)
            delays = self.restart_delays.setdefault(slot, [])
            delays.append(backoff)
            del delays[:-32]
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_RESTART_DELAY_S)

    async def stop(self, grace_s: float = 12.0) -> None:
        """SIGTERM every worker (each hands its running job back to the queue), then wait for them."""
        self._stopping = True
        self.running = False
        for proc in self.procs.values():
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
        waits = [p.wait() for p in self.procs.values() if p.returncode is None]
        if waits:
            _, late = await asyncio.wait([asyncio.ensure_future(w) for w in waits], timeout=grace_s)
            for proc in self.procs.values():
                if proc.returncode is None:
                    log.warning("worker pid %d did not stop in %.0f s; killing it", proc.pid, grace_s)
                    proc.kill()
                    await proc.wait()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.receiver.stop()
        self._unsubscribe()

    def wake(self) -> None:
        """Workers poll the queue every ``poll_s``; nothing to wake in this process."""

    def cancel(self, job_id: str) -> bool:
        """A deleted job's worker finds its row gone at the next heartbeat and stops it there."""
        return False

    @property
    def active_jobs(self) -> int:
        return len(self._running_jobs)

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.procs.values() if p.returncode is None]


#: the environment variable naming the pipe a worker reports readiness on (set by ProcessExecutor)
READY_FD = "CLIPORA_READY_FD"


def tell_ready() -> None:
    """Tell the supervising gateway (if any) that this worker is ready: its restarts reset their backoff."""
    fd = os.environ.pop(READY_FD, None)
    if fd and fd.isdigit():
        with contextlib.suppress(OSError):
            os.write(int(fd), b"ready\n")
            os.close(int(fd))


def limit_memory(mb: int) -> None:
    """Cap this process's address space (RLIMIT_AS): an allocation past it raises MemoryError, which
    fails the job with a reason, instead of the kernel's OOM killer taking the worker (or more)."""
    if mb > 0:
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        want = mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (want if hard == resource.RLIM_INFINITY else min(want, hard), hard))


async def run_worker(store: JobStore, run: JobFunction, paths: Callable[[JobRecord], tuple[Path, Path, Path]],
                     config: ExecutorConfig, *, nice: int = 0, memory_mb: int = 0,
                     available: Callable[[], str | None] | None = None) -> None:
    """A worker process: lease and run jobs until SIGTERM/SIGINT (or the gateway goes away).

    ``available``: None while the job function can run jobs, else why not (a Ray cluster that does not
    answer): no job is leased meanwhile, so jobs wait in ``queued``.
    """
    limit_memory(memory_mb)
    if nice:
        with contextlib.suppress(OSError):
            os.nice(nice)  # rendering yields the CPU to the gateway's requests
    bus = EventBus()
    sender = EventSender(store, bus)
    executor = InProcessExecutor(store, run, paths, bus, config, embedded=False, recovers=False, available=available)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    parent = os.getppid()

    async def orphaned() -> None:  # where the parent-death signal is not available
        while os.getppid() == parent:
            await asyncio.sleep(1.0)
        log.warning("the gateway is gone; stopping")
        stop.set()

    watch = asyncio.create_task(orphaned())
    await sender.start()
    await executor.start()
    log.info("worker ready (pid %d)", os.getpid())
    tell_ready()
    try:
        await stop.wait()
    finally:
        watch.cancel()
        await executor.stop()
        await sender.stop()
        log.info("worker stopped (pid %d)", os.getpid())
