""".srt and .vtt writers for a caption track: the same groups, words and times as the .ass.

Both are built from the track's :class:`~stages.captions.style.CaptionGroup` list (clip-relative
seconds, after any splicing), never from the .ass text. One cue per group, ``group.start`` to
``group.end`` in milliseconds (the .ass has centiseconds); the text is the group's words as
displayed (``group.texts``: the preset's casing), on one line (players wrap).

The WebVTT cue carries per-word timing as karaoke-style cue timestamps: every word after the
first is preceded by ``<hh:mm:ss.ttt>``, its start. WebVTT wants each such timestamp after the
cue's start, after the previous one and before the cue's end; a word that would break that (two
words starting in the same millisecond) is moved 1 ms later, or at the cue's very end shares the
previous word's timestamp. ``&``, ``<`` and ``>`` in a word are written as character references.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import srt
import webvtt

from stages.captions.style import CaptionGroup


def _ms(t: float) -> int:
    return max(0, round(t * 1000))


def _clean(text: str) -> str:
    """One line: cue text cannot hold a line break (a blank line would end the cue)."""
    return " ".join(text.split())


def vtt_escape(text: str) -> str:
    """Cue text: ``&``, ``<`` and ``>`` as character references (the rest is literal)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def vtt_time(ms: int) -> str:
    """``hh:mm:ss.ttt`` (hours always written, as in the cue timestamps)."""
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, t = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}.{t:03d}"


def cues(groups: Sequence[CaptionGroup]) -> list[tuple[int, int, CaptionGroup]]:
    """(start ms, end ms, group) for every group that lasts at least 1 ms once rounded."""
    out = []
    for g in groups:
        a, b = _ms(g.start), _ms(g.end)
        if b > a and any(_clean(t) for t in g.texts):
            out.append((a, b, g))
    return out


def render_srt(groups: Sequence[CaptionGroup]) -> str:
    """SubRip: one numbered cue per group (no per-word timing: SRT has none)."""
    subs = [
        srt.Subtitle(index=i, start=timedelta(milliseconds=a), end=timedelta(milliseconds=b),
                     content=" ".join(t for t in map(_clean, g.texts) if t))
        for i, (a, b, g) in enumerate(cues(groups), start=1)
    ]
    return srt.compose(subs, reindex=False)


def word_timestamps(start_ms: int, end_ms: int, group: CaptionGroup) -> list[int | None]:
    """Per word, its cue timestamp in ms (None: no tag before it; always so for the first word)."""
    out: list[int | None] = [None]
    prev = start_ms
    for w in group.words[1:]:
        t = max(_ms(w.start), prev + 1)
        if t >= end_ms:  # no room left inside the cue: the word shares the previous timing
            out.append(None)
            continue
        out.append(t)
        prev = t
    return out


def vtt_cue_text(start_ms: int, end_ms: int, group: CaptionGroup) -> str:
    parts = []
    for text, t in zip(group.texts, word_timestamps(start_ms, end_ms, group), strict=True):
        word = vtt_escape(_clean(text))
        if not word:
            continue
        parts.append(word if t is None else f"<{vtt_time(t)}>{word}")
    return " ".join(parts)


def render_vtt(groups: Sequence[CaptionGroup], preset: str = "") -> str:
    """WebVTT: one cue per group, each word after the first preceded by its start timestamp."""
    captions = [webvtt.Caption(vtt_time(a), vtt_time(b), vtt_cue_text(a, b, g)) for a, b, g in cues(groups)]
    note = f"Clipora caption track{f', preset {preset}' if preset else ''}; times are the clip's own"
    return webvtt.WebVTT(captions=captions, header_comments=[note]).content
