"""render: one clip, streamed in bounded frame batches, YUV 4:2:0 end to end.

decode (a producer thread, bounded queue) -> crop/resize along the crop path ->
composite caption sprites -> encode H.264 (libx264) + AAC, ``+faststart``.

The output is constant frame rate at the source's average rate: output frame ``k`` shows
the source frame on screen at ``start + k / fps`` (so variable-frame-rate sources come out
in sync). Audio is cut sample-exactly to the same window. Nothing is converted to RGB:
captions arrive as pre-converted YUVA sprites. Memory is a few batches, whatever the
clip length.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal, Protocol

import av
import numpy as np

from engine.errors import JobCancelled
from engine.stage import Resources, Stage, StageContext
from engine.storage import atomic_path
from engine.types import CropPath, FrameBatch, MediaInfo, OutputGeometry
from kernels.composite import Sprite, blend_sprite_i420
from kernels.resize import fit_rect
from stages.captions import FIT_MARGIN, fit_dy
from stages.media import AudioClipper, i420_frame, iter_video_frames, upright_i420
from stages.output.layout import draw_i420, frame_layout, layouts_vary


class SpriteSource(Protocol):
    def sprite_at(self, t: float) -> Sprite | None: ...


@dataclass(frozen=True)
class RenderRequest:
    media: MediaInfo
    start: float
    end: float
    geometry: OutputGeometry
    crop_path: CropPath
    captions: SpriteSource | None
    out_path: Path
    #: a spliced clip: the source segments played back to back (frame-aligned, see
    #: stages.speech.splice); empty = the one window [start, end). The crop path and the
    #: captions are then on the clip timeline (output frame k).
    segments: tuple[tuple[float, float], ...] = ()


@dataclass(frozen=True)
class RenderResult:
    path: Path
    frames: int
    fps: float
    duration: float


class RenderStage(Stage[RenderRequest, RenderResult]):
    name = "render"
    resources = Resources(cpus=2.0)  # decode + framing threads and libx264 on Settings.threads cores

    def process(self, inputs: RenderRequest, ctx: StageContext) -> RenderResult:
        painter: Painter | None = None
        if ctx.backend.is_gpu:
            from stages.output.render_gpu import GpuPainter

            painter = GpuPainter.for_source(inputs.media, ctx.backend, ctx.log)
        with atomic_path(inputs.out_path) as tmp:
            frames = render_clip(inputs, tmp, ctx, painter)
        fps = inputs.media.fps
        return RenderResult(inputs.out_path, frames, fps, frames / fps)


def output_rate(media: MediaInfo) -> Fraction:
    rate = Fraction(media.fps_num, media.fps_den) if media.fps_den else Fraction(media.fps)
    return rate.limit_denominator(1001)


class Painter(Protocol):
    """Where a render's frames come from and how they are painted, per backend.

    ``frames`` decodes the source (upright planes of ``frame_format``); ``paint`` turns resampled
    source batches into batches whose ``frames`` are encoder-ready PyAV frames of ``pix_fmt``;
    ``done(batch, i)`` says frame ``i`` was encoded (libx264 copies the picture inside
    ``encode()``), so its buffers may be filled again.
    """

    pix_fmt: str
    frame_format: FrameFormat

    def frames(self, media: MediaInfo, start: float, end: float) -> Iterator[tuple[float, tuple]]: ...

    def paint(self, batches: Iterator[FrameBatch], geo: OutputGeometry, path: CropPath,
              captions: SpriteSource | None, rate: Fraction) -> Iterator[FrameBatch]: ...

    def done(self, batch: FrameBatch, i: int) -> None: ...


class CpuPainter:
    """The CPU backend: PyAV decode, OpenCV framing into the encoder's own I420 frames."""

    pix_fmt = "yuv420p"
    frame_format: FrameFormat = "yuv420p"

    def __init__(self) -> None:
        self.free: queue.SimpleQueue[EncoderFrame] = queue.SimpleQueue()

    def frames(self, media: MediaInfo, start: float, end: float) -> Iterator[tuple[float, tuple]]:
        return pyav_i420_frames(media, start, end)

    def paint(self, batches: Iterator[FrameBatch], geo: OutputGeometry, path: CropPath,
              captions: SpriteSource | None, rate: Fraction) -> Iterator[FrameBatch]:
        return _frame_batches(batches, geo, path, captions, rate, self.free)

    def done(self, batch: FrameBatch, i: int) -> None:
        self.free.put((batch.frames[i], tuple(p[i] for p in batch.planes)))


