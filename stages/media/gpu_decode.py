"""Source frames as NV12 arrays in GPU memory, for the CUDA backend's render (DESIGN.md section 3).

Two sources with one contract, ``(t, (Y (H, W), UV (H/2, W)))`` per decoded frame in [start - eps,
end), upright, as arrays of the backend's array module (CuPy; NumPy in the tests):

- :func:`nvdec_frames`: PyNvVideoCodec's ``SimpleDecoder`` (NVDEC) in native NV12, handed to CuPy by
  DLPack (no copy), then copied once device-to-device into a frame of our own: the decoder reuses its
  surfaces on the next batch, and the render keeps a few frames in flight (CuPy's memory pool recycles
  those blocks, so GPU memory stays bounded by the frames in flight);
- :func:`uploaded_frames`: PyAV decode on the CPU, each frame's I420 planes uploaded and interleaved
  to NV12 on the device: the fallback for a stream NVDEC cannot take on this GPU (AV1 on Hopper,
  10-bit H.264 before Blackwell; :func:`engine.backends.nvdec_supports`), logged per source.

:func:`gpu_frame_source` picks one per source from the backend's plan and says which and why.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from engine.backends import CudaPlan, nvdec_supports
from engine.types import MediaInfo
from kernels.nv12 import i420_to_nv12, split_nv12_buffer
from stages.media.decode import on_screen_frames, open_media, upright_i420

log = logging.getLogger("clipora.gpu_decode")

_EPS = 1e-3
NVDEC_BATCH = 8  # frames per get_batch_frames call

NV12Frame = tuple[float, tuple[Any, Any]]
NV12Source = Callable[[MediaInfo, float, float], Iterator[NV12Frame]]


@dataclass(frozen=True)
class StreamFormat:
    codec: str
    bit_depth: int
    chroma: str  # "420", "422", "444"
    time_base: float


def stream_format(media: MediaInfo) -> StreamFormat:
    """The video stream's codec, bit depth and chroma layout (what NVDEC support depends on)."""
    with open_media(media.path) as c:
        stream = c.streams.video[0]
        fmt = stream.codec_context.format
        name = fmt.name if fmt is not None else "yuv420p"
        depth = 8
        if fmt is not None and fmt.components:
            depth = max(int(comp.bits) for comp in fmt.components)
        chroma = "444" if "444" in name else "422" if "422" in name else "420"
        return StreamFormat(stream.codec_context.name, depth, chroma, float(stream.time_base))


