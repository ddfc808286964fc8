"""manifest: manifest.json, the shape of GET /api/clips/{jobId} in the API reference."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.options import ProcessOptions
from engine.stage import Stage, StageContext
from engine.storage import write_json_atomic
from engine.types import MediaInfo, Moment, MomentSelection, Transcript


def clip_name(index: int, ext: str) -> str:
    return f"clip_{index:02d}.{ext}"


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


class ManifestStage(Stage[ManifestRequest, dict[str, Any]]):
    name = "manifest"

    def process(self, inputs: ManifestRequest, ctx: StageContext) -> dict[str, Any]:
        manifest = build_manifest(inputs)
        write_json_atomic(inputs.out_dir / "manifest.json", manifest)
        ctx.progress(1.0, f"{manifest['clipCount']} clips")
        return manifest


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
        "notes": list(req.selection.notes),
        "options": req.options.to_json(),
    }


def _clip_entry(i: int, m: Moment, req: ManifestRequest, base: str, rendered: float) -> dict[str, Any]:
    words = req.transcript.words_between(m.start, m.end)
    meta = m.metadata
    return {
        "index": i,
        "start": round(m.start, 3),
        "end": round(m.end, 3),
        "duration": round(rendered, 3),
        "score": round(m.score, 1),
        "transcript": " ".join(w.text for w in words),
        "downloadUrl": f"{base}/{clip_name(i, 'mp4')}",
        "posterUrl": f"{base}/{clip_name(i, 'jpg')}",
        "captionsUrl": f"{base}/{clip_name(i, 'ass')}",
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
    }
