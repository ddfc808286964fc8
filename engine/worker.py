"""A worker: the stages of one process, set up once and shared by every job it runs.

``Worker.run`` is one attempt at one job (progress events only). The worker sets each stage up
before its first use (``warm`` does all of them at start, as a server's worker does) and tears
them down in ``close``. How many clip units of a job run at once comes from the resources the
clip steps' stages declare and the cores this worker may use.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any

from engine.backends import select_backend
from engine.config import Settings
from engine.events import EventBus
from engine.graph import JobGraph, JobInput
from engine.heap import limit_malloc_arenas
from engine.pipeline import Pipeline
from engine.stage import Stage, StageContext

log = logging.getLogger("clipora.worker")

class Worker:
    """``graph`` runs jobs; ``edit_graph`` (the same stages) re-renders one clip of a finished job."""

    def __init__(self, graph: JobGraph, settings: Settings, edit_graph: JobGraph | None = None) -> None:
        limit_malloc_arenas(settings.malloc_arenas)  # the process runs jobs: before its stages' threads allocate
        self.graph = graph
        self.edit_graph = edit_graph
        self.settings = settings
        self._ready: set[int] = set()
        self._lock = threading.Lock()

    @property
    def units_at_once(self) -> int:
        """Clip units of one job that fit this worker's cores at once (their declared resources)."""
        return self.graph.clip_resources().fits(self.settings.cpu_threads)

    def stages(self) -> list[Stage[Any, Any]]:
        """Each distinct stage of both graphs once."""
        seen = {id(s): s for s in self.graph.stages()}
        for s in self.edit_graph.stages() if self.edit_graph else ():
            seen.setdefault(id(s), s)
        return list(seen.values())

    def ready(self, stage: Stage[Any, Any], ctx: StageContext) -> None:
        """Set ``stage`` up unless this worker already did (once per worker, whatever the job)."""
        with self._lock:
            if id(stage) in self._ready:
                return
            stage.setup(ctx)
            self._ready.add(id(stage))

    def warm(self) -> None:
        """Set every stage up now (a serving worker loads its models before the first job)."""
        ctx = StageContext("", Path(tempfile.gettempdir()), self.settings, select_backend(self.settings.backend))
        for stage in self.stages():
            self.ready(stage, ctx.for_stage(stage.name))

    def close(self) -> None:
        """Tear down what was set up (the worker is stopping)."""
        with self._lock:
            for stage in self.stages():
                if id(stage) in self._ready:
                    try:
                        stage.teardown()
                    except Exception:  # one stage's teardown must not keep the others loaded
                        log.exception("teardown of %s failed", stage.name)
            self._ready.clear()

    def run(self, job: JobInput, out_dir: Path, bus: EventBus, *, workdir: Path | None = None,
            cancel: threading.Event | None = None) -> dict[str, Any]:
        """One attempt at ``job``: publishes progress on ``bus``, returns the manifest or raises.

        ``workdir`` holds the job's cached analysis and unfinished clips (a later attempt with the
        same workdir resumes from it); when omitted a temporary one is used and removed.
        """
        own = workdir is None
        work = Path(tempfile.mkdtemp(prefix=f"clipora-{job.job_id}-")) if workdir is None else Path(workdir)
        work.mkdir(parents=True, exist_ok=True)
        try:
            ctx = StageContext(job.job_id, work, self.settings, select_backend(self.settings.backend),
                               cancel_event=cancel or threading.Event())
            pipeline = Pipeline(self.graph, ctx, bus, self.ready, units_at_once=self.units_at_once)
            return pipeline.run(job, out_dir)
        finally:
            if own:
                shutil.rmtree(work, ignore_errors=True)

    def run_phase(self, job: JobInput, phase: str, out_dir: Path, bus: EventBus, *, workdir: Path,
                  index: int = 0, cancel: threading.Event | None = None) -> Any:
        """One phase of ``job`` in its (shared) ``workdir``: ``analysis`` -> the clip indices of its plan,
        ``unit`` -> clip ``index``'s ClipResult, ``finalize`` -> the manifest (published into ``out_dir``).

        What a cluster executor runs as separate tasks (engine.ray_executor); each phase reads what the
        one before cached in ``workdir``.
        """
        ctx = StageContext(job.job_id, Path(workdir), self.settings, select_backend(self.settings.backend),
                           cancel_event=cancel or threading.Event())
        pipeline = Pipeline(self.graph, ctx, bus, self.ready, units_at_once=1)
        if phase == "analysis":
            return [c.index for c in pipeline.analyse(job).job_plan.clips]
        if phase == "unit":
            return pipeline.run_unit(job, index)
        if phase == "finalize":
            return pipeline.finalize(job, out_dir)
        raise ValueError(f"no such phase: {phase!r}")

    def run_edit(self, job: JobInput, results: dict[str, Any], out_dir: Path, bus: EventBus, *, workdir: Path,
                 cancel: threading.Event | None = None) -> dict[str, Any]:
        """One attempt at re-rendering clip ``job.clip`` of the finished job whose cached analysis is in
        ``workdir`` and whose clips are published in ``out_dir`` (engine.pipeline.Pipeline.run_edit)."""
        if self.edit_graph is None:
            raise RuntimeError("this worker was built without an edit graph")
        ctx = StageContext(job.job_id, Path(workdir), self.settings, select_backend(self.settings.backend),
                           cancel_event=cancel or threading.Event())
        pipeline = Pipeline(self.edit_graph, ctx, bus, self.ready, units_at_once=1)
        return pipeline.run_edit(job, results, out_dir)
