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
from stages.media import AudioClipper, i420_frame, keyframe_times, on_screen_frames, read_ahead, upright_i420
from stages.output.chunks import (
    Chunk,
    ChunkEncoder,
    SharedSprites,
    chunk_count,
    chunk_threads,
    configure_x264,
    encode_batch,
    open_chunk_encoder,
    plan_chunks,
)
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

    def __init__(self, decode_threads: int = 0) -> None:
        self.free: queue.SimpleQueue[EncoderFrame] = queue.SimpleQueue()
        self.decode_threads = decode_threads  # 0 = libavcodec's automatic threading

    def frames(self, media: MediaInfo, start: float, end: float) -> Iterator[tuple[float, tuple]]:
        return pyav_i420_frames(media, start, end, self.decode_threads)

    def paint(self, batches: Iterator[FrameBatch], geo: OutputGeometry, path: CropPath,
              captions: SpriteSource | None, rate: Fraction) -> Iterator[FrameBatch]:
        return _frame_batches(batches, geo, path, captions, rate, self.free)

    def done(self, batch: FrameBatch, i: int) -> None:
        self.free.put((batch.frames[i], tuple(p[i] for p in batch.planes)))


def render_clip(req: RenderRequest, out_file: Path, ctx: StageContext, painter: Painter | None = None) -> int:
    """Render one clip into ``out_file``; returns the frames written.

    On the CPU the clip is cut into time chunks (:mod:`stages.output.chunks`) that decode, frame
    and encode at once, one libx264 each, and join into one stream; a given ``painter`` (the
    CUDA backend's) renders it in one piece.
    """
    media, geo = req.media, req.geometry
    rate = output_rate(media)
    segments = list(req.segments) or [(req.start, req.end)]
    counts = [max(1, round((b - a) * rate)) for a, b in segments]
    n_out = sum(counts)
    settings = ctx.settings
    parts = [(a, n) for (a, _), n in zip(segments, counts, strict=True)]
    given = painter is not None  # the CUDA backend's: its frames live on the device, in its own pools
    chunks = [Chunk(0, tuple(parts))] if given else _plan(media, parts, rate, ctx)
    threads = chunk_threads(settings.cpu_threads, len(chunks))
    painter = CpuPainter(threads) if painter is None else painter
    captions = req.captions if len(chunks) == 1 or req.captions is None else SharedSprites(req.captions)
    size = settings.batch_frames if given else batch_size(settings.batch_frames, len(chunks), media, geo)
    x264 = (settings.x264_preset, settings.x264_crf, threads if len(chunks) > 1 else settings.threads)

    def framed(chunk: Chunk, chunk_painter: Painter) -> Iterator[FrameBatch]:
        decoded = read_ahead(_decode_segments(media, list(chunk.parts), rate, size, ctx, chunk_painter.frames,
                                             chunk_painter.frame_format, first=chunk.first))
        # Framing runs in its own thread: OpenCV, the GPU kernels and the encoder release the
        # GIL, so framing batch k+1 overlaps encoding batch k.
        return read_ahead(chunk_painter.paint(decoded, geo, req.crop_path, captions, rate))

    with av.open(str(out_file), mode="w", format="mp4", options={"movflags": "+faststart"}) as out:
        vstream = out.add_stream("libx264", rate=rate)
        configure_x264(vstream.codec_context, geo, rate, painter.pix_fmt, *x264)
        audio = (AudioClipper(media, req.start, req.end, out,
                              segments=[(a, a + n / rate) for a, n in parts])
                 if media.has_audio else None)
        helpers = _start_chunks(chunks[1:], vstream.codec_context, geo, rate, x264, framed, ctx, threads)
        if len(helpers) < len(chunks) - 1:  # the encoders' parameter sets differ: one piece after all
            # (the stream's encoder is open with its chunk's threads; the decoder may take them all)
            chunks = [Chunk(0, tuple(parts))]
            captions = req.captions
            if isinstance(painter, CpuPainter):
                painter.decode_threads = 0

        def progress() -> None:
            done = written + sum(h.frames for h in helpers)
            ctx.progress(done / n_out, f"frame {done}/{n_out}")
            ctx.check_cancelled()

        written = 0
        try:
            for outb in framed(chunks[0], painter):
                encode_batch(outb, vstream.encode, painter.done, out.mux)
                written += len(outb)
                if audio is not None:
                    audio.write_until(written / rate)
                progress()
            out.mux(vstream.encode(None))
            for helper in helpers:
                while not helper.wait(0.5):
                    progress()
                if helper.failure is not None:
                    raise helper.failure
                for j, packet in enumerate(helper.packets):
                    packet.stream = vstream
                    out.mux(packet)
                    if audio is not None and j % 16 == 15:
                        audio.write_until((written + j + 1) / rate)
                written += helper.frames
                helper.packets.clear()
        finally:
            for helper in helpers:
                helper.stop()
        if audio is not None:
            audio.finish()
    return written


