"""The engine running a job graph: cache, units, publishing, progress, setup/teardown, retries.

Fake stages (no media): what is tested is the engine, the same for every real stage.
"""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from engine.config import Settings
from engine.errors import InvalidMedia, RetryableError
from engine.events import EventBus, JobEvent
from engine.executor import RetryPolicy, run_to_end
from engine.graph import JobGraph, JobInput, Scope, Step
from engine.options import ProcessOptions
from engine.pipeline import cached_result
from engine.stage import Resources, Stage, StageContext
from engine.types import (
    ClipMetadata,
    ClipPlan,
    ClipResult,
    JobPlan,
    MediaInfo,
    Moment,
    MomentSelection,
    OutputGeometry,
    Transcript,
)
from engine.worker import Worker

MEDIA = MediaInfo("src.mp4", "mp4", 10.0, 640, 360, 640, 360, 0, 25.0, 25, 1, False, "h264", True)


class Fake(Stage[Any, Any]):
    """Records its calls; ``fn(request, ctx)`` makes the result."""

    def __init__(self, name: str, fn, resources: Resources | None = None) -> None:
        self.name = name
        self.fn = fn
        self.resources = resources or Resources()
        self.calls: list[Any] = []
        self.setups = 0
        self.teardowns = 0
        self.workdirs: list[Path] = []

    def setup(self, ctx: StageContext) -> None:
        self.setups += 1

    def process(self, inputs: Any, ctx: StageContext) -> Any:
        assert self.setups >= 1, "a stage is set up before its first process"
        self.calls.append(inputs)
        self.workdirs.append(ctx.workdir)
        ctx.progress(0.5, "half way")
        return self.fn(inputs, ctx)

    def teardown(self) -> None:
        self.teardowns += 1


@dataclass(frozen=True)
class FileRequest:
    path: Path
    text: str


def write(req: FileRequest, ctx: StageContext) -> Path:
    assert req.path.parent == ctx.workdir  # a stage writes under its workdir only
    req.path.write_text(req.text)
    return req.path


def moment(a: float, b: float) -> Moment:
    return Moment(a, b, 5.0, {}, ClipMetadata("t", "h", "k", "joy", (), 5.0))


def plan_of(req: tuple[str, int], ctx: StageContext) -> JobPlan:
    job_id, n = req
    moments = tuple(moment(i, i + 1.0) for i in range(n))
    clips = tuple(ClipPlan(i + 1, m, (), (), m.start, m.end) for i, m in enumerate(moments))
    geo = OutputGeometry(640, 360, 360, 640, "crop", 202, 360)
    return JobPlan(job_id, MEDIA, {}, (0.0, 10.0), geo, 25.0, clips, MomentSelection(moments, n), Transcript(()))


class Fakes:
    """A three-phase graph of fake stages; ``fail`` makes one step raise (once or always)."""

    def __init__(self, clips: int = 2, unit_cpus: float = 1.0) -> None:
        self.fail: dict[str, list[BaseException]] = {}
        self.probe = Fake("probe", lambda r, c: self._maybe_fail("probe") or {"duration": 10.0})
        self.words = Fake("words", lambda r, c: self._maybe_fail("words") or f"words of {r}")
        self.plan = Fake("plan", plan_of)
        self.render = Fake("render", lambda r, c: self._maybe_fail("render") or write(r, c),
                           Resources(cpus=unit_cpus))
        self.poster = Fake("poster", write)
        self.manifest = Fake("manifest", self._manifest)
        self.clips = clips

    def _maybe_fail(self, name: str) -> None:
        errors = self.fail.get(name)
        if errors:
            raise errors.pop(0) if len(errors) > 1 else errors[0]
        return None

    def _manifest(self, req: tuple[Path, tuple[ClipResult, ...]], ctx: StageContext) -> dict[str, Any]:
        folder, units = req
        (folder / "manifest.json").write_text(f"{len(units)} clips")
        return {"clipCount": len(units), "durations": [u.duration for u in units]}

    def graph(self) -> JobGraph:
        def unit(s: Scope) -> ClipResult:
            i = s.clip_plan.index
            return ClipResult(i, 1.0, (f"clip_{i:02d}.mp4", f"clip_{i:02d}.jpg"))

        return JobGraph(
            analysis=(
                Step("probe", self.probe, lambda s: str(s.job.source), weight=1),
                Step("words", self.words, lambda s: (s["probe"]["duration"], s.options.prompt), weight=3),
                Step("plan", self.plan, lambda s: (s.job.job_id, self.clips), weight=0, report=False),
            ),
            clip=(
                Step("render", self.render, lambda s: FileRequest(s.path(f"clip_{s.clip_plan.index:02d}.mp4"),
                                                                  f"video {s.clip_plan.index}"), weight=9, cache=False),
                Step("poster", self.poster, lambda s: FileRequest(s.path(f"clip_{s.clip_plan.index:02d}.jpg"),
                                                                  "jpeg"), weight=1, cache=False),
            ),
            clip_result=unit,
            finalize=Step("manifest", self.manifest, lambda s: (s.workdir, s.units), weight=1, cache=False),
            clips_weight=6,
        )


