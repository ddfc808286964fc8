"""JobService: the engine's public API for the gateway (submit, get, list, cancel, subscribe).

Storage layout under ``data_dir``::

    clipora.db                 the embedded database (SQLite), unless a URL is given
    uploads/                   partial uploads (the gateway streams here, then hands over)
    jobs/<id>/source.<ext>     the job's input
    jobs/<id>/work/            cached analysis (a retried job resumes from it)
    jobs/<id>/out/             the published artifacts: clip_NN.mp4|jpg|ass|srt|vtt, manifest.json

All calls must be made from the event loop that started the service.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.db import Database
from engine.edits import MAX_EDIT_S, MIN_EDIT_S, ClipEdit
from engine.errors import Busy, InvalidOptions, NotFound, PipelineUnavailable, QuotaExceeded
from engine.events import EventBus, JobEvent
from engine.executor import Executor, ExecutorConfig, InProcessExecutor, JobFunction, failed_event
from engine.jobs import JOB_ID, JobRecord, JobStatus, new_job_id
from engine.options import ProcessOptions
from engine.pipeline import cached_result
from engine.store import JobStore
from engine.types import JobPlan

#: the artifacts a client may fetch (a re-rendered clip's earlier versions as clip_NN.vK.*); anything else is 404
ARTIFACT = re.compile(r"^(clip_\d{2}(\.v\d{1,4})?\.(mp4|jpg|ass|srt|vtt)|manifest\.json)$")
#: an editor's word list reaches this far beyond the clip on each side (the trim handles' room)
EDIT_CONTEXT_S = 20.0


class JobFolders:
    """Where a job's files live under ``data_dir`` (the gateway and every worker agree on it)."""

    def __init__(self, data_dir: Path) -> None:
        self.jobs_dir = Path(data_dir) / "jobs"

    def job_dir(self, job_id: str) -> Path:
        if not JOB_ID.fullmatch(job_id):
            raise NotFound("job not found")
        return self.jobs_dir / job_id

    def paths(self, job_id: str) -> tuple[Path, Path, Path]:
        """(source file, output folder, work folder) of a job."""
        d = self.job_dir(job_id)
        sources = sorted(d.glob("source.*"))
        return (sources[0] if sources else d / "source.mp4"), d / "out", d / "work"

    def paths_of(self, job: JobRecord) -> tuple[Path, Path, Path]:
        """What the job runs on: its own paths, or for a clip re-render its parent's (the source, the
        published clips it replaces, the cached analysis it reuses)."""
        return self.paths(job.parent_id if job.parent_id else job.id)


