r"""The composition root: which stage fills which step of the job graph (engine/graph.py).

analysis:  probe -> audio -> transcribe -> diarize -> host ------------> plan
               \                            \-> highlights ---/   (after host if it is removed)
                \-> genre_faces (beside audio and transcribe) -/
per clip:  faces -> reframe -> captions -> render -> poster      (one unit per ClipPlan)
finalize:  manifest, then the engine publishes every clip's files and the manifest

Each step says how its request is built from what the job knows so far; the engine runs the
graph (cache, progress, clip units, publishing) and the executors own status and retries. The
CLI calls :func:`run_job`; the gateway's executor runs :func:`job_function`'s function; both
run the same graph on the same kind of worker, so they make identical artifacts and events.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from engine.config import Settings
from engine.edits import ClipEdit
from engine.errors import PermanentError
from engine.events import EventBus
from engine.executor import run_to_end
from engine.graph import JobGraph, JobInput, Scope, Step
from engine.jobs import new_job_id
from engine.options import ProcessOptions
from engine.pipeline import cached_result
from engine.types import ClipResult, CropPath, FaceScan
from engine.worker import Worker
from stages.captions import CaptionsRequest, CaptionsStage
from stages.framing import (
    FaceDetectRequest,
    FaceDetectStage,
    FaceReuseRequest,
    FaceReuseStage,
    FaceSurveyRequest,
    FaceSurveyStage,
    ReframeRequest,
    ReframeStage,
    fit_shots,
    render_geometry,
)
from stages.media import AudioRequest, AudioStage, ProbeRequest, ProbeStage
from stages.moments import HighlightsRequest, HighlightsStage, build_provider, keyword_forms
from stages.output import (
    ClipEntryRequest,
    ClipEntryStage,
    ManifestRequest,
    ManifestStage,
    PosterRequest,
    PosterStage,
    RenderRequest,
    RenderStage,
    clip_name,
    crop_keyframes,
    framing_entry,
    output_rate,
)
from stages.planning import (
    ClipPlanStage,
    EditPlanRequest,
    EditPlanStage,
    PlanRequest,
    speaker_to_cut,
    trim_span,
    without_speaker,
)
from stages.speech import (
    DiarizeRequest,
    DiarizeStage,
    HostRequest,
    HostStage,
    TranscribeRequest,
    TranscribeStage,
    clip_spans,
    kept_faces,
    splice_crop_path,
    with_speakers,
)


@dataclass
class StageSet:
    """One instance of each stage; models load once per StageSet (reuse it across jobs)."""

    probe: ProbeStage = field(default_factory=ProbeStage)
    audio: AudioStage = field(default_factory=AudioStage)
    transcribe: TranscribeStage = field(default_factory=TranscribeStage)
    diarize: DiarizeStage = field(default_factory=DiarizeStage)
    host: HostStage = field(default_factory=HostStage)
    # the moment provider (local scorer, Gemini or an OpenAI-compatible model) comes from the settings
    highlights: HighlightsStage = field(default_factory=lambda: HighlightsStage(factory=build_provider))
    faces: FaceDetectStage = field(default_factory=FaceDetectStage)
    reframe: ReframeStage = field(default_factory=ReframeStage)
    captions: CaptionsStage = field(default_factory=CaptionsStage)
    render: RenderStage = field(default_factory=RenderStage)
    poster: PosterStage = field(default_factory=PosterStage)
    manifest: ManifestStage = field(default_factory=ManifestStage)
    plan: ClipPlanStage = field(default_factory=ClipPlanStage)
    # a clip re-render: its plan, its faces (the clip's earlier scan reused), its manifest entry
    edit_plan: EditPlanStage = field(default_factory=EditPlanStage)
    clip_entry: ClipEntryStage = field(default_factory=ClipEntryStage)
    survey: FaceSurveyStage = field(init=False)
    faces_reuse: FaceReuseStage = field(init=False)
    #: the workers built on this set, one per Settings (they remember which stages are set up)
    workers: dict[int, Worker] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        self.survey = FaceSurveyStage(self.faces)  # the genre's look at the faces, through the same detector
        self.faces_reuse = FaceReuseStage(self.faces)

    def worker(self, settings: Settings) -> Worker:
        key = hash(settings)
        if key not in self.workers:
            self.workers[key] = Worker(job_graph(self), settings, edit_graph(self))
        return self.workers[key]


# -- the graph: each step's request from the scope ------------------------------------------------


def _labelled(s: Scope):
    return with_speakers(s["transcribe"], s["diarize"])


def _cut_speaker(s: Scope) -> str | None:
    """The speaker moments are not chosen from (the host, when the options remove it)."""
    return speaker_to_cut(s.options, s["host"]) if s.options.remove_ai_voice else None


def _highlights_needs(options: ProcessOptions) -> tuple[str, ...]:
    return ("probe", "audio", "transcribe", "diarize", "genre_faces", *(("host",) if options.remove_ai_voice else ()))


def _span(s: Scope) -> tuple[float, float]:
    return trim_span(s["probe"], s.options)


def _window(s: Scope) -> tuple[float, float]:
    return s.clip_plan.moment.start, s.clip_plan.moment.end


def _crop(s: Scope) -> CropPath:
    """The path the render follows: the reframed window, less the spliced-out stretches."""
    clip = s.clip_plan
    return splice_crop_path(s["reframe"], clip.segments) if clip.spliced else s["reframe"]


def _fit_captions(s: Scope) -> dict[str, Any]:
    """The captions step's fit shots: their clip-time spans and the fitted picture's bottom edge."""
    spans, bottom = fit_shots(render_geometry(s.job_plan.geometry, s["reframe"]), s["reframe"])
    if not spans:
        return {}
    clip = s.clip_plan
    kept = clip.segments or ((clip.moment.start, clip.moment.end),)
    return {"fit_spans": tuple(clip_spans(spans, kept, s.job_plan.media.fps)), "fit_bottom": bottom}


def _keywords(s: Scope) -> tuple[str, ...]:
    """The clip's keywords (its metadata's hashtags, the moment scorer's) as its captions' words say them."""
    return keyword_forms(s.clip_plan.moment.metadata.hashtags, [w.text for w in s.clip_plan.words])


def _clip_file(s: Scope, ext: str) -> Path:
    return s.path(clip_name(s.clip_plan.index, ext))


#: the graph's outputs' version (engine.graph.JobGraph.version): 2 = .srt/.vtt and cropPath per clip,
#: words joined at transcription, removeSilence/removeFillers; 3 = the faces step's result is a
#: FaceScan (samples and the window's shots), crop paths carry per-shot layouts
GRAPH_VERSION = "3"

#: a clip unit's files, published into out/ together (the captions stage writes the last three)
CLIP_FILES = ("mp4", "jpg", "ass", "srt", "vtt")


def _clip_result(s: Scope) -> ClipResult:
    i, rendered = s.clip_plan.index, s["render"]
    geometry = render_geometry(s.job_plan.geometry, s["reframe"])
    keyframes = crop_keyframes(_crop(s), geometry, rendered.frames, float(output_rate(s.job_plan.media)),
                               s.clip_plan.segments)
    return ClipResult(i, rendered.duration, tuple(clip_name(i, e) for e in CLIP_FILES),
                      framing_entry(s["reframe"], s.options.layout, _window(s)[1], s.clip_plan.segments),
                      s.clip_plan.segments,
                      crop_path=tuple(keyframes))


def _manifest(s: Scope) -> ManifestRequest:
    plan = s.job_plan
    return ManifestRequest(s.job.job_id, plan.media, s.options, plan.selection, plan.transcript,
                           [u.duration for u in s.units], s.workdir, clip_segments=[u.segments for u in s.units],
                           speakers=plan.speakers, clip_framing=[u.framing for u in s.units], notes=plan.notes,
                           clip_crop_paths=[u.crop_path for u in s.units])


def job_graph(st: StageSet) -> JobGraph:
    """The job, declared: which stage fills which step, and what each step is given."""
    def layout(s: Scope) -> str:
        return "split" if s.options.layout == "split" else "follow"

    def geometry(s: Scope):
        return s.job_plan.geometry

    analysis = (
        Step("probe", st.probe, lambda s: ProbeRequest(s.job.source), weight=1),
        Step("audio", st.audio, lambda s: AudioRequest(s["probe"], *_span(s)), weight=3),
        Step("transcribe", st.transcribe,
             lambda s: TranscribeRequest(s["audio"].audio, disfluencies=s.options.remove_fillers,
                                         language=s.options.language), weight=18),
        Step("diarize", st.diarize, lambda s: DiarizeRequest(s["audio"].audio, s["transcribe"]), weight=3),
        Step("host", st.host, lambda s: HostRequest(s["audio"].audio, _labelled(s), s["diarize"], s.options.genre),
             weight=1),
        # a few face samples for `genre: auto` (how many people are on camera); not a progress step
        # it needs only the probe: it runs while the audio decodes and the speech is transcribed
        Step("genre_faces", st.survey, lambda s: FaceSurveyRequest(
            s["probe"], _span(s), s.options.mode == "ai" and s.options.genre == "auto"), weight=0, report=False,
             needs=("probe",)),
        # with the host removed, moments are found in the remaining speakers' words only; otherwise
        # they do not wait for the host decision (the two run side by side)
        Step("highlights", st.highlights, lambda s: HighlightsRequest(
            without_speaker(_labelled(s), _cut_speaker(s)), s["audio"].features, s.options,
            _span(s), s["genre_faces"]), weight=2, needs=_highlights_needs),
        Step("plan", st.plan, lambda s: PlanRequest(s.job.job_id, s["probe"], s.options, _span(s), s["highlights"],
                                                    _labelled(s), s["diarize"], s["host"]), weight=0, report=False),
    )
    clip = (
        Step("faces", st.faces, lambda s: FaceDetectRequest(s.job_plan.media, *_window(s)), weight=22),
        # the window's speaker-labelled words drive active-speaker framing (layout auto = follow)
        Step("reframe", st.reframe, lambda s: ReframeRequest(
            s["faces"].samples, geometry(s), s.job_plan.media.fps, *_window(s), words=s.clip_plan.speaker_words,
            layout=layout(s), shots=s["faces"].shots), weight=2),
        Step("captions", st.captions, lambda s: CaptionsRequest(
            s.clip_plan.words, s.options.caption_preset, geometry(s).out_w, geometry(s).out_h,
            s.clip_plan.caption_start, s.clip_plan.caption_end, _clip_file(s, "ass"),
            language=s.job_plan.transcript.language, **_fit_captions(s), emphasis=s.options.caption_emphasis,
            emoji=s.options.caption_emoji, keywords=_keywords(s),
            custom=s.options.caption_style.to_json() if s.options.caption_style else None), weight=3, cache=False),
        Step("render", st.render, lambda s: RenderRequest(
            s.job_plan.media, *_window(s), render_geometry(geometry(s), s["reframe"]), _crop(s),
            s["captions"] if s.options.caption_preset != "none" else None, _clip_file(s, "mp4"),
            segments=s.clip_plan.segments), weight=70, cache=False),
        Step("poster", st.poster, lambda s: PosterRequest(
            s.job_plan.media, *_window(s), render_geometry(geometry(s), s["reframe"]), s["reframe"],
            kept_faces(s["faces"], s.clip_plan.segments) if s.clip_plan.spliced else s["faces"].samples,
            _clip_file(s, "jpg")), weight=3, cache=False),
    )
    return JobGraph(analysis, clip, _clip_result, Step("manifest", st.manifest, _manifest, weight=1, cache=False),
                    clips_weight=72, version=GRAPH_VERSION)


def edit_graph(st: StageSet) -> JobGraph:
    """A clip re-render: plan the one edited clip from the finished job's cached analysis, run the job's
    clip unit on it (its faces step reusing the clip's earlier scan), then its manifest entry."""
    clip = job_graph(st).clip
    if clip[0].name != "faces":
        raise RuntimeError("the clip unit must start with its faces step")
    plan = Step("edit_plan", st.edit_plan, lambda s: EditPlanRequest(
        s["plan"], s.job.clip, s.job.edit, s.options, s["host"], s["diarize"]), weight=0, report=False)
    faces = Step("faces", st.faces_reuse, lambda s: FaceReuseRequest(
        s.job_plan.media, *_window(s), s["known_faces"], *s["known_window"]), weight=clip[0].weight)
    # the entry's URLs name the finished job (the plan's job id), not the re-render's own
    entry = Step("manifest", st.clip_entry, lambda s: ClipEntryRequest(
        replace(_manifest(s), job_id=s.job_plan.job_id), s.job.clip, s.job.edit.to_json()), weight=1, cache=False)
    return JobGraph((plan,), (faces, *clip[1:]), _clip_result, entry, clips_weight=72, version=GRAPH_VERSION)


#: what a re-render reads of the finished job's cached analysis (engine.pipeline.cached_result)
EDIT_INPUTS = ("plan", "host", "diarize")


def edit_inputs(work_dir: Path, index: int, face_fps: float) -> dict[str, Any]:
    """The finished job's cached results a re-render of clip ``index`` starts from; PermanentError when the
    job's analysis is no longer kept."""
    try:
        results = {name: cached_result(work_dir, name) for name in EDIT_INPUTS}
    except (OSError, ValueError, KeyError) as exc:
        raise PermanentError("this job's analysis is no longer kept, so its clips cannot be rendered again; "
                             "process the video again") from exc
    known: Any = None
    try:
        known = cached_result(work_dir, "faces", index)
    except (OSError, ValueError, KeyError):
        pass
    if isinstance(known, tuple):
        known = FaceScan(known)
    window = (0.0, 0.0)
    if isinstance(known, FaceScan) and known.samples:
        window = ((known.shots[0].start, known.shots[-1].end) if known.shots
                  else (known.samples[0].t, known.samples[-1].t + 1.0 / face_fps))
    return {**results, "known_faces": known if isinstance(known, FaceScan) else None, "known_window": window}


# -- running it -----------------------------------------------------------------------------------


def run_job(
    source: Path,
    out_dir: Path,
    options: ProcessOptions,
    settings: Settings,
    *,
    job_id: str | None = None,
    bus: EventBus | None = None,
    cancel: threading.Event | None = None,
    workdir: Path | None = None,
    stages: StageSet | None = None,
) -> dict[str, Any]:
    """Run one whole job on the spot (the CLI, tests, benchmarks); returns the manifest.

    Publishes progress, status, completed/failed on ``bus``; retries by the executors' policy.
    ``workdir`` holds cached analysis; when omitted a temporary one is used and removed. Only
    the spec's artifacts are written to ``out_dir``.
    """
    job = JobInput(job_id or new_job_id(), Path(source), options)
    bus = bus or EventBus()
    worker = (stages or StageSet()).worker(settings)
    out_dir.mkdir(parents=True, exist_ok=True)

    def attempt() -> dict[str, Any]:
        return worker.run(job, out_dir, bus, workdir=workdir, cancel=cancel)

    return run_to_end(job.job_id, attempt, bus, message="processing")


def rerender(worker: Worker, job_id: str, index: int, edit: ClipEdit, source: Path, out_dir: Path, work_dir: Path,
             bus: EventBus, cancel: threading.Event | None = None) -> dict[str, Any]:
    """One attempt at re-rendering clip ``index`` of the finished job in ``work_dir``/``out_dir`` with
    ``edit`` (already merged with the clip's earlier edits); returns the new manifest entry's summary."""
    results = edit_inputs(work_dir, index, worker.settings.face_sample_fps)
    plan = results["plan"]
    options = edit.options(ProcessOptions.from_json(plan.options))
    job = JobInput(job_id, source, options, clip=index, edit=edit)
    return worker.run_edit(job, results, out_dir, bus, workdir=work_dir, cancel=cancel)


def job_function(settings: Settings, stages: StageSet | None = None):  # -> engine.executor.JobFunction
    """The job function the gateway's executor runs: the same graph and worker as the CLI.

    The moment provider is built once here, so unusable provider settings stop the server at
    startup (MomentsConfigError names the setting) instead of failing every job.
    """
    build_provider(settings)
    return _job_function((stages or StageSet()).worker(settings))


def cluster_runtime() -> tuple[Any, Worker]:
    """What a Ray worker process runs for ``CLIPORA_EXECUTOR=ray`` (engine.ray_executor builds it once
    per process, so its models stay loaded across tasks and jobs): the job function and its worker."""
    settings = Settings.from_env()
    build_provider(settings)
    worker = StageSet().worker(settings)
    return _job_function(worker), worker


def ray_job_function(address: str):  # -> engine.ray_executor.RayJobRunner
    """The job function of a worker process when jobs run on a Ray cluster: the same graph, its phases
    as Ray tasks (the graph is built here only for the resources its stages declare; nothing loads)."""
    from engine.ray_executor import RayJobRunner

    return RayJobRunner(address, "clipora.compose:cluster_runtime", job_graph(StageSet()))


def _job_function(worker: Worker):  # -> engine.executor.JobFunction

    def run(job, source: Path, out_dir: Path, work_dir: Path, bus: EventBus,
            cancel: threading.Event) -> dict[str, Any]:
        if job.is_render:  # paths are the parent job's (engine.service.JobFolders.paths_of)
            return rerender(worker, job.id, job.clip_index, ClipEdit.from_json(job.options.get("edit")), source,
                            out_dir, work_dir, bus, cancel)
        return worker.run(JobInput(job.id, source, ProcessOptions.from_json(job.options)), out_dir, bus,
                          workdir=work_dir, cancel=cancel)

    return run
