"""Clip-length ranges apply to the spliced duration: a window that removeSilence/removeFillers make
too short is extended over the words after it, ending on a sentence end, never into the next clip."""

from __future__ import annotations

import pytest

from engine.options import ProcessOptions
from engine.types import ClipMetadata, Moment, MomentSelection, Transcript, Word
from stages.planning.plan import splice_plans
from stages.speech import spliced_duration

FPS = 25.0
META = ClipMetadata("t", "h", "i", "calm", (), 5.0)


def talk(n_sentences: int, pause: float) -> Transcript:
    """Sentences of five 0.4 s words, each followed by ``pause`` seconds of silence."""
    words, t = [], 0.5
    for s in range(n_sentences):
        for k in range(5):
            words.append(Word(round(t, 3), round(t + 0.4, 3), f"w{s}_{k}" + ("." if k == 4 else "")))
            t += 0.45
        t += pause
    return Transcript(tuple(words), audio_duration=t + 1.0)


def test_a_window_shortened_by_silence_removal_grows_back_into_range():
    tr = talk(20, pause=1.5)  # each sentence: 2.2 s of speech, then 1.5 s of silence
    window = Moment(tr.words[0].start, tr.words[29].end, 5.0, {}, META)  # six sentences: ~20.7 s as recorded
    options = ProcessOptions.build(clip_length="medium", remove_silence=True)  # 20-45 s
    sel, [segments] = splice_plans(MomentSelection((window,), 1), tr, None, FPS, options, (0.0, tr.audio_duration))
    length = spliced_duration(segments, FPS)
    assert 20.0 - 1 / FPS <= length <= 45.0, length
    [m] = sel.moments
    last = [w for w in tr.words if w.end <= m.end][-1]
    assert last.text.endswith("."), "the extended clip ends on a sentence end"
    assert not any("under the" in n for n in sel.notes)


def test_a_window_is_never_extended_into_the_next_clip():
    tr = talk(20, pause=1.5)
    first = Moment(tr.words[0].start, tr.words[29].end, 5.0, {}, META)
    second = Moment(tr.words[30].start, tr.words[59].end, 5.0, {}, META)  # right after the first
    options = ProcessOptions.build(clip_length="medium", remove_silence=True, num_clips=2)
    sel, plans = splice_plans(MomentSelection((first, second), 2), tr, None, FPS, options, (0.0, tr.audio_duration))
    a, b = sel.moments
    assert a.end <= second.start + 1e-6
    assert spliced_duration(plans[0], FPS) < 20.0
    assert any("clip 1 lasts" in n and "pauses and fillers" in n for n in sel.notes), sel.notes


def test_without_edits_nothing_changes():
    tr = talk(8, pause=1.5)
    window = Moment(tr.words[0].start, tr.words[19].end, 5.0, {}, META)
    sel, [segments] = splice_plans(MomentSelection((window,), 1), tr, None, FPS, ProcessOptions.build(),
                                   (0.0, tr.audio_duration))
    assert sel.moments == (window,) and len(segments) == 1
    assert spliced_duration(segments, FPS) == pytest.approx(window.end - window.start, abs=1 / FPS)
