"""Cut a source's audio to a clip window, sample-exact, and encode it as AAC into a muxer.

Used by the render stage in lockstep with the video (``write_until`` after each batch),
so packets interleave and memory stays flat. Gaps in the source audio are filled with
silence and the first sample is anchored at the window start, which keeps audio and
video within a frame of each other.

A spliced clip is a list of source segments (each a whole number of video frames): the
output is their concatenation, and at each cut the two sides overlap by ``crossfade``
seconds centred on the cut (equal-power fades), so the clip's length and every cut's
position match the video's exactly.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from fractions import Fraction

import av
import numpy as np

from engine.types import MediaInfo
from stages.media.decode import open_media

OUT_RATE = 48_000
AAC_FRAME = 1024


class AudioClipper:
    def __init__(self, media: MediaInfo, start: float, end: float, out: av.container.OutputContainer,
                 segments: Sequence[tuple[float, float]] = (), crossfade: float = 0.03) -> None:
        self.media, self.start, self.end = media, start, end
        self.segments = list(segments) or [(start, end)]
        self.layout = "mono" if (media.audio_channels or 2) == 1 else "stereo"
        self.channels = 1 if self.layout == "mono" else 2
        self.stream = out.add_stream("aac", rate=OUT_RATE)
        self.stream.layout = self.layout
        self.stream.bit_rate = 128_000
        self.out = out
        # output sample where each segment begins; the last entry is the clip's length
        self._bounds = [0]
        for a, b in self.segments:
            self._bounds.append(self._bounds[-1] + int(round((b - a) * OUT_RATE)))
        self.total = self._bounds[-1]
        self._fade = max(2, int(round(crossfade * OUT_RATE / 2)) * 2) if len(self.segments) > 1 else 0
        self.written = 0  # samples handed to the encoder
        self._pending = np.zeros((self.channels, 0), dtype=np.float32)
        self._source = self._spliced()

    def _spliced(self) -> Iterator[np.ndarray]:
        """The segments' audio back to back; each cut crossfaded over ``_fade`` samples."""
        f, half = self._fade, self._fade // 2
        last = len(self.segments) - 1
        carry: np.ndarray | None = None  # the previous segment's faded-out tail
        ramp = np.sin(np.linspace(0.0, np.pi / 2, f, dtype=np.float32)) if f else None
        for i, (a, _) in enumerate(self.segments):
            head = half if i > 0 else 0
            tail = half if i < last else 0
            n = self._bounds[i + 1] - self._bounds[i] + head + tail
            chunks = self._window(a - head / OUT_RATE, n)
            buf = np.zeros((self.channels, 0), np.float32)
            if carry is not None and ramp is not None:
                while buf.shape[1] < f:
                    chunk = next(chunks, None)
                    if chunk is None:
                        break
                    buf = np.concatenate([buf, chunk], axis=1)
                m = min(f, buf.shape[1])
                buf[:, :m] = buf[:, :m] * ramp[:m] + carry[:, :m] * ramp[::-1][:m]
                yield buf[:, :m]
                buf = buf[:, m:]
            for chunk in chunks:
                buf = np.concatenate([buf, chunk], axis=1)
                keep = f if i < last else 0
                if buf.shape[1] > keep:
                    yield buf[:, : buf.shape[1] - keep]
                    buf = buf[:, buf.shape[1] - keep :]
            if i < last and ramp is not None:
                carry = np.zeros((self.channels, f), np.float32)
                carry[:, : buf.shape[1]] = buf[:, :f]
            elif buf.shape[1]:
                yield buf

    def _window(self, start: float, total: int) -> Iterator[np.ndarray]:
        """(channels, n) float32 chunks covering ``total`` samples from ``start``, silence-filled."""
        resampler = av.AudioResampler(format="fltp", layout=self.layout, rate=OUT_RATE)
        pos: int | None = None  # output index of the next resampled sample
        yielded = 0
        end = start + total / OUT_RATE

        def clip(data: np.ndarray, pos: int) -> Iterator[np.ndarray]:
            nonlocal yielded
            lo, hi = pos, pos + data.shape[1]
            if lo > yielded:  # a gap before this chunk: silence keeps the timeline
                gap = min(lo, total) - yielded
                yielded += gap
                yield np.zeros((self.channels, gap), dtype=np.float32)
            a, b = max(lo, yielded), min(hi, total)
            if b > a:
                yielded += b - a
                yield data[:, a - lo : b - lo]

        with open_media(self.media.path) as container:
            stream = container.streams.audio[0]
            if start > 0.5:
                container.seek(int((start + self.media.start_time) / stream.time_base), stream=stream)
            for frame in container.decode(stream):
                if frame.pts is None:
                    continue
                t = float(frame.pts * frame.time_base) - self.media.start_time
                for rf in resampler.resample(frame):
                    if pos is None:
                        pos = int(round((t - start) * OUT_RATE))
                    data = rf.to_ndarray().astype(np.float32, copy=False)
                    yield from clip(data, pos)
                    pos += data.shape[1]
                if pos is not None and pos >= total:
                    return
                if t >= end:
                    break
            # end of the stream or past the window: flush the resampler's delay
            for rf in resampler.resample(None):
                if pos is None:
                    break
                data = rf.to_ndarray().astype(np.float32, copy=False)
                yield from clip(data, pos)
                pos += data.shape[1]
            if yielded < total:  # the source ended early: silence to the segment's length
                yield np.zeros((self.channels, total - yielded), np.float32)

    def write_until(self, t: float) -> None:
        """Encode audio up to clip time ``t`` seconds (whole AAC frames)."""
        target = min(self.total, int(round(t * OUT_RATE)))
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
