"""The job model: statuses of the API reference and the transitions between them.

queued ──> downloading ──> queued (URL fetched) ──> processing ──> completed
   │            │                                       │  └────> failed
   └────────────┴──> failed                             └──> queued (worker died: leased again)
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class JobStatus(StrEnum):
    QUEUED = "queued"
    DOWNLOADING = "downloading"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"


TERMINAL = frozenset({JobStatus.COMPLETED, JobStatus.FAILED})

TRANSITIONS: dict[JobStatus, frozenset[JobStatus]] = {
    JobStatus.QUEUED: frozenset({JobStatus.DOWNLOADING, JobStatus.PROCESSING, JobStatus.FAILED}),
    JobStatus.DOWNLOADING: frozenset({JobStatus.QUEUED, JobStatus.PROCESSING, JobStatus.FAILED}),
    JobStatus.PROCESSING: frozenset({JobStatus.QUEUED, JobStatus.COMPLETED, JobStatus.FAILED}),
    JobStatus.COMPLETED: frozenset(),
    JobStatus.FAILED: frozenset(),
}


def can_move(src: JobStatus | str, dst: JobStatus | str) -> bool:
    return JobStatus(dst) in TRANSITIONS[JobStatus(src)]


@dataclass(frozen=True)
class JobRecord:
    id: str
    owner_id: str
    status: JobStatus
    stage: str
    progress: float
    message: str
    error: str | None
    original_name: str
    size_bytes: int
    options: dict[str, Any]
    source_url: str | None
    clip_count: int | None
    attempts: int
    created_at: int  # ms since the epoch
    updated_at: int
    started_at: int | None
    finished_at: int | None

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    def to_api(self, url_prefix: str = "/api/clips") -> dict[str, Any]:
        """The job as GET /api/jobs and GET /api/jobs/{id} show it."""
        poster = (
            f"{url_prefix}/{self.id}/clip_01.jpg"
            if self.status == JobStatus.COMPLETED and self.clip_count
            else None
        )
        return {
            "id": self.id,
            "originalName": self.original_name,
            "status": self.status.value,
            "stage": self.stage,
            "progress": round(self.progress, 4),
            "message": self.message,
            "error": self.error,
            "sizeBytes": self.size_bytes,
            "sourceUrl": self.source_url,
            "options": self.options,
            "clipCount": self.clip_count or 0,
            "posterUrl": poster,
            "attempts": self.attempts,
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
            "startedAt": self.started_at,
            "finishedAt": self.finished_at,
        }


def clips_ready(count: int | None) -> str:
    """The message a completed job carries: "1 clip ready", "3 clips ready"."""
    n = count or 0
    return f"{n} clip{'' if n == 1 else 's'} ready"
