"""Media in: probing sources, the 16 kHz analysis audio, decoding frames, muxing clip audio."""

from __future__ import annotations

from stages.media.audio import (
    AudioFile,
    AudioRequest,
    AudioSpan,
    AudioStage,
)
from stages.media.decode import (
    frame_at,
    i420_frame,
    iter_video_frames,
    keyframe_times,
    on_screen_frames,
    read_ahead,
    sample_frames_with_previous,
    upright_i420,
    upright_rgb,
)
from stages.media.mux import (
    AudioClipper,
)
from stages.media.probe import (
    ProbeRequest,
    ProbeStage,
    probe_media,
)

__all__ = [
    "AudioClipper",
    "AudioFile",
    "AudioSpan",
    "AudioRequest",
    "AudioStage",
    "ProbeRequest",
    "ProbeStage",
    "frame_at",
    "i420_frame",
    "iter_video_frames",
    "keyframe_times",
    "on_screen_frames",
    "read_ahead",
    "probe_media",
    "sample_frames_with_previous",
    "upright_i420",
    "upright_rgb",
]