class JobService:
    """``run``: jobs run in threads of this process; ``executor(store, bus)``: whatever runs them instead."""

    def __init__(self, db: Database, data_dir: Path, run: JobFunction | None = None, *,
                 executor: Callable[[JobStore, EventBus], Executor] | None = None, concurrency: int = 1,
                 queue_bound: int = 100, max_jobs_per_user: int = 0,
                 executor_config: ExecutorConfig | None = None) -> None:
        self.db = db
        self.data_dir = Path(data_dir)
        self.folders = JobFolders(self.data_dir)
        self.jobs_dir = self.folders.jobs_dir
        self.uploads_dir = self.data_dir / "uploads"
        self.store = JobStore(db)
        self.bus = EventBus()
        self.queue_bound = queue_bound
        self.max_jobs_per_user = max_jobs_per_user  # 0: no per-account cap
        self.executor: Executor
        if executor is not None:
            self.executor = executor(self.store, self.bus)
        elif run is not None:
            config = executor_config or ExecutorConfig(concurrency=concurrency)
            self.executor = InProcessExecutor(self.store, run, self.folders.paths_of, self.bus, config,
                                              embedded=db.is_sqlite)
        else:
            raise ValueError("JobService needs a job function or an executor")

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        self.jobs_dir.mkdir(parents=True, exist_ok=True)
        self.uploads_dir.mkdir(parents=True, exist_ok=True)
        for stale in self.uploads_dir.iterdir():  # partial uploads of a previous run
            stale.unlink(missing_ok=True) if stale.is_file() else shutil.rmtree(stale, ignore_errors=True)
        await self.db.migrate()
        await self.executor.start()

    async def stop(self) -> None:
        await self.executor.stop()

    @property
    def ready(self) -> bool:
        return self.executor.running

    async def store_answers(self, timeout_s: float = 2.0) -> str | None:
        """None when the job store answers a query within ``timeout_s``; else why not (for /readyz)."""
        try:
            await asyncio.wait_for(self.db.ping(), timeout_s)
        except TimeoutError:
            return f"the job store did not answer within {timeout_s:g} s"
        except Exception as exc:  # the database is away (restarting, unreachable)
            return f"the job store does not answer: {type(exc).__name__}"
        return None

    # -- paths ------------------------------------------------------------------------------

    def job_dir(self, job_id: str) -> Path:
        return self.folders.job_dir(job_id)

    def paths(self, job_id: str) -> tuple[Path, Path, Path]:
        return self.folders.paths(job_id)

    def artifact(self, job_id: str, filename: str) -> Path:
        """Path of a published artifact, or NotFound (only the spec's names; no traversal)."""
        if not ARTIFACT.fullmatch(filename):
            raise NotFound("file not found")
        path = self.job_dir(job_id) / "out" / filename
        if not path.is_file():
            raise NotFound("file not found")
        return path

    # -- jobs ---------------------------------------------------------------------------------

    async def submit(self, owner_id: str, source: Path, original_name: str, size_bytes: int,
                     options: ProcessOptions, container_ext: str = "mp4") -> JobRecord:
        """Adopt an uploaded file (moved, not copied) as a new queued job."""
        await self.check_capacity(owner_id)
        job_id = new_job_id()
        d = self.job_dir(job_id)
        d.mkdir(parents=True)
        os.replace(source, d / f"source.{container_ext}")
        try:
            job = await self.store.create(job_id, owner_id, original_name, size_bytes, options.to_json())
        except BaseException:
            shutil.rmtree(d, ignore_errors=True)
            raise
        self.bus.publish(JobEvent(job.id, "status", status=JobStatus.QUEUED.value, message="queued"))
        self.executor.wake()
        return job

    # -- downloads: a job whose source arrives by URL (the gateway fetches; the engine keeps the row) --

    async def create_download(self, owner_id: str, source_url: str, original_name: str,
                              options: ProcessOptions) -> JobRecord:
        """A new job in ``downloading``, leased by this process until the file is handed over."""
        await self.check_capacity(owner_id)
        job = await self.store.create(new_job_id(), owner_id, original_name, 0, options.to_json(),
                                      status=JobStatus.DOWNLOADING, source_url=source_url,
                                      lease_owner=self.executor.worker_id, lease_s=self.executor.config.lease_s)
        self.bus.publish(JobEvent(job.id, "status", status=JobStatus.DOWNLOADING.value, stage="download",
                                  message="downloading"))
        return job

    async def download_progress(self, job_id: str, done: int, total: int | None, *, write: bool) -> bool:
        """Publish a download's progress (bytes, fraction); ``write`` also renews the lease in the row.

        False when the job is no longer ours to download (deleted, or failed by a recovery).
        """
        fraction = min(1.0, done / total) if total else 0.0
        message = f"downloaded {done} of {total} bytes" if total else f"downloaded {done} bytes"
        self.bus.publish(JobEvent(job_id, "progress", stage="download", progress=fraction, message=message,
                                  extra={"bytes": done, "totalBytes": total}))
        if not write:
            return True
        return await self.store.download_heartbeat(job_id, self.executor.worker_id, self.executor.config.lease_s,
                                                   fraction, message)

    async def finish_download(self, job_id: str, source: Path, original_name: str, size_bytes: int,
                              container_ext: str = "mp4") -> bool:
        """Adopt the downloaded file (moved) and queue the job; False (file removed) if it is gone."""
        d = self.job_dir(job_id)
        d.mkdir(parents=True, exist_ok=True)
        final = d / f"source.{container_ext}"
        os.replace(source, final)
        if not await self.store.finish_download(job_id, self.executor.worker_id, original_name, size_bytes):
            shutil.rmtree(d, ignore_errors=True)
            return False
        self.bus.publish(JobEvent(job_id, "status", status=JobStatus.QUEUED.value, message="downloaded; queued"))
        self.executor.wake()
        return True

    async def fail_download(self, job_id: str, error: str) -> None:
        if await self.store.fail_download(job_id, self.executor.worker_id, error):
            self.bus.publish(failed_event(job_id, error))

    async def check_capacity(self, owner_id: str | None = None) -> None:
        """Unless a new job can be taken: PipelineUnavailable (the queue: queued + downloading, all
        accounts) or QuotaExceeded (this account's jobs in flight, ``max_jobs_per_user``)."""
        if not self.executor.running:
            raise PipelineUnavailable("the processing pipeline is not running")
        # a download becomes a queued job when it arrives: it counts against the bound already
        waiting = await self.store.count(JobStatus.QUEUED) + await self.store.count(JobStatus.DOWNLOADING)
        if waiting >= self.queue_bound:
            raise PipelineUnavailable("the processing queue is full; try again later")
        if owner_id is not None and self.max_jobs_per_user > 0 \
                and await self.store.active_for(owner_id) >= self.max_jobs_per_user:
            raise QuotaExceeded(f"you have {self.max_jobs_per_user} jobs queued or running, the most an account "
                                "may; submit more when one ends")

    # -- clip re-renders ---------------------------------------------------------------------

    async def edit_context(self, job: JobRecord, index: int) -> dict[str, Any]:
        """What an editor of clip ``index`` of a completed job needs: the clip as published (window,
        version, accumulated edit), the options it renders with, the transcript's words around it (with
        their indices, the ones edits name) and its renders. NotFound while the clip does not exist."""
        clip, manifest = await self._published_clip(job, index)
        plan = await asyncio.to_thread(self._plan_of, job.id)
        edit = ClipEdit.from_json(clip.get("edit") or {})
        options = edit.options(ProcessOptions.from_json(plan.options))
        fixes = edit.corrections()
        lo, hi = float(clip["start"]) - EDIT_CONTEXT_S, float(clip["end"]) + EDIT_CONTEXT_S
        words = [{"index": i, "start": round(w.start, 3), "end": round(w.end, 3), "text": fixes.get(i, w.text),
                  **({"heard": w.text} if i in fixes else {})}
                 for i, w in enumerate(plan.transcript.words) if w.end > lo and w.start < hi]
        renders = [r for r in await self.store.renders_of(job.id, index)]
        return {
            "jobId": job.id, "index": index, "version": int(clip.get("version", 1)),
            "start": clip["start"], "end": clip["end"], "duration": clip.get("duration"),
            "sourceDuration": manifest.get("duration"), "span": [round(plan.span[0], 3), round(plan.span[1], 3)],
            "edit": edit.to_json(),
            "options": {k: v for k, v in options.to_json().items()
                        if k in ("captionPreset", "captionEmphasis", "captionEmoji", "aspectRatio", "layout",
                                 "removeSilence", "removeFillers", "silenceThreshold")},
            "limits": {"minSeconds": MIN_EDIT_S, "maxSeconds": MAX_EDIT_S},
            "words": words,
            "renders": [{"id": r.id, "status": r.status.value, "progress": round(r.progress, 4),
                         "message": r.message, "error": r.error, "createdAt": r.created_at} for r in renders],
        }

    async def submit_render(self, job: JobRecord, index: int, edit: ClipEdit) -> JobRecord:
        """Queue a re-render of clip ``index`` of a completed job with ``edit`` merged over the clip's
        current edit. NotFound (no such clip, job not completed), Busy (a render of the clip is queued
        or running), InvalidOptions (a word or window the job does not have), or the capacity errors."""
        clip, _ = await self._published_clip(job, index)
        if any(not r.terminal for r in await self.store.renders_of(job.id, index)):
            raise Busy(f"clip {index} is being rendered already; wait for that render to end")
        current = ClipEdit.from_json(clip.get("edit") or {})
        merged = edit.over(current)
        if merged.to_json() == current.to_json():
            raise InvalidOptions("the edit changes nothing: give a new start or end, corrected words, or another "
                                 "captionPreset, captionEmphasis, captionEmoji, aspectRatio, layout, "
                                 "removeSilence, silenceThreshold or removeFillers", field="edit")
        plan = await asyncio.to_thread(self._plan_of, job.id)
        n = len(plan.transcript.words)
        bad = [w.index for w in edit.words if w.index >= n]
        if bad:
            raise InvalidOptions(f"invalid edit 'words': word {bad[0]} does not exist (the transcript has {n} "
                                 "words)", field="words")
        start = merged.start if merged.start is not None else float(clip["start"])
        end = merged.end if merged.end is not None else float(clip["end"])
        lo, hi = plan.span
        if start >= hi or end <= lo or start >= end:
            raise InvalidOptions(f"invalid edit: the window {start:g}-{end:g} s is outside the video's "
                                 f"{lo:g}-{hi:g} s (or ends before it starts)", field="start")
        await self.check_capacity(job.owner_id)
        render = await self.store.create(new_job_id(), job.owner_id, f"{job.original_name} · clip {index}", 0,
                                         {"edit": merged.to_json()}, parent_id=job.id, clip_index=index)
        self.bus.publish(JobEvent(render.id, "status", status=JobStatus.QUEUED.value, message="queued"))
        self.executor.wake()
        return render

    async def _published_clip(self, job: JobRecord, index: int) -> tuple[dict[str, Any], dict[str, Any]]:
        if job.is_render:
            raise NotFound("a clip render has no clips of its own; edit its job's clip")
        manifest = await self.manifest(job.id)
        if manifest is None:
            raise NotFound(f"clips are not ready (status: {job.status.value})")
        clip = next((c for c in manifest.get("clips", []) if c.get("index") == index), None)
        if clip is None:
            raise NotFound(f"the job has no clip {index} (it has {manifest.get('clipCount', 0)})")
        return clip, manifest

    def _plan_of(self, job_id: str) -> JobPlan:
        _, _, work = self.paths(job_id)
        try:
            plan = cached_result(work, "plan")
        except (OSError, ValueError, KeyError):
            plan = None
        if not isinstance(plan, JobPlan):
            raise NotFound("this job's analysis is no longer kept, so its clips cannot be edited")
        return plan

    async def get(self, job_id: str) -> JobRecord | None:
        return await self.store.get(job_id)

    async def list_for(self, owner_id: str) -> list[JobRecord]:
        return await self.store.list_for(owner_id)

    async def delete(self, job_id: str) -> None:
        """Cancel the job (and its clip renders) if it runs, then remove its row and every file.

        A clip render's files are its job's: deleting a render cancels it and removes only its row."""
        job = await self.store.get(job_id)
        for render in await self.store.renders_of(job_id):
            self.executor.cancel(render.id)
        self.executor.cancel(job_id)
        await self.store.delete(job_id)
        if job is None or not job.is_render:
            await asyncio.to_thread(shutil.rmtree, self.job_dir(job_id), True)

    async def manifest(self, job_id: str) -> dict[str, Any] | None:
        """A completed job's manifest (None while not completed, and for a clip render: its clip is in its
        job's manifest)."""
        job = await self.store.get(job_id)
        if job is None or job.status != JobStatus.COMPLETED or job.is_render:
            return None
        path = self.job_dir(job_id) / "out" / "manifest.json"
        text = await asyncio.to_thread(path.read_text, encoding="utf-8")
        return json.loads(text)

    def subscribe(self, job_id: str, callback: Callable[[JobEvent], None]) -> Callable[[], None]:
        """Events of one job, delivered on the event loop thread."""
        return self.bus.subscribe(callback, job_id)

    async def stats(self) -> dict[str, Any]:
        return {"jobs": await self.store.counts_by_status(), "running": self.executor.active_jobs}
