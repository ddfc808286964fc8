"""splice: a chosen clip window minus the host's turns, as a list of source segments. Pure.

Runs after moment selection: it takes each chosen window and the speaker-labelled words
and returns the kept segments. A host run (consecutive host words) is cut from just after
the previous kept word (``PAD_S`` of its trailing silence stays) to just before the next
one, so a cut always lies in a pause and never clips a kept word. Pieces left with no kept
word are dropped. Segment starts lie on the source's frame grid and every segment is a
whole number of frames, so the render's video cuts and audio cuts fall on the same
instants; the audio is crossfaded over ``CROSSFADE_S`` around each cut.

Clip time (the output timeline) is the concatenation of the segments: see
:func:`to_clip_time` and :func:`clip_words`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace

from engine.types import CropPath, FaceSample, Word

Segment = tuple[float, float]

PAD_S = 0.15  # silence kept after a kept word / before the next one at a cut
CROSSFADE_S = 0.03
MIN_SEGMENT_S = 0.3


def _mid(w: Word) -> float:
    return (w.start + w.end) / 2


def plan_segments(start: float, end: float, words: Sequence[Word], host: str | None,
                  fps: float) -> tuple[Segment, ...]:
    """Kept source segments of the window [start, end) once ``host``'s words are cut out.

    Every word that overlaps the window counts, so a host word straddling an edge (the
    window was padded on the other speaker's words only) is cut too; none is left behind.
    An empty tuple means nothing but the host's speech was in the window.
    """
    if host is None or not any(w.speaker == host for w in words if w.end > start and w.start < end):
        return (_align(start, end, fps),)
    return plan_edits(start, end, words, fps, host=host)


#: a pause shortened by removeSilence keeps this much of itself (half each side of the cut)
SILENCE_KEEP_S = 0.15
#: fillers cut wherever they are
FILLERS = frozenset({"um", "uh", "uhm", "umm", "erm", "er", "hmm", "hm", "mm", "mhm", "ah"})
#: phrases cut only where they stand alone between pauses (elsewhere they carry meaning)
LOOSE_FILLERS = (("you", "know"), ("i", "mean"), ("like",))
#: the pause on both sides that makes a loose filler stand alone (or a comma the ASR wrote)
STANDALONE_GAP_S = 0.2
_STOPS = (",", ".", "?", "!", ";", ":")


def _norm(text: str) -> str:
    return text.lower().strip(".,?!;:…-\"'")


def filler_flags(words: Sequence[Word]) -> list[bool]:
    """Per word, whether removeFillers cuts it: a filler ("um", "uh", …) anywhere, and "you know",
    "I mean", "like" where they stand alone: a pause (or a comma) before and after them."""
    flags = [_norm(w.text) in FILLERS for w in words]
    n = len(words)
    for phrase in LOOSE_FILLERS:
        k = len(phrase)
        for i in range(n - k + 1):
            if tuple(_norm(w.text) for w in words[i:i + k]) != phrase:
                continue
            before = i == 0 or words[i].start - words[i - 1].end >= STANDALONE_GAP_S \
                or words[i - 1].text.endswith(_STOPS)
            after = i + k == n or words[i + k].start - words[i + k - 1].end >= STANDALONE_GAP_S \
                or words[i + k - 1].text.endswith(_STOPS)
            if before and after:
                flags[i:i + k] = [True] * k
    return flags


def plan_edits(start: float, end: float, words: Sequence[Word], fps: float, *, host: str | None = None,
               silence_s: float | None = None, fillers: bool = False) -> tuple[Segment, ...]:
    """Kept source segments of the window [start, end): ``host``'s turns cut out, fillers cut out
    (``fillers``), pauses longer than ``silence_s`` shortened to ``SILENCE_KEEP_S`` (a leading or
    trailing one to that much before the first word / after the last). One mechanism for the three:
    a run of cut words is removed from just after the previous kept word (``PAD_S`` of silence stays)
    to just before the next, so a cut lies in a pause and never clips a kept word. Segments start on
    the frame grid and last whole frames (:func:`_align`); empty: nothing in the window is kept."""
    inside = [w for w in words if w.end > start and w.start < end]
    cut = [host is not None and w.speaker == host for w in inside]
    if fillers:
        cut = [c or f for c, f in zip(cut, filler_flags(inside), strict=True)]
    removed: list[Segment] = []
    i = 0
    while i < len(inside):
        if not cut[i]:
            i += 1
            continue
        j = i
        while j + 1 < len(inside) and cut[j + 1]:
            j += 1
        hs, he = inside[i].start, inside[j].end
        prev_end = inside[i - 1].end if i > 0 else start
        next_start = inside[j + 1].start if j + 1 < len(inside) else end
        a = start if i == 0 else _between(prev_end + PAD_S, prev_end, hs)
        b = end if j + 1 == len(inside) else _between(next_start - PAD_S, he, next_start)
        removed.append((a, b))
        i = j + 1
    kept_words = [w for w, c in zip(inside, cut, strict=True) if not c]
    if silence_s is not None and kept_words:
        half = SILENCE_KEEP_S / 2
        if kept_words[0].start - start > silence_s:
            removed.append((start, kept_words[0].start - SILENCE_KEEP_S))
        for w0, w1 in zip(kept_words, kept_words[1:], strict=False):
            # a pause between two kept words with nothing cut in it (a cut run keeps only its pads)
            if w1.start - w0.end > silence_s and not any(w0.end <= w.start < w1.start for w in inside):
                removed.append((w0.end + half, w1.start - half))
        if end - kept_words[-1].end > silence_s:
            removed.append((kept_words[-1].end + SILENCE_KEEP_S, end))
    if not removed:
        return (_align(start, end, fps),)
    kept: list[Segment] = []
    cursor = start
    for a, b in sorted(removed):
        if a > cursor:
            kept.append((cursor, a))
        cursor = max(cursor, b)
    if cursor < end:
        kept.append((cursor, end))
    # a piece plays when it holds a kept word; a host cut alone also drops slivers under MIN_SEGMENT_S
    floor = MIN_SEGMENT_S if silence_s is None and not fillers else 0.0
    kept = [(a, b) for a, b in kept if b - a >= floor and any(a <= _mid(w) < b for w in kept_words)]
    return tuple(_align(a, b, fps) for a, b in kept)


def _between(want: float, lo: float, hi: float) -> float:
    """``want`` clamped to [lo, hi]; the midpoint when the interval is empty or inverted."""
    if hi <= lo:
        return (lo + hi) / 2
    return min(max(want, lo), hi)


def _align(a: float, b: float, fps: float) -> Segment:
    """Start on the frame grid, a whole number (>= 1) of frames long."""
    fa = math.floor(a * fps + 1e-6)
    n = max(1, round((b - fa / fps) * fps))
    return (fa / fps, (fa + n) / fps)


def segment_frames(segments: Sequence[Segment], fps: float) -> list[int]:
    return [max(1, round((b - a) * fps)) for a, b in segments]


def spliced_duration(segments: Sequence[Segment], fps: float) -> float:
    return sum(segment_frames(segments, fps)) / fps


def to_clip_time(t: float, segments: Sequence[Segment], fps: float) -> float | None:
    """Where source time ``t`` plays in the clip, or None when it was cut out."""
    offset = 0.0
    for (a, _), n in zip(segments, segment_frames(segments, fps), strict=True):
        if a <= t < a + n / fps:
            return offset + (t - a)
        offset += n / fps
    return None


def clip_spans(spans: Sequence[Segment], segments: Sequence[Segment], fps: float) -> list[Segment]:
    """Source-time spans as they play in the clip: each span's pieces inside the kept ``segments``, on the
    clip timeline (as :func:`to_clip_time` maps their edges), in clip order."""
    out: list[Segment] = []
    offset = 0.0
    for (a, _), n in zip(segments, segment_frames(segments, fps), strict=True):
        b = a + n / fps
        for s0, s1 in spans:
            lo, hi = max(a, s0), min(b, s1)
            if hi > lo:
                out.append((round(offset + lo - a, 6), round(offset + hi - a, 6)))
        offset += n / fps
    return sorted(out)


def clip_words(words: Sequence[Word], segments: Sequence[Segment], fps: float) -> list[Word]:
    """Kept words moved onto the clip timeline (each clamped inside its own segment)."""
    out: list[Word] = []
    offset = 0.0
    for (a, _), n in zip(segments, segment_frames(segments, fps), strict=True):
        seg_len = n / fps
        for w in words:
            if a <= _mid(w) < a + seg_len:
                s = min(max(w.start - a, 0.0), seg_len)
                e = min(max(w.end - a, 0.0), seg_len)
                out.append(replace(w, start=round(offset + s, 4), end=round(offset + max(e, s + 0.01), 4)))
        offset += seg_len
    return out


def splice_crop_path(path: CropPath, segments: Sequence[Segment]) -> CropPath:
    """A crop path planned over the whole window, re-indexed onto the spliced clip's frames."""
    start = segments[0][0]
    if len(segments) == 1 and abs(segments[0][0] - path.start) < 0.5 / path.fps:
        frames, start = list(range(segment_frames(segments, path.fps)[0])), path.start
    else:
        frames = [k for (a, _), n in zip(segments, segment_frames(segments, path.fps), strict=True)
                  for k in range(round((a - path.start) * path.fps), round((a - path.start) * path.fps) + n)]
    top = [path.at_frame(k) for k in frames]
    bottom = [path.at_frame2(k) for k in frames] if path.x2 else []
    return replace(path, start=start, x=tuple(p[0] for p in top), y=tuple(p[1] for p in top),
                   x2=tuple(p[0] for p in bottom), y2=tuple(p[1] for p in bottom))


def kept_faces(samples: Sequence[FaceSample], segments: Sequence[Segment]) -> tuple[FaceSample, ...]:
    return tuple(s for s in samples if any(a <= s.t < b for a, b in segments))
