"""manifest: manifest.json, the shape of GET /api/clips/{jobId} in the API reference."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.options import ProcessOptions
from engine.stage import Resources, Stage, StageContext
from engine.storage import write_json_atomic
from engine.types import CropPath, Diarization, HostDecision, MediaInfo, Moment, MomentSelection, Transcript


def clip_name(index: int, ext: str) -> str:
    return f"clip_{index:02d}.{ext}"


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


_LAYOUTS = {"split": "split", "speakers": "follow", "shots": "shots", "fit": "fit"}


def clip_time(t: float, start: float, end: float, segments: Sequence[tuple[float, float]] = ()) -> float:
    """Source time ``t`` on the clip's own timeline (the kept segments' time before it when spliced)."""
    if not segments:
        return min(max(t, start), end) - start
    return sum(min(max(t - a, 0.0), b - a) for a, b in segments)


def framing_entry(path: CropPath, layout: str, end: float | None = None,
                  segments: Sequence[tuple[float, float]] = ()) -> dict[str, Any]:
    """A clip's ``framing`` entry: what the camera did and which face each speaker was linked to.

    ``shots`` (when the path has them): each shot's clip-relative ``start``/``end`` (seconds,
    after any splicing; a shot spliced out entirely is left out) and its ``layout``: "face",
    "split", "fit" (the whole frame over a blurred fill) or "full" (a resize/pad geometry).
    """
    speakers: dict[str, Any] = {}
    for lk in sorted(path.links, key=lambda lk: lk.confidence):  # the surest link per speaker wins
        speakers[lk.speaker] = {"faceTrack": lk.track, "confidence": lk.confidence, "faceX": lk.face_x}
    out: dict[str, Any] = {
        "layout": _LAYOUTS.get(path.subject, "single"),
        "requested": layout,
        "subject": path.subject,
        "speakers": dict(sorted(speakers.items())),
    }
    if path.shots:
        stop = end if end is not None else path.start + len(path.x) / path.fps
        shots = []
        for s in path.shots:
            a = clip_time(s.start, path.start, stop, segments)
            b = clip_time(min(s.end, stop), path.start, stop, segments)
            if b - a > 1e-6:
                shots.append({"start": round(a, 3), "end": round(b, 3), "layout": s.layout})
        out["shots"] = shots
    if path.note:
        out["note"] = path.note
    return out


@dataclass(frozen=True)
class ManifestRequest:
    job_id: str
    media: MediaInfo
    options: ProcessOptions
    selection: MomentSelection
    transcript: Transcript
    clip_durations: Sequence[float]  # as rendered
    out_dir: Path
    url_prefix: str = "/api/clips"
    #: per clip, the kept source segments when host turns were spliced out (else empty)
    clip_segments: Sequence[Sequence[tuple[float, float]]] = ()
    #: the interview analysis: diarization summary and the host decision
    speakers: dict[str, Any] | None = None
    #: per clip, how it was framed (layout, subject, speaker -> face track links)
    clip_framing: Sequence[dict[str, Any]] = ()
    #: job-level notes beyond the moment selection's (e.g. a layout that fell back)
    notes: Sequence[str] = ()
    #: per clip, the rendered framing as cropPath keyframes (stages.output.croppath)
    clip_crop_paths: Sequence[Sequence[dict[str, Any]]] = ()


class ManifestStage(Stage[ManifestRequest, dict[str, Any]]):
    name = "manifest"
    resources = Resources(cpus=1.0)

    def process(self, inputs: ManifestRequest, ctx: StageContext) -> dict[str, Any]:
        manifest = build_manifest(inputs)
        write_json_atomic(inputs.out_dir / "manifest.json", manifest)
        ctx.progress(1.0, f"{manifest['clipCount']} clips")
        return manifest


def language_entry(transcript: Transcript, requested: str) -> dict[str, Any]:
    """The manifest's ``language``: the code the words were transcribed in, what was asked for, and whether
    the model detected it (with its probability) or it was given (asked for, or an English-only model)."""
    detected = transcript.language_probability is not None
    return {"code": transcript.language, "requested": requested, "detected": detected,
            "probability": transcript.language_probability if detected else None}


def build_manifest(req: ManifestRequest) -> dict[str, Any]:
    base = f"{req.url_prefix}/{req.job_id}"
    clips = [
        _clip_entry(i, m, req, base, req.clip_durations[i - 1])
        for i, m in enumerate(req.selection.moments, start=1)
    ]
    return {
        "jobId": req.job_id,
        "duration": round(req.media.duration, 3),
        "clipCount": len(clips),
        "clips": clips,
        "requestedClips": req.selection.requested,
        "notes": list(req.selection.notes) + list(req.notes),
        "options": req.options.to_json(),
        "language": language_entry(req.transcript, req.options.language),
        # how the moments were chosen: the genre they were scored for, and by which providers
        "moments": {"genre": req.selection.genre,
                    "providers": sorted({m.provider for m in req.selection.moments})},
        **({"speakers": req.speakers} if req.speakers is not None else {}),
    }


def _clip_entry(i: int, m: Moment, req: ManifestRequest, base: str, rendered: float,
                index: int | None = None) -> dict[str, Any]:
    """The manifest entry of the request's ``i``-th clip (1-based), published as clip ``index`` (default i)."""
    segments = list(req.clip_segments[i - 1]) if len(req.clip_segments) >= i else []
    words = req.transcript.words_between(m.start, m.end)
    if segments:  # spliced: only the words that play in the clip (no host words)
        words = tuple(w for w in words if any(a <= (w.start + w.end) / 2 < b for a, b in segments))
    meta = m.metadata
    extra: dict[str, Any] = {}
    if len(req.clip_framing) >= i:
        extra["framing"] = req.clip_framing[i - 1]
    if len(req.clip_crop_paths) >= i and req.clip_crop_paths[i - 1]:
        extra["cropPath"] = [dict(kf) for kf in req.clip_crop_paths[i - 1]]
    if len(segments) > 1 or (segments and (segments[0][0] > m.start + 0.05 or segments[0][1] < m.end - 0.05)):
        extra["segments"] = [[round(a, 3), round(b, 3)] for a, b in segments]
    i_out = i if index is None else index
    return {
        "index": i_out,
        "start": round(m.start, 3),
        "end": round(m.end, 3),
        "duration": round(rendered, 3),
        "score": round(m.score, 1),
        "transcript": " ".join(w.text for w in words),
        "downloadUrl": f"{base}/{clip_name(i_out, 'mp4')}",
        "posterUrl": f"{base}/{clip_name(i_out, 'jpg')}",
        "captionsUrl": f"{base}/{clip_name(i_out, 'ass')}",
        "srtUrl": f"{base}/{clip_name(i_out, 'srt')}",
        "vttUrl": f"{base}/{clip_name(i_out, 'vtt')}",
        "aspectRatio": req.options.aspect_ratio,
        "metadata": {
            "title": meta.title,
            "viral_hook": meta.viral_hook,
            "key_insight": meta.key_insight,
            "dominant_emotion": meta.dominant_emotion,
            "hashtags": list(meta.hashtags),
            "viral_score": round(meta.viral_score, 1),
        },
        "provider": m.provider,
        "scoreBreakdown": m.reasons,
        **extra,
    }


@dataclass(frozen=True)
class ClipEntryRequest:
    """A re-render's finalize: the manifest entry of its one clip (``manifest`` describes just that clip)."""

    manifest: ManifestRequest
    index: int
    edit: dict[str, Any]  # the accumulated edit (engine.edits.ClipEdit.to_json())


class ClipEntryStage(Stage[ClipEntryRequest, dict[str, Any]]):
    """The re-rendered clip's manifest entry, with the edit that made it (the engine publishes it)."""

    name = "manifest"
    resources = Resources(cpus=1.0)

    def process(self, inputs: ClipEntryRequest, ctx: StageContext) -> dict[str, Any]:
        req = inputs.manifest
        base = f"{req.url_prefix}/{req.job_id}"
        entry = _clip_entry(1, req.selection.moments[0], req, base, req.clip_durations[0], index=inputs.index)
        entry["edit"] = dict(inputs.edit)
        if req.notes:
            entry["notes"] = list(req.notes)
        ctx.progress(1.0, f"clip {inputs.index}")
        return entry
