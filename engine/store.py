"""JobStore: jobs as rows. Leases make every job run to completion exactly once.

A worker *leases* a queued job (status -> processing, lease owner + expiry, attempts + 1)
and keeps the lease alive with heartbeats. Only the lease holder can write progress or
finish the job, so a job whose worker died (lease expired, or on restart of the
embedded server) is queued again and can never be completed twice. On PostgreSQL the
lease query uses ``FOR UPDATE SKIP LOCKED`` so many dispatchers can share one queue, and a
transaction that makes a job leasable (a new job, a download handed over, a job released or
recovered) NOTIFYs ``jobs``, one that appends events NOTIFYs ``events`` (engine.db), so
dispatchers and gateways on other machines wake at once instead of at their next poll.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Float, Integer, String, Text, delete, func, select, update
from sqlalchemy.orm import Mapped, aliased, mapped_column

from engine.db import Base, Database
from engine.jobs import JobRecord, JobStatus, clips_ready

#: notification channels (engine.db.Database.channel scopes them to the schema)
JOBS_CHANNEL = "jobs"
EVENTS_CHANNEL = "events"


def _rows(result: Any) -> int:
    """Rows an UPDATE/DELETE matched (CursorResult.rowcount; typed loosely by SQLAlchemy)."""
    return int(result.rowcount)


def now_ms() -> int:
    return int(time.time() * 1000)


class JobRow(Base):
    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    owner_id: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))
    stage: Mapped[str] = mapped_column(String(32), default="")
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    message: Mapped[str] = mapped_column(Text, default="")
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    original_name: Mapped[str] = mapped_column(String(255))
    size_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    options: Mapped[dict[str, Any]] = mapped_column(JSON)
    source_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    clip_count: Mapped[int | None] = mapped_column(Integer, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_owner: Mapped[str | None] = mapped_column(String(64), nullable=True)
    lease_expires_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[int] = mapped_column(BigInteger)
    started_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    finished_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    parent_id: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    clip_index: Mapped[int | None] = mapped_column(Integer, nullable=True)
    clip_retries: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON, nullable=True)

    def record(self) -> JobRecord:
        return JobRecord(
            id=self.id, owner_id=self.owner_id, status=JobStatus(self.status), stage=self.stage,
            progress=self.progress, message=self.message, error=self.error,
            original_name=self.original_name, size_bytes=self.size_bytes, options=dict(self.options),
            source_url=self.source_url, clip_count=self.clip_count, attempts=self.attempts,
            created_at=self.created_at, updated_at=self.updated_at, started_at=self.started_at,
            finished_at=self.finished_at, parent_id=self.parent_id, clip_index=self.clip_index,
            clip_retries=list(self.clip_retries or []),
        )


class EventRow(Base):
    """One job event on its way from a worker process to the gateways (engine.relay)."""

    __tablename__ = "job_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(String(32))
    event: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[int] = mapped_column(BigInteger)


class JobStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(self, job_id: str, owner_id: str, original_name: str, size_bytes: int,
                     options: dict[str, Any], status: JobStatus = JobStatus.QUEUED,
                     source_url: str | None = None, lease_owner: str | None = None,
                     lease_s: float | None = None, parent_id: str | None = None,
                     clip_index: int | None = None) -> JobRecord:
        t = now_ms()
        row = JobRow(id=job_id, owner_id=owner_id, status=status.value, stage="", progress=0.0, message="",
                     original_name=original_name, size_bytes=size_bytes, options=options,
                     source_url=source_url, attempts=0, cancel_requested=False, created_at=t, updated_at=t,
                     lease_owner=lease_owner, parent_id=parent_id, clip_index=clip_index,
                     lease_expires_at=t + int(lease_s * 1000) if lease_owner and lease_s else None)
        async with self.db.session() as s, s.begin():
            s.add(row)
            if status == JobStatus.QUEUED:
                await self.db.notify(s, JOBS_CHANNEL)
        return row.record()

    async def get(self, job_id: str) -> JobRecord | None:
        async with self.db.session() as s:
            row = await s.get(JobRow, job_id)
            return row.record() if row else None

    async def list_for(self, owner_id: str, limit: int = 200) -> list[JobRecord]:
        """An account's jobs made from videos, newest first (clip re-renders are listed by their parent)."""
        async with self.db.session() as s:
            rows = await s.scalars(
                select(JobRow).where(JobRow.owner_id == owner_id, JobRow.parent_id.is_(None))
                .order_by(JobRow.created_at.desc(), JobRow.id.desc()).limit(limit)
            )
            return [r.record() for r in rows]

    async def renders_of(self, parent_id: str, clip_index: int | None = None) -> list[JobRecord]:
        """The re-renders of a job's clips (or of one clip), oldest first."""
        where = [JobRow.parent_id == parent_id]
        if clip_index is not None:
            where.append(JobRow.clip_index == clip_index)
        async with self.db.session() as s:
            rows = await s.scalars(select(JobRow).where(*where).order_by(JobRow.created_at, JobRow.id))
            return [r.record() for r in rows]

    async def count(self, status: JobStatus) -> int:
        async with self.db.session() as s:
            return int(await s.scalar(select(func.count()).select_from(JobRow).where(JobRow.status == status.value))
                       or 0)

    async def active_for(self, owner_id: str) -> int:
        """An account's jobs not yet ended: downloading, queued or processing."""
        async with self.db.session() as s:
            return int(await s.scalar(select(func.count()).select_from(JobRow).where(
                JobRow.owner_id == owner_id,
                JobRow.status.in_([JobStatus.DOWNLOADING.value, JobStatus.QUEUED.value,
                                   JobStatus.PROCESSING.value]))) or 0)

    async def counts_by_status(self) -> dict[str, int]:
        async with self.db.session() as s:
            rows = await s.execute(select(JobRow.status, func.count()).group_by(JobRow.status))
            return {status: int(n) for status, n in rows}

    async def lease_next(self, worker: str, lease_s: float) -> JobRecord | None:
        """Take a queued job for ``worker``, or None when the queue is empty.

        Fair between accounts: the next job is the oldest queued job of the account served least
        recently (whose latest start is oldest, or that never had one), so one account's 30 jobs
        take turns with everyone else's instead of going first.
        """
        mine = aliased(JobRow)
        last_start = (select(func.max(mine.started_at)).where(mine.owner_id == JobRow.owner_id)
                      .correlate(JobRow).scalar_subquery())
        async with self.db.session() as s, s.begin():
            pick = (
                select(JobRow.id).where(JobRow.status == JobStatus.QUEUED.value)
                .order_by(last_start.asc().nulls_first(), JobRow.created_at, JobRow.id).limit(1)
                .with_for_update(skip_locked=True, of=JobRow)
            )
            job_id = await s.scalar(pick)
            if job_id is None:
                return None
            t = now_ms()
            result = await s.execute(
                update(JobRow)
                .where(JobRow.id == job_id, JobRow.status == JobStatus.QUEUED.value)
                .values(status=JobStatus.PROCESSING.value, lease_owner=worker,
                        lease_expires_at=t + int(lease_s * 1000), attempts=JobRow.attempts + 1,
                        started_at=func.coalesce(JobRow.started_at, t), updated_at=t, error=None)
            )
            if _rows(result) != 1:  # another dispatcher took it between select and update
                return None
            row = await s.get(JobRow, job_id)
            await s.refresh(row)
            return row.record() if row else None

    async def heartbeat(self, job_id: str, worker: str, lease_s: float) -> bool:
        return await self._owned_update(job_id, worker, lease_expires_at=now_ms() + int(lease_s * 1000))

    async def progress(self, job_id: str, worker: str, stage: str, progress: float, message: str) -> bool:
        return await self._owned_update(job_id, worker, stage=stage, progress=progress, message=message[:500])

    async def finish(self, job_id: str, worker: str, status: JobStatus, *, error: str | None = None,
                     clip_count: int | None = None) -> bool:
        """Close a leased job; False when this worker no longer holds it (it ran elsewhere)."""
        values: dict[str, Any] = dict(status=status.value, error=error, lease_owner=None, lease_expires_at=None,
                                      finished_at=now_ms())
        if status == JobStatus.COMPLETED:
            values.update(progress=1.0, clip_count=clip_count, stage="done", message=clips_ready(clip_count))
        else:
            values.update(message=error or status.value)
        return await self._owned_update(job_id, worker, **values)

    async def add_clip_retry(self, job_id: str, worker: str, entry: dict[str, Any]) -> bool:
        """Append to the job's record of clip tasks run again; False when this worker no longer holds it."""
        async with self.db.session() as s, s.begin():
            row = await s.scalar(select(JobRow).where(
                JobRow.id == job_id, JobRow.lease_owner == worker, JobRow.status == JobStatus.PROCESSING.value)
                .with_for_update())
            if row is None:
                return False
            row.clip_retries = [*(row.clip_retries or []), entry]  # a new list: the JSON column is written
            row.updated_at = now_ms()
            return True

    async def release(self, job_id: str, worker: str, message: str) -> bool:
        """Give a leased job back to the queue (shutdown, retryable failure)."""
        return await self._owned_update(job_id, worker, status=JobStatus.QUEUED.value, lease_owner=None,
                                        lease_expires_at=None, message=message)

    async def _owned_update(self, job_id: str, worker: str, **values: Any) -> bool:
        return await self._leased_update(job_id, worker, JobStatus.PROCESSING, **values)

    async def _leased_update(self, job_id: str, worker: str, holding: JobStatus, **values: Any) -> bool:
        """Update a row only while ``worker`` holds its lease in status ``holding``; False otherwise."""
        values["updated_at"] = now_ms()
        async with self.db.session() as s, s.begin():
            result = await s.execute(
                update(JobRow)
                .where(JobRow.id == job_id, JobRow.lease_owner == worker, JobRow.status == holding.value)
                .values(**values)
            )
            done = _rows(result) == 1
            if done and values.get("status") == JobStatus.QUEUED.value:
                await self.db.notify(s, JOBS_CHANNEL)
            return done

    # -- downloads (POST /api/upload/url): the fetching gateway holds a lease on the downloading row --

    async def download_heartbeat(self, job_id: str, worker: str, lease_s: float, progress: float,
                                 message: str) -> bool:
        """Renew a download's lease and record its progress; False when the row is gone or not ours."""
        return await self._download_update(job_id, worker, lease_expires_at=now_ms() + int(lease_s * 1000),
                                           stage="download", progress=progress, message=message[:500])

    async def finish_download(self, job_id: str, worker: str, original_name: str, size_bytes: int) -> bool:
        """downloading -> queued: the file is in place; the job now runs as an upload."""
        return await self._download_update(job_id, worker, status=JobStatus.QUEUED.value, lease_owner=None,
                                           lease_expires_at=None, stage="", progress=0.0, message="downloaded",
                                           original_name=original_name[:255], size_bytes=size_bytes)

    async def fail_download(self, job_id: str, worker: str, error: str) -> bool:
        return await self._download_update(job_id, worker, status=JobStatus.FAILED.value, lease_owner=None,
                                           lease_expires_at=None, error=error, message=error[:500],
                                           finished_at=now_ms())

    async def _download_update(self, job_id: str, worker: str, **values: Any) -> bool:
        return await self._leased_update(job_id, worker, JobStatus.DOWNLOADING, **values)

    async def recover(self, max_attempts: int, everything: bool = False) -> tuple[int, int]:
        """Re-queue jobs whose worker is gone; fail those that used up their attempts.

        ``everything``: the caller is the only worker (embedded), so every processing
        job was orphaned by a previous run of this process. Returns (requeued, failed).
        """
        t = now_ms()
        orphaned = JobRow.status == JobStatus.PROCESSING.value
        if not everything:
            orphaned = orphaned & (JobRow.lease_expires_at < t)
        async with self.db.session() as s, s.begin():
            failed = await s.execute(
                update(JobRow).where(orphaned, JobRow.attempts >= max_attempts).values(
                    status=JobStatus.FAILED.value, lease_owner=None, lease_expires_at=None, finished_at=t,
                    updated_at=t, error=f"the job was interrupted {max_attempts} times and was given up",
                )
            )
            requeued = await s.execute(
                update(JobRow).where(orphaned, JobRow.attempts < max_attempts).values(
                    status=JobStatus.QUEUED.value, lease_owner=None, lease_expires_at=None, updated_at=t,
                    message="resumed after an interruption",
                )
            )
            # a download whose gateway is gone cannot resume here: the partial file went with it
            downloading = JobRow.status == JobStatus.DOWNLOADING.value
            if not everything:
                downloading = downloading & ((JobRow.lease_expires_at < t) | JobRow.lease_expires_at.is_(None))
            if _rows(requeued):
                await self.db.notify(s, JOBS_CHANNEL)
            lost = await s.execute(
                update(JobRow).where(downloading).values(
                    status=JobStatus.FAILED.value, lease_owner=None, lease_expires_at=None, finished_at=t,
                    updated_at=t, error="the server stopped while the video was downloading; submit the URL again",
                )
            )
            return _rows(requeued), _rows(failed) + _rows(lost)

    async def delete(self, job_id: str) -> bool:
        """Remove a job's row and its clip re-renders' rows."""
        async with self.db.session() as s, s.begin():
            await s.execute(delete(JobRow).where(JobRow.parent_id == job_id))
            result = await s.execute(delete(JobRow).where(JobRow.id == job_id))
            return _rows(result) == 1

    # -- events between processes (engine.relay) ------------------------------------------------

    async def add_events(self, events: list[tuple[str, dict[str, Any]]]) -> None:
        """Append (job id, event) pairs, in order."""
        if not events:
            return
        t = now_ms()
        async with self.db.session() as s, s.begin():
            s.add_all([EventRow(job_id=job_id, event=event, created_at=t) for job_id, event in events])
            await self.db.notify(s, EVENTS_CHANNEL)

    async def events_after(self, last_id: int, limit: int = 500) -> list[tuple[int, str, dict[str, Any]]]:
        """Events with an id above ``last_id``, oldest first: (id, job id, event)."""
        async with self.db.session() as s:
            rows = await s.execute(select(EventRow.id, EventRow.job_id, EventRow.event)
                                   .where(EventRow.id > last_id).order_by(EventRow.id).limit(limit))
            return [(int(i), str(j), dict(e)) for i, j, e in rows]

    async def last_event_id(self) -> int:
        async with self.db.session() as s:
            return int(await s.scalar(select(func.max(EventRow.id))) or 0)

    async def prune_events(self, older_than_ms: int) -> int:
        """Drop events older than that (every gateway has read them by then)."""
        async with self.db.session() as s, s.begin():
            result = await s.execute(delete(EventRow).where(EventRow.created_at < now_ms() - older_than_ms))
            return _rows(result)