def job(tmp: Path, job_id: str = "job1", prompt: str = "") -> JobInput:
    return JobInput(job_id, tmp / "source.mp4", ProcessOptions.build(prompt=prompt))


def collect() -> tuple[EventBus, list[JobEvent]]:
    bus, events = EventBus(), []
    bus.subscribe(events.append)
    return bus, events


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(cache_dir=tmp_path / "cache", threads=2, backend="cpu")


def test_a_job_runs_its_phases_and_publishes_everything_at_the_end(tmp_path, settings):
    fakes = Fakes()
    worker = Worker(fakes.graph(), settings)
    bus, events = collect()
    manifest = worker.run(job(tmp_path), tmp_path / "out", bus, workdir=tmp_path / "work")
    assert manifest == {"clipCount": 2, "durations": [1.0, 1.0]}
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == ["clip_01.jpg", "clip_01.mp4", "clip_02.jpg", "clip_02.mp4",
                                                    "manifest.json"]
    assert (out / "clip_02.mp4").read_text() == "video 2"
    # each clip's stages wrote into that clip's own folder under the job's workdir
    assert sorted(fakes.render.workdirs) == [tmp_path / "work" / "clips" / "01", tmp_path / "work" / "clips" / "02"]
    assert fakes.probe.workdirs == [tmp_path / "work" / "analysis"]
    # the plan is a typed, serialisable value in the cache
    plan = cached_result(tmp_path / "work", "plan")
    assert isinstance(plan, JobPlan) and [c.index for c in plan.clips] == [1, 2]
    assert only_terminal_free(events)


def only_terminal_free(events: list[JobEvent]) -> bool:
    """The pipeline publishes progress only: status and the end belong to the executor."""
    return all(e.type == "progress" for e in events)


def test_progress_carries_the_stage_fraction_and_a_monotonic_job_fraction(tmp_path, settings):
    fakes = Fakes(clips=3)
    bus, events = collect()
    one_core = Settings(cache_dir=tmp_path / "cache", threads=1, backend="cpu")  # clip units one after another
    Worker(fakes.graph(), one_core).run(job(tmp_path), tmp_path / "out", bus)
    progress = [e for e in events if e.type == "progress"]
    overall = [e.progress for e in progress]
    assert overall == sorted(overall) and overall[-1] == pytest.approx(1.0)
    assert {e.stage for e in progress} == {"probe", "words", "render", "poster", "manifest"}  # plan is silent
    # each step's events say how far that stage is: 0 when it starts, 1 when it is done
    assert all(e.stage_progress == {"started": 0.0, "done": 1.0, "half way": 0.5}[e.message] for e in progress)
    probe = [e.message for e in progress if e.stage == "probe"]
    assert probe[0] == "started" and probe[-1] == "done"
    # the weights place the steps: probe 1, words 3, clips 6, manifest 1 (of 11)
    first_render = next(e for e in progress if e.stage == "render")
    assert first_render.progress == pytest.approx(4 / 11, abs=1e-6)


