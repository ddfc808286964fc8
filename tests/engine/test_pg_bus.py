"""PostgreSQL as queue and event bus (cluster issue, item 1): migrations under an advisory lock,
LISTEN/NOTIFY wake-ups for events and for the queue, events committed out of id order, and a
listener whose connection is cut.

Every test runs in a private schema of the shared ``test`` database (the ``pg_schema`` fixture of
tests/conftest.py), with several ``Database`` objects on it standing for several gateways (each its
own connection pool, as separate processes would have). Channels are scoped to the schema, so
parallel tests never hear each other.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from sqlalchemy import text

from engine.events import EventBus, JobEvent
from engine.executor import ExecutorConfig, InProcessExecutor
from engine.jobs import JobStatus
from engine.relay import EventReceiver
from engine.store import EventRow, JobStore, now_ms
from tests.engine.test_store import make_user

pytestmark = pytest.mark.cluster


async def _until(check: Callable[[], bool], timeout_s: float) -> float:
    """Seconds until ``check()`` holds; fails after ``timeout_s``."""
    t0 = time.monotonic()
    while not check():
        if time.monotonic() - t0 > timeout_s:
            raise AssertionError(f"not within {timeout_s} s")
        await asyncio.sleep(0.01)
    return time.monotonic() - t0


@pytest.fixture
async def receive(pg_schema) -> AsyncIterator[Callable[..., Awaitable[tuple[EventReceiver, list[JobEvent]]]]]:
    """``await receive(store, **kwargs)``: an EventReceiver (``kwargs`` its settings) started on
    ``store`` with a bus of its own, and the list of the events it publishes; already listening
    unless ``listen=False``. Stopped at the end of the test, before ``pg_schema`` closes the
    databases (hence the dependency)."""
    started: list[EventReceiver] = []

    async def start(store: JobStore, *, listen: bool = True, **kwargs: float) -> tuple[EventReceiver, list[JobEvent]]:
        bus = EventBus()
        heard: list[JobEvent] = []
        bus.subscribe(heard.append)
        receiver = EventReceiver(store, bus, **kwargs)
        await receiver.start()
        started.append(receiver)
        if listen:
            await _until(lambda: receiver.listening, 5.0)
        return receiver, heard

    try:
        yield start
    finally:
        for receiver in started:
            await receiver.stop()


def messages(events: list[JobEvent]) -> list[str]:
    return [e.message for e in events]


async def test_gateways_starting_together_migrate_once(pg_schema):
    import alembic.command  # noqa: F401  (imported up front: the migrations start together)

    gateways = [pg_schema() for _ in range(6)]
    for g in gateways:  # each holds a connection already, as a gateway that just started does
        await g.channel("warm")
    await asyncio.gather(*(g.migrate() for g in gateways))  # without the lock: duplicate CREATE TABLE
    async with gateways[0].engine.connect() as conn:
        versions = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalars().all()
    assert len(versions) == 1
    await gateways[1].migrate()  # and again, later: nothing to do
    assert await JobStore(gateways[2]).counts_by_status() == {}


async def test_a_gateway_hears_events_another_one_wrote_at_once(pg_schema, receive):
    a, b = pg_schema(), pg_schema()
    await a.migrate()
    # the safety read is far off: only a notification can deliver within the test's bound
    _, heard = await receive(JobStore(a), safety_s=60.0)
    writer = JobStore(b)
    for i in range(3):
        progress = JobEvent("job1", "progress", stage="render", progress=i / 3)
        await writer.add_events([("job1", progress.to_record())])
    took = await _until(lambda: len(heard) == 3, 20.0)
    assert took < 10.0, took  # far inside the 60 s safety read, with room for a loaded CI machine
    assert [e.progress for e in heard] == [0.0, 1 / 3, 2 / 3]
    assert {e.job_id for e in heard} == {"job1"}


async def test_an_event_committed_after_a_later_id_is_not_lost(pg_schema, receive):
    """Two writers: the first takes id n and commits after the second has committed n + 1."""
    a, b = pg_schema(), pg_schema()
    await a.migrate()
    receiver, heard = await receive(JobStore(a), safety_s=60.0, hole_s=30.0)
    async with b.session() as slow, slow.begin():
        slow.add(EventRow(job_id="j", event=JobEvent("j", "status", message="first").to_record(),
                          created_at=now_ms()))
        await slow.flush()  # id n taken, not committed
        await JobStore(a).add_events([("j", JobEvent("j", "status", message="second").to_record())])
        await _until(lambda: messages(heard) == ["second"], 5.0)
        await b.notify(slow, "events")
    await _until(lambda: messages(heard) == ["second", "first"], 5.0)
    await receiver.read()  # read again: nothing is published twice
    assert messages(heard) == ["second", "first"]


async def test_a_hole_that_never_fills_is_passed_after_a_while(pg_schema, receive):
    a = pg_schema()
    await a.migrate()
    receiver, heard = await receive(JobStore(a), listen=False, safety_s=0.2, hole_s=0.5)
    async with a.session() as rolled_back:
        rolled_back.add(EventRow(job_id="j", event={"type": "status"}, created_at=now_ms()))
        await rolled_back.flush()
        await rolled_back.rollback()  # id n is gone for good
    await JobStore(a).add_events([("j", JobEvent("j", "status", message="after").to_record())])
    await _until(lambda: messages(heard) == ["after"], 5.0)
    await _until(lambda: not receiver._seen, 5.0)  # the mark moved past the hole
    await JobStore(a).add_events([("j", JobEvent("j", "status", message="next").to_record())])
    await _until(lambda: messages(heard) == ["after", "next"], 5.0)


async def test_a_listener_whose_connection_is_cut_listens_again_and_misses_nothing(pg_schema, receive):
    a, b = pg_schema(), pg_schema()
    await a.migrate()
    receiver, heard = await receive(JobStore(a), safety_s=60.0)
    channel = await a.channel("events")
    async with b.engine.begin() as conn:  # what a server restart does to that connection
        cut = await conn.scalar(text(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE query LIKE :listen"),
            {"listen": f'LISTEN "{channel}"%'})
    assert cut >= 1
    await JobStore(b).add_events([("j", JobEvent("j", "status", message="while away").to_record())])
    await _until(lambda: messages(heard) == ["while away"], 10.0)
    await _until(lambda: receiver.listening, 10.0)
    await JobStore(b).add_events([("j", JobEvent("j", "status", message="back").to_record())])
    took = await _until(lambda: messages(heard) == ["while away", "back"], 20.0)
    assert took < 10.0  # far inside the 60 s safety read: it is listening again


async def test_a_job_queued_by_another_gateway_starts_at_once(pg_schema, tmp_path):
    a, b = pg_schema(), pg_schema()
    await a.migrate()
    started: list[float] = []

    def run(job, source, out_dir, work_dir, bus, flag):
        started.append(time.monotonic())
        return {"clipCount": 0}

    # the dispatcher polls only every 30 s: a start within the bound is the notification's doing
    config = ExecutorConfig(poll_s=30.0, lease_s=30.0)
    executor = InProcessExecutor(JobStore(a), run, lambda job: (tmp_path, tmp_path, tmp_path), EventBus(), config,
                                 embedded=False)
    await executor.start()
    try:
        await asyncio.sleep(0.5)  # the dispatcher found the queue empty and waits
        queued_at = time.monotonic()
        await make_user(b)
        await JobStore(b).create("job1", "u1", "a.mp4", 1, {})
        await _until(lambda: bool(started), 20.0)
        assert started[0] - queued_at < 10.0  # far inside the 30 s poll: a loaded CI machine is no flake
        store = JobStore(b)
        for _ in range(200):
            job = await store.get("job1")
            if job is not None and job.status == JobStatus.COMPLETED:
                break
            await asyncio.sleep(0.05)
        assert job is not None and job.status == JobStatus.COMPLETED
    finally:
        await executor.stop()
