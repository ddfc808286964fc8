"""Decoding helpers shared by the stages that read frames (faces, render, poster).

Not a stage: it holds the one place that knows how PyAV timestamps, seeking and
rotation metadata work, so every stage sees the same upright frames at the same times.
"""

from __future__ import annotations

import errno
import math
import queue
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TypeVar

import av
import numpy as np

from engine.errors import InvalidMedia
from engine.types import MediaInfo

# Frames whose timestamp is this close before a window start still belong to it: a
# frame shown at start - 1 ms is the one on screen at `start`.
_EPS = 1e-3

T = TypeVar("T")


# Only local files, and only the demuxers of the accepted containers: an uploaded HLS or concat
# playlist (or an SDP, or an image2 pattern) would otherwise open URLs or other files on the server.
OPEN_OPTIONS = {"protocol_whitelist": "file", "format_whitelist": "mov,mp4,m4a,3gp,3g2,mj2,matroska,webm"}


@contextmanager
def open_media(path: str) -> Iterator[av.container.InputContainer]:
    try:
        container = av.open(path, mode="r", options=dict(OPEN_OPTIONS))
    except (av.error.FFmpegError, OSError) as exc:
        if getattr(exc, "errno", None) == errno.EINVAL:  # FFmpeg's answer for a format not on the whitelist
            raise InvalidMedia("unsupported container: MP4, MOV, MKV or WEBM expected") from None
        # strerror only: the full message names the server-side path
        reason = getattr(exc, "strerror", None) or type(exc).__name__
        raise InvalidMedia(f"the source is not a readable video file ({reason})") from None
    try:
        yield container
    finally:
        container.close()


def _rotate_k(rotation: int) -> int:
    """np.rot90 turns for a display rotation (degrees counter-clockwise)."""
    return (int(round(rotation / 90.0)) % 4) if rotation else 0


def upright_rgb(frame: av.VideoFrame, rotation: int) -> np.ndarray:
    rgb = frame.to_ndarray(format="rgb24")
    k = _rotate_k(rotation)
    return np.ascontiguousarray(np.rot90(rgb, k)) if k else rgb


