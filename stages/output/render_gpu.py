"""The render on the CUDA backend: frames stay on the GPU from decode to the finished picture.

NVDEC (or PyAV + upload, per source: :mod:`stages.media.gpu_decode`) -> NV12 in GPU memory ->
each output frame painted by its :func:`stages.output.layout.frame_layout` with the array-module
kernels (crop/resize, blurred fill, split panels: :mod:`kernels.xp_resize`) -> caption sprites
blended on the GPU (:mod:`kernels.xp_composite`) -> **one copy to the host** per finished frame,
into pinned buffers that PyAV wraps as NV12 frames without a copy -> libx264 (H100/H200 have no
NVENC). The muxing, audio, progress and cancellation are the CPU render's own
(:func:`stages.output.render.render_clip` with this painter); clips run in parallel across the host's
cores as the worker schedules clip units.

The kernels are bit-exact with OpenCV and libx264 encodes NV12 to the same bitstream as I420, so
a clip through this painter matches the CPU render frame for frame; ``tests/stages/output/
test_render_gpu.py`` runs the painter with NumPy standing in for CuPy against the CPU render, and the
``gpu`` tests do it on a device.

Memory: at most ``POOL_DEPTH`` batches of output frames exist on each side (device and pinned host);
frames the encoder is done with come back and are painted again. Decoded frames are CuPy pool
blocks, recycled by its memory pool, bounded by the two producer queues.
"""

from __future__ import annotations

import logging
import queue
from collections.abc import Iterator
from fractions import Fraction
from typing import Any

import av
import numpy as np

from engine.backends import Backend
from engine.types import CropPath, FrameBatch, MediaInfo, OutputGeometry
from kernels.xp_composite import blend_sprite_nv12
from stages.media.gpu_decode import NV12Source, gpu_frame_source
from stages.output.layout import draw_nv12, frame_layout
from stages.output.render import FrameFormat, SpriteSource, fit_captions

log = logging.getLogger("clipora.render_gpu")

HostFrame = tuple[av.VideoFrame, Any]  # a PyAV NV12 frame and the (H*3/2, W) host buffer it wraps


class GpuPainter:
    """Decode to and paint on the GPU (``xp`` = CuPy; NumPy in the tests), encode from the host."""

    pix_fmt = "nv12"
    frame_format: FrameFormat = "nv12"

    def __init__(self, xp: Any, source: NV12Source, why: str = "") -> None:
        self.xp = xp
        self.source = source
        self.why = why
        self.free_host: queue.SimpleQueue[HostFrame] = queue.SimpleQueue()
        self.free_device: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.host_frames = 0  # how many host (pinned) frames were ever made: the pool's size
        self.device_frames = 0

    @classmethod
    def for_source(cls, media: MediaInfo, backend: Backend, logger: Any = log) -> GpuPainter:
        if backend.plan is None:
            raise ValueError("the GPU render needs a CUDA plan")
        source, why = gpu_frame_source(media, backend.plan, backend.xp)
        logger.info("render on %s: %s; libx264 encodes from one host copy per frame", backend.plan.device.name, why)
        return cls(backend.xp, source, why)

    def frames(self, media: MediaInfo, start: float, end: float) -> Iterator[tuple[float, tuple]]:
        return self.source(media, start, end)

    # -- buffers ----------------------------------------------------------------------------

    def _device_frame(self, ow: int, oh: int) -> Any:
        try:
            return self.free_device.get_nowait()
        except queue.Empty:
            self.device_frames += 1
            return self.xp.empty((oh * 3 // 2, ow), dtype=self.xp.uint8)

    def _host_frame(self, ow: int, oh: int) -> HostFrame:
        try:
            return self.free_host.get_nowait()
        except queue.Empty:
            pass
        self.host_frames += 1
        if self.xp is np:
            buf = np.empty((oh * 3 // 2, ow), np.uint8)
        else:  # page-locked: the device-to-host copy runs at full PCIe/NVLink speed
            import cupyx  # type: ignore[import-not-found]

            buf = cupyx.empty_pinned((oh * 3 // 2, ow), dtype=np.uint8)
        if oh % 4 == 0:
            # PyAV wraps the buffer as is (its NV12 height is rows // 6 * 4: exact for these heights)
            frame = av.VideoFrame.from_numpy_buffer(buf, format="nv12")
            assert (frame.width, frame.height) == (ow, oh)
        else:  # e.g. 1350 (4:5 at 1080 wide): a frame of its own, filled from the buffer after each download
            frame = av.VideoFrame(ow, oh, "nv12")
        return frame, buf

    def _download(self, dev: Any, host: HostFrame) -> None:
        frame, buf = host
        if self.xp is np:
            np.copyto(buf, dev)
        else:
            dev.get(out=buf)  # synchronous on the current stream: the frame is complete after it
        if frame.height % 4:  # not a view of buf: copy the planes in (one more host copy, these sizes only)
            oh = frame.height
            for plane, rows in ((frame.planes[0], buf[:oh]), (frame.planes[1], buf[oh:])):
                np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)[: rows.shape[0], : rows.shape[1]] = rows

    # -- painting ---------------------------------------------------------------------------

    def paint(self, batches: Iterator[FrameBatch], geo: OutputGeometry, path: CropPath,
              captions: SpriteSource | None, rate: Fraction) -> Iterator[FrameBatch]:
        ow, oh = geo.out_w, geo.out_h
        fitted = fit_captions(geo, path, captions)
        for batch in batches:
            hosts: list[HostFrame] = []
            for i in range(len(batch)):
                k, pts = int(batch.index[i]), float(batch.pts[i])
                dev = self._device_frame(ow, oh)
                dy, duv = dev[:oh], dev[oh:]
                draw_nv12(frame_layout(geo, path, k, pts), batch.planes[0][i], batch.planes[1][i], dy, duv)
                if captions is not None:
                    sprite = captions.sprite_at(float(k / rate))
                    if sprite is not None:
                        if fitted is not None:
                            sprite = fitted.place(sprite, pts)
                        blend_sprite_nv12(dy, duv, sprite)
                host = self._host_frame(ow, oh)
                self._download(dev, host)
                self.free_device.put(dev)
                hosts.append(host)
            yield FrameBatch("nv12", (tuple(h[1][:oh] for h in hosts), tuple(h[1][oh:] for h in hosts)),
                             batch.pts, batch.index, packed=[h[1] for h in hosts], frames=[h[0] for h in hosts])

    def done(self, batch: FrameBatch, i: int) -> None:
        self.free_host.put((batch.frames[i], batch.packed[i]))
