"""audio: the trimmed source audio as 16 kHz mono PCM, plus its speech energy curve."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import av
import numpy as np

from engine.stage import Resources, Stage, StageContext
from engine.storage import atomic_path
from engine.types import AnalysisAudio, AudioAnalysis, AudioFeatures, MediaInfo
from stages.media.decode import open_media

SAMPLE_RATE = 16_000
ENERGY_HOP = 0.05  # seconds per RMS value


@dataclass(frozen=True)
class AudioRequest:
    media: MediaInfo
    start: float
    end: float


class AudioStage(Stage[AudioRequest, AudioAnalysis]):
    name = "audio"
    resources = Resources(cpus=1.0)  # one FFmpeg decode to 16 kHz

    def process(self, inputs: AudioRequest, ctx: StageContext) -> AudioAnalysis:
        media = inputs.media
        empty = AudioFeatures(start=inputs.start, hop=ENERGY_HOP, rms_db=())
        if not media.has_audio:
            ctx.progress(1.0, "no audio stream: clips will have no captions")
            return AudioAnalysis(None, empty)
        out = Path(ctx.workdir) / "audio_16k.npy"
        with atomic_path(out) as tmp:  # written as it decodes: the track is never held whole
            decode_mono_16k_to(tmp, media, inputs.start, inputs.end, ctx)
        track = AudioFile(out)
        ctx.progress(1.0, f"{len(track) / SAMPLE_RATE:.1f} s of audio")
        return AudioAnalysis(
            AnalysisAudio(str(out), inputs.start, SAMPLE_RATE, len(track) / SAMPLE_RATE),
            AudioFeatures(inputs.start, ENERGY_HOP, tuple(rms_db(track))),
        )


class _ArraySink:
    def __init__(self, n: int) -> None:
        self.samples = np.zeros(n, dtype=np.float32)
        self.size = n

    def write(self, lo: int, data: np.ndarray) -> None:
        self.samples[lo:lo + len(data)] = data


class _NpySink:
    """A float32 ``.npy`` of ``n`` samples, zero until written, written in place piece by piece."""

    def __init__(self, fh: BinaryIO, n: int) -> None:
        np.lib.format.write_array_header_1_0(fh, {"descr": np.lib.format.dtype_to_descr(np.dtype("<f4")),
                                                  "fortran_order": False, "shape": (n,)})
        self.fh, self.size, self.offset = fh, n, fh.tell()
        fh.truncate(self.offset + 4 * n)  # zeros (a sparse file where nothing is written)

    def write(self, lo: int, data: np.ndarray) -> None:
        self.fh.seek(self.offset + 4 * lo)
        self.fh.write(data.astype("<f4", copy=False).tobytes())


def decode_mono_16k(
    media: MediaInfo, start: float, end: float, ctx: StageContext | None = None
) -> np.ndarray:
    """Source audio in [start, end) as float32 mono at 16 kHz (zero-filled where missing), in memory."""
    sink = _ArraySink(max(0, int(round((end - start) * SAMPLE_RATE))))
    _decode_into(sink, media, start, end, ctx)
    return sink.samples


def decode_mono_16k_to(path: str | Path, media: MediaInfo, start: float, end: float,
                       ctx: StageContext | None = None) -> int:
    """:func:`decode_mono_16k` written to an ``.npy`` at ``path`` as it decodes; the sample count."""
    n = max(0, int(round((end - start) * SAMPLE_RATE)))
    with open(path, "wb") as fh:
        _decode_into(_NpySink(fh, n), media, start, end, ctx)
    return n


#: samples per resampled frame: libav re-chunks them inside the resampler, so Python handles one frame
#: per second of audio instead of one per AAC frame (21 ms), which cost 3x the decoding itself
RESAMPLED_FRAME = SAMPLE_RATE
#: seconds of source between progress reports (and cancellation checks) while decoding
PROGRESS_EVERY_S = 5.0


def _decode_into(sink: _ArraySink | _NpySink, media: MediaInfo, start: float, end: float,
                 ctx: StageContext | None) -> None:
    n_total = sink.size
    resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE, frame_size=RESAMPLED_FRAME)
    with open_media(media.path) as container:
        stream = container.streams.audio[0]
        if start > 0.5:
            container.seek(int((start + media.start_time) / stream.time_base), stream=stream)
        pos: int | None = None  # output sample index of the next resampled sample
        first: float | None = None  # the first decoded frame's time: where the resampled samples begin
        told = -PROGRESS_EVERY_S
        tb = float(stream.time_base or 0)  # a float per frame: Fraction arithmetic cost 0.25 s per 10 min
        for packet_frame in container.decode(stream):
            if packet_frame.pts is None:
                continue
            if first is None:  # the anchor, exactly as the frame's own Fraction time gives it
                first = float(packet_frame.pts * packet_frame.time_base) - media.start_time
            t = packet_frame.pts * tb - media.start_time if tb else first
            if t >= end:
                break
            for rf in resampler.resample(packet_frame):
                pos = _place(sink, rf, first, start, pos)
            if ctx is not None and n_total and t - told >= PROGRESS_EVERY_S:
                told = t
                ctx.progress(min(1.0, (t - start) / max(end - start, 1e-6)), "decoding audio")
                ctx.check_cancelled()
        for rf in resampler.resample(None):
            pos = _place(sink, rf, first, start, pos)


def _place(sink: _ArraySink | _NpySink, rf: av.AudioFrame, t: float | None, start: float, pos: int | None) -> int:
    data = rf.to_ndarray().reshape(-1).astype(np.float32, copy=False)
    if pos is None:
        # Anchor the first resampled frame on the first decoded frame's timestamp; then stay
        # contiguous so resampler latency never opens gaps or overlaps.
        pos = int(round(((t if t is not None else start) - start) * SAMPLE_RATE))
    lo, hi = pos, pos + data.size
    src_lo = max(0, -lo)
    lo_c, hi_c = max(lo, 0), min(hi, sink.size)
    if hi_c > lo_c:
        sink.write(lo_c, data[src_lo : src_lo + (hi_c - lo_c)])
    return hi


def rms_db(samples: np.ndarray | AudioFile, hop: float = ENERGY_HOP, rate: int = SAMPLE_RATE,
           piece_hops: int = 1200) -> np.ndarray:
    """RMS level in dBFS per ``hop`` seconds, ``piece_hops`` hops (60 s) read at a time."""
    n = int(hop * rate)
    count = len(samples) // n
    out = np.zeros(count, dtype=np.float32)
    for a in range(0, count, piece_hops):
        b = min(count, a + piece_hops)
        frames = np.asarray(samples[a * n:b * n]).astype(np.float64).reshape(-1, n)
        rms = np.sqrt(np.mean(frames ** 2, axis=1))
        out[a:b] = np.round(20 * np.log10(np.maximum(rms, 1e-5)), 2)
    return out


class AudioFile:
    """Ranges of the analysis audio (an ``.npy`` of float32 samples), read from disk as asked.

    Nothing is kept: a stage that walks a 4-hour source in one-minute pieces holds one piece
    (3.7 MiB) at a time. Reads go through the file (not a memory map), so what was read does
    not stay in the process's resident set. ``samples[a:b]`` works as on an array.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        with open(self.path, "rb") as fh:
            major, _ = np.lib.format.read_magic(fh)
            header = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
            shape, fortran, dtype = header(fh)
            self._offset = fh.tell()
        if len(shape) != 1 or fortran:
            raise ValueError(f"{self.path} is not 1-D audio")
        self.dtype = np.dtype(dtype)
        self.n = int(shape[0])

    @classmethod
    def of(cls, audio: AnalysisAudio) -> AudioFile:
        return cls(audio.path)

    def __len__(self) -> int:
        return self.n

    def read(self, lo: int, hi: int) -> np.ndarray:
        """Samples [lo, hi) clipped to the file, as float32."""
        lo, hi = max(0, min(lo, self.n)), max(0, min(hi, self.n))
        if hi <= lo:
            return np.zeros(0, np.float32)
        with open(self.path, "rb") as fh:
            fh.seek(self._offset + lo * self.dtype.itemsize)
            return np.fromfile(fh, self.dtype, hi - lo).astype(np.float32, copy=False)

    def __getitem__(self, key: slice) -> np.ndarray:
        if not isinstance(key, slice) or key.step not in (None, 1):
            raise TypeError("AudioFile supports contiguous slices only")
        lo, hi, _ = key.indices(self.n)
        return self.read(lo, hi)

    def span(self, lo: int, hi: int) -> AudioSpan:
        """[lo, hi) of the file as a sliceable view (nothing is read until it is sliced)."""
        lo, hi = max(0, min(lo, self.n)), max(0, min(hi, self.n))
        return AudioSpan(self, lo, max(lo, hi))

    def pieces(self, size: int, lo: int = 0, hi: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
        """(first sample, samples) of [lo, hi) in pieces of at most ``size`` samples."""
        hi = self.n if hi is None else min(hi, self.n)
        for a in range(max(0, lo), hi, size):
            yield a, self.read(a, min(a + size, hi))

    def mean_square(self, piece: int = 16_000 * 60) -> float:
        """mean(x^2) over the whole file, accumulated in float64 piece by piece."""
        total = 0.0
        for _, x in self.pieces(piece):
            total += float(np.dot(x.astype(np.float64), x.astype(np.float64)))
        return total / self.n if self.n else 0.0


class AudioSpan:
    """A contiguous range of an :class:`AudioFile`; ``len()`` and slices, relative to its start."""

    def __init__(self, file: AudioFile, lo: int, hi: int) -> None:
        self.file, self.lo, self.hi = file, lo, hi

    def __len__(self) -> int:
        return self.hi - self.lo

    def __getitem__(self, key: slice) -> np.ndarray:
        if not isinstance(key, slice) or key.step not in (None, 1):
            raise TypeError("AudioSpan supports contiguous slices only")
        a, b, _ = key.indices(len(self))
        return self.file.read(self.lo + a, self.lo + b)
