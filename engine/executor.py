"""Executors: what runs jobs, and so the one owner of a job's status events and retry policy.

The retry policy (``RetryPolicy``): an attempt that fails with a RetryableError is attempted
again *as a whole job*, up to ``max_attempts`` runs in all, and resumes from its cached steps
(engine.pipeline), so only unfinished work is redone; no stage or step retries on its own.
``run_to_end`` applies it to a job run on the spot (the CLI); the in-process executor applies
it through the job store (the attempt is released to the queue and leased again), where runs
that a crash or a lost lease interrupted count as attempts too.

The in-process executor: dispatchers lease queued jobs and run them in worker threads.

Each dispatcher (an asyncio task; ``concurrency`` of them) leases one job at a time from
the JobStore, runs the job function in a thread, renews the lease while it runs, mirrors
its progress into the row (throttled) and closes the row when it ends. Terminal events
are published only after the row says so, so a client that hears "completed" can fetch
the clips at once. A cluster executor (Ray) would keep this shape and run the job
function as a remote task.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import shutil
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy.exc import DBAPIError
from tenacity import (
    AsyncRetrying,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential,
)

from engine.errors import ClipporaError, JobCancelled, RetryableError
from engine.events import CLIP_RETRY, EventBus, JobEvent
from engine.jobs import JobRecord, JobStatus, clips_ready
from engine.relay import wake_on_notify
from engine.store import JOBS_CHANNEL, JobStore

log = logging.getLogger("clipora.executor")

#: The job function the composition root provides:
#: (job, source file, output folder, work folder, event bus, cancel flag) -> manifest dict
JobFunction = Callable[[JobRecord, Path, Path, Path, EventBus, threading.Event], dict[str, Any]]


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 3  # runs of one job: the first and the retries after retryable errors
    backoff_s: float = 0.5  # before a retry on the spot: 0.5 s, 1 s, 2 s ... at most max_backoff_s
    max_backoff_s: float = 8.0


RETRY = RetryPolicy()

OUT_OF_MEMORY = "the source needs more memory than this server allows for one job (CLIPORA_WORKER_MEMORY_MB)"


def completed_event(job_id: str, clip_count: int | None) -> JobEvent:
    return JobEvent(job_id, "completed", status="completed", progress=1.0, message=clips_ready(clip_count),
                    extra={"clipCount": clip_count})


def failed_event(job_id: str, error: str) -> JobEvent:
    return JobEvent(job_id, "failed", status="failed", message=error, extra={"error": error})


def run_to_end(job_id: str, attempt: Callable[[], dict[str, Any]], bus: EventBus, *, message: str = "",
               policy: RetryPolicy = RETRY) -> dict[str, Any]:
    """Run a job on the spot (no store): ``attempt`` under the retry policy, with the job's status events."""
    bus.publish(JobEvent(job_id, "status", status=JobStatus.PROCESSING.value, message=message))
    try:
        for tried in Retrying(stop=stop_after_attempt(policy.max_attempts), reraise=True,
                              wait=wait_exponential(multiplier=policy.backoff_s, max=policy.max_backoff_s),
                              retry=retry_if_exception_type(RetryableError)):
            with tried:
                manifest = attempt()
    except ClipporaError as exc:
        bus.publish(failed_event(job_id, exc.message))
        raise
    bus.publish(completed_event(job_id, int(manifest.get("clipCount", 0))))
    return manifest


class Executor(Protocol):
    """What JobService needs of whatever runs its jobs (threads here, worker processes, a cluster)."""

    worker_id: str  # the lease owner of what the gateway itself holds (URL downloads)
    config: ExecutorConfig
    running: bool

    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    def wake(self) -> None: ...
    def cancel(self, job_id: str) -> bool: ...
    @property
    def active_jobs(self) -> int: ...


@dataclass(frozen=True)
class ExecutorConfig:
    concurrency: int = 1
    lease_s: float = 30.0
    heartbeat_s: float = 10.0
    max_attempts: int = RETRY.max_attempts  # runs of one job (first try + retries after crashes/retryable errors)
    progress_write_s: float = 0.5
    poll_s: float = 1.0
    #: PostgreSQL: LISTEN for newly queued jobs (off behind a pooler that cannot LISTEN, e.g. PgBouncer
    #: in transaction mode: dispatchers then find jobs by polling every ``poll_s``)
    listen: bool = True


async def recover(store: JobStore, config: ExecutorConfig, everything: bool) -> None:
    """Put interrupted jobs back in the queue (or fail those out of attempts), once at start."""
    requeued, failed = await store.recover(config.max_attempts, everything=everything)
    if requeued or failed:
        log.warning("recovered interrupted jobs: %d queued again, %d failed", requeued, failed)


async def reap(store: JobStore, config: ExecutorConfig, stopping: Callable[[], bool],
               wake: Callable[[], None]) -> None:
    """A dead worker's leases expire; put its jobs back in the queue, every lease period."""
    while not stopping():
        await asyncio.sleep(config.lease_s)
        try:
            requeued, _ = await store.recover(config.max_attempts)
            if requeued:
                wake()
        except Exception:  # keep reaping; a database blip must not end the loop
            log.exception("lease reaper failed")