def render_clip(req: RenderRequest, out_file: Path, ctx: StageContext, painter: Painter | None = None) -> int:
    media, geo = req.media, req.geometry
    painter = CpuPainter() if painter is None else painter
    rate = output_rate(media)
    segments = list(req.segments) or [(req.start, req.end)]
    counts = [max(1, round((b - a) * rate)) for a, b in segments]
    n_out = sum(counts)
    settings = ctx.settings
    with av.open(str(out_file), mode="w", format="mp4", options={"movflags": "+faststart"}) as out:
        vstream = out.add_stream("libx264", rate=rate)
        # libx264 takes NV12 as it takes I420: the same bitstream (x264 holds chroma as NV12 itself)
        vstream.width, vstream.height, vstream.pix_fmt = geo.out_w, geo.out_h, painter.pix_fmt
        vstream.codec_context.time_base = 1 / rate
        vstream.codec_context.options = {"preset": settings.x264_preset, "crf": str(settings.x264_crf)}
        # 0 = let x264 size its own frame/lookahead threads, as the ffmpeg CLI does
        vstream.codec_context.thread_count = 0 if settings.threads <= 0 else settings.threads
        audio = (AudioClipper(media, req.start, req.end, out,
                              segments=[(a, a + n / rate) for (a, _), n in zip(segments, counts, strict=True)])
                 if media.has_audio else None)

        written = 0
        decoded = _threaded(_decode_segments(media, segments, counts, rate, settings.batch_frames, ctx,
                                             painter.frames, painter.frame_format))
        # Framing runs in its own thread: OpenCV, the GPU kernels and the encoder release the
        # GIL, so framing batch k+1 overlaps encoding batch k.
        framed = _threaded(painter.paint(decoded, geo, req.crop_path, req.captions, rate))
        for outb in framed:
            for i in range(len(outb)):
                frame = outb.frames[i]
                frame.pts = int(outb.index[i])
                out.mux(vstream.encode(frame))
                painter.done(outb, i)
            written += len(outb)
            if audio is not None:
                audio.write_until(written / rate)
            ctx.progress(written / n_out, f"frame {written}/{n_out}")
            ctx.check_cancelled()
        out.mux(vstream.encode(None))
        if audio is not None:
            audio.finish()
    return written


EncoderFrame = tuple[av.VideoFrame, tuple[np.ndarray, np.ndarray, np.ndarray]]


def _frame_batches(
    batches: Iterator[FrameBatch], geo: OutputGeometry, path: CropPath,
    captions: SpriteSource | None, rate: Fraction, free: queue.SimpleQueue[EncoderFrame] | None = None,
) -> Iterator[FrameBatch]:
    """Reframe (and caption) each source batch straight into encoder frames.

    Each output frame is a PyAV frame; the crop/resize and the caption blend write into its
    own planes, and the encoder takes it as is (no copy into a second frame). Frames the
    encoder is done with come back through ``free`` and are filled again: only as many exist
    as are in flight (a few batches), so memory stays flat however long the clip.
    """

    def take() -> EncoderFrame:
        if free is not None:
            try:
                return free.get_nowait()
            except queue.Empty:
                pass
        return i420_frame(geo.out_w, geo.out_h)

    fitted = fit_captions(geo, path, captions)
    for batch in batches:
        made = [take() for _ in range(len(batch))]
        out = tuple([views[p] for _, views in made] for p in range(3))
        outb = reframe_batch(batch, geo, path, out=out)
        outb.frames = [frame for frame, _ in made]
        if captions is not None:
            composite_batch(outb, captions, rate, fitted)
        yield outb


