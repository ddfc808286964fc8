"""Cut a source's audio to a clip window, sample-exact, and encode it as AAC into a muxer.

Used by the render stage in lockstep with the video (``write_until`` after each batch),
so packets interleave and memory stays flat. Gaps in the source audio are filled with
silence and the first sample is anchored at the window start, which keeps audio and
video within a frame of each other.
"""

from __future__ import annotations

from collections.abc import Iterator
from fractions import Fraction

import av
import numpy as np

from engine.types import MediaInfo
from stages.media_io import open_media

OUT_RATE = 48_000
AAC_FRAME = 1024


class AudioClipper:
    def __init__(self, media: MediaInfo, start: float, end: float, out: av.container.OutputContainer) -> None:
        self.media, self.start, self.end = media, start, end
        self.layout = "mono" if (media.audio_channels or 2) == 1 else "stereo"
        self.channels = 1 if self.layout == "mono" else 2
        self.stream = out.add_stream("aac", rate=OUT_RATE)
        self.stream.layout = self.layout
        self.stream.bit_rate = 128_000
        self.out = out
        self.total = int(round((end - start) * OUT_RATE))
        self.written = 0  # samples handed to the encoder
        self._pending = np.zeros((self.channels, 0), dtype=np.float32)
        self._yielded = 0  # samples of the window produced by the source so far
        self._source = self._samples()

    def _samples(self) -> Iterator[np.ndarray]:
        """(channels, n) float32 chunks covering [start, end) exactly, silence-filled."""
        resampler = av.AudioResampler(format="fltp", layout=self.layout, rate=OUT_RATE)
        pos: int | None = None  # output index of the next resampled sample
        with open_media(self.media.path) as container:
            stream = container.streams.audio[0]
            if self.start > 0.5:
                container.seek(int((self.start + self.media.start_time) / stream.time_base), stream=stream)
            for frame in container.decode(stream):
                if frame.pts is None:
                    continue
                t = float(frame.pts * frame.time_base) - self.media.start_time
                for rf in resampler.resample(frame):
                    if pos is None:
                        pos = int(round((t - self.start) * OUT_RATE))
                    data = rf.to_ndarray().astype(np.float32, copy=False)
                    yield from self._clip(data, pos)
                    pos += data.shape[1]
                if pos is not None and pos >= self.total:
                    return
                if t >= self.end:
                    break
            for rf in resampler.resample(None):
                if pos is None:
                    break
                data = rf.to_ndarray().astype(np.float32, copy=False)
                yield from self._clip(data, pos)
                pos += data.shape[1]

    def _clip(self, data: np.ndarray, pos: int) -> Iterator[np.ndarray]:
        lo, hi = pos, pos + data.shape[1]
        if lo > self._yielded:  # a gap before this chunk: silence keeps the timeline
            gap = min(lo, self.total) - self._yielded
            self._yielded += gap
            yield np.zeros((self.channels, gap), dtype=np.float32)
        a, b = max(lo, self._yielded), min(hi, self.total)
        if b > a:
            self._yielded += b - a
            yield data[:, a - lo : b - lo]

    def write_until(self, t: float) -> None:
        """Encode audio up to source time ``t`` (whole AAC frames)."""
        target = min(self.total, int(round((t - self.start) * OUT_RATE)))
        while self.written + self._pending.shape[1] < target:
            chunk = next(self._source, None)
            if chunk is None:
                break
            self._pending = np.concatenate([self._pending, chunk], axis=1)
        self._drain(final=False, limit=target)

    def finish(self) -> None:
        for chunk in self._source:
            self._pending = np.concatenate([self._pending, chunk], axis=1)
        short = self.total - self.written - self._pending.shape[1]
        if short > 0:  # source audio ended early: pad to the clip's length
            self._pending = np.concatenate(
                [self._pending, np.zeros((self.channels, short), np.float32)], axis=1
            )
        self._drain(final=True, limit=self.total)
        self.out.mux(self.stream.encode(None))

    def _drain(self, final: bool, limit: int) -> None:
        while True:
            n = self._pending.shape[1]
            take = AAC_FRAME if n >= AAC_FRAME else (n if final else 0)
            if take == 0 or (not final and self.written + take > limit + AAC_FRAME):
                return
            chunk = np.ascontiguousarray(self._pending[:, :take])
            self._pending = self._pending[:, take:]
            frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout=self.layout)
            frame.sample_rate = OUT_RATE
            frame.pts = self.written
            frame.time_base = Fraction(1, OUT_RATE)
            self.written += take
            self.out.mux(self.stream.encode(frame))
