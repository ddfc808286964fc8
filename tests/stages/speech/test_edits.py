"""removeSilence and removeFillers: the same splice as the host cut (plan_edits). Pure, fast."""

from __future__ import annotations

import pytest

from engine.types import Word
from stages.speech import plan_edits, segment_frames, spliced_duration, to_clip_time
from stages.speech.splice import PAD_S, SILENCE_KEEP_S, filler_flags

FPS = 25.0


def ws(*spec: tuple[float, float, str]) -> list[Word]:
    return [Word(a, b, t) for a, b, t in spec]


def played(w: Word, segments) -> bool:
    return to_clip_time((w.start + w.end) / 2, segments, FPS) is not None


def pauses_in_clip(words: list[Word], segments) -> list[float]:
    """The pause before each kept word on the clip's timeline."""
    times = [(to_clip_time(w.start, segments, FPS), to_clip_time(w.end - 1e-3, segments, FPS)) for w in words
             if played(w, segments)]
    return [b0 - a1 for (_, a1), (b0, _) in zip(times, times[1:], strict=False)]


TALK = ws((1.0, 1.4, "We"), (1.45, 1.9, "planted"), (1.95, 2.5, "tomatoes."),
          (4.0, 4.4, "They"), (4.45, 5.0, "grew"), (5.05, 5.6, "fast."),
          (5.9, 6.3, "Then"), (6.35, 6.9, "came"), (6.95, 7.6, "rain."))


def test_long_pauses_shrink_to_about_0_15_s_and_short_ones_stay():
    segments = plan_edits(0.5, 9.0, TALK, FPS, silence_s=0.6)
    assert all(played(w, segments) for w in TALK)  # every word still plays
    gaps = pauses_in_clip(TALK, segments)
    assert gaps[2] == pytest.approx(SILENCE_KEEP_S, abs=2 / FPS)  # the 1.5 s pause
    assert gaps[5] == pytest.approx(0.3, abs=2e-3)  # 0.3 s is under the threshold: kept as it was
    length = spliced_duration(segments, FPS)
    # the leading 0.5 s stays (under the threshold), the trailing 1.4 s and the 1.5 s pause become 0.15 s
    assert length == pytest.approx(0.5 + (7.6 - 1.0) + SILENCE_KEEP_S - (1.5 - SILENCE_KEEP_S), abs=3 / FPS)
    assert all(abs(a * FPS - round(a * FPS)) < 1e-6 for a, _ in segments)  # on the frame grid
    assert sum(segment_frames(segments, FPS)) == round(length * FPS)


def test_the_threshold_decides_which_pauses_go():
    assert len(plan_edits(0.9, 7.7, TALK, FPS, silence_s=2.0)) == 1  # no pause is longer than 2 s
    assert len(plan_edits(0.9, 7.7, TALK, FPS, silence_s=0.6)) == 2


UMS = ws((1.0, 1.3, "So,"), (1.35, 1.6, "um,"), (1.7, 2.0, "the"), (2.05, 2.5, "plan"), (2.55, 2.9, "works."),
         (3.2, 3.4, "Uh,"), (3.5, 3.9, "you"), (3.95, 4.3, "know,"), (4.6, 4.9, "like"), (5.2, 5.6, "seeds"),
         (5.65, 6.0, "like"), (6.05, 6.5, "water."), (6.8, 7.0, "I"), (7.05, 7.4, "mean"), (7.45, 7.9, "it."))


def test_fillers_are_cut_and_meaningful_uses_stay():
    flags = filler_flags(UMS)
    cut = [w.text for w, f in zip(UMS, flags, strict=True) if f]
    # "you know," and "like" stand alone between pauses; "like water" and "I mean it." carry meaning
    assert cut == ["um,", "Uh,", "you", "know,", "like"]
    segments = plan_edits(0.5, 8.5, UMS, FPS, fillers=True)
    for w, f in zip(UMS, flags, strict=True):
        assert played(w, segments) != f, w
    # each cut leaves at most the pads of the pauses around it
    assert all(g <= 2 * PAD_S + 0.1 + 1 / FPS for g in pauses_in_clip([w for w, f in zip(UMS, flags, strict=True)
                                                                         if not f], segments))


def test_host_fillers_and_silence_together_are_one_splice():
    spec = [(1.0, 1.5, "Hello", "G"), (1.6, 1.8, "um", "G"), (2.0, 2.5, "there.", "G"),
            (3.0, 3.5, "Question?", "H"), (4.5, 5.0, "Answer", "G"), (6.5, 7.0, "here.", "G")]
    words = [Word(a, b, t, 1.0, s) for a, b, t, s in spec]
    segments = plan_edits(0.5, 7.5, words, FPS, host="H", silence_s=0.6, fillers=True)
    kept = [w.text for w in words if played(w, segments)]
    assert kept == ["Hello", "there.", "Answer", "here."]
    assert all(b > a for a, b in segments)
    assert all(s1[0] >= s0[1] for s0, s1 in zip(segments, segments[1:], strict=False))  # ordered, disjoint
