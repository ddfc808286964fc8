"""The engine's values as the API shows them (JSON shapes of the API reference), in one place."""

from __future__ import annotations

from typing import Any

from engine.events import JobEvent
from engine.jobs import JobRecord, JobStatus


def job_json(job: JobRecord, url_prefix: str = "/api/clips") -> dict[str, Any]:
    """The job as GET /api/jobs and GET /api/jobs/{id} show it."""
    poster = (f"{url_prefix}/{job.id}/clip_01.jpg" if job.status == JobStatus.COMPLETED and job.clip_count
              and not job.is_render else None)
    return {
        "id": job.id,
        "originalName": job.original_name,
        "status": job.status.value,
        "stage": job.stage,
        "progress": round(job.progress, 4),
        "message": job.message,
        "error": job.error,
        "sizeBytes": job.size_bytes,
        "sourceUrl": job.source_url,
        "options": job.options,
        "clipCount": job.clip_count or 0,
        "posterUrl": poster,
        "attempts": job.attempts,
        # clip tasks run again after their node or worker was lost (Ray): {clip, try, attempt, node, reason, at}
        "clipRetries": [dict(r) for r in job.clip_retries],
        "createdAt": job.created_at,
        "updatedAt": job.updated_at,
        "startedAt": job.started_at,
        "finishedAt": job.finished_at,
        **({"kind": "render", "parentJobId": job.parent_id, "clipIndex": job.clip_index} if job.is_render else {}),
    }


def event_json(event: JobEvent) -> dict[str, Any]:
    """A job event as the WebSocket sends it."""
    out: dict[str, Any] = {"type": event.type, "jobId": event.job_id}
    if event.type == "progress":
        out.update(stage=event.stage, progress=round(event.progress, 4), stageProgress=round(event.stage_progress, 4),
                   message=event.message)
    elif event.type == "status":
        out.update(status=event.status, stage=event.stage, message=event.message)
    else:
        out.update(status=event.status, message=event.message)
    out.update(event.extra)
    return out