FrameFormat = Literal["yuv420p", "nv12"]
#: decoded source frames ``(t, planes)`` whose time lies in [start - eps, end), upright
FrameSource = Callable[[MediaInfo, float, float], Iterator[tuple[float, tuple]]]


def pyav_i420_frames(media: MediaInfo, start: float, end: float) -> Iterator[tuple[float, tuple]]:
    """The CPU path's source frames: PyAV decode, upright I420 planes (views of the decoder's buffers)."""
    for t, frame in iter_video_frames(media, start, end):
        yield t, upright_i420(frame, media.rotation)


def _decode_segments(
    media: MediaInfo, segments: list[tuple[float, float]], counts: list[int], rate: Fraction, size: int,
    ctx: StageContext, frames: FrameSource = pyav_i420_frames, fmt: FrameFormat = "yuv420p",
) -> Iterator[FrameBatch]:
    """The segments' frames back to back on one output clock (batches never span a cut)."""
    first = 0
    for (a, _), n in zip(segments, counts, strict=True):
        for batch in _decode_batches(media, a, rate, n, size, ctx, frames, fmt):
            batch.index = batch.index + first
            yield batch
        first += n


def _decode_batches(
    media: MediaInfo, start: float, rate: Fraction, n_out: int, size: int, ctx: StageContext,
    frames: FrameSource = pyav_i420_frames, fmt: FrameFormat = "yuv420p",
) -> Iterator[FrameBatch]:
    """Source frames resampled onto the output clock, ``size`` at a time (upright, as ``frames``
    gives them: I420 from PyAV, NV12 device arrays on the CUDA backend).

    Nothing is copied here: each batch's planes are per-frame views of the decoder's own
    frame buffers (kept alive by the views; a frame repeated on the output clock is the same
    view twice). Only the crop window is ever read, by ``reframe_batch``.
    """
    fps = float(rate)
    tol = 0.5 / fps  # a frame within half an output period of T_k is the one on screen
    n_planes = 2 if fmt == "nv12" else 3
    planes: tuple[list[Any], ...] = tuple([] for _ in range(n_planes))
    pts: list[float] = []
    index: list[int] = []
    k = 0
    pending = None  # (t, upright planes) latest frame at or before the next output time

    def emit(t: float, frame_planes: tuple) -> Iterator[FrameBatch]:
        nonlocal k, planes, pts, index
        for acc, plane in zip(planes, frame_planes, strict=True):
            acc.append(plane)
        pts.append(t)
        index.append(k)
        k += 1
        if len(pts) == size:
            yield FrameBatch(fmt, planes, np.array(pts), np.array(index))
            planes, pts, index = tuple([] for _ in range(n_planes)), [], []

    end = start + n_out / fps
    for t, frame_planes in frames(media, max(0.0, start - 1.0 / fps), end):
        if ctx.cancelled:
            raise JobCancelled()
        current = (t, frame_planes)
        while k < n_out and t > start + k / fps + tol:
            yield from emit(*(pending or current))
        pending = current
        if k >= n_out:
            break
    while k < n_out and pending is not None:
        yield from emit(*pending)
    if pts:
        yield FrameBatch(fmt, planes, np.array(pts), np.array(index))


