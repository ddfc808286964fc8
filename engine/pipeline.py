"""Running a job graph (engine.graph) for one job: cache, progress, units, publishing.

``Pipeline.run`` takes a job through its three phases:

- the analysis steps run as their needs allow (``Step.needs``): one after the other by default,
  a step that needs only earlier results beside the steps still running;
- each step's result is cached as JSON under the job's workdir, keyed by the step's name and a
  fingerprint of its request (``analysis/<step>.json``, ``clips/NN/<step>.json``), so a retried
  job reuses every finished step whose inputs are the same, and a changed input is recomputed;
- a finished clip unit is cached too (``clips/NN/result.json``, valid while its files are there);
- progress events carry the stage's own fraction and the job's, placed by the graph's weights;
- clip units run ``units_at_once`` at a time (what the machine fits of the units' declared
  resources), each writing only into its own folder;
- finalize runs last, then the clips' files and the manifest are published into the output
  folder by atomic rename, manifest last: a reader sees all of a job or none of it.

The pipeline publishes progress only; the executor that runs it owns the job's status events,
and the retry policy (a failed attempt is retried as a whole job, resuming from this cache).
Stages are set up by the worker (``ready``) before their first use, never here or in ``process``.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, as_completed, wait
from dataclasses import replace
from pathlib import Path
from typing import Any

from engine.config import Settings
from engine.events import EventBus, JobEvent
from engine.graph import JobGraph, JobInput, Scope, Step, step_needs
from engine.heap import release_free_heap
from engine.stage import Stage, StageContext
from engine.storage import atomic_path, write_json_atomic
from engine.types import ClipPlan, ClipResult, JobPlan, from_jsonable, to_jsonable

log = logging.getLogger("clipora.pipeline")

ANALYSIS_DIR = "analysis"
CLIPS_DIR = "clips"
FINAL_DIR = "final"


class ProgressPlan:
    """Maps (phase, part, fraction) to a whole-job fraction with fixed phase weights.

    ``parts`` splits a phase evenly (e.g. one part per clip), so a 3-clip render moves
    the bar by a third of the render weight per clip.
    """

    def __init__(self, weights: Sequence[tuple[str, float]]) -> None:
        total = sum(w for _, w in weights) or 1.0
        self._start: dict[str, float] = {}
        self._weight: dict[str, float] = {}
        acc = 0.0
        for name, w in weights:
            self._start[name] = acc / total
            self._weight[name] = w / total
            acc += w

    def overall(self, phase: str, fraction: float, part: int = 0, parts: int = 1) -> float:
        if phase not in self._start:
            return 0.0
        share = self._weight[phase] / max(parts, 1)
        return min(1.0, self._start[phase] + share * (part + min(max(fraction, 0.0), 1.0)))


def fingerprint(request: Any) -> str:
    """A stable digest of a step's request (the cache is valid only for the same request)."""
    text = json.dumps(to_jsonable(request), sort_keys=True, default=repr, allow_nan=True)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class StepCache:
    """Step results as JSON files in one folder, each valid for one request fingerprint."""

    def __init__(self, folder: Path, job_id: str) -> None:
        self.folder = folder
        self.job_id = job_id

    def path(self, name: str) -> Path:
        return self.folder / f"{name}.json"

    def load(self, name: str, key: str) -> Any:
        path = self.path(name)
        if not path.is_file():
            return None
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(doc, dict) or doc.get("key") != key:
                return None
            value = from_jsonable(doc["value"])
        except (ValueError, KeyError, TypeError):
            log.warning("ignoring unreadable cache %s", path.name, extra={"job_id": self.job_id})
            return None
        return tuple(value) if isinstance(value, list) else value

    def save(self, name: str, key: str, value: Any) -> None:
        write_json_atomic(self.path(name), {"key": key, "value": to_jsonable(value)})


def cached_result(workdir: Path, step: str, clip: int | None = None) -> Any:
    """A cached step result of a job (tests and tools; ``clip`` is the 1-based clip index)."""
    folder = Path(workdir) / (ANALYSIS_DIR if clip is None else f"{CLIPS_DIR}/{clip:02d}")
    doc = json.loads((folder / f"{step}.json").read_text(encoding="utf-8"))
    return from_jsonable(doc["value"])


