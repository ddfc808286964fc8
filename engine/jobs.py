"""The job model: statuses of the API reference and the transitions between them.

queued ──> downloading ──> queued (URL fetched) ──> processing ──> completed
   │            │                                       │  └────> failed
   └────────────┴──> failed                             └──> queued (worker died: leased again)
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

#: every job id: what new_job_id makes, and what a path may name
JOB_ID = re.compile(r"[A-Za-z0-9]{8,40}")


def new_job_id() -> str:
    """Random and unguessable: 128 bits, URL-safe, letters and digits only."""
    return secrets.token_urlsafe(16).replace("-", "x").replace("_", "y")


class JobStatus(StrEnum):
    QUEUED = "queued"
    DOWNLOADING = "downloading"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"


TERMINAL = frozenset({JobStatus.COMPLETED, JobStatus.FAILED})

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
    #: a clip re-render: the job whose clip it renders again, and which clip (1-based); else None
    parent_id: str | None = None
    clip_index: int | None = None
    #: the clip tasks that ran again after they were lost with their node or worker (the Ray executor), in
    #: order, over every attempt: {"clip", "try", "attempt", "node", "reason", "at"} (engine.events.CLIP_RETRY)
    clip_retries: list[dict[str, Any]] = field(default_factory=list)

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    @property
    def is_render(self) -> bool:
        """A re-render of one clip of ``parent_id`` (POST /api/clips/{jobId}/{index}/render)."""
        return self.parent_id is not None


def clips_ready(count: int | None) -> str:
    """The message a completed job carries: "1 clip ready", "3 clips ready"."""
    n = count or 0
    return f"{n} clip{'' if n == 1 else 's'} ready"
