"""JobStore on SQLite (always) and PostgreSQL (where one answers on 127.0.0.1:5432)."""

from __future__ import annotations

import asyncio

from engine.db import Database
from engine.jobs import JobStatus
from engine.store import JobStore, now_ms
from http_gateway.models import User


async def make_user(db: Database, uid: str = "u1") -> str:
    async with db.session() as s, s.begin():
        s.add(User(id=uid, email=f"{uid}@example.com", password_hash="x", plan="free", created_at=now_ms()))
    return uid


async def test_create_get_list_newest_first(db):
    store = JobStore(db)
    owner = await make_user(db)
    await make_user(db, "u2")
    a = await store.create("job000001", owner, "a.mp4", 10, {"numClips": 3})
    await asyncio.sleep(0.002)
    b = await store.create("job000002", owner, "b.mp4", 20, {"numClips": 1})
    await store.create("job000003", "u2", "c.mp4", 30, {})
    assert [j.id for j in await store.list_for(owner)] == [b.id, a.id]
    got = await store.get(a.id)
    assert got is not None and got.status == JobStatus.QUEUED and got.options == {"numClips": 3}
    assert await store.get("nope") is None


async def test_lease_is_exclusive_and_only_the_holder_finishes(db):
    store = JobStore(db)
    owner = await make_user(db)
    await store.create("job000001", owner, "a.mp4", 1, {})
    first, second = await asyncio.gather(store.lease_next("w1", 30), store.lease_next("w2", 30))
    leased = [j for j in (first, second) if j is not None]
    assert len(leased) == 1 and leased[0].status == JobStatus.PROCESSING and leased[0].attempts == 1
    holder = "w1" if first else "w2"
    other = "w2" if first else "w1"
    assert not await store.finish("job000001", other, JobStatus.COMPLETED, clip_count=1)
    assert await store.progress("job000001", holder, "render", 0.5, "half")
    assert await store.finish("job000001", holder, JobStatus.COMPLETED, clip_count=2)
    assert not await store.finish("job000001", holder, JobStatus.COMPLETED, clip_count=2)  # never twice
    done = await store.get("job000001")
    assert done.status == JobStatus.COMPLETED and done.clip_count == 2 and done.progress == 1.0
    assert done.finished_at is not None


async def test_recover_requeues_orphans_and_gives_up_after_max_attempts(db):
    store = JobStore(db)
    owner = await make_user(db)
    await store.create("job000001", owner, "a.mp4", 1, {})
    first = await store.lease_next("dead-worker", 30)
    assert first is not None and first.attempts == 1
    # not expired yet: a cluster reaper leaves it alone; an embedded restart takes it back
    assert await store.recover(max_attempts=3) == (0, 0)
    assert await store.recover(max_attempts=3, everything=True) == (1, 0)
    assert (await store.get("job000001")).status == JobStatus.QUEUED
    for attempt in (2, 3):
        leased = await store.lease_next("dead-worker", 30)
        assert leased is not None and leased.attempts == attempt
        expected = (1, 0) if attempt < 3 else (0, 1)
        assert await store.recover(max_attempts=3, everything=True) == expected
    gone = await store.get("job000001")
    assert gone.status == JobStatus.FAILED and "interrupted 3 times" in gone.error
    assert await store.lease_next("w", 30) is None


async def test_expired_leases_are_recovered(db):
    store = JobStore(db)
    owner = await make_user(db)
    await store.create("job000001", owner, "a.mp4", 1, {})
    await store.lease_next("w1", lease_s=0.01)
    await asyncio.sleep(0.05)
    assert await store.recover(max_attempts=3) == (1, 0)
    assert not await store.heartbeat("job000001", "w1", 30)  # the old holder has lost it


async def test_counts_and_delete(db):
    store = JobStore(db)
    owner = await make_user(db)
    await store.create("job000001", owner, "a.mp4", 1, {})
    await store.create("job000002", owner, "a.mp4", 1, {})
    leased = await store.lease_next("w1", 30)
    assert leased is not None
    await store.finish(leased.id, "w1", JobStatus.FAILED, error="bad input")
    assert await store.counts_by_status() == {"queued": 1, "failed": 1}
    assert await store.count(JobStatus.QUEUED) == 1
    assert (await store.get(leased.id)).error == "bad input"
    assert await store.delete(leased.id) and not await store.delete(leased.id)


async def test_the_queue_takes_turns_between_accounts(db):
    store = JobStore(db)
    busy, quiet = await make_user(db, "busy"), await make_user(db, "quiet")
    for i in range(5):
        await store.create(f"busy{i:04d}", busy, "a.mp4", 1, {})
    await store.create("quiet0001", quiet, "b.mp4", 1, {})  # submitted last
    order = []
    for _ in range(6):
        job = await store.lease_next("w1", 30)
        assert job is not None
        order.append(job.owner_id)
        await store.finish(job.id, "w1", JobStatus.COMPLETED, clip_count=1)
        await asyncio.sleep(0.002)  # distinct start times
    # the first account's first job, then the other account (never served), then the rest
    assert order == ["busy", "quiet", "busy", "busy", "busy", "busy"]
    assert await store.active_for(busy) == 0


async def test_clip_retries_are_recorded_on_the_row_by_its_lease_holder_only(db):
    store = JobStore(db)
    owner = await make_user(db)
    await store.create("job000001", owner, "a.mp4", 1, {})
    assert (await store.get("job000001")).clip_retries == []
    await store.lease_next("w1", 30)
    first = {"clip": 2, "try": 2, "attempt": 1, "node": "n1", "reason": "NodeDiedError", "at": 1}
    assert await store.add_clip_retry("job000001", "w1", first)
    assert await store.add_clip_retry("job000001", "w1", {**first, "clip": 3})
    assert not await store.add_clip_retry("job000001", "w2", {**first, "clip": 1})  # not its lease
    assert await store.finish("job000001", "w1", JobStatus.COMPLETED, clip_count=3)
    assert not await store.add_clip_retry("job000001", "w1", first)  # closed: nothing more
    done = await store.get("job000001")
    assert done.clip_retries == [first, {**first, "clip": 3}] and done.attempts == 1
