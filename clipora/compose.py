"""The composition root: wires the concrete stages into one job (DESIGN.md section 2).

probe -> trim -> audio -> transcribe -> diarize -> host -> highlights -> for each clip:
splice (drop the host's turns) -> faces -> reframe -> captions (.ass + sprites) -> render
-> poster; then manifest.

The CLI calls :func:`run_job` directly; the gateway's executor will call the same
function, so both produce identical artifacts and events.
"""

from __future__ import annotations

import secrets
import shutil
import tempfile
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from engine.backends import select_backend
from engine.config import Settings
from engine.errors import ClipporaError, InvalidOptions
from engine.events import EventBus, JobEvent
from engine.jobs import clips_ready
from engine.options import ProcessOptions
from engine.pipeline import ProgressPlan, StageRunner
from engine.stage import StageContext
from engine.types import (
    CropPath,
    Diarization,
    FaceSample,
    HostDecision,
    MediaInfo,
    Moment,
    MomentSelection,
    OutputGeometry,
    Transcript,
)
from stages.audio import AudioRequest, AudioStage
from stages.captions import CaptionsRequest, CaptionsStage
from stages.diarize import DiarizeRequest, DiarizeStage, with_speakers
from stages.faces import FaceDetectRequest, FaceDetectStage
from stages.geometry import is_split_aspect, output_geometry, render_geometry
from stages.highlights import HighlightsRequest, HighlightsStage
from stages.host import MIN_CONFIDENCE, HostRequest, HostStage
from stages.manifest import ManifestRequest, ManifestStage, clip_name
from stages.moments import build_provider
from stages.poster import PosterRequest, PosterStage
from stages.probe import ProbeRequest, ProbeStage
from stages.reframe import ReframeRequest, ReframeStage
from stages.render import RenderRequest, RenderStage, output_rate
from stages.splice import clip_words, kept_faces, plan_segments, splice_crop_path, spliced_duration
from stages.transcribe import TranscribeRequest, TranscribeStage

PLAN = ProgressPlan(
    [("probe", 1), ("audio", 3), ("transcribe", 18), ("diarize", 3), ("host", 1), ("highlights", 2), ("clips", 72),
     ("manifest", 1)]
)
# Shares of one clip's part of the "clips" phase.
CLIP_STEPS = {
    "faces": (0.0, 0.22),
    "reframe": (0.22, 0.24),
    "captions": (0.24, 0.27),
    "render": (0.27, 0.97),
    "poster": (0.97, 1.0),
}


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


def new_job_id() -> str:
    """Random, unguessable, URL-safe (~60 bits)."""
    return secrets.token_urlsafe(8).replace("-", "x").replace("_", "y")