def reframe_batch(batch: FrameBatch, geo: OutputGeometry, path: CropPath, out: tuple | None = None
                  ) -> FrameBatch:
    """Crop + resize (or fit over a blurred fill, or split) every frame of a batch to the output size.

    Each frame is painted by its :func:`stages.output.layout.frame_layout` (the GPU render paints
    the same layouts with the array-module kernels). ``batch.planes`` may be stacked arrays or
    per-frame sequences (``_decode_batches``). ``out``, when given, is where to write: per plane,
    the N frames' (H, W) / (H/2, W/2) views (e.g. of encoder frames); otherwise one packed I420
    array is allocated.
    """
    n = len(batch)
    ow, oh = geo.out_w, geo.out_h
    packed = None
    if out is None:
        # One contiguous I420 buffer per frame (Y rows, then U, then V): the planes are views into it.
        packed = np.empty((n, oh * 3 // 2, ow), np.uint8)
        q = oh // 4
        out = (
            packed[:, :oh],
            packed[:, oh : oh + q].reshape(n, oh // 2, ow // 2),
            packed[:, oh + q :].reshape(n, oh // 2, ow // 2),
        )
    for i in range(n):
        layout = frame_layout(geo, path, int(batch.index[i]), float(batch.pts[i]))
        draw_i420(layout, tuple(p[i] for p in batch.planes), tuple(o[i] for o in out), ow, oh)
    return FrameBatch("yuv420p", out, batch.pts, batch.index, packed=packed)


def composite_batch(batch: FrameBatch, captions: SpriteSource, rate: Fraction,
                    fitted: FitCaptions | None = None) -> None:
    """Blend the caption sprite on screen at each output frame's clip time, in place.

    ``fitted``: on frames of a "fit" shot the sprite moves down into the fill band below the picture.
    """
    for i in range(len(batch)):
        sprite = captions.sprite_at(float(batch.index[i] / rate))
        if sprite is not None:
            if fitted is not None:
                sprite = fitted.place(sprite, float(batch.pts[i]))
            blend_sprite_i420(batch.planes[0][i], batch.planes[1][i], batch.planes[2][i], sprite)


def fit_captions(geo: OutputGeometry, path: CropPath, captions: SpriteSource | None) -> FitCaptions | None:
    """Where captions move on "fit" shots, or None when the clip has no fit shot (or no captions)."""
    fit_shots = layouts_vary(geo, path) and any(s.layout == "fit" for s in path.shots)
    return FitCaptions(path, geo, captions) if captions is not None and fit_shots else None


class FitCaptions:
    """Where captions go on the frames of "fit" shots: in the fill band below the fitted picture.

    The whole caption band (``captions.band``, every sprite lies within it) moves down by one
    even offset so that its top clears the picture's bottom edge by ``margin`` of the output
    height (as far as the frame allows); without a band each sprite moves on its own. The shot
    is looked up by the source time of the frame shown (``batch.pts``), so spliced clips agree.
    """

    def __init__(self, path: CropPath, geo: OutputGeometry, captions: SpriteSource, margin: float = FIT_MARGIN) -> None:
        self.path = path
        _, ry, _, rh = fit_rect(geo.src_w, geo.src_h, geo.out_w, geo.out_h)
        self.picture_top, self.picture_bottom = ry, ry + rh
        self.out_h = geo.out_h
        self.margin = margin
        band = getattr(captions, "band", None)
        self.band_dy: int | None = None
        if band is not None and band[1] > band[0]:
            self.band_dy = self._dy(band[0], band[1] - band[0])
        self._moved: dict[int, tuple[Sprite, Sprite]] = {}

    def _dy(self, top: int, height: int) -> int:
        return fit_dy(top, height, self.picture_bottom, self.out_h, self.margin)

    def place(self, sprite: Sprite, t: float) -> Sprite:
        shot = self.path.shot_at(t)
        if shot is None or shot.layout != "fit":
            return sprite
        got = self._moved.get(id(sprite))
        if got is not None and got[0] is sprite:
            return got[1]
        dy = self.band_dy if self.band_dy is not None else self._dy(sprite.y, sprite.h)
        moved = Sprite(sprite.x, sprite.y + dy, sprite.y_plane, sprite.u, sprite.v, sprite.a, sprite.a2,
                       _prepared=sprite._prepared)
        if len(self._moved) > 256:
            self._moved.clear()
        self._moved[id(sprite)] = (sprite, moved)
        return moved


def _threaded(source: Iterator[FrameBatch], depth: int = 2) -> Iterator[FrameBatch]:
    """Run ``source`` in a producer thread so decoding overlaps encoding; ``depth`` bounds memory."""
    q: queue.Queue[object] = queue.Queue(maxsize=depth)
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
            q.put(done)

    worker = threading.Thread(target=produce, name="clipora-decode", daemon=True)
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

