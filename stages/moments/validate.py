"""Turning whatever a provider proposed into windows the rest of the pipeline can trust.

Each proposed (start, end) is clamped into the trimmed span, snapped outward to word
boundaries (never cutting a word) and padded into the surrounding silence, then forced
into the clipLength range: a long window ends at the latest sentence end (else word end)
that fits, a short one grows forward (to a sentence end where one is near), then backward.
Windows are ranked by score and taken greedily without overlap, up to numClips.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from engine.types import Word
from stages.moments.base import LEAD_IN, LEAD_OUT, MIN_GAP

_END = (".", "?", "!")


@dataclass(frozen=True)
class Proposal:
    """One window as a provider proposed it (times unchecked; metadata raw)."""

    start: float
    end: float
    score: float
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Fitted:
    proposal: Proposal
    start: float
    end: float


class WordIndex:
    """The span's words, for boundary look-ups in O(log n)."""

    def __init__(self, words: Sequence[Word], span: tuple[float, float]) -> None:
        self.t0, self.t1 = span
        self.words = [w for w in words if w.start >= self.t0 and w.end <= self.t1]
        self.starts = [w.start for w in self.words]
        self.ends = [w.end for w in self.words]

    def inside(self, t: float) -> Word | None:
        """The word strictly containing ``t``, if any."""
        i = bisect.bisect_left(self.starts, t) - 1
        if 0 <= i < len(self.words) and self.words[i].start < t < self.words[i].end:
            return self.words[i]
        return None

    def prev_end(self, t: float) -> float | None:
        i = bisect.bisect_right(self.ends, t + 1e-9) - 1
        return self.ends[i] if i >= 0 else None

    def next_start(self, t: float) -> float | None:
        i = bisect.bisect_left(self.starts, t - 1e-9)
        return self.starts[i] if i < len(self.starts) else None

    def pad_left(self, a: float) -> float:
        prev = self.prev_end(a)
        floor = self.t0 if prev is None else (prev + a) / 2
        return max(floor, min(a, a - LEAD_IN))

    def pad_right(self, b: float) -> float:
        nxt = self.next_start(b)
        ceil = self.t1 if nxt is None else (b + nxt) / 2
        return min(ceil, max(b, b + LEAD_OUT))

    def ends_between(self, lo: float, hi: float) -> list[Word]:
        i = bisect.bisect_right(self.ends, lo)
        j = bisect.bisect_right(self.ends, hi)
        return self.words[i:j]


def fit_window(a: float, b: float, idx: WordIndex, lo: float, hi: float) -> tuple[float, float] | None:
    """A valid window near [a, b], or None when the proposal is unusable (not finite)."""
    t0, t1 = idx.t0, idx.t1
    if not (math.isfinite(a) and math.isfinite(b)):
        return None
    if t1 - t0 <= lo:
        return t0, t1  # the whole span is shorter than a clip: the caller notes it
    a, b = sorted((min(max(a, t0), t1), min(max(b, t0), t1)))
    if (w := idx.inside(a)) is not None:
        a = w.start
    if (w := idx.inside(b)) is not None:
        b = w.end
    a, b = idx.pad_left(a), idx.pad_right(b)
    if b - a > hi:
        b = _shrink_end(a, idx, lo, hi)
    if b - a < lo:
        a, b = _grow(a, b, idx, lo, hi)
    return a, b


def _shrink_end(a: float, idx: WordIndex, lo: float, hi: float) -> float:
    limit = a + hi
    ends = [w for w in idx.ends_between(a, limit) if w.end - a > 0]
    full = [w for w in ends if w.text.endswith(_END) and w.end - a >= lo]
    fits = [w for w in ends if w.end - a >= lo]
    pick = (full or fits or ends)[-1] if ends else None
    if pick is None:  # one word longer than the whole range: nothing better exists
        w = idx.inside(limit)
        return w.start if w is not None and w.start - a >= lo else limit
    return min(limit, idx.pad_right(pick.end))


def _grow(a: float, b: float, idx: WordIndex, lo: float, hi: float) -> tuple[float, float]:
    t0, t1 = idx.t0, idx.t1
    target = min(a + lo, t1)
    if (w := idx.inside(target)) is not None:
        target = w.end if w.end - a <= hi else w.start
    # a sentence end a little further on makes a complete clip
    for w in idx.ends_between(target, min(target + 6.0, a + hi - LEAD_OUT)):
        if w.text.endswith(_END):
            target = w.end
            break
    b = max(b, min(t1, idx.pad_right(target) if idx.inside(target) is None else target))
    b = min(b, a + hi)
    if (w := idx.inside(b)) is not None:
        b = w.start
    if b - a < lo:
        start = max(t0, b - lo)
        if (w := idx.inside(start)) is not None:
            start = w.start if b - w.start <= hi else w.end
        a = min(a, start)
    return a, b


def choose(
    proposals: Sequence[Proposal], words: Sequence[Word], span: tuple[float, float],
    lo: float, hi: float, n: int,
) -> list[Fitted]:
    """Valid, non-overlapping windows, best score first, at most ``n``."""
    idx = WordIndex(words, span)
    fitted: list[Fitted] = []
    for p in proposals:
        win = fit_window(p.start, p.end, idx, lo, hi)
        if win is not None and win[1] > win[0]:
            fitted.append(Fitted(p, *win))
    chosen: list[Fitted] = []
    for f in sorted(fitted, key=lambda f: (-f.proposal.score, f.start)):
        if all(f.end + MIN_GAP <= o.start or f.start >= o.end + MIN_GAP for o in chosen):
            chosen.append(f)
            if len(chosen) == n:
                break
    return chosen