def test_a_second_attempt_reuses_every_finished_step_and_recomputes_a_changed_one(tmp_path, settings):
    fakes = Fakes()
    worker = Worker(fakes.graph(), settings)
    fakes.fail["render"] = [RetryableError("disk hiccup")]
    with pytest.raises(RetryableError):
        worker.run(job(tmp_path), tmp_path / "out", EventBus(), workdir=tmp_path / "work")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())  # nothing partial published
    fakes.fail.clear()
    bus, events = collect()
    worker.run(job(tmp_path), tmp_path / "out", bus, workdir=tmp_path / "work")
    assert (len(fakes.probe.calls), len(fakes.words.calls)) == (1, 1)  # the analysis was reused
    assert {e.stage for e in events if e.message.startswith("reused")} == {"probe", "words"}
    # the same workdir with another prompt: the steps whose request changed run again
    worker.run(job(tmp_path, prompt="cats"), tmp_path / "out2", EventBus(), workdir=tmp_path / "work")
    assert (len(fakes.probe.calls), len(fakes.words.calls)) == (1, 2)


def test_a_finished_clip_unit_is_not_redone_while_its_files_wait_to_be_published(tmp_path, settings):
    fakes = Fakes(clips=2)
    worker = Worker(fakes.graph(), settings)
    fakes.manifest.fn = lambda r, c: (_ for _ in ()).throw(RetryableError("database away"))
    with pytest.raises(RetryableError):
        worker.run(job(tmp_path), tmp_path / "out", EventBus(), workdir=tmp_path / "work")
    assert len(fakes.render.calls) == 2
    fakes.manifest.fn = Fakes._manifest.__get__(fakes)
    worker.run(job(tmp_path), tmp_path / "out", EventBus(), workdir=tmp_path / "work")
    assert len(fakes.render.calls) == 2  # both clips were finished: published, not rendered again
    assert (tmp_path / "out" / "clip_01.mp4").read_text() == "video 1"
    # once published, the units' files have moved: a new attempt renders again
    worker.run(job(tmp_path), tmp_path / "out", EventBus(), workdir=tmp_path / "work")
    assert len(fakes.render.calls) == 4


def test_a_cache_made_by_another_graph_version_is_recomputed(tmp_path, settings):
    """A job retried after an upgrade that changed what the steps make reuses nothing of the old build."""
    from dataclasses import replace

    fakes = Fakes(clips=1)
    fakes.manifest.fn = lambda r, c: (_ for _ in ()).throw(RetryableError("database away"))
    with pytest.raises(RetryableError):
        Worker(fakes.graph(), settings).run(job(tmp_path), tmp_path / "out", EventBus(), workdir=tmp_path / "work")
    fakes.manifest.fn = Fakes._manifest.__get__(fakes)
    upgraded = replace(fakes.graph(), version="2")
    Worker(upgraded, settings).run(job(tmp_path), tmp_path / "out", EventBus(), workdir=tmp_path / "work")
    assert (len(fakes.probe.calls), len(fakes.words.calls), len(fakes.render.calls)) == (2, 2, 2)


def test_stages_are_set_up_once_per_worker_and_torn_down_when_it_stops(tmp_path, settings):
    fakes = Fakes()
    worker = Worker(fakes.graph(), settings)
    for i in range(3):
        worker.run(job(tmp_path, f"job{i}"), tmp_path / f"out{i}", EventBus())
    stages = (fakes.probe, fakes.words, fakes.plan, fakes.render, fakes.poster, fakes.manifest)
    assert [s.setups for s in stages] == [1] * 6 and len(fakes.render.calls) == 6
    worker.close()
    assert [s.teardowns for s in stages] == [1] * 6
    warm = Worker(Fakes().graph(), settings)
    warm.warm()  # a serving worker loads every model before its first job
    assert all(s.setups == 1 for s in warm.graph.stages())


