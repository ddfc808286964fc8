"""shots: hard cuts in a clip window, from a tiny signature of every decoded frame. Pure, no I/O.

The faces stage decodes every frame of the window anyway (it samples a few per second for the
detector); :func:`frame_signature` costs one strided read and two small resizes per frame, so
cuts are found on every frame, at the exact frame, with no second decode.

The measure is PySceneDetect's AdaptiveDetector on its ContentDetector score, in YUV instead
of HSV: the content score of frame ``i`` is the mean absolute difference of the downscaled
Y, U and V planes between frames ``i - 1`` and ``i`` (0-255 scale, summed over the planes). A
cut is a frame whose score is at least ``min_score`` *and* ``ratio`` times the mean score of
the ``window`` frames on either side of it: camera motion, a walking subject or a gesturing
hand raise the score over many frames (no spike), a cut raises it on one frame. A single-frame
flash (a frame or two after it look like the frame before it) is not a cut, and shots shorter
than ``min_shot_s`` are merged into the previous one. A jump cut (same camera and background,
the subject jumps) counts as a cut: the face jumps, so the camera should too.

Measured content scores (tests/stages/framing/test_shots.py): steady real talking heads with
gestures 1.4-4.1 (neighbour ratio <= 2.3), a jump cut in a real vlog 10.3 (ratio 22.6), hard
cuts between real shots (incl. a zoomed angle of the same person on the same backdrop) 27-71, a
cut to a text card 146. PySceneDetect 0.7.2's detectors on the same frames find the same cuts,
but call single flash frames cuts and miss the jump cut (BENCHMARKS.md, section 10).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from engine.types import Shot

#: the signature's luma size (w, h); chroma is half that
SIG_SIZE = (48, 27)


@dataclass(frozen=True)
class CutParams:
    #: a cut's content score is at least this (sum over Y, U, V of the mean |difference|, 0-255)
    min_score: float = 8.0
    #: ... and this many times the mean score of its neighbours
    ratio: float = 3.0
    #: neighbours on each side the ratio is taken over
    window: int = 2
    #: shots shorter than this (seconds) are not made (the later cut is dropped)
    min_shot_s: float = 0.5
    #: a flash, not a cut: a frame or two after the spike differs from the frame before it by
    #: less than this share of the spike's score (the picture came back)
    flash_ratio: float = 0.35


DEFAULT_CUTS = CutParams()


def frame_signature(y: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """A frame's Y, U, V planes downscaled to ``SIG_SIZE`` (and half that), packed as one uint8 row."""
    sw, sh = SIG_SIZE

    def small(plane: np.ndarray, w: int, h: int) -> np.ndarray:
        # a strided view first, so a 4K plane costs as little as a 540p one
        step = max(1, min(plane.shape[0] // (4 * h), plane.shape[1] // (4 * w)))
        if step > 1:
            plane = plane[::step, ::step]
        return cv2.resize(np.ascontiguousarray(plane), (w, h), interpolation=cv2.INTER_AREA)

    return np.concatenate([small(y, sw, sh).ravel(), small(u, sw // 2, sh // 2).ravel(),
                           small(v, sw // 2, sh // 2).ravel()])


def _plane_slices() -> tuple[slice, slice, slice]:
    sw, sh = SIG_SIZE
    ny, nc = sw * sh, (sw // 2) * (sh // 2)
    return slice(0, ny), slice(ny, ny + nc), slice(ny + nc, ny + 2 * nc)


def content_scores(sigs: np.ndarray) -> np.ndarray:
    """Per frame, the content score against the frame before it (0 for the first)."""
    sigs = np.asarray(sigs, dtype=np.int16)
    out = np.zeros(len(sigs), dtype=np.float64)
    if len(sigs) < 2:
        return out
    diff = np.abs(sigs[1:] - sigs[:-1])
    out[1:] = sum(diff[:, sl].mean(axis=1) for sl in _plane_slices())
    return out


def pair_score(a: np.ndarray, b: np.ndarray) -> float:
    """The content score between two frames' signatures (as :func:`content_scores`)."""
    d = np.abs(a.astype(np.int16) - b.astype(np.int16))
    return float(sum(d[sl].mean() for sl in _plane_slices()))


def find_cuts(times: Sequence[float], sigs: np.ndarray, params: CutParams = DEFAULT_CUTS
              ) -> list[tuple[int, float]]:
    """Indices of the frames that start a new shot, with their scores (first frame never counts)."""
    n = len(times)
    if n < 2:
        return []
    scores = content_scores(sigs)
    w = params.window
    cuts: list[tuple[int, float]] = []
    last_t = float(times[0])
    for i in range(1, n):
        c = scores[i]
        if c < params.min_score:
            continue
        lo, hi = max(1, i - w), min(n, i + w + 1)
        around = [scores[j] for j in range(lo, hi) if j != i]
        base = float(np.mean(around)) if around else 0.0
        if c < params.ratio * max(base, 1e-6):
            continue
        # a flash: a frame or two later the picture is back to the one before the spike, or
        # (the flash's end) this frame is the picture of a frame or two before the spike
        if any(pair_score(sigs[i - 1], sigs[j]) < params.flash_ratio * c for j in range(i + 1, min(n, i + 3))):
            continue
        if any(pair_score(sigs[j], sigs[i]) < params.flash_ratio * c for j in range(max(0, i - 3), i - 1)):
            continue
        if times[i] - last_t < params.min_shot_s:
            continue
        cuts.append((i, float(c)))
        last_t = float(times[i])
    return cuts


def shots_from_cuts(start: float, end: float, cuts: Sequence[tuple[float, float]]) -> tuple[Shot, ...]:
    """The window's shots from its cut frames' (time, score), in order; one shot without cuts."""
    bounds = [(start, 0.0)] + [(t, s) for t, s in cuts if start < t < end]
    return tuple(Shot(round(a, 6), round(bounds[k + 1][0] if k + 1 < len(bounds) else end, 6), score=round(s, 2))
                 for k, (a, s) in enumerate(bounds))


class CutDetector:
    """Collects every frame's signature as the faces stage decodes it; :meth:`shots` at the end."""

    def __init__(self, params: CutParams = DEFAULT_CUTS) -> None:
        self.params = params
        self.times: list[float] = []
        self.sigs: list[np.ndarray] = []
        #: seconds spent on signatures and cut finding (the benchmark's cut-detection cost)
        self.cost_s = 0.0

    def add(self, t: float, y: np.ndarray, u: np.ndarray, v: np.ndarray) -> None:
        if self.sigs and self.times[-1] >= t:
            return  # a repeated timestamp
        t0 = time.perf_counter()
        self.times.append(float(t))
        self.sigs.append(frame_signature(y, u, v))
        self.cost_s += time.perf_counter() - t0

    def merge(self, other: CutDetector) -> None:
        """Appends the signatures ``other`` collected after this detector's last frame (a later lane of
        the same window, scanned on its own)."""
        for t, sig in zip(other.times, other.sigs, strict=True):
            if not self.times or t > self.times[-1]:
                self.times.append(t)
                self.sigs.append(sig)

    def shots(self, start: float, end: float) -> tuple[Shot, ...]:
        if not self.sigs:
            return shots_from_cuts(start, end, ())
        t0 = time.perf_counter()
        found = find_cuts(self.times, np.stack(self.sigs), self.params)
        self.cost_s += time.perf_counter() - t0
        return shots_from_cuts(start, end, [(self.times[i], c) for i, c in found])
