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

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any

from engine.backends import CudaPlan, nvdec_supports
from engine.types import MediaInfo
from kernels.nv12 import i420_to_nv12, split_nv12_buffer
from stages.media.decode import iter_video_frames, open_media, upright_i420

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
    """PyAV decode, each frame's I420 planes uploaded to ``xp`` and interleaved to NV12, upright."""
    for t, frame in iter_video_frames(media, start, end):
        y, u, v = upright_i420(frame, media.rotation)
        h = int(y.shape[0])
        buf = i420_to_nv12(xp.asarray(y), xp.asarray(u), xp.asarray(v))
        yield t, (buf[:h], buf[h:])


def nvdec_frames(
    media: MediaInfo, start: float, end: float, *, nvc: Any, xp: Any, gpu_id: int = 0,
    batch: int = NVDEC_BATCH,
) -> Iterator[NV12Frame]:
    """NVDEC frames (PyNvVideoCodec ``SimpleDecoder``, native NV12 in device memory) from a little
    before ``start`` to ``end``; times from each frame's PTS in the stream's time base."""
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
    decoder.seek_to_index(first)
    k = _quarter_turns(media.rotation)
    h, w = media.coded_height, media.coded_width
    index = first
    while index < total:
        frames = decoder.get_batch_frames(batch)
        if not frames:
            return
        for frame in frames:
            pts = frame.getPTS()
            t = (pts * fmt.time_base if pts is not None and pts >= 0 else index / fps) - media.start_time
            index += 1
            if t < start - _EPS:
                continue
            if t >= end:
                return
            buf = xp.from_dlpack(frame)
            if buf.ndim == 3 and buf.shape[-1] == 1:
                buf = buf[..., 0]
            y, uv = split_nv12_buffer(buf, w, h)
            own = xp.empty((h * 3 // 2, w), dtype=xp.uint8)  # our own copy: the surface is reused
            own[:h] = y
            own[h:] = uv
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