#: bytes of source (or output) frames per batch, the larger of the two: the frames in flight are a few
#: batches on each side of the decode and framing threads, per chunk, so each frame more per batch costs
#: ~45 MiB at 720p and ~100 MiB at 1080p. Measured (30 s clip, 2 chunks, 9:16 beasty, peak RSS): 1080p
#: 945 / 757 / 660 MiB with 8 / 3 / 2 frames per batch (7.5, 7.6, 7.7 s), 720p 511 / 470 / 423 MiB with
#: 8 / 5 / 4 frames (3.6-3.9 s either way); the encoders and decoders hold the rest
BATCH_BYTES = 6 << 20


def batch_size(most: int, chunks: int, media: MediaInfo, geo: OutputGeometry) -> int:
    """Frames per batch of a CPU render: ``BATCH_BYTES`` of the larger of a source and an output I420 frame,
    at least 2, at most ``most`` (``Settings.batch_frames``) shared among the chunks (frames in flight stay
    what one pipeline holds, however many chunks run)."""
    frame = max(media.width * media.height, geo.out_w * geo.out_h) * 3 // 2
    return max(2, min(max(1, most // chunks), BATCH_BYTES // max(frame, 1)))


def _plan(media: MediaInfo, parts: list[tuple[float, int]], rate: Fraction, ctx: StageContext) -> list[Chunk]:
    n = chunk_count(ctx.settings.render_chunks, ctx.settings.cpu_threads)
    if n <= 1:
        return [Chunk(0, tuple(parts))]
    fps = float(rate)
    keyframes: list[float] = []
    for a, frames in parts:
        keyframes += keyframe_times(media, a, a + frames / fps)
    return plan_chunks(parts, rate, n, keyframes)


def _start_chunks(chunks: list[Chunk], stream_cc: Any, geo: OutputGeometry, rate: Fraction,
                  x264: tuple[str, int, int], framed: Callable[[Chunk, Painter], Iterator[FrameBatch]],
                  ctx: StageContext, decode_threads: int) -> list[ChunkEncoder]:
    """Open a libx264 per later chunk and start each in its thread (none where one's parameter
    sets would differ from the stream's: the clip then renders in one piece)."""
    encoders = []
    for _ in chunks:
        cc = open_chunk_encoder(stream_cc, geo, rate, CpuPainter.pix_fmt, *x264)
        if cc is None:
            ctx.log.warning("render: a chunk encoder's parameter sets differ from the stream's; "
                            "rendering the clip in one piece")
            return []
        encoders.append(cc)
    helpers = []
    for chunk, cc in zip(chunks, encoders, strict=True):
        chunk_painter = CpuPainter(decode_threads)
        helpers.append(ChunkEncoder(cc, lambda c=chunk, p=chunk_painter: framed(c, p), chunk_painter.done))
    for helper in helpers:
        helper.start()
    return helpers


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
#: decoded source frames ``(t, planes)``, upright: the one on screen at ``start`` (up to a frame
#: period before it) and every later one before ``end``
FrameSource = Callable[[MediaInfo, float, float], Iterator[tuple[float, tuple]]]


def pyav_i420_frames(media: MediaInfo, start: float, end: float, threads: int = 0
                     ) -> Iterator[tuple[float, tuple]]:
    """The CPU path's source frames from the one on screen at ``start``: PyAV decode, upright I420
    planes (views of the decoder's buffers)."""
    for t, frame in on_screen_frames(media, start, end, threads):
        yield t, upright_i420(frame, media.rotation)


def _decode_segments(
    media: MediaInfo, parts: list[tuple[float, int]], rate: Fraction, size: int,
    ctx: StageContext, frames: FrameSource = pyav_i420_frames, fmt: FrameFormat = "yuv420p", first: int = 0,
) -> Iterator[FrameBatch]:
    """The parts' frames (source start, output frames) back to back on one output clock, numbered
    from ``first`` (batches never span a cut)."""
    for a, n in parts:
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
    for t, frame_planes in frames(media, start, end):
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
