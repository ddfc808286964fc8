"""Speech: transcription, speaker turns, the interview host, and splicing a speaker out."""

from __future__ import annotations

from stages.speech.diarize import (
    DiarizeRequest,
    DiarizeStage,
    diarize,
    load_voice_encoder,
    with_speakers,
)
from stages.speech.host import (
    MIN_CONFIDENCE,
    HostRequest,
    HostStage,
    decide_host,
    speaker_features,
)
from stages.speech.splice import (
    CROSSFADE_S,
    Segment,
    clip_spans,
    clip_words,
    kept_faces,
    plan_edits,
    plan_segments,
    segment_frames,
    splice_crop_path,
    spliced_duration,
    to_clip_time,
)
from stages.speech.transcribe import (
    TranscribeRequest,
    TranscribeStage,
    default_model_path,
    resolve_model,
)

__all__ = [
    "CROSSFADE_S",
    "DiarizeRequest",
    "DiarizeStage",
    "HostRequest",
    "HostStage",
    "MIN_CONFIDENCE",
    "Segment",
    "TranscribeRequest",
    "TranscribeStage",
    "clip_spans",
    "clip_words",
    "decide_host",
    "default_model_path",
    "diarize",
    "kept_faces",
    "load_voice_encoder",
    "plan_edits",
    "plan_segments",
    "resolve_model",
    "segment_frames",
    "speaker_features",
    "splice_crop_path",
    "spliced_duration",
    "to_clip_time",
    "with_speakers",
]
