"""probe: learn what the source is, and reject what is not a usable video.

Accepts MP4/MOV/MKV/WEBM (decided from the content, not the file name). Rejects, with
a message for the user: no video stream, a video stream that does not decode, zero
duration, other containers.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from engine.errors import InvalidMedia
from engine.stage import Stage, StageContext
from engine.types import MediaInfo
from stages.media_io import open_media

# FFmpeg demuxer names for the containers the API accepts.
_ACCEPTED_FORMATS = {"mov", "mp4", "m4a", "3gp", "3g2", "mj2", "matroska", "webm"}

# Frame durations may differ by this fraction of the mean before a stream counts as VFR.
_VFR_TOLERANCE = 0.02
_VFR_SAMPLE_FRAMES = 120


@dataclass(frozen=True)
class ProbeRequest:
    path: Path


class ProbeStage(Stage[ProbeRequest, MediaInfo]):
    name = "probe"

    def process(self, inputs: ProbeRequest, ctx: StageContext) -> MediaInfo:
        ctx.progress(0.0, "reading the container")
        info = probe_media(inputs.path)
        ctx.progress(1.0, f"{info.width}x{info.height} {info.fps:.2f} fps, {info.duration:.1f} s")
        return info


def probe_media(path: Path) -> MediaInfo:
    """Open ``path`` and describe it, or raise InvalidMedia saying why it cannot be used."""
    if not path.is_file():
        raise InvalidMedia(f"source file not found: {path.name}")
    if path.stat().st_size == 0:
        raise InvalidMedia("the source file is empty")
    with open_media(str(path)) as container:
        formats = set(container.format.name.split(","))
        if not formats & _ACCEPTED_FORMATS:
            raise InvalidMedia(
                f"unsupported container '{container.format.name}': MP4, MOV, MKV or WEBM expected"
            )
        if not container.streams.video:
            raise InvalidMedia("the source has no video stream")
        vstream = container.streams.video[0]
        astream = container.streams.audio[0] if container.streams.audio else None
        start_time = float(container.start_time / av.time_base) if container.start_time else 0.0

        first_frame, frame_times = _decode_head(container, vstream)
        if first_frame is None:
            raise InvalidMedia("the video stream could not be decoded")
        duration = _duration(container, vstream, astream)
        if duration <= 0.0:
            raise InvalidMedia("the source has zero duration")

        rate = vstream.average_rate or vstream.guessed_rate or vstream.base_rate
        if not rate or float(rate) <= 0 or float(rate) > 240:
            rate = _rate_from_times(frame_times)
        fps = float(rate)
        rotation = int(getattr(first_frame, "rotation", 0) or 0) % 360
        coded_w, coded_h = first_frame.width, first_frame.height
        upright_w, upright_h = (coded_h, coded_w) if rotation in (90, 270) else (coded_w, coded_h)
        return MediaInfo(
            path=str(path),
            container=container.format.name,
            duration=round(duration, 3),
            width=upright_w,
            height=upright_h,
            coded_width=coded_w,
            coded_height=coded_h,
            rotation=rotation,
            fps=fps,
            fps_num=int(rate.numerator),
            fps_den=int(rate.denominator),
            is_vfr=_is_vfr(frame_times),
            video_codec=vstream.codec_context.name,
            has_audio=astream is not None,
            audio_codec=astream.codec_context.name if astream else None,
            audio_sample_rate=int(astream.rate) if astream and astream.rate else None,
            audio_channels=int(astream.channels) if astream else None,
            start_time=start_time,
        )


def _decode_head(
    container: av.container.InputContainer, vstream: av.VideoStream
) -> tuple[av.VideoFrame | None, list[float]]:
    """Decode the first frames: proves the stream decodes and gives frame timing."""
    first = None
    times: list[float] = []
    tb = float(vstream.time_base)
    try:
        for frame in container.decode(vstream):
            if first is None:
                first = frame
            if frame.pts is not None:
                times.append(frame.pts * tb)
            if len(times) >= _VFR_SAMPLE_FRAMES:
                break
    except av.error.FFmpegError:
        if first is None:
            return None, []
    return first, times


def _duration(container: av.container.InputContainer, vstream, astream) -> float:
    candidates = []
    if vstream.duration is not None and vstream.time_base is not None:
        candidates.append(float(vstream.duration * vstream.time_base))
    if container.duration is not None:
        candidates.append(container.duration / av.time_base)
    if astream is not None and astream.duration is not None and astream.time_base is not None:
        candidates.append(float(astream.duration * astream.time_base))
    candidates = [c for c in candidates if c > 0]
    # The video stream's own duration is the truth for how many frames there are.
    return candidates[0] if candidates else 0.0


def _rate_from_times(times: list[float]):
    from fractions import Fraction

    if len(times) < 2:
        return Fraction(25, 1)
    d = np.diff(sorted(times))
    d = d[d > 0]
    return Fraction(1.0 / float(np.median(d))).limit_denominator(1001) if d.size else Fraction(25)


def _is_vfr(times: list[float]) -> bool:
    if len(times) < 3:
        return False
    d = np.diff(sorted(times))
    d = d[d > 0]
    if d.size < 2:
        return False
    return bool((d.max() - d.min()) > _VFR_TOLERANCE * d.mean() + 1e-6)