class InProcessExecutor:
    def __init__(self, store: JobStore, run: JobFunction, paths: Callable[[JobRecord], tuple[Path, Path, Path]],
                 bus: EventBus, config: ExecutorConfig, embedded: bool = True, recovers: bool = True,
                 available: Callable[[], str | None] | None = None) -> None:
        self.store = store
        self.run = run
        self.paths = paths  # job -> (source, out dir, work dir): a clip re-render's are its parent's
        self.bus = bus
        self.config = config
        self.embedded = embedded
        self.recovers = recovers  # False in a worker process: its gateway recovers and reaps
        # None while jobs can run; else why not (a cluster away): nothing is leased meanwhile
        self.available = available
        self.unavailable: str | None = None
        self.worker_id = f"w-{secrets.token_hex(6)}"
        self._pool = ThreadPoolExecutor(max_workers=config.concurrency, thread_name_prefix="clipora-job")
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._cancels: dict[str, tuple[threading.Event, str]] = {}  # job id -> (flag, reason)
        self._stopping = False
        self.running = False

    async def start(self) -> None:
        if self.recovers:
            await recover(self.store, self.config, self.embedded)
        self._stopping = False
        self._tasks = [asyncio.create_task(self._dispatch(), name=f"dispatch-{i}")
                       for i in range(self.config.concurrency)]
        if self.recovers:
            self._tasks.append(asyncio.create_task(reap(self.store, self.config, lambda: self._stopping, self.wake),
                                                   name="lease-reaper"))
        if self.config.listen and not self.store.db.is_sqlite:  # a job queued by any gateway starts at once
            self._tasks.append(asyncio.create_task(wake_on_notify(self.store, JOBS_CHANNEL, self.wake),
                                                   name="queue-listener"))
        self.running = True

    async def stop(self, grace_s: float = 10.0) -> None:
        """Stop taking work; interrupt running jobs and give them back to the queue."""
        self._stopping = True
        self.running = False
        for flag, _ in list(self._cancels.values()):
            flag.set()
        self._wake.set()
        for task in self._tasks:
            if task.get_name() in ("lease-reaper", "queue-listener"):
                task.cancel()  # they only wait: nothing to finish
        _, pending = await asyncio.wait(self._tasks, timeout=grace_s) if self._tasks else (set(), set())
        for task in pending:
            task.cancel()
        self._pool.shutdown(wait=False, cancel_futures=True)

    def wake(self) -> None:
        self._wake.set()

    def cancel(self, job_id: str) -> bool:
        """Ask a running job to stop (it is being deleted). True if it was running here."""
        entry = self._cancels.get(job_id)
        if entry is None:
            return False
        self._cancels[job_id] = (entry[0], "deleted")
        entry[0].set()
        return True

    @property
    def active_jobs(self) -> int:
        return len(self._cancels)

    async def _dispatch(self) -> None:
        while not self._stopping:
            if self.available is not None:
                why = await asyncio.to_thread(self.available)
                if why != self.unavailable:
                    (log.warning if why else log.info)(why or "jobs can run again")
                    self.unavailable = why
                if why is not None:  # leave the queue alone until it can run what it leases
                    await asyncio.sleep(self.config.poll_s)
                    continue
            try:
                job = await self.store.lease_next(self.worker_id, self.config.lease_s)
            except Exception:
                log.exception("could not lease a job")
                job = None
            if job is None:
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), timeout=self.config.poll_s)
                except TimeoutError:
                    pass
                continue
            try:
                await self._execute(job)
            except Exception:  # the database went away as the job ended: its lease expires, it runs again
                log.exception("could not close a job", extra={"job_id": job.id})

    async def _execute(self, job: JobRecord) -> None:
        loop = asyncio.get_running_loop()
        flag = threading.Event()
        self._cancels[job.id] = (flag, "shutdown")
        job_bus = EventBus()
        last_write = [0.0, ""]
        writes: set[asyncio.Task[Any]] = set()
        records: list[asyncio.Task[Any]] = []  # clip retries: in the row before it is closed

        def forward(event: JobEvent) -> None:  # called in the job thread
            if event.type != "progress":
                return  # terminal events are published below, after the row is closed
            loop.call_soon_threadsafe(self._on_progress, job, event, last_write, writes, records)

        job_bus.subscribe(forward)
        source, out_dir, work_dir = self.paths(job)
        self.bus.publish(JobEvent(job.id, "status", status=JobStatus.PROCESSING.value,
                                  message=f"attempt {job.attempts}"))
        beat = asyncio.create_task(self._heartbeat(job.id))
        try:
            try:
                manifest = await loop.run_in_executor(
                    self._pool, self.run, job, source, out_dir, work_dir, job_bus, flag
                )
            finally:
                await asyncio.gather(*records, return_exceptions=True)
        except JobCancelled:
            reason = self._cancels.get(job.id, (flag, "shutdown"))[1]
            if reason == "shutdown":
                await self._durably(self.store.release, job.id, self.worker_id,
                                    "interrupted by a server shutdown; queued again")
            elif reason == "lost" and await self.store.get(job.parent_id or job.id) is None:
                # deleted while it ran elsewhere than its gateway: what it wrote since goes too (a clip
                # render writes into its job's folder: that goes only with its job)
                await asyncio.to_thread(shutil.rmtree, source.parent, True)
            return
        except RetryableError as exc:
            await self._retry_or_fail(job, exc.message)
            return
        except ClipporaError as exc:
            await self._close(job, JobStatus.FAILED, error=exc.message)
            return
        except MemoryError:  # the worker's memory ceiling (or the machine's): the same source would hit it again
            log.warning("job ran out of memory", extra={"job_id": job.id})
            await self._close(job, JobStatus.FAILED, error=OUT_OF_MEMORY)
            return
        except Exception:
            log.exception("job crashed", extra={"job_id": job.id})
            await self._close(job, JobStatus.FAILED, error="internal error while processing the video")
            return
        finally:
            beat.cancel()
            self._cancels.pop(job.id, None)
            for t in list(writes):
                t.cancel()
        await self._close(job, JobStatus.COMPLETED, clip_count=int(manifest.get("clipCount", 0)))

    def _on_progress(self, job: JobRecord, event: JobEvent, last: list[Any], writes: set[asyncio.Task[Any]],
                     records: list[asyncio.Task[Any]]) -> None:
        self.bus.publish(event)
        if (retry := event.extra.get(CLIP_RETRY)) is not None:  # durable, never throttled
            records.append(asyncio.create_task(self._record_retry(job.id, dict(retry))))
        now = time.monotonic()
        if now - last[0] < self.config.progress_write_s and event.stage == last[1]:
            return
        last[0], last[1] = now, event.stage
        task = asyncio.create_task(self._write_progress(job.id, event))
        writes.add(task)
        task.add_done_callback(writes.discard)

    async def _write_progress(self, job_id: str, event: JobEvent) -> None:
        try:
            await self.store.progress(job_id, self.worker_id, event.stage, event.progress, event.message)
        except Exception as exc:  # the row catches up at the next write; the events still flow
            log.warning("could not record progress: %s", exc, extra={"job_id": job_id})

    async def _record_retry(self, job_id: str, entry: dict[str, Any]) -> None:
        try:
            if not await self._durably(self.store.add_clip_retry, job_id, self.worker_id, entry):
                log.warning("job was no longer ours; its clip retry was not recorded", extra={"job_id": job_id})
        except Exception:  # the store stayed away past a lease: the job runs again anyway
            log.exception("could not record a clip retry", extra={"job_id": job_id})

    async def _heartbeat(self, job_id: str) -> None:
        while True:
            await asyncio.sleep(self.config.heartbeat_s)
            try:
                held = await self.store.heartbeat(job_id, self.worker_id, self.config.lease_s)
            except Exception as exc:  # the database is away (restarting): keep working, try again
                log.warning("could not renew a lease: %s", exc, extra={"job_id": job_id})
                continue
            if not held:
                log.warning("lost the lease of a running job; stopping it", extra={"job_id": job_id})
                entry = self._cancels.get(job_id)
                if entry:
                    self._cancels[job_id] = (entry[0], "lost")
                    entry[0].set()
                return

    async def _durably(self, write: Callable[..., Awaitable[bool]], *args: Any, **kwargs: Any) -> bool:
        """A job's closing write, tried again while the database is away (a restart) for up to a lease.

        Past that the lease has expired anyway: the job is queued again and runs once more.
        """
        async for tried in AsyncRetrying(stop=stop_after_delay(self.config.lease_s), reraise=True,
                                         wait=wait_exponential(multiplier=0.2, max=5.0),
                                         retry=retry_if_exception_type((DBAPIError, OSError)),
                                         before_sleep=lambda state: log.warning(
                                             "the job store is away (%s); trying again",
                                             state.outcome.exception() if state.outcome else "?")):
            with tried:
                return await write(*args, **kwargs)
        raise AssertionError("unreachable")  # pragma: no cover - AsyncRetrying returns or raises

    async def _retry_or_fail(self, job: JobRecord, message: str) -> None:
        if job.attempts < self.config.max_attempts:
            await self._durably(self.store.release, job.id, self.worker_id, f"retrying after: {message}")
            self.bus.publish(JobEvent(job.id, "status", status=JobStatus.QUEUED.value, message=message))
            self.wake()
        else:
            await self._close(job, JobStatus.FAILED, error=message)

    async def _close(self, job: JobRecord, status: JobStatus, *, error: str | None = None,
                     clip_count: int | None = None) -> None:
        if not await self._durably(self.store.finish, job.id, self.worker_id, status, error=error,
                                   clip_count=clip_count):
            log.warning("job was no longer ours when it ended; result dropped", extra={"job_id": job.id})
            return
        if status == JobStatus.COMPLETED:
            self.bus.publish(completed_event(job.id, clip_count))
        else:
            self.bus.publish(failed_event(job.id, error or "failed"))