def upright_i420(frame: av.VideoFrame, rotation: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The frame's Y, U, V planes (8-bit 4:2:0), rotated upright.

    Planes are zero-copy views of the decoder's buffers when the source is already
    8-bit 4:2:0 and unrotated; callers must not keep them past the next decode.
    """
    if frame.format.name not in ("yuv420p", "yuvj420p"):
        frame = frame.reformat(format="yuv420p")
    w, h = frame.width, frame.height
    planes = []
    for i, (pw, ph) in enumerate(((w, h), ((w + 1) // 2, (h + 1) // 2), ((w + 1) // 2, (h + 1) // 2))):
        p = frame.planes[i]
        arr = np.frombuffer(p, dtype=np.uint8).reshape(-1, p.line_size)[:ph, :pw]
        planes.append(arr)
    k = _rotate_k(rotation)
    if k:
        planes = [np.ascontiguousarray(np.rot90(p, k)) for p in planes]
    return planes[0], planes[1], planes[2]


def i420_frame(width: int, height: int) -> tuple[av.VideoFrame, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """A new yuv420p frame and writable views of its Y, U, V planes (rows may be padded)."""
    frame = av.VideoFrame(width, height, "yuv420p")
    views = []
    for i, (pw, ph) in enumerate(((width, height), (width // 2, height // 2), (width // 2, height // 2))):
        p = frame.planes[i]
        views.append(np.frombuffer(p, dtype=np.uint8).reshape(-1, p.line_size)[:ph, :pw])
    return frame, (views[0], views[1], views[2])


def seek_to(container: av.container.InputContainer, stream: av.stream.Stream, t: float) -> None:
    """Seek to the keyframe at or before source time ``t`` (seconds)."""
    if t <= 0.5:
        container.seek(0)
        return
    tb = stream.time_base
    container.seek(int(math.floor(t / tb)), stream=stream, backward=True, any_frame=False)


def frame_period(media: MediaInfo) -> float:
    """One frame's duration at the source's average rate (seconds)."""
    return 1.0 / max(media.fps, 1.0)


def on_screen_frames(media: MediaInfo, start: float, end: float, threads: int = 0
                     ) -> Iterator[tuple[float, av.VideoFrame]]:
    """The frame on screen at ``start`` (up to a frame period before it) and every frame before ``end``."""
    return iter_video_frames(media, max(0.0, start - frame_period(media)), end, threads=threads, seek=start)


def iter_video_frames(
    media: MediaInfo, start: float, end: float, container: av.container.InputContainer | None = None,
    threads: int = 0, seek: float | None = None, deblock: bool = True,
) -> Iterator[tuple[float, av.VideoFrame]]:
    """Decoded frames whose source time lies in [start - eps, end), with their times.

    Times are seconds from the start of the source (container start offset removed). ``threads``:
    the decoder's threads (0 = libavcodec's automatic frame + slice threading). ``seek``: decoding
    starts at the keyframe at or before it (default ``start``); a caller that wants the frame on
    screen at a time ``T`` asks for frames from a little before ``T`` but seeks to ``T``, so a
    keyframe just before ``T`` does not send the decoder back a whole GOP. ``deblock=False``: the
    decoder skips its in-loop deblocking filter (libavcodec's ``skip_loop_filter=all``: ~20 % less
    H.264 decode CPU, pictures within a few levels of the true ones near block edges; for analysis
    that looks at frames, never for what is rendered). It applies when this call opens the decoder.
    """
    if container is None:
        with open_media(media.path) as c:
            yield from iter_video_frames(media, start, end, c, threads, seek, deblock)
        return
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    stream.codec_context.thread_count = max(0, threads)
    if not deblock:
        stream.codec_context.options = {**stream.codec_context.options, "skip_loop_filter": "all"}
    seek_to(container, stream, (start if seek is None else seek) + media.start_time)
    tb = float(stream.time_base)
    for frame in container.decode(stream):
        if frame.pts is None:
            continue
        t = frame.pts * tb - media.start_time
        if t < start - _EPS:
            continue
        if t >= end:
            break
        yield t, frame


def keyframe_times(media: MediaInfo, start: float, end: float) -> list[float]:
    """Source times of the video keyframes in [start, end] (packets only: nothing is decoded)."""
    out: list[float] = []
    with open_media(media.path) as c:
        stream = c.streams.video[0]
        seek_to(c, stream, start + media.start_time)
        tb = float(stream.time_base)
        for packet in c.demux(stream):
            if packet.pts is None:
                continue
            t = packet.pts * tb - media.start_time
            if t > end:
                break
            if packet.is_keyframe and t >= start:
                out.append(t)
    return out


def sample_frames(
    media: MediaInfo, start: float, end: float, fps: float
) -> Iterator[tuple[float, np.ndarray]]:
    """Upright RGB frames sampled at ``fps`` over [start, end): (source time, (H, W, 3) uint8).

    Every frame is decoded (codecs need it) but only the sampled ones are converted.
    """
    step = 1.0 / fps
    next_t = start
    for t, frame in iter_video_frames(media, start, end):
        if t + _EPS >= next_t:
            yield t, upright_rgb(frame, media.rotation)
            next_t = max(next_t + step, t + step * 0.5)


def sample_frames_with_previous(
    media: MediaInfo, start: float, end: float, fps: float
) -> Iterator[tuple[float, np.ndarray, np.ndarray, np.ndarray | None]]:
    """Like :func:`sample_frames`, plus the upright luma of each sampled frame and of the frame
    decoded just before it (None for the very first): ``(t, rgb, luma, previous_luma)``.

    The previous frame is decoded anyway, so the extra cost is one plane view per sample.
    """
    step = 1.0 / fps
    next_t = start
    prev: av.VideoFrame | None = None
    for t, frame in iter_video_frames(media, max(0.0, start - 1.5 / max(media.fps, 1.0)), end):
        if t + _EPS >= next_t and t >= start - _EPS:
            luma = upright_i420(frame, media.rotation)[0]
            before = upright_i420(prev, media.rotation)[0] if prev is not None else None
            yield t, upright_rgb(frame, media.rotation), luma, before
            next_t = max(next_t + step, t + step * 0.5)
        prev = frame


def frame_at(media: MediaInfo, t: float) -> np.ndarray | None:
    """The upright RGB frame shown at source time ``t`` (the last frame at or before it)."""
    chosen: av.VideoFrame | None = None
    with open_media(media.path) as c:
        for ft, frame in iter_video_frames(media, max(0.0, t - 2.0), t + 1.0, c):
            if ft > t + _EPS and chosen is not None:
                break
            chosen = frame
            if ft > t + _EPS:
                break
        return None if chosen is None else upright_rgb(chosen, media.rotation)


def read_ahead(source: Iterator[T], depth: int = 2, name: str = "clipora-decode") -> Iterator[T]:
    """``source``'s items, produced in a thread of their own up to ``depth`` items ahead of the consumer:
    decoding (libavcodec and NumPy let go of the GIL) overlaps what the consumer does with the items
    (encoding, a network). An exception in ``source`` is raised in the consumer; a consumer that stops
    early (or fails) stops the producer, which closes ``source`` in its own thread."""
    q: queue.Queue[object] = queue.Queue(maxsize=max(1, depth))
    done = object()
    stop = threading.Event()
    failure: list[BaseException] = []

    def produce() -> None:
        try:
            for item in source:
                while not stop.is_set():
                    try:
                        q.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
        except BaseException as exc:  # handed to the consumer, re-raised there
            failure.append(exc)
        finally:
            close = getattr(source, "close", None)
            if close is not None:
                close()  # a generator's own cleanup (its open container) runs here, not in a later GC
            q.put(done)

    worker = threading.Thread(target=produce, name=name, daemon=True)
    worker.start()
    try:
        while True:
            item = q.get()
            if item is done:
                break
            yield item  # type: ignore[misc]
        if failure:
            raise failure[0]
    finally:
        stop.set()
        while worker.is_alive():
            try:
                q.get_nowait()
            except queue.Empty:
                worker.join(timeout=0.05)