def _rot90(xp: Any, y: Any, uv: Any, k: int) -> tuple[Any, Any]:
    """Rotate an NV12 frame by k quarter turns (counter-clockwise, like np.rot90), UV pairs kept."""
    if not k:
        return y, uv
    h2, w = uv.shape
    uvc = uv.reshape(h2, w // 2, 2)
    ry = xp.ascontiguousarray(xp.rot90(y, k))
    ruv = xp.ascontiguousarray(xp.rot90(uvc, k, axes=(0, 1)))
    return ry, ruv.reshape(ruv.shape[0], ruv.shape[1] * 2)


def _quarter_turns(rotation: int) -> int:
    return (int(round(rotation / 90.0)) % 4) if rotation else 0


def uploaded_frames(media: MediaInfo, start: float, end: float, *, xp: Any) -> Iterator[NV12Frame]:
    """PyAV decode from the frame on screen at ``start``, each frame's I420 planes uploaded to ``xp``
    and interleaved to NV12, upright."""
    for t, frame in on_screen_frames(media, start, end):
        y, u, v = upright_i420(frame, media.rotation)
        h = int(y.shape[0])
        buf = i420_to_nv12(xp.asarray(y), xp.asarray(u), xp.asarray(v))
        yield t, (buf[:h], buf[h:])


def _surface(xp: Any, frame: Any, w: int, h: int) -> tuple[Any, Any]:
    """(Y, UV) views of a decoded frame's NV12 surface, whatever shape its DLPack export has."""
    buf = xp.from_dlpack(frame)
    if buf.ndim == 3 and buf.shape[-1] == 1:
        buf = buf[..., 0]
    elif buf.ndim == 1 and buf.size >= w * h * 3 // 2:  # a flat frame buffer
        buf = buf[: w * h * 3 // 2].reshape(h * 3 // 2, w)
    return split_nv12_buffer(buf, w, h)


def _frame_time(pts: Any, index: int, fmt: StreamFormat, media: MediaInfo, trust_pts: bool) -> float:
    fps = max(media.fps, 1.0)
    if trust_pts and pts is not None and pts >= 0:
        return pts * fmt.time_base - media.start_time
    return index / fps


def _decoded(decoder: Any, first: int, total: int, batch: int) -> Iterator[tuple[int, Any]]:
    """(index, frame) from ``first`` on, ``batch`` frames per decoder call."""
    decoder.seek_to_index(first)
    index = first
    while index < total:
        frames = decoder.get_batch_frames(batch)
        if not frames:
            return
        for frame in frames:
            yield index, frame
            index += 1


def nvdec_frames(
    media: MediaInfo, start: float, end: float, *, nvc: Any, xp: Any, gpu_id: int = 0,
    batch: int = NVDEC_BATCH,
) -> Iterator[NV12Frame]:
    """NVDEC frames (PyNvVideoCodec ``SimpleDecoder``, native NV12 in device memory) from the one on
    screen at ``start`` (up to a frame period before it) to ``end``; times from each frame's PTS in the
    stream's time base.

    A decoder that cannot be made or fails mid-stream (an elementary stream, no libnvcuvid, a profile
    or size this NVDEC refuses) is not the render's failure: the rest of the window is decoded by
    PyAV and uploaded (:func:`uploaded_frames`), with a warning.
    """
    last = start - 1.0
    try:
        for t, planes in _nvdec_frames(media, start, end, nvc=nvc, xp=xp, gpu_id=gpu_id, batch=batch):
            last = t
            yield t, planes
    except Exception as exc:  # PyNvVideoCodec raises plain Exception/RuntimeError for stream trouble
        resume = max(start, last + 2 * _EPS)
        log.warning("NVDEC failed (%s: %s): PyAV decodes from %.3f s, frames uploaded to the GPU",
                    type(exc).__name__, exc, resume)
        for t, planes in uploaded_frames(media, resume, end, xp=xp):
            if t > last + _EPS:  # the frame on screen at ``resume`` may be one NVDEC already gave
                yield t, planes


def _nvdec_frames(
    media: MediaInfo, start: float, end: float, *, nvc: Any, xp: Any, gpu_id: int, batch: int,
) -> Iterator[NV12Frame]:
    """Two checks guard what was only read from the library's documentation: a first frame whose PTS
    time is far from its index's time, or that repeats on the next frame (not a timestamp in the
    stream's time base), switches to index times (constant frame rate sources), and a first frame
    later than ``start`` (an index map that rounds up) seeks one second further back, once. Both are
    logged."""
    fmt = stream_format(media)
    decoder = nvc.SimpleDecoder(
        str(media.path), gpu_id=gpu_id, use_device_memory=True,
        output_color_type=nvc.OutputColorType.NATIVE,
    )
    total = len(decoder)
    fps = max(media.fps, 1.0)
    # the index at or just before the window (two frames early: the resampler wants the frame on
    # screen at ``start``, and a timestamp-to-index map may round either way)
    first = max(0, int(decoder.get_index_from_time_in_seconds(max(0.0, start + media.start_time))) - 2)
    if first >= total:
        return
    for attempt in range(2):
        frames = _decoded(decoder, first, total, batch)
        head = list(itertools.islice(frames, 2))
        if not head:
            return
        index0, frame0 = head[0]
        pts0 = frame0.getPTS()
        by_pts = _frame_time(pts0, index0, fmt, media, True)
        repeats = len(head) == 2 and head[1][1].getPTS() == pts0
        trust_pts = not repeats and (abs(by_pts - index0 / fps) <= 2.0 or media.is_vfr)
        if not trust_pts:
            log.warning("NVDEC frame %d has PTS %s (%.2f s; the next %s): frame times from the index",
                        index0, pts0, by_pts, "the same" if repeats else "differs")
        t0 = _frame_time(pts0, index0, fmt, media, trust_pts)
        if t0 > start + 0.5 / fps and first > 0 and attempt == 0:
            log.warning("NVDEC seek to %.2f s landed at %.2f s: seeking 1 s earlier", start, t0)
            first = max(0, first - int(round(fps)))
            continue
        # from the frame on screen at ``start``
        yield from _own_frames(xp, itertools.chain(head, frames), start - 1.0 / fps, end, fmt, media, trust_pts)
        return


def _own_frames(xp: Any, frames: Iterator[tuple[int, Any]], start: float, end: float, fmt: StreamFormat,
                media: MediaInfo, trust_pts: bool) -> Iterator[NV12Frame]:
    """Each frame of [start - eps, end) copied off its decoder surface into a frame of our own, upright."""
    k = _quarter_turns(media.rotation)
    h, w = media.coded_height, media.coded_width
    for index, frame in frames:
        t = _frame_time(frame.getPTS(), index, fmt, media, trust_pts)
        if t < start - _EPS:
            continue
        if t >= end:
            return
        y, uv = _surface(xp, frame, w, h)
        own = xp.empty((h * 3 // 2, w), dtype=xp.uint8)  # our own copy: the surface is reused
        own[:h] = y
        own[h:] = uv
        if xp is not np:
            # the copy is done before the decoder refills its surfaces (next batch) and before the
            # painting thread, which may run on another stream, reads the frame
            xp.cuda.get_current_stream().synchronize()
        yield t, _rot90(xp, own[:h], own[h:], k)


def nvdec_reason(fmt: StreamFormat, plan: CudaPlan) -> str:
    if plan.decode != "nvdec":
        return "this plan decodes on the CPU"
    ok, why = nvdec_supports(fmt.codec, fmt.bit_depth, plan.device.compute_capability, fmt.chroma)
    return "the render kernels take 8-bit NV12, NVDEC would hand out 16-bit P016" if ok else why


def gpu_frame_source(media: MediaInfo, plan: CudaPlan, xp: Any, nvc: Any | None = None) -> tuple[NV12Source, str]:
    """The NV12 frame source for this source on this GPU, and why that one (logged)."""
    fmt = stream_format(media)
    path = plan.fallback_for_source(fmt.codec, fmt.bit_depth, fmt.chroma) if plan.decode == "nvdec" else "pyav"
    if path == "nvdec" and fmt.bit_depth > 8:
        # NVDEC would hand out P016 (16-bit) surfaces; the render's kernels take 8-bit NV12
        path = "pyav"
    if path == "nvdec":
        if nvc is None:
            import PyNvVideoCodec as nvc  # type: ignore[import-not-found,no-redef]
        return partial(nvdec_frames, nvc=nvc, xp=xp), f"NVDEC decodes {fmt.bit_depth}-bit {fmt.codec}"
    why = (f"PyAV decodes {fmt.bit_depth}-bit {fmt.codec} {fmt.chroma} (not NVDEC on {plan.device.name}: "
           f"{nvdec_reason(fmt, plan)}), frames uploaded to the GPU as 8-bit NV12")
    log.warning("render: %s", why)
    return partial(uploaded_frames, xp=xp), why
