"""Job events across processes, through the job store (no shared memory).

A worker process runs jobs and publishes their events on its own EventBus; ``EventSender``
appends them to the store's ``job_events`` table in small batches (progress coalesced to the
newest per job and stage; status changes and the end of a job always, in order).
``EventReceiver`` in each gateway reads the table from where it joined and publishes every
event on the gateway's bus, so WebSocket clients and metrics see jobs that run elsewhere (on
PostgreSQL: in another gateway's workers, on another machine), woken by LISTEN/NOTIFY there.
Old rows are pruned once every gateway has had time to read them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable

from engine.db import LISTEN_LOST
from engine.events import EventBus, JobEvent
from engine.store import EVENTS_CHANNEL, JobStore

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
    """The store's job events -> this gateway's bus.

    On SQLite it polls the table every ``interval`` seconds while events flow (``idle_interval``
    once it has been quiet). On PostgreSQL it LISTENs on the events channel and reads the table
    when a notification arrives, and every ``safety_s`` regardless (a notification lost with a
    connection); when the connection goes (a server restart) it reconnects with a growing pause
    and reads everything since the last event it saw.

    Ids come from a sequence, and with several writers a transaction may commit a lower id after
    a higher one is already visible. So the reader keeps a low-water mark (every id at or below
    it has been published or given up on) and the ids above it that it has published: a hole is
    waited for ``hole_s`` seconds (an id whose transaction rolled back never appears), and no
    event is published twice.
    """

    def __init__(self, store: JobStore, bus: EventBus, interval: float = 0.1, idle_interval: float = 0.5,
                 keep_s: float = 600.0, safety_s: float = 5.0, hole_s: float = 5.0) -> None:
        self.store = store
        self.bus = bus
        self.interval = interval  # while events flow
        self.idle_interval = idle_interval  # after a few empty polls: an idle gateway reads less
        self.keep_ms = int(keep_s * 1000)
        self.safety_s = safety_s
        self.hole_s = hole_s
        self._last = 0  # low-water mark: every id <= this one is settled
        self._seen: set[int] = set()  # ids above the mark already published
        self._hole: tuple[int, float] | None = None  # the lowest missing id, and since when
        self._reads = 0
        self._task: asyncio.Task[None] | None = None
        self.listening = False  # PostgreSQL: a LISTEN connection is up

    async def start(self) -> None:
        self._last = await self.store.last_event_id()  # what happened before this gateway started is in the rows
        loop = self._poll_loop if self.store.db.is_sqlite else self._listen_loop
        self._task = asyncio.create_task(loop(), name="event-receiver")

    async def read(self) -> int:
        """Publish the events not yet published; returns how many."""
        rows = await self.store.events_after(self._last)
        published = 0
        for event_id, job_id, record in rows:
            if event_id in self._seen:
                continue
            self._seen.add(event_id)
            self.bus.publish(JobEvent.from_record(job_id, record))
            published += 1
        self._settle()
        self._reads += 1
        if self._reads % 600 == 0:
            await self.store.prune_events(self.keep_ms)
        return published

    def _settle(self) -> None:
        while self._last + 1 in self._seen:
            self._last += 1
            self._seen.discard(self._last)
        if not self._seen:
            self._hole = None
            return
        now = time.monotonic()
        if self._hole is None or self._hole[0] != self._last + 1:  # a new lowest missing id: its own wait
            self._hole = (self._last + 1, now)
        elif now - self._hole[1] >= self.hole_s:  # that id is not coming: move past it (to the next one)
            self._last = min(self._seen) - 1
            self._hole = None
            self._settle()

    async def _poll_loop(self) -> None:
        empty = 0
        while True:
            try:
                published = await self.read()
            except Exception:  # keep relaying; a database blip must not end the loop
                log.exception("could not read job events")
                published = 0
            empty = 0 if published else empty + 1
            if not published:
                await asyncio.sleep(self.interval if empty < 20 else self.idle_interval)

    async def _listen_loop(self) -> None:
        pause = 0.2
        while True:
            try:
                async with self.store.db.listen(EVENTS_CHANNEL) as heard:
                    self.listening = True
                    pause = 0.2
                    await self.read()  # whatever came while we were not listening
                    while True:
                        try:
                            note = await asyncio.wait_for(heard.get(), timeout=self.safety_s)
                        except TimeoutError:
                            note = None
                        if note is LISTEN_LOST:
                            break
                        while not heard.empty():  # a burst of notifications: one read serves them all
                            if heard.get_nowait() is LISTEN_LOST:
                                raise ConnectionError("the LISTEN connection ended")
                        await self.read()
                        if self._seen:  # a hole: read again soon, the missing id may still commit
                            await asyncio.sleep(self.interval)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the server restarted, or is away: listen again
                log.warning("job events: %s; listening again in %.1f s", exc or type(exc).__name__, pause)
            self.listening = False
            await asyncio.sleep(pause)
            pause = min(pause * 2, 5.0)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


async def wake_on_notify(store: JobStore, name: str, wake: Callable[[], None]) -> None:
    """Call ``wake`` whenever ``name`` is notified (PostgreSQL), listening again after a lost connection.

    A dispatcher polls the queue every ``poll_s`` anyway; this only makes a job that another
    gateway queued start at once. It also wakes once after every (re)connection: what was queued
    while the link was down is leased then.
    """
    pause = 0.2
    while True:
        try:
            async with store.db.listen(name) as heard:
                pause = 0.2
                wake()
                while (note := await heard.get()) is not LISTEN_LOST:
                    del note
                    wake()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("%s notifications: %s; listening again in %.1f s", name, exc or type(exc).__name__, pause)
        await asyncio.sleep(pause)
        pause = min(pause * 2, 5.0)
