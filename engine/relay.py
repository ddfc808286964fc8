"""Job events across processes, through the job store (no shared memory).

A worker process runs jobs and publishes their events on its own EventBus; ``EventSender``
appends them to the store's ``job_events`` table in small batches (progress coalesced to the
newest per job and stage; status changes and the end of a job always, in order).
``EventReceiver`` in each gateway reads the table from where it joined and publishes every
event on the gateway's bus, so WebSocket clients and metrics see jobs that run elsewhere.
Old rows are pruned once every gateway has had time to read them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading

from engine.events import EventBus, JobEvent
from engine.store import JobStore

log = logging.getLogger("clipora.relay")


class EventSender:
    """This process's job events -> the store (flushed every ``interval`` seconds)."""

    def __init__(self, store: JobStore, bus: EventBus, interval: float = 0.2) -> None:
        self.store = store
        self.interval = interval
        self._pending: list[JobEvent] = []
        self._lock = threading.Lock()
        self._task: asyncio.Task[None] | None = None
        self._unsubscribe = bus.subscribe(self._on_event)

    def _on_event(self, event: JobEvent) -> None:  # any thread
        with self._lock:
            last = self._pending[-1] if self._pending else None
            # a progress event replaces the previous one of the same job and stage: subscribers
            # only need the newest fraction, and the table stays small
            if (event.type == "progress" and last is not None and last.type == "progress"
                    and last.job_id == event.job_id and last.stage == event.stage):
                self._pending[-1] = event
            else:
                self._pending.append(event)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="event-sender")

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            await self.flush()

    async def flush(self) -> None:
        with self._lock:
            batch, self._pending = self._pending, []
        if not batch:
            return
        try:
            await self.store.add_events([(e.job_id, e.to_record()) for e in batch])
        except Exception:  # the database is away for a moment: keep the events for the next flush
            log.exception("could not hand %d job events over", len(batch))
            with self._lock:
                self._pending[:0] = batch

    async def stop(self) -> None:
        self._unsubscribe()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.flush()


class EventReceiver:
    """The store's job events -> this gateway's bus (polled every ``interval`` seconds)."""

    def __init__(self, store: JobStore, bus: EventBus, interval: float = 0.1, idle_interval: float = 0.5,
                 keep_s: float = 600.0) -> None:
        self.store = store
        self.bus = bus
        self.interval = interval  # while events flow
        self.idle_interval = idle_interval  # after a few empty polls: an idle gateway reads less
        self.keep_ms = int(keep_s * 1000)
        self._last = 0
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._last = await self.store.last_event_id()  # what happened before this gateway started is in the rows
        self._task = asyncio.create_task(self._loop(), name="event-receiver")

    async def _loop(self) -> None:
        polls = empty = 0
        while True:
            try:
                rows = await self.store.events_after(self._last)
                for event_id, job_id, record in rows:
                    self._last = event_id
                    self.bus.publish(JobEvent.from_record(job_id, record))
                polls += 1
                if polls % 600 == 0:
                    await self.store.prune_events(self.keep_ms)
            except Exception:  # keep relaying; a database blip must not end the loop
                log.exception("could not read job events")
                rows = []
            empty = 0 if rows else empty + 1
            if not rows:
                await asyncio.sleep(self.interval if empty < 20 else self.idle_interval)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