def publish(src: Path, dst: Path) -> None:
    """Move a finished file into place atomically (copy + rename when they are on two filesystems)."""
    try:
        os.replace(src, dst)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        with atomic_path(dst) as tmp:
            shutil.copyfile(src, tmp)
        src.unlink()


class Pipeline:
    """Runs one job's graph. ``ready(stage, ctx)`` sets a stage up once per worker before its first use."""

    def __init__(self, graph: JobGraph, ctx: StageContext, bus: EventBus,
                 ready: Callable[[Stage[Any, Any], StageContext], None], *, units_at_once: int = 1,
                 min_event_interval: float = 0.1) -> None:
        self.graph = graph
        self.ctx = ctx
        self.bus = bus
        self.ready = ready
        self.units_at_once = max(1, units_at_once)
        # units side by side share the cores: each unit's stages get their share of the threads
        cores = ctx.settings.cpu_threads
        self.unit_settings = (replace(ctx.settings, threads=max(1, cores // self.units_at_once))
                              if self.units_at_once > 1 else ctx.settings)
        self._stop_units = threading.Event()
        self.plan = ProgressPlan(graph.progress_weights())
        self._clip_weights = _cumulative([s.weight for s in graph.clip])
        self._min_interval = min_event_interval
        self._last_emit = 0.0
        self._last_overall = 0.0
        self._parts: dict[str, dict[int, float]] = {}  # phase -> part -> its own fraction (parts > 1)
        self._lock = threading.Lock()
        self.workdir = Path(ctx.workdir)

    # -- progress -------------------------------------------------------------------------------

    def emit(self, stage: str, fraction: float, message: str, *, phase: str, part: int = 0, parts: int = 1,
             within: tuple[float, float] = (0.0, 1.0), force: bool = False) -> None:
        """A progress event: ``fraction`` is the stage's own; the job's comes from the plan."""
        fraction = min(max(fraction, 0.0), 1.0)
        lo, hi = within
        now = time.monotonic()
        with self._lock:
            if parts > 1:  # units run side by side where the cores allow: the phase is the sum of its parts
                done = self._parts.setdefault(phase, {})
                done[part] = max(done.get(part, 0.0), lo + (hi - lo) * fraction)
                at = self.plan.overall(phase, sum(done.values()) / parts)
            else:
                at = self.plan.overall(phase, lo + (hi - lo) * fraction, part, parts)
            overall = max(self._last_overall, at)
            # progress never goes backwards, and is rate-limited so a fast stage does not flood
            # subscribers; stage starts and ends always pass
            if not force and now - self._last_emit < self._min_interval and fraction < 1.0:
                return
            self._last_emit, self._last_overall = now, overall
        self.bus.publish(JobEvent(self.ctx.job_id, "progress", stage, overall, message, stage_progress=fraction))

    # -- steps ----------------------------------------------------------------------------------

    def _step(self, step: Step, scope: Scope, cache: StepCache | None, *, phase: str, part: int = 0,
              parts: int = 1, within: tuple[float, float] = (0.0, 1.0), settings: Settings | None = None) -> Any:
        self.ctx.check_cancelled()
        request = step.request(scope)
        key = fingerprint((self.graph.version, request)) if cache is not None and step.cache else ""
        where: dict[str, Any] = {"phase": phase, "part": part, "parts": parts, "within": within}
        if key:
            assert cache is not None
            hit = cache.load(step.name, key)
            if hit is not None:
                if step.report:
                    self.emit(step.name, 1.0, "reused from an earlier attempt", force=True, **where)
                return hit
        ctx = self.ctx.for_stage(step.name, scope.workdir, settings)
        if step.report:
            ctx.report = lambda _s, f, m: self.emit(step.name, f, m, **where)
            self.emit(step.name, 0.0, "started", force=True, **where)
        else:
            ctx.report = lambda _s, f, m: None
        self.ready(step.stage, ctx)
        result = step.stage.process(request, ctx)
        release_free_heap()  # what the stage freed goes back to the kernel, not to the next stage's peak
        if step.report:  # every step ends at 1.0, whatever its stage reported last
            self.emit(step.name, 1.0, "done", force=True, **where)
        if key:
            assert cache is not None
            cache.save(step.name, key, result)
        return result

    def _analysis(self, steps: Sequence[Step], scope: Scope, cache: StepCache) -> None:
        """Run the analysis steps into ``scope.results``, each once the steps it needs are done.

        Steps whose needs are met at the same time run side by side, each in a thread of its own (a
        stage's native work lets go of the GIL); a phase whose every step needs the one before runs
        them in order on this thread. When a step fails no other one starts; the running ones finish,
        then the first failure is raised. A step's request sees only the results of the steps it
        needs (and what the scope held before the phase), so a missing need fails every time, not
        only when the timing hides it.
        """
        needs = step_needs(steps, scope.options)
        names = {s.name for s in steps}

        def run(step: Step) -> Any:
            seen = {k: v for k, v in scope.results.items() if k not in names or k in needs[step.name]}
            return self._step(step, replace(scope, results=seen), cache, phase=step.name)

        if all(needs[s.name] == tuple(p.name for p in steps[:i]) for i, s in enumerate(steps)):
            for step in steps:  # one after the other: no thread to hop to
                scope.results[step.name] = run(step)
            return
        pending = list(steps)
        done: set[str] = set()
        running: dict[Future[Any], Step] = {}
        failure: BaseException | None = None
        with ThreadPoolExecutor(max_workers=len(steps), thread_name_prefix="clipora-step") as pool:
            while running or (pending and failure is None):
                if failure is None:
                    for step in [s for s in pending if set(needs[s.name]) <= done]:
                        pending.remove(step)
                        running[pool.submit(run, step)] = step
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    step = running.pop(future)
                    if future.exception() is not None:
                        failure = failure or future.exception()
                        continue
                    scope.results[step.name] = future.result()
                    done.add(step.name)
        if failure is not None:
            raise failure

    # -- the phases -------------------------------------------------------------------------------

    def run(self, job: JobInput, out_dir: Path) -> dict[str, Any]:
        """Run every phase and publish into ``out_dir``; returns the manifest."""
        scope = self.analyse(job)
        return self._finalize(scope, self._clips(scope, scope.job_plan), out_dir)

    # The phases one at a time, for an executor that runs them on different machines (engine.ray_executor):
    # each starts from the job's workdir on shared storage, where the phase before left its cached results.

    def analyse(self, job: JobInput, *, report: bool = True) -> Scope:
        """The analysis phase (each step a cache hit where an earlier run did it); the scope holds the plan.

        ``report=False``: no progress events (a clip or finalize task replaying the cached analysis).
        """
        analysis = self.workdir / ANALYSIS_DIR
        scope = Scope(job, analysis)
        cache = StepCache(analysis, job.job_id)
        steps = self.graph.analysis if report else [replace(s, report=False) for s in self.graph.analysis]
        self._analysis(steps, scope, cache)
        plan = scope.results[self.graph.analysis[-1].name]
        if not isinstance(plan, JobPlan):
            raise TypeError(f"the analysis phase must end in a JobPlan, not {type(plan).__name__}")
        scope.plan = plan
        return scope

    def run_unit(self, job: JobInput, index: int) -> ClipResult:
        """Clip ``index`` (1-based, as in the plan) of an analysed job: its unit alone, cached in its folder."""
        scope = self.analyse(job, report=False)
        clips = scope.job_plan.clips
        part = next((i for i, c in enumerate(clips) if c.index == index), None)
        if part is None:
            raise LookupError(f"the job's plan has no clip {index}")
        return self._unit(scope, clips[part], part, len(clips))

    def finalize(self, job: JobInput, out_dir: Path) -> dict[str, Any]:
        """Finalize an analysed job whose clip units ran (each a cache hit; a missing one runs here)."""
        scope = self.analyse(job, report=False)
        return self._finalize(scope, self._clips(scope, scope.job_plan), out_dir)

    def _finalize(self, scope: Scope, units: tuple[ClipResult, ...], out_dir: Path) -> dict[str, Any]:
        final = Scope(scope.job, self.workdir / FINAL_DIR, scope.results, scope.job_plan, units=units)
        final.workdir.mkdir(parents=True, exist_ok=True)
        manifest: dict[str, Any] = self._step(self.graph.finalize, final, None, phase=self.graph.finalize.name)
        self._publish(scope.job_plan, units, final.workdir, out_dir)
        return manifest

    def run_edit(self, job: JobInput, results: dict[str, Any], out_dir: Path) -> dict[str, Any]:
        """Re-render one clip of a finished job (``job.clip``, ``job.edit``) and publish it as a new version.

        ``results`` are the finished job's cached analysis results the graph's analysis steps read (the
        edit graph's analysis plans the one edited clip from them); its clip unit runs in that clip's own
        folder, so every step whose request did not change (faces, reframe) is reused from its cache.
        Finalize makes the clip's manifest entry; :func:`publish_version` puts the files in place (the
        current ones kept as ``clip_NN.vK.*``) and the entry into the manifest. Returns the entry.
        """
        if job.clip is None:
            raise ValueError("a re-render names its clip")
        analysis = self.workdir / ANALYSIS_DIR
        scope = Scope(job, analysis, dict(results))
        cache = StepCache(analysis, job.job_id)
        self._analysis(self.graph.analysis, scope, cache)
        plan = scope.results[self.graph.analysis[-1].name]
        if not isinstance(plan, JobPlan) or len(plan.clips) != 1 or plan.clips[0].index != job.clip:
            raise TypeError("an edit graph's analysis must end in a JobPlan of the one clip it renders")
        scope.plan = plan
        (unit,) = self._clips(scope, plan)
        with edit_lock(self.workdir):  # one publisher at a time: renders of other clips edit the same manifest
            version = current_version(out_dir, job.clip) + 1
            final = Scope(job, self.workdir / EDITS_DIR / job.job_id, scope.results, plan, units=(unit,),
                          version=version)
            final.workdir.mkdir(parents=True, exist_ok=True)
            entry: dict[str, Any] = self._step(self.graph.finalize, final, None, phase=self.graph.finalize.name)
            folder = self.workdir / CLIPS_DIR / f"{unit.index:02d}"
            manifest = publish_version(folder, unit, entry, version, out_dir)
            with contextlib.suppress(FileNotFoundError):
                (folder / "result.json").unlink()
        shutil.rmtree(final.workdir, ignore_errors=True)
        return {"clipCount": 1, "clip": entry, "version": version, "manifestClipCount": manifest.get("clipCount")}

    def _clips(self, scope: Scope, plan: JobPlan) -> tuple[ClipResult, ...]:
        n = len(plan.clips)
        if n == 0:
            return ()
        if self.units_at_once == 1 or n == 1:
            return tuple(self._unit(scope, c, i, n) for i, c in enumerate(plan.clips))
        with ThreadPoolExecutor(max_workers=min(self.units_at_once, n), thread_name_prefix="clipora-clip") as pool:
            futures = [pool.submit(self._unit, scope, c, i, n) for i, c in enumerate(plan.clips)]
            for f in as_completed(futures):
                if f.exception() is not None:
                    self._stop_units.set()  # one unit failed: the others stop at their next step
                    break
        errors = [e for f in futures if (e := f.exception()) is not None]
        if errors:  # the unit's own error, not the stops it caused in the others
            raise next((e for e in errors if not isinstance(e, _UnitsStopped)), errors[0])
        return tuple(f.result() for f in futures)

    def _unit(self, job_scope: Scope, clip: ClipPlan, part: int, parts: int) -> ClipResult:
        if self._stop_units.is_set():
            raise _UnitsStopped()
        folder = self.workdir / CLIPS_DIR / f"{clip.index:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        cache = StepCache(folder, job_scope.job.job_id)
        key = fingerprint((self.graph.version, clip, job_scope.job.options))
        done = cache.load("result", key)
        if isinstance(done, ClipResult) and all((folder / f).is_file() for f in done.files):
            for step, within in zip(self.graph.clip, self._clip_weights, strict=True):
                if step.report:
                    self.emit(step.name, 1.0, "reused from an earlier attempt", force=True, phase="clips",
                              part=part, parts=parts, within=within)
            return done
        scope = Scope(job_scope.job, folder, job_scope.results, job_scope.plan, clip)
        for step, within in zip(self.graph.clip, self._clip_weights, strict=True):
            if self._stop_units.is_set():
                raise _UnitsStopped()
            scope.clip_results[step.name] = self._step(step, scope, cache, phase="clips", part=part, parts=parts,
                                                       within=within, settings=self.unit_settings)
        result = self.graph.clip_result(scope)
        missing = [f for f in result.files if not (folder / f).is_file()]
        if missing:
            raise RuntimeError(f"clip {clip.index} unit did not write {', '.join(missing)}")
        cache.save("result", key, result)
        return result

    def _publish(self, plan: JobPlan, units: Sequence[ClipResult], final: Path, out_dir: Path) -> None:
        out_dir.mkdir(parents=True, exist_ok=True)
        for unit in units:
            folder = self.workdir / CLIPS_DIR / f"{unit.index:02d}"
            for name in unit.files:
                publish(folder / name, out_dir / name)
            with contextlib.suppress(FileNotFoundError):
                (folder / "result.json").unlink()  # its files have moved on: the unit is no longer cached
        publish(final / "manifest.json", out_dir / "manifest.json")


# -- clip versions (re-renders) ----------------------------------------------------------------------

EDITS_DIR = "edits"


def versioned_name(name: str, version: int) -> str:
    """``clip_01.mp4`` as version 2's kept file: ``clip_01.v2.mp4``."""
    stem, _, ext = name.partition(".")
    return f"{stem}.v{version}.{ext}"


def current_version(out_dir: Path, index: int) -> int:
    """The version of clip ``index`` now published: 1 plus the versions kept beside it."""
    kept = [p.name for p in Path(out_dir).glob(f"clip_{index:02d}.v*.mp4")]
    numbers = [int(n.split(".")[1][1:]) for n in kept if n.split(".")[1][1:].isdigit()]
    return max(numbers, default=0) + 1


@contextlib.contextmanager
def edit_lock(workdir: Path):  # type: ignore[no-untyped-def]
    """An exclusive lock on a job's published files while a re-render replaces one clip's (every
    worker process on this host, and hosts sharing the folder over a filesystem with flock)."""
    import fcntl

    path = Path(workdir) / "edits.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _keep(src: Path, dst: Path) -> None:
    """``dst`` becomes another name of ``src`` (a hard link, or a copy across filesystems)."""
    try:
        os.link(src, dst)
    except FileExistsError:
        pass
    except OSError:
        with atomic_path(dst) as tmp:
            shutil.copyfile(src, tmp)


def publish_version(folder: Path, unit: ClipResult, entry: dict[str, Any], version: int,
                    out_dir: Path) -> dict[str, Any]:
    """Publish a re-rendered clip as ``version``: the current files are kept as ``clip_NN.v<K>.*`` (K =
    version - 1), the new ones replace ``clip_NN.*`` one atomic rename each (a reader gets the old file
    or the new one, never a missing or partial one), then the manifest's entry for the clip becomes
    ``entry`` (its URLs carrying ``?v=<version>``, the earlier versions listed under ``versions``),
    written atomically last. Returns the new manifest."""
    out_dir = Path(out_dir)
    manifest_path = out_dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    clips = manifest.get("clips") or []
    pos = next((k for k, c in enumerate(clips) if c.get("index") == unit.index), None)
    if pos is None:
        raise ValueError(f"the manifest has no clip {unit.index}")
    old = clips[pos]
    previous = version - 1
    for name in unit.files:
        current = out_dir / name
        if current.is_file():
            _keep(current, out_dir / versioned_name(name, previous))
    for name in unit.files:
        publish(folder / name, out_dir / name)
    kept = {k: _url_of_version(v, previous) for k, v in old.items() if k.endswith("Url") and isinstance(v, str)}
    earlier = [v for v in old.get("versions", []) if isinstance(v, dict)]
    earlier.append({"version": previous, **{k: old[k] for k in ("start", "end", "duration", "aspectRatio")
                                             if k in old}, **kept, "edit": old.get("edit", {})})
    new = dict(entry)
    for key, value in list(new.items()):
        if key.endswith("Url") and isinstance(value, str):
            new[key] = f"{value.split('?')[0]}?v={version}"
    new.update(version=version, versions=earlier)
    clips[pos] = new
    manifest["clips"] = clips
    write_json_atomic(manifest_path, manifest)
    return manifest


def _url_of_version(url: str, version: int) -> str:
    """An artifact URL of the clip's current files, as the kept version's (``…/clip_01.v1.mp4``)."""
    path = url.split("?")[0]
    head, _, name = path.rpartition("/")
    return f"{head}/{versioned_name(name, version)}"


class _UnitsStopped(Exception):
    """A clip unit stopped because another unit of the same job failed."""


def _cumulative(weights: Sequence[float]) -> list[tuple[float, float]]:
    total = sum(weights) or 1.0
    out, acc = [], 0.0
    for w in weights:
        out.append((acc / total, (acc + w) / total))
        acc += w
    return out
