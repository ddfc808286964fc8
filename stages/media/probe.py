"""probe: learn what the source is, and reject what is not a usable video.

Accepts MP4/MOV/MKV/WEBM (decided from the content, not the file name). Rejects, with
a message for the user: no video stream, a video stream that does not decode, zero
duration, other containers, and media bombs (:class:`ProbeLimits`: too many streams, frames
beyond 8K, longer than the operator allows), checked from the headers before anything decodes.

``python -m stages.media.probe PATH [--max-duration S]`` prints the MediaInfo (or the error) as JSON:
the gateway probes untrusted files in such a child process, which it can kill when late.
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from engine.errors import InvalidMedia
from engine.stage import Resources, Stage, StageContext
from engine.types import MediaInfo
from stages.media.decode import open_media

# FFmpeg demuxer names for the containers the API accepts.
_ACCEPTED_FORMATS = {"mov", "mp4", "m4a", "3gp", "3g2", "mj2", "matroska", "webm"}

# Frame durations may differ by this fraction of the mean before a stream counts as VFR.
_VFR_TOLERANCE = 0.02
_VFR_SAMPLE_FRAMES = 120
# A frame rate derived from frame times is capped here (render cost; screens show no more).
_MAX_DERIVED_FPS = 60
# Container average_rate and the frame times disagree beyond this fraction: trust the frames.
_RATE_DISAGREEMENT = 0.05
# Derived rates this close to a standard rate snap to it (frame times are rounded to the time base).
_STANDARD_RATES = (Fraction(24000, 1001), Fraction(24), Fraction(25), Fraction(30000, 1001), Fraction(30),
                   Fraction(48), Fraction(50), Fraction(60000, 1001), Fraction(60),
                   Fraction(10), Fraction(12), Fraction(15), Fraction(20))
_SNAP_TOLERANCE = 0.01


@dataclass(frozen=True)
class ProbeLimits:
    """What a source may be at most; the defaults hold everywhere, the duration is the operator's."""

    max_duration_s: float | None = None
    max_side: int = 8192  # 8K (DCI 8192x4320, UHD 7680x4320), either orientation
    max_pixels: int = 8192 * 4320
    max_streams: int = 16


DEFAULT_LIMITS = ProbeLimits()


@dataclass(frozen=True)
class ProbeRequest:
    path: Path


class ProbeStage(Stage[ProbeRequest, MediaInfo]):
    name = "probe"
    resources = Resources(cpus=1.0)

    def process(self, inputs: ProbeRequest, ctx: StageContext) -> MediaInfo:
        ctx.progress(0.0, "reading the container")
        info = probe_media(inputs.path)
        ctx.progress(1.0, f"{info.width}x{info.height} {info.fps:.2f} fps, {info.duration:.1f} s")
        return info


def _hms(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def _check_size(width: int, height: int, limits: ProbeLimits) -> None:
    if max(width, height) > limits.max_side or width * height > limits.max_pixels:
        raise InvalidMedia(f"the video is {width}x{height}; at most 8K ({limits.max_side} pixels a side) is accepted")


def probe_media(path: Path, limits: ProbeLimits = DEFAULT_LIMITS) -> MediaInfo:
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
        if len(container.streams) > limits.max_streams:
            raise InvalidMedia(f"the file has {len(container.streams)} streams; at most {limits.max_streams} "
                               "are accepted")
        vstream = container.streams.video[0]
        astream = container.streams.audio[0] if container.streams.audio else None
        start_time = float(container.start_time / av.time_base) if container.start_time else 0.0
        _check_size(vstream.codec_context.width or 0, vstream.codec_context.height or 0, limits)
        duration = _duration(container, vstream, astream)
        if not math.isfinite(duration) or duration <= 0.0:
            raise InvalidMedia("the source has zero duration")
        if limits.max_duration_s is not None and duration > limits.max_duration_s:
            raise InvalidMedia(f"the video is {_hms(duration)} long; the limit is {_hms(limits.max_duration_s)}")

        first_frame, frame_times = _decode_head(container, vstream)
        if first_frame is None:
            raise InvalidMedia("the video stream could not be decoded")
        _check_size(first_frame.width, first_frame.height, limits)

        is_vfr = _is_vfr(frame_times)
        rate = _frame_rate(vstream.average_rate or vstream.guessed_rate or vstream.base_rate, frame_times, is_vfr)
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
            is_vfr=is_vfr,
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


def _frame_rate(declared, times: list[float], is_vfr: bool) -> Fraction:
    """The rate to treat the source as (and render at).

    The container's ``average_rate`` when it is plausible and agrees with the decoded frame
    times; otherwise (variable frame rate, or a header that disagrees with the frames, as
    Matroska VFR files often have) the fastest rate the frames actually come at, so
    nothing is dropped and nothing is invented, capped at ``_MAX_DERIVED_FPS``.
    """
    declared_ok = bool(declared) and 0 < float(declared) <= 240
    if len(times) < 3:
        return Fraction(declared).limit_denominator(1001) if declared_ok else Fraction(25)
    measured = _rate_from_times(times)
    if declared_ok and not is_vfr and abs(float(declared) / float(measured) - 1.0) <= _RATE_DISAGREEMENT:
        return Fraction(declared).limit_denominator(1001)
    return min(measured, Fraction(_MAX_DERIVED_FPS))


def _rate_from_times(times: list[float]) -> Fraction:
    """The fastest sustained rate in ``times`` (seconds): the mean of the short frame intervals.

    Intervals within 1.5x of the shortest count as "fast" (a time base of 1 ms turns 1/30 s
    into 33 and 34 ms), so a VFR stream at 30 and 12 fps gives 30, not its average.
    """
    if len(times) < 2:
        return Fraction(25, 1)
    d = np.diff(sorted(times))
    d = d[d > 1e-6]
    if not d.size:
        return Fraction(25)
    shortest = float(np.percentile(d, 5))  # one odd short interval is not a rate
    fast = d[d <= shortest * 1.5]
    rate = 1.0 / float(fast.mean())
    nearest = min(_STANDARD_RATES, key=lambda std: abs(rate / float(std) - 1.0))
    if abs(rate / float(nearest) - 1.0) <= _SNAP_TOLERANCE:
        return nearest
    return Fraction(rate).limit_denominator(1001)


def _is_vfr(times: list[float]) -> bool:
    if len(times) < 3:
        return False
    d = np.diff(sorted(times))
    d = d[d > 0]
    if d.size < 2:
        return False
    return bool((d.max() - d.min()) > _VFR_TOLERANCE * d.mean() + 1e-6)


def main(argv: list[str] | None = None) -> int:
    """The gateway's probe child: one JSON line, ``{"media": {...}}`` or ``{"error": "..."}``."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m stages.media.probe")
    parser.add_argument("path", type=Path)
    parser.add_argument("--max-duration", type=float, default=None)
    args = parser.parse_args(argv)
    try:
        info = probe_media(args.path, ProbeLimits(max_duration_s=args.max_duration))
        print(json.dumps({"media": asdict(info)}, allow_nan=False))
    except InvalidMedia as exc:
        print(json.dumps({"error": exc.message}, allow_nan=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