def test_clip_units_run_as_many_at_once_as_their_resources_fit(tmp_path):
    fakes = Fakes(clips=4, unit_cpus=2.0)
    running, peak, lock = [0], [0], threading.Lock()

    def slow_render(req, ctx):
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.2)
        with lock:
            running[0] -= 1
        return write(req, ctx)

    fakes.render.fn = slow_render
    for threads, at_once in ((2, 1), (4, 2), (8, 4)):
        peak[0] = 0
        worker = Worker(fakes.graph(), Settings(cache_dir=tmp_path / "c", threads=threads, backend="cpu"))
        assert worker.units_at_once == at_once
        worker.run(job(tmp_path, f"j{threads}"), tmp_path / f"out{threads}", EventBus())
        assert peak[0] == at_once, (threads, peak[0])
        assert len(list((tmp_path / f"out{threads}").iterdir())) == 9


def test_units_side_by_side_move_the_progress_by_what_they_have_done(tmp_path):
    """Four units at once: the clip phase's progress is the sum of the units' own. Each fake stage reports
    half way as it begins, so when the fourth render starts the three before it are each at 0.45 of their
    unit (half of the render's 0.9): 34 % of the phase (a unit's part number once counted as that many units
    done before it: 75 %)."""
    fakes = Fakes(clips=4, unit_cpus=2.0)
    started = threading.Barrier(4)

    def render_together(req, ctx):
        started.wait(timeout=10)  # every unit has emitted its render's "started" before any goes on
        time.sleep(0.1)
        return write(req, ctx)

    fakes.render.fn = render_together
    worker = Worker(fakes.graph(), Settings(cache_dir=tmp_path / "c", threads=8, backend="cpu"))
    assert worker.units_at_once == 4
    bus, events = collect()
    worker.run(job(tmp_path), tmp_path / "out", bus)
    clips_start, clips_share = 4 / 11, 6 / 11  # probe 1 + words 3, then clips 6 of 11
    starts = [e.progress for e in events if e.stage == "render" and e.message == "started"]
    assert len(starts) == 4 and max(starts) <= clips_start + clips_share * 3 * 0.45 / 4 + 1e-9, starts
    overall = [e.progress for e in events if e.type == "progress"]
    assert overall == sorted(overall)
    last_clip = max(e.progress for e in events if e.stage in ("render", "poster"))
    assert last_clip == pytest.approx(clips_start + clips_share)


def test_resources_combine_and_fit():
    a, b = Resources(cpus=2.0, custom=(("nvenc", 1.0),)), Resources(cpus=1.0, gpu_memory_gb=4.0)
    both = a.most(b)
    assert both == Resources(cpus=2.0, gpu_memory_gb=4.0, custom=(("nvenc", 1.0),))
    assert both.fits(cpus=16, gpu_memory_gb=10) == 2 and both.fits(cpus=1) == 1


def test_the_one_retry_policy_retries_the_whole_job_resuming_from_its_cache(tmp_path, settings):
    fakes = Fakes()
    worker = Worker(fakes.graph(), settings)
    outcomes: list[RetryableError | None] = [RetryableError("model server busy")] * 2 + [None]  # twice, then fine

    def flaky_words(r, c):
        error = outcomes.pop(0)
        if error is not None:
            raise error
        return "words"

    fakes.words.fn = flaky_words
    bus, events = collect()
    attempt = lambda: worker.run(job(tmp_path), tmp_path / "out", bus, workdir=tmp_path / "work")  # noqa: E731
    manifest = run_to_end("job1", attempt, bus, policy=RetryPolicy(max_attempts=3, backoff_s=0.01))
    assert manifest["clipCount"] == 2
    assert len(fakes.words.calls) == 3 and len(fakes.probe.calls) == 1  # retried, resuming: probe ran once
    kinds = [e.type for e in events if e.type != "progress"]
    assert kinds == ["status", "completed"]
    # a permanent error is not retried; a retryable one stops after max_attempts; both end in "failed"
    for error, tries in ((InvalidMedia("no video stream"), 1), (RetryableError("still busy"), 3)):
        fakes2 = Fakes()
        calls = []

        def broken(r, c, error=error, calls=calls):
            calls.append(r)
            raise error

        fakes2.probe.fn = broken
        w2 = Worker(fakes2.graph(), settings)
        bus2, events2 = collect()
        with pytest.raises(type(error)):
            run_to_end("job2", lambda w2=w2, bus2=bus2: w2.run(job(tmp_path, "job2"), tmp_path / "o2", bus2),
                       bus2, policy=RetryPolicy(max_attempts=3, backoff_s=0.01))
        assert len(calls) == tries
        assert [e.type for e in events2 if e.type != "progress"] == ["status", "failed"]


