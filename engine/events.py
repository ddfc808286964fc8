"""Job events: one stream per job of progress, status, completion and failure.

The CLI renders them as progress bars; the gateway forwards them to ``/ws?jobId=``.
Subscribers are called in the publishing thread and must not block (the gateway hands
them to its event loop with ``call_soon_threadsafe``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

EventType = Literal["progress", "status", "completed", "failed"]

#: the ``extra`` key of a progress event that says a clip task ran again (lost with its node or worker):
#: its value, ``{"clip", "try", "attempt", "node", "reason", "at"}``, is what the executor appends to the
#: job row's durable record (``clip_retries``; the job JSON's ``clipRetries``)
CLIP_RETRY = "clipRetry"


@dataclass(frozen=True)
class JobEvent:
    job_id: str
    type: EventType
    stage: str = ""
    progress: float = 0.0  # whole-job fraction 0.0-1.0
    message: str = ""
    status: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    ts: float = field(default_factory=time.time)
    stage_progress: float = 0.0  # progress events: the stage's own fraction 0.0-1.0

    def to_record(self) -> dict[str, Any]:
        """Every field as plain JSON (events crossing a process boundary, engine.relay)."""
        return {"type": self.type, "stage": self.stage, "progress": self.progress, "message": self.message,
                "status": self.status, "extra": self.extra, "ts": self.ts, "stage_progress": self.stage_progress}

    @classmethod
    def from_record(cls, job_id: str, record: dict[str, Any]) -> JobEvent:
        return cls(job_id, record["type"], record.get("stage", ""), float(record.get("progress", 0.0)),
                   record.get("message", ""), record.get("status", ""), dict(record.get("extra") or {}),
                   float(record.get("ts") or time.time()), float(record.get("stage_progress", 0.0)))


Subscriber = Callable[[JobEvent], None]


class EventBus:
    """Thread-safe publish/subscribe keyed by job id (``None`` = every job)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subs: dict[str | None, list[Subscriber]] = {}

    def subscribe(self, callback: Subscriber, job_id: str | None = None) -> Callable[[], None]:
        with self._lock:
            self._subs.setdefault(job_id, []).append(callback)

        def unsubscribe() -> None:
            with self._lock:
                subs = self._subs.get(job_id, [])
                if callback in subs:
                    subs.remove(callback)

        return unsubscribe

    def publish(self, event: JobEvent) -> None:
        with self._lock:
            targets = list(self._subs.get(event.job_id, ())) + list(self._subs.get(None, ()))
        for callback in targets:
            callback(event)
