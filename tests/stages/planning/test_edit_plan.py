"""A re-render's plan (stages.planning.edit): the window snapped out of words, corrections by index."""

from __future__ import annotations

import pytest

from engine.errors import InvalidOptions
from engine.types import Transcript, Word
from stages.planning.edit import check_window, corrected, snapped_window

WORDS = tuple(Word(1.0 + i, 1.6 + i, f"w{i}") for i in range(10))  # words 1.0-1.6, 2.0-2.6, ... 10.0-10.6


@pytest.mark.parametrize(("start", "end", "want"), [
    (3.3, 7.2, (2.95, 7.72)),  # both edges inside words: out to their edges (plus a little air)
    (2.8, 6.8, (2.8, 6.8)),  # in the pauses: kept as asked
    (0.0, 20.0, (0.5, 11.0)),  # clamped to the span
    (1.59, 2.01, (1.0 - 0.05, 2.6 + 0.12)),
])
def test_edges_inside_a_word_move_out_to_its_edges(start, end, want) -> None:
    got = snapped_window(start, end, WORDS, (0.5, 11.0))
    assert got == pytest.approx(want)
    for w in WORDS:  # no word is cut: each lies wholly inside or wholly outside
        inside = w.start >= got[0] - 1e-9 and w.end <= got[1] + 1e-9
        outside = w.end <= got[0] + 1e-9 or w.start >= got[1] - 1e-9
        assert inside or outside, (w, got)


def test_snapping_never_reaches_into_the_neighbouring_word() -> None:
    tight = (Word(1.0, 1.5, "a"), Word(1.52, 2.0, "b"), Word(2.02, 2.5, "c"))
    start, end = snapped_window(1.7, 2.2, tight, (0.0, 5.0))
    assert start == pytest.approx(1.5) and end == pytest.approx(2.62)


def test_corrections_replace_text_and_keep_timing() -> None:
    t = corrected(Transcript(WORDS), {2: "Zebra"})
    assert t.words[2].text == "Zebra" and (t.words[2].start, t.words[2].end) == (WORDS[2].start, WORDS[2].end)
    assert [w.text for i, w in enumerate(t.words) if i != 2] == [w.text for i, w in enumerate(WORDS) if i != 2]
    with pytest.raises(InvalidOptions, match="word 10 does not exist"):
        corrected(Transcript(WORDS), {10: "x"})


def test_windows_outside_the_span_or_too_short_are_refused() -> None:
    with pytest.raises(InvalidOptions, match="outside"):
        check_window(20.0, 25.0, (0.0, 12.0))
    with pytest.raises(InvalidOptions, match="at least 1 s"):
        check_window(3.0, 3.5, (0.0, 12.0))
