"""The diarizer's windows: speech regions from the transcript's words (cut again where the audio is
silent), the mel-frame windows over them, and the two-pass plan (a coarse pass side by side, fine
windows added only where the voice may change)."""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Sequence

import numpy as np

from engine.types import Word

FRAME_S = 0.01  # the encoder's mel hop
WINDOW_FRAMES = 160  # 1.6 s, the encoder's partial-utterance length
HOP_FRAMES = 40  # the fine hop (0.4 s): every window near a possible change of voice
COARSE_HOP_FRAMES = 160  # the first pass's hop (1.6 s, windows side by side): see diarize.diarize()
MIN_WINDOW_FRAMES = 50
REGION_GAP_S = 0.3


def speech_regions(words: Sequence[Word], gap: float = REGION_GAP_S) -> list[tuple[float, float]]:
    regions: list[tuple[float, float]] = []
    for w in words:
        if regions and w.start - regions[-1][1] <= gap:
            regions[-1] = (regions[-1][0], max(regions[-1][1], w.end))
        else:
            regions.append((w.start, w.end))
    return regions


def split_at_silence(regions: Sequence[tuple[float, float]], energy: np.ndarray, origin: float,
                     min_gap: float = 0.25) -> list[tuple[float, float]]:
    """Regions cut wherever the audio itself is silent for ``min_gap`` s (ASR word times
    often stretch over a pause, which would put two speakers into one region)."""
    if not len(energy):
        return list(regions)
    quiet = energy < 1e-3 * max(float(np.percentile(energy, 95)), 1e-12)
    need = int(round(min_gap / FRAME_S))
    out: list[tuple[float, float]] = []
    for r0, r1 in regions:
        a = max(0, int(round((r0 - origin) / FRAME_S)))
        b = min(len(energy), int(round((r1 - origin) / FRAME_S)))
        start, run = a, 0
        for i in range(a, b):
            run = run + 1 if quiet[i] else 0
            if run == need:
                if i - need + 1 > start:
                    out.append((origin + start * FRAME_S, origin + (i - need + 1) * FRAME_S))
                start = i + 1
            elif run > need:
                start = i + 1
        if b > start:
            out.append((origin + start * FRAME_S, origin + b * FRAME_S))
    return out


def region_frames(regions: Sequence[tuple[float, float]], origin: float, n_frames: int) -> list[tuple[int, int]]:
    """Each region as mel frames [a, b) (times relative to ``origin``); those under
    ``MIN_WINDOW_FRAMES`` are dropped (too short to embed)."""
    out: list[tuple[int, int]] = []
    for r0, r1 in regions:
        a = max(0, int(round((r0 - origin) / FRAME_S)))
        b = min(n_frames, int(round((r1 - origin) / FRAME_S)))
        if b - a >= MIN_WINDOW_FRAMES:
            out.append((a, b))
    return out


def window_starts(a: int, b: int, hop: int = HOP_FRAMES) -> list[int]:
    """Starts of the windows over frames [a, b): every ``hop`` from ``a``, and one ending at ``b``
    (a region no longer than a window is one window, ``[a, b)``)."""
    if b - a <= WINDOW_FRAMES:
        return [a]
    starts = list(range(a, b - WINDOW_FRAMES + 1, hop))
    if starts[-1] != b - WINDOW_FRAMES:
        starts.append(b - WINDOW_FRAMES)
    return starts


def _windows_at(a: int, b: int, starts: Sequence[int]) -> list[tuple[int, int]]:
    return [(s, min(b, s + WINDOW_FRAMES)) for s in starts]


def region_windows(regions: Sequence[tuple[float, float]], origin: float, n_frames: int,
                   hop: int = HOP_FRAMES) -> list[tuple[int, int]]:
    """Mel-frame windows [a, b) covering each region (times relative to ``origin``), ``hop`` apart."""
    out: list[tuple[int, int]] = []
    for a, b in region_frames(regions, origin, n_frames):
        out += _windows_at(a, b, window_starts(a, b, hop))
    return out


def refine_windows(bounds: Sequence[tuple[int, int]], labels: Sequence[int], doubtful: Sequence[bool],
                   coarse_hop: int = COARSE_HOP_FRAMES, hop: int = HOP_FRAMES) -> list[tuple[int, int]]:
    """The fine-hop windows to add between coarse windows where the voice may change.

    The coarse windows are those of the regions ``bounds`` (frames, :func:`region_frames`) at
    ``coarse_hop``, in order, with their cluster ``labels`` and ``doubtful`` flags (close to another
    voice's centroid). Between two neighbouring coarse windows of one region whose labels differ
    or either of which is doubtful, every window of the fine grid (``window_starts(a, b, hop)``)
    that starts between them is added; elsewhere the region is one voice and keeps its coarse
    windows. ``coarse_hop`` is a multiple of ``hop``, so with every pair in doubt the coarse and the
    added windows are exactly the fine grid's.
    """
    if coarse_hop % hop:
        raise ValueError("the coarse hop must be a multiple of the fine one")
    out: list[tuple[int, int]] = []
    i = 0
    for a, b in bounds:
        starts = window_starts(a, b, coarse_hop)
        fine = window_starts(a, b, hop)
        for j in range(len(starts) - 1):
            k = i + j
            if labels[k] != labels[k + 1] or doubtful[k] or doubtful[k + 1]:
                lo, hi = bisect_right(fine, starts[j]), bisect_left(fine, starts[j + 1])
                out += _windows_at(a, b, fine[lo:hi])
        i += len(starts)
    if i != len(labels):
        raise ValueError("labels are not those of the regions' coarse windows")
    return out
