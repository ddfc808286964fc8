"""A clip rendered as time chunks encoded at once: several libx264 instances, one H.264 stream.

One libx264 with frame threads keeps ~1.4 of 2 cores busy at ``veryfast`` (its threads wait on
each other's reference rows, and the decode -> framing -> encode chain has its own stalls). A
clip cut into chunks that decode, frame and encode side by side keeps every core busy, the
way cloud encoders do it, and with one decoder and one encoder thread per chunk (on 2 cores) it
spends fewer CPU seconds than frame threads do on the same work. The chunks join into one stream without re-encoding:

- every chunk's encoder is libx264 opened with the same settings, so its SPS/PPS (the MP4's
  ``avcC``) are byte-identical to the first chunk's; this is checked when the encoders open,
  and a mismatch renders the clip in one chunk instead;
- each chunk's encoder sees the clip's own frame numbers as PTS, so its first picture is an
  IDR and its decode timestamps continue where the previous chunk's stop (x264 derives DTS
  from the PTS it was given, and the B-frame delay is the same for equal settings);
- a chunk after the first starts, where one is near, just after a source keyframe (its
  decoder then reads no frame before its window) or at a cut of a spliced clip.

The cost is one IDR picture per extra chunk (at the same CRF, a few kB) and, where no
keyframe is near the middle, the second decoder reading from the keyframe before its start.
Chunks after the first keep their compressed packets in memory until the first chunk's are
muxed (a 60 s 1080x1920 clip at CRF 21 is a few MB).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import av
from av.codec.context import Flags

from engine.types import FrameBatch, OutputGeometry
from kernels.composite import Sprite

#: an output segment: (source start in seconds, output frames), frames back to back from there
Part = tuple[float, int]

#: no chunk is shorter than this many seconds of output (an extra IDR and decoder start each)
MIN_CHUNK_S = 3.0


@dataclass(frozen=True)
class Chunk:
    """Output frames ``first .. first + frames`` of a clip, taken from ``parts`` back to back."""

    first: int
    parts: tuple[Part, ...]

    @property
    def frames(self) -> int:
        return sum(n for _, n in self.parts)


def configure_x264(cc: Any, geo: OutputGeometry, rate: Fraction, pix_fmt: str, preset: str, crf: int,
                   threads: int) -> None:
    """The one libx264 configuration of a render (the stream's encoder and every chunk's)."""
    # libx264 takes NV12 as it takes I420: the same bitstream (x264 holds chroma as NV12 itself)
    cc.width, cc.height, cc.pix_fmt = geo.out_w, geo.out_h, pix_fmt
    cc.time_base = 1 / rate
    cc.framerate = rate
    cc.options = {"preset": preset, "crf": str(crf)}
    # 0 = let x264 size its own frame/lookahead threads, as the ffmpeg CLI does; frame threads as
    # the CLI's (PyAV's default is slice threads: at the same CRF ~6-16 % more bytes on our clips)
    cc.thread_count = max(0, threads)
    cc.thread_type = "FRAME"


def chunk_count(setting: int, cpu_threads: int) -> int:
    """How many chunks a clip is cut into at most: the setting, or (0 = auto) one per core up to 4."""
    if setting > 0:
        return setting
    return max(1, min(cpu_threads, 4))


def chunk_threads(cpu_threads: int, n_chunks: int) -> int:
    """Decoder and libx264 threads of each chunk: the cores shared out (0 = the codecs' own
    automatic threading, for a clip in one piece). Chunks side by side cost less CPU than the
    same work in one decoder and one encoder with frame threads: on 2 cores one thread each
    decodes 1080p H.264 in 0.72x the CPU seconds of libavcodec's automatic frame threads, and
    encodes in ~0.94x those of libx264's 3 frame threads (BENCHMARKS.md section 1)."""
    return 0 if n_chunks <= 1 else max(1, cpu_threads // n_chunks)


def plan_chunks(parts: Sequence[Part], rate: Fraction, n_chunks: int,
                keyframes: Sequence[float] = (), min_frames: int | None = None) -> list[Chunk]:
    """Cut the output timeline into ``n_chunks`` (fewer where the clip is short) of about equal length.

    Each cut lands, where one lies within a fifth of a chunk of the ideal place, on a cut of the
    clip's own segments or just after a source keyframe (``keyframes``, source seconds), so that
    the next chunk's decoder starts without reading frames before its window.
    """
    fps = float(rate)
    total = sum(n for _, n in parts)
    min_frames = min_frames if min_frames is not None else max(1, round(MIN_CHUNK_S * fps))
    n_chunks = max(1, min(n_chunks, total // max(1, min_frames)))
    if n_chunks == 1:
        return [Chunk(0, tuple(parts))]
    candidates = _good_cuts(parts, fps, keyframes)
    cuts: list[int] = []
    slack = total / n_chunks / 5
    for j in range(1, n_chunks):
        ideal = round(total * j / n_chunks)
        near = [c for c in candidates if abs(c - ideal) <= slack and (not cuts or c > cuts[-1])]
        cuts.append(min(near, key=lambda c: abs(c - ideal)) if near else ideal)
    chunks: list[Chunk] = []
    rest, first = list(parts), 0
    for cut in [*cuts, total]:
        head, rest = _split(rest, cut - first, fps)
        chunks.append(Chunk(first, tuple(head)))
        first = cut
    return chunks


def _good_cuts(parts: Sequence[Part], fps: float, keyframes: Sequence[float]) -> list[int]:
    """Output frames where a chunk may start at no decoding cost: segment cuts, and the frame
    whose decode window (it starts one output period early) begins at a keyframe."""
    out: list[int] = []
    first = 0
    for a, n in parts:
        if first:
            out.append(first)
        for t in keyframes:
            k = math.ceil((t - a) * fps - 1e-6) + 1
            if 0 < k < n:
                out.append(first + k)
        first += n
    return sorted(set(out))


def _split(parts: list[Part], frames: int, fps: float) -> tuple[list[Part], list[Part]]:
    head: list[Part] = []
    rest = list(parts)
    while frames > 0 and rest:
        a, n = rest.pop(0)
        if n <= frames:
            head.append((a, n))
            frames -= n
        else:
            head.append((a, frames))
            rest.insert(0, (a + frames / fps, n - frames))
            frames = 0
    return head, rest


class SharedSprites:
    """A caption track read by several chunks' framing threads at once: its sprite cache and
    FreeType faces are one thread's at a time (a cached state costs a dict lookup under the lock)."""

    def __init__(self, track: Any) -> None:
        self.track = track
        self.band = getattr(track, "band", None)
        self._lock = threading.Lock()

    def sprite_at(self, t: float) -> Sprite | None:
        with self._lock:
            return self.track.sprite_at(t)  # type: ignore[no-any-return]


def encode_batch(batch: FrameBatch, encode: Callable[[Any], list[Any]], done: Callable[[FrameBatch, int], None],
                 sink: Callable[[list[Any]], Any]) -> None:
    """Encode a framed batch's frames in order (clip frame numbers as PTS), each handed back once
    encoded; ``sink`` takes each call's packets (the muxer, or a chunk's packet list)."""
    for i in range(len(batch)):
        frame = batch.frames[i]
        frame.pts = int(batch.index[i])
        sink(encode(frame))
        done(batch, i)


class ChunkEncoder:
    """One chunk after the first: framed and encoded by its own libx264 in a thread of its own.

    ``batches`` yields the chunk's framed batches (encoder-ready frames, clip frame numbers in
    ``index``); ``done(batch, i)`` hands a frame back once encoded. The packets wait in
    ``packets`` until the muxer takes them; ``frames`` counts what is encoded (progress).
    """

    def __init__(self, cc: Any, batches: Callable[[], Iterator[FrameBatch]],
                 done: Callable[[FrameBatch, int], None]) -> None:
        self.cc = cc
        self.packets: list[av.Packet] = []
        self.frames = 0
        self.failure: BaseException | None = None
        self._batches = batches
        self._done = done
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="clipora-chunk", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        source = self._batches()
        try:
            for outb in source:
                encode_batch(outb, self.cc.encode, self._done, self.packets.extend)
                self.frames += len(outb)
                if self._stop.is_set():
                    return
            self.packets.extend(self.cc.encode(None))
        except BaseException as exc:  # handed to the muxing thread, re-raised there
            self.failure = exc
        finally:
            close = getattr(source, "close", None)
            if close is not None:
                close()  # stops the chunk's decode and framing threads

    def wait(self, timeout: float) -> bool:
        """True once the chunk is encoded (or failed: ``failure``)."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def open_chunk_encoder(stream_cc: Any, geo: OutputGeometry, rate: Fraction, pix_fmt: str, preset: str,
                       crf: int, threads: int) -> Any | None:
    """A libx264 for a later chunk, or None where its parameter sets differ from the stream's
    (the chunks could not share one ``avcC``); ``stream_cc`` is opened here to compare."""
    if not stream_cc.is_open:
        stream_cc.open()
    cc = av.CodecContext.create("libx264", "w")
    configure_x264(cc, geo, rate, pix_fmt, preset, crf, threads)
    cc.flags |= Flags.global_header  # parameter sets out of band, as the MP4 muxer asks of the stream
    cc.open()
    return cc if cc.extradata == stream_cc.extradata else None