def trim_span(media: MediaInfo, options: ProcessOptions) -> tuple[float, float]:
    start = options.trim_start
    end = media.duration if options.trim_end is None else min(options.trim_end, media.duration)
    if start >= media.duration:
        raise InvalidOptions(
            f"trimStart ({start:g} s) is at or past the end of the source ({media.duration:.2f} s)",
            field="trimStart",
        )
    if end - start < 0.5:
        raise InvalidOptions(
            f"the trimmed span {start:g}-{end:g} s is too short (at least 0.5 s needed)", field="trimEnd"
        )
    return start, end


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
    """Run one whole job; returns the manifest. Publishes progress/completed/failed on ``bus``.

    ``workdir`` holds cached analysis; when omitted a temporary one is used and removed.
    Only the spec's artifacts are written to ``out_dir``.
    """
    job_id = job_id or new_job_id()
    bus = bus or EventBus()
    stages = stages or StageSet()
    own_workdir = workdir is None
    work = Path(tempfile.mkdtemp(prefix=f"clipora-{job_id}-")) if workdir is None else workdir
    work.mkdir(parents=True, exist_ok=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        backend = select_backend(settings.backend)
        ctx = StageContext(job_id, work, settings, backend, cancel_event=cancel or threading.Event())
        runner = StageRunner(job_id, ctx, bus, PLAN)
        bus.publish(JobEvent(job_id, "status", status="processing", message=f"backend {backend.name}"))
        manifest = _run(runner, stages, source, out_dir, options, job_id)
    except ClipporaError as exc:
        bus.publish(JobEvent(job_id, "failed", status="failed", message=exc.message))
        raise
    finally:
        if own_workdir:
            shutil.rmtree(work, ignore_errors=True)
    bus.publish(JobEvent(job_id, "completed", status="completed", progress=1.0,
                         message=clips_ready(manifest["clipCount"]), extra={"clipCount": manifest["clipCount"]}))
    return manifest


def _run(runner: StageRunner, st: StageSet, source: Path, out_dir: Path,
         options: ProcessOptions, job_id: str) -> dict[str, Any]:
    media: MediaInfo = runner.run(st.probe, ProbeRequest(source), cache="probe")
    span = trim_span(media, options)
    audio = runner.run(st.audio, AudioRequest(media, *span), cache="audio")
    transcript = runner.run(st.transcribe, TranscribeRequest(audio.audio), cache="transcript")
    diarization: Diarization = runner.run(st.diarize, DiarizeRequest(audio.audio, transcript), cache="diarize")
    transcript = with_speakers(transcript, diarization)
    host: HostDecision = runner.run(
        st.host, HostRequest(audio.audio, transcript, diarization, options.genre), cache="host"
    )
    remove = options.remove_ai_voice and host.interview and host.confidence >= MIN_CONFIDENCE
    cut_speaker = host.host if remove else None
    # With the host removed, moments are found in the remaining speakers' words only.
    moment_words = transcript if cut_speaker is None else Transcript(
        tuple(w for w in transcript.words if w.speaker != cut_speaker), transcript.language,
        transcript.audio_duration)
    selection = runner.run(
        st.highlights,
        HighlightsRequest(moment_words, audio.features, options, span, genre_faces(st, media, span, options, runner)),
        cache="highlights",
    )
    geometry = output_geometry(media.width, media.height, options.aspect_ratio)
    fps = float(output_rate(media))
    selection, plans = splice_plans(selection, transcript, cut_speaker, fps, options)
    durations: list[float] = []
    all_segments: list[tuple[tuple[float, float], ...]] = []
    framings: list[dict[str, Any]] = []
    n = len(selection.moments)
    for i, (m, segments) in enumerate(zip(selection.moments, plans, strict=True), start=1):
        where = {"phase": "clips", "part": i - 1, "parts": n}
        spliced = cut_speaker is not None and (
            len(segments) > 1 or abs(spliced_duration(segments, fps) - (m.end - m.start)) > 1.0 / fps)
        faces = runner.run(st.faces, FaceDetectRequest(media, m.start, m.end), cache=f"faces_{i:02d}",
                           within=CLIP_STEPS["faces"], **where)
        # the window's speaker-labelled words drive active-speaker framing (layout auto = follow)
        crop_path = runner.run(
            st.reframe,
            ReframeRequest(faces, geometry, media.fps, m.start, m.end,
                           words=transcript.words_between(m.start, m.end) if diarization.available else (),
                           layout="split" if options.layout == "split" else "follow"),
            cache=f"crop_{i:02d}" + ("_split" if options.layout == "split" else ""),
            within=CLIP_STEPS["reframe"], **where,
        )
        framings.append(framing_analysis(crop_path, options.layout))
        clip_geometry = render_geometry(geometry, crop_path)
        if spliced:
            clip_path = splice_crop_path(crop_path, segments)
            words, c0, c1 = clip_words(transcript.words, segments, fps), 0.0, spliced_duration(segments, fps)
        else:
            segments, clip_path = (), crop_path
            words, c0, c1 = list(transcript.words_between(m.start, m.end)), m.start, m.end
        all_segments.append(segments)
        captions = runner.run(
            st.captions,
            CaptionsRequest(words, options.caption_preset, geometry.out_w, geometry.out_h, c0, c1,
                            out_dir / clip_name(i, "ass")),
            within=CLIP_STEPS["captions"], **where,
        )
        rendered = runner.run(
            st.render,
            RenderRequest(media, m.start, m.end, clip_geometry, clip_path,
                          captions if options.caption_preset != "none" else None,
                          out_dir / clip_name(i, "mp4"), segments=segments),
            within=CLIP_STEPS["render"], **where,
        )
        durations.append(rendered.duration)
        runner.run(
            st.poster,
            PosterRequest(media, m.start, m.end, clip_geometry, crop_path,
                          kept_faces(faces, segments) if segments else faces, out_dir / clip_name(i, "jpg")),
            within=CLIP_STEPS["poster"], **where,
        )
    return runner.run(
        st.manifest,
        ManifestRequest(job_id, media, options, selection, transcript, durations, out_dir,
                        clip_segments=all_segments, speakers=speaker_analysis(diarization, host, remove),
                        clip_framing=framings, notes=layout_notes(options, geometry)),
    )


def splice_plans(selection: MomentSelection, transcript: Transcript, cut_speaker: str | None, fps: float,
                 options: ProcessOptions) -> tuple[MomentSelection, list[tuple[tuple[float, float], ...]]]:
    """Each moment's kept source segments once ``cut_speaker``'s turns are cut out.

    A moment left with nothing (only the host spoke in it) is dropped; one that the cut makes
    shorter than the clip-length range is kept, and the notes say so.
    """
    if cut_speaker is None:
        return selection, [plan_segments(m.start, m.end, transcript.words, None, fps) for m in selection.moments]
    lo = options.clip_length_range[0]
    kept: list[Moment] = []
    plans: list[tuple[tuple[float, float], ...]] = []
    notes = list(selection.notes)
    dropped = 0
    for m in selection.moments:
        segments = plan_segments(m.start, m.end, transcript.words, cut_speaker, fps)
        if not segments:
            dropped += 1
            continue
        length = spliced_duration(segments, fps)
        if length < lo - 1.0 / fps:
            notes.append(f"clip {len(kept) + 1} lasts {length:.1f} s once the host's turns are cut, "
                         f"under the {options.clip_length} range's {lo:g} s")
        kept.append(m)
        plans.append(segments)
    if dropped:
        notes.append(f"{dropped} chosen moment{'s' if dropped > 1 else ''} held only the host's speech "
                     "and {} dropped".format("were" if dropped > 1 else "was"))
    return replace(selection, moments=tuple(kept), notes=tuple(notes)), plans


def genre_faces(st: StageSet, media: MediaInfo, span: tuple[float, float], options: ProcessOptions,
                runner: StageRunner, samples: int = 6) -> tuple[FaceSample, ...]:
    """A few face samples spread over the span, for ``genre: auto`` (how many people are on camera)."""
    if options.mode != "ai" or options.genre != "auto" or media.width <= 0:
        return ()
    if (runner.cache_dir / "highlights.json").is_file():  # the moments are cached: no survey needed
        return ()
    ctx = runner.ctx.for_stage("genre")  # progress of this survey is not reported
    step = (span[1] - span[0]) / (samples + 1)
    found: list[FaceSample] = []
    try:
        for k in range(1, samples + 1):
            t = span[0] + k * step
            found += st.faces.process(FaceDetectRequest(media, t, min(span[1], t + 0.3)), ctx)[:1]
    except ClipporaError as exc:  # the genre is a hint; a failed survey must not fail the job
        ctx.log.warning("face survey for the genre failed: %s", exc.message)
        return ()
    return tuple(found)


def layout_notes(options: ProcessOptions, geometry: OutputGeometry) -> tuple[str, ...]:
    if options.layout == "split" and not is_split_aspect(geometry):
        why = "is for 9:16 outputs" if options.aspect_ratio != "9:16" else "needs a source wider than 9:16"
        return (f"layout split {why}; clips follow the active speaker instead",)
    return ()


def framing_analysis(path: CropPath, layout: str) -> dict[str, Any]:
    """A clip's ``framing`` entry: what the camera did and which face each speaker was linked to."""
    out: dict[str, Any] = {
        "layout": "split" if path.subject == "split" else ("follow" if path.subject == "speakers" else "single"),
        "requested": layout,
        "subject": path.subject,
        "speakers": {lk.speaker: {"faceTrack": lk.track, "confidence": lk.confidence, "faceX": lk.face_x}
                     for lk in path.links},
    }
    if path.note:
        out["note"] = path.note
    return out


def speaker_analysis(diarization: Diarization, host: HostDecision, removed: bool) -> dict[str, Any]:
    """The manifest's ``speakers`` entry: what diarization found and what was decided."""
    return {
        "diarization": {
            "available": diarization.available,
            "method": diarization.method,
            "speakers": len(diarization.speakers),
            "turns": len(diarization.turns),
            "quality": diarization.quality,
            **({"note": diarization.note} if diarization.note else {}),
        },
        "host": {
            "interview": host.interview,
            "speaker": host.host,
            "confidence": host.confidence,
            "synthetic": host.synthetic,
            "removed": removed,
            "reason": host.reason,
            "features": host.features,
        },
    }


def job_function(settings: Settings, stages: StageSet | None = None):  # -> engine.executor.JobFunction
    """The job function the gateway's executor runs: the same run_job as the CLI.

    The moment provider is built once here, so unusable provider settings stop the server at
    startup (MomentsConfigError names the setting) instead of failing every job.
    """
    build_provider(settings)
    shared = stages or StageSet()

    def run(job, source: Path, out_dir: Path, work_dir: Path, bus: EventBus,
            cancel: threading.Event) -> dict[str, Any]:
        options = ProcessOptions.from_json(job.options)
        return run_job(source, out_dir, options, settings, job_id=job.id, bus=bus, cancel=cancel,
                       workdir=work_dir, stages=shared)

    return run