def test_units_side_by_side_share_the_cores_and_one_failure_is_the_jobs_error(tmp_path):
    fakes = Fakes(clips=4, unit_cpus=2.0)
    threads_seen: list[int] = []

    def render(req, ctx):
        threads_seen.append(ctx.settings.threads)
        if req.path.name == "clip_03.mp4":
            raise InvalidMedia("clip 3's frames are unreadable")
        time.sleep(0.05)
        return write(req, ctx)

    fakes.render.fn = render
    worker = Worker(fakes.graph(), Settings(cache_dir=tmp_path / "c", threads=8, backend="cpu"))
    assert worker.units_at_once == 4
    with pytest.raises(InvalidMedia, match="clip 3"):
        worker.run(job(tmp_path), tmp_path / "out", EventBus())
    assert threads_seen and set(threads_seen) == {2}  # 8 cores, 4 units at once: 2 threads each
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def _rss_mib() -> int:
    with open("/proc/self/status") as fh:
        return int(next(line for line in fh if line.startswith("VmRSS:")).split()[1]) // 1024


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim, /proc")
def test_what_a_step_freed_is_not_the_next_steps_floor(tmp_path, settings):
    """A step that allocates 300 MiB in small blocks and keeps one in 64 leaves a heap glibc cannot shrink
    by free() alone; the pipeline hands its free pages back before the next step starts."""
    fakes = Fakes()
    seen: dict[str, int] = {}
    kept: list[bytearray] = []

    def churn(req: Any, ctx: StageContext) -> str:
        seen["before"] = _rss_mib()
        blocks = [bytearray(4000) for _ in range(80_000)]
        kept.extend(blocks[::64])
        seen["held"] = _rss_mib()
        return "words"

    def plan(req: tuple[str, int], ctx: StageContext) -> JobPlan:
        seen["next step"] = _rss_mib()
        return plan_of(req, ctx)

    fakes.words.fn, fakes.plan.fn = churn, plan
    Worker(fakes.graph(), settings).run(job(tmp_path), tmp_path / "out", EventBus(), workdir=tmp_path / "work")
    assert seen["held"] - seen["before"] > 250, seen
    assert seen["next step"] - seen["before"] < 60, seen  # the 1/64 kept (5 MiB) and some slack


# -- the analysis phase's steps run as their needs allow -------------------------------------------


def _analysis_graph(fakes: Fakes, survey: Fake, words_needs=None, plan_needs=None) -> JobGraph:
    """probe -> words, and a survey that needs only the probe (placed after words, as in the job graph)."""
    g = fakes.graph()
    probe, words, plan = g.analysis
    return JobGraph(
        analysis=(probe, replace(words, needs=words_needs),
                  Step("survey", survey, lambda s: s["probe"]["duration"], weight=0, report=False, needs=("probe",)),
                  replace(plan, needs=plan_needs)),
        clip=g.clip, clip_result=g.clip_result, finalize=g.finalize, clips_weight=g.clips_weight)


