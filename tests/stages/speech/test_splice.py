"""Splicing host turns out of a clip window: segments, clip timeline, crop path. Pure, fast."""

from __future__ import annotations

import pytest

from engine.types import CropPath, Word
from stages.speech import (
    CROSSFADE_S,
    clip_spans,
    clip_words,
    plan_segments,
    segment_frames,
    splice_crop_path,
    spliced_duration,
    to_clip_time,
)

FPS = 25.0


def kept_words(words, segments, fps):
    """Words (source times) whose midpoint plays in the clip."""
    return [w for w in words if to_clip_time((w.start + w.end) / 2, segments, fps) is not None]


def words(spec: list[tuple[float, float, str, str]]) -> list[Word]:
    return [Word(a, b, text, 1.0, spk) for a, b, text, spk in spec]


# guest, host question, guest answer, host, guest
SCRIPT = words([
    (1.00, 1.40, "first", "G"), (1.50, 2.00, "answer.", "G"),
    (2.80, 3.10, "what", "H"), (3.20, 3.60, "next?", "H"),
    (4.40, 4.90, "second", "G"), (5.00, 5.60, "answer.", "G"),
    (6.30, 6.70, "why", "H"), (6.80, 7.20, "so?", "H"),
    (8.00, 8.60, "because.", "G"),
])


def test_without_a_host_the_window_is_one_frame_aligned_segment():
    assert plan_segments(0.0, 9.0, SCRIPT, None, FPS) == ((0.0, 9.0),)
    (a, b), = plan_segments(0.013, 8.99, SCRIPT, None, FPS)
    assert a * FPS == pytest.approx(round(a * FPS)) and (b - a) * FPS == pytest.approx(round((b - a) * FPS))


def test_host_turns_are_cut_in_the_pauses_and_every_guest_word_survives():
    segs = plan_segments(0.5, 9.0, SCRIPT, "H", FPS)
    assert len(segs) == 3
    kept = kept_words(SCRIPT, segs, FPS)
    assert [w.text for w in kept] == ["first", "answer.", "second", "answer.", "because."]
    for w in SCRIPT:
        inside = [(a, b) for a, b in segs if a < w.end and w.start < b]
        if w.speaker == "H":
            assert not inside, f"host word {w.text} overlaps {inside}"
        else:  # the whole word, plus room for the crossfade, plays inside one segment
            assert len(inside) == 1
            a, b = inside[0]
            assert a <= w.start - CROSSFADE_S / 2 and w.end + CROSSFADE_S / 2 <= b
    for a, b in segs:
        assert a * FPS == pytest.approx(round(a * FPS), abs=1e-6)
        assert (b - a) * FPS == pytest.approx(round((b - a) * FPS), abs=1e-6)


def test_a_window_that_opens_or_closes_on_the_host_drops_that_piece():
    segs = plan_segments(2.5, 7.5, SCRIPT, "H", FPS)
    assert len(segs) == 1
    a, b = segs[0]
    assert 3.6 < a < 4.4 and 5.6 < b < 6.3


def test_clip_timeline_is_the_concatenation_of_segments():
    segs = plan_segments(0.5, 9.0, SCRIPT, "H", FPS)
    total = spliced_duration(segs, FPS)
    assert total == pytest.approx(sum(segment_frames(segs, FPS)) / FPS)
    assert total < 9.0 - 0.5 - (3.6 - 2.8) - (7.2 - 6.3)
    moved = clip_words(SCRIPT, segs, FPS)
    assert [w.text for w in moved] == ["first", "answer.", "second", "answer.", "because."]
    assert all(0 <= w.start < w.end <= total for w in moved)
    assert [w.start for w in moved] == sorted(w.start for w in moved)
    for w, src in zip(moved, kept_words(SCRIPT, segs, FPS), strict=True):
        assert w.start == pytest.approx(to_clip_time(src.start, segs, FPS), abs=1e-3)
        assert w.end - w.start == pytest.approx(src.end - src.start, abs=1e-3)
    assert to_clip_time(3.0, segs, FPS) is None  # inside the first host turn


def test_crop_path_is_reindexed_onto_the_spliced_frames():
    n = int(9 * FPS)
    path = CropPath(FPS, 0.0, tuple(float(k) for k in range(n)), (0.0,) * n, "face")
    segs = plan_segments(0.0, 9.0, SCRIPT, "H", FPS)
    out = splice_crop_path(path, segs)
    assert len(out.x) == sum(segment_frames(segs, FPS))
    k = 0
    for (a, _), m in zip(segs, segment_frames(segs, FPS), strict=True):
        assert out.x[k] == pytest.approx(round(a * FPS))  # x encodes the source frame number
        assert out.x[k + m - 1] == pytest.approx(round(a * FPS) + m - 1)
        k += m


def test_a_host_word_straddling_the_window_edge_is_cut_too():
    # the window was padded on the guest's words only: it ends 0.1 s into the host's "what"
    segs = plan_segments(0.5, 2.9, SCRIPT, "H", FPS)
    assert len(segs) == 1
    a, b = segs[0]
    assert b <= 2.80 + 1 / FPS  # nothing of "what" (2.80-3.10) plays
    assert 2.00 < b  # "answer." (1.50-2.00) is whole
    # and at the start: a window opening inside the host's "so?" (6.80-7.20)
    (a, b), = plan_segments(7.1, 8.9, SCRIPT, "H", FPS)
    assert a >= 7.20 - 1 / FPS


def test_a_window_of_host_speech_only_keeps_nothing():
    assert plan_segments(2.7, 3.7, SCRIPT, "H", FPS) == ()


def test_clip_spans_maps_source_spans_onto_the_spliced_timeline() -> None:
    """A fit shot 3-9 s over segments 0-2, 4-6, 8-12 plays as 2-4 and 4-5 on the clip (edges as to_clip_time)."""
    segs = [(0.0, 2.0), (4.0, 6.0), (8.0, 12.0)]
    got = clip_spans([(3.0, 9.0)], segs, 25.0)
    assert got == [(2.0, 4.0), (4.0, 5.0)]
    assert got[0][0] == pytest.approx(to_clip_time(4.0, segs, 25.0))
    assert got[1][1] == pytest.approx(to_clip_time(9.0, segs, 25.0))
    assert clip_spans([(2.5, 3.5)], segs, 25.0) == []  # cut out entirely
    assert clip_spans([(1.0, 3.0)], [(0.5, 10.0)], 25.0) == [(0.5, 2.5)]  # one window: source - start