def test_a_step_that_needs_only_the_probe_runs_beside_the_steps_after_it(tmp_path, settings):
    fakes = Fakes(clips=1)
    survey_started, words_seen_survey = threading.Event(), []

    def words(req, ctx):
        # the survey runs while this step does: it has started before this step ends
        words_seen_survey.append(survey_started.wait(10))
        return f"words of {req}"

    def survey(req, ctx):
        survey_started.set()
        return {"looked at": req}

    fakes.words.fn = words
    plans: list[Any] = []
    fakes.plan.fn = lambda r, c: plans.append(r) or plan_of(r, c)
    worker = Worker(_analysis_graph(fakes, Fake("survey", survey)), settings)
    manifest = worker.run(job(tmp_path), tmp_path / "out", EventBus(), workdir=tmp_path / "work")
    assert manifest["clipCount"] == 1
    assert words_seen_survey == [True]
    # the last step (needs: every step before it) ran after both, with both results cached
    assert cached_result(tmp_path / "work", "survey") == {"looked at": 10.0}
    assert cached_result(tmp_path / "work", "words") == "words of (10.0, '')"
    assert len(plans) == 1


def test_steps_with_default_needs_run_in_order_on_the_callers_thread(tmp_path, settings):
    fakes = Fakes(clips=1)
    order: list[tuple[str, str]] = []
    for stage in (fakes.probe, fakes.words):
        def traced(r, c, fn=stage.fn, name=stage.name):
            order.append((name, threading.current_thread().name))
            return fn(r, c)

        stage.fn = traced
    worker = Worker(fakes.graph(), settings)
    here = threading.current_thread().name
    worker.run(job(tmp_path), tmp_path / "out", EventBus(), workdir=tmp_path / "work")
    assert order == [("probe", here), ("words", here)]


def test_a_failed_step_starts_nothing_after_it_and_is_the_phases_error(tmp_path, settings):
    fakes = Fakes(clips=1)
    finished: list[str] = []

    def words(req, ctx):
        time.sleep(0.2)  # still running when the survey fails: it finishes, then the failure is raised
        finished.append("words")
        return "w"

    def survey(req, ctx):
        raise InvalidMedia("the survey could not decode a frame")

    fakes.words.fn = words
    worker = Worker(_analysis_graph(fakes, Fake("survey", survey)), settings)
    with pytest.raises(InvalidMedia, match="survey"):
        worker.run(job(tmp_path), tmp_path / "out", EventBus(), workdir=tmp_path / "work")
    assert finished == ["words"]
    assert fakes.plan.calls == [] and fakes.render.calls == []
    assert cached_result(tmp_path / "work", "words") == "w"  # a retry reuses what finished


def test_needs_may_depend_on_the_options_and_name_only_earlier_steps(tmp_path, settings):
    from engine.graph import step_needs

    fakes = Fakes(clips=1)
    survey = Fake("survey", lambda r, c: r)
    g = _analysis_graph(fakes, survey, plan_needs=lambda o: ("probe", "survey", *(("words",) if o.prompt else ())))
    assert step_needs(g.analysis, ProcessOptions.build())["plan"] == ("probe", "survey")
    assert step_needs(g.analysis, ProcessOptions.build(prompt="jobs"))["plan"] == ("probe", "survey", "words")
    assert step_needs(g.analysis, ProcessOptions.build())["words"] == ("probe",)  # default: every step before it
    bad = _analysis_graph(fakes, survey, words_needs=("survey",))  # the survey comes after words
    with pytest.raises(ValueError, match="'words' needs 'survey'"):
        step_needs(bad.analysis, ProcessOptions.build())


def test_a_step_reading_a_result_it_does_not_need_fails_every_time(tmp_path, settings):
    """The survey needs only the probe: reading the words (which may or may not be done by then) is a
    KeyError whatever the timing, so a missing need shows up in the first test run."""
    fakes = Fakes(clips=1)
    g = fakes.graph()
    probe, words, plan = g.analysis
    survey = Fake("survey", lambda r, c: r)
    graph = JobGraph(
        analysis=(probe, words,
                  Step("survey", survey, lambda s: s["words"], weight=0, report=False, needs=("probe",)), plan),
        clip=g.clip, clip_result=g.clip_result, finalize=g.finalize, clips_weight=g.clips_weight)
    with pytest.raises(KeyError, match="words"):
        Worker(graph, settings).run(job(tmp_path), tmp_path / "out", EventBus(), workdir=tmp_path / "work")
    assert survey.calls == []
