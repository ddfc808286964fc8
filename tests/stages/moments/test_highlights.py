"""The local moment scorer: windows in range, non-overlapping, on word boundaries, explainable."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.options import CLIP_LENGTH_RANGES, ProcessOptions
from engine.types import AudioFeatures, Transcript, Word
from stages.moments import HighlightsRequest, LocalMomentScorer
from tests.judges import check

FLAT = AudioFeatures(0.0, 0.05, ())


def speech(sentences: list[str], start: float = 0.5, wps: float = 2.8, pause: float = 0.45) -> Transcript:
    words, t = [], start
    for sentence in sentences:
        for token in sentence.split():
            d = max(0.12, len(token) / (wps * 5.0))
            words.append(Word(round(t, 3), round(t + d, 3), token))
            t += d + 0.06
        t += pause
    return Transcript(tuple(words), audio_duration=t)


def select(transcript: Transcript, span: tuple[float, float], **opts) -> tuple:
    request = HighlightsRequest(transcript, FLAT, ProcessOptions.build(**opts), span)
    return LocalMomentScorer().select(request)


def cuts_a_word(words, t: float) -> bool:
    return any(w.start + 1e-6 < t < w.end - 1e-6 for w in words)


GARDEN = [
    "Tomatoes love rich soil with plenty of compost mixed in.",
    "Water the tomato plants deeply twice a week.",
    "A thick layer of mulch keeps the soil cool and moist.",
    "Pick each tomato when it is deep red and a little soft.",
    "Compost and mulch make the garden soil rich every summer.",
    "Prune the tomato plants so the sun reaches every fruit.",
] * 2
HIRING = [
    "Now let us talk about hiring engineers for a startup.",
    "Why do most startups fail at hiring engineers?",
    "They interview candidates for trivia instead of real engineering work.",
    "Tell every engineering candidate the salary range in the first call.",
    "The best engineers get three offers within a single week of interviews.",
    "So move fast and answer every hiring candidate within two days.",
] * 2


def test_prompt_moves_the_top_clip_onto_its_topic():
    tr = speech(GARDEN + HIRING)
    span = (0.0, tr.audio_duration + 0.5)
    hiring_start = next(w.start for w in tr.words if w.text == "Now")
    with_prompt = select(tr, span, clip_length="medium", num_clips=2, prompt="hiring engineers")
    top = with_prompt.moments[0]
    assert top.start >= hiring_start - 0.5, (top.start, hiring_start)
    # MiniLM relevance; measured on the locked versions: 0.93
    check("highlights: relevance of the top clip to its prompt", top.reasons["relevance"], 0.8)
    garden_prompt = select(tr, span, clip_length="medium", num_clips=2, prompt="tomato garden soil")
    assert garden_prompt.moments[0].end <= hiring_start + 0.5


def test_metadata_is_extracted_from_the_window():
    tr = speech(HIRING)
    sel = select(tr, (0.0, tr.audio_duration), clip_length="short", num_clips=3)
    for m in sel.moments:
        text = " ".join(w.text for w in tr.words_between(m.start, m.end)).lower()
        assert m.metadata.title and m.metadata.title.split()[0].lower().strip(".,?") in text
        assert m.metadata.viral_hook.lower()[:20] in text
        assert all(tag.isalnum() and tag.lower() in text for tag in m.metadata.hashtags)
        assert 0 <= m.metadata.viral_score <= 10 and m.metadata.viral_score == round(m.score, 1)
        assert set(m.reasons) == {"hook", "complete", "emotion", "energy", "pace", "density", "relevance"}
    # a question with a number and "you" outranks a flat statement as a hook
    assert sel.moments[0].reasons["hook"] >= max(m.reasons["hook"] for m in sel.moments)


def test_short_source_gives_fewer_clips_and_says_so():
    tr = speech(HIRING[:4])
    sel = select(tr, (0.0, tr.audio_duration), clip_length="medium", num_clips=5)
    assert 1 <= len(sel.moments) < 5
    assert any("requested 5" in note for note in sel.notes)


def test_source_shorter_than_the_minimum_still_gives_one_clip():
    tr = speech(["Hello there."])
    sel = select(tr, (0.0, 4.0), clip_length="long", num_clips=3)
    assert len(sel.moments) == 1
    assert (sel.moments[0].start, sel.moments[0].end) == (0.0, 4.0)
    assert sel.notes


def test_mode_none_is_the_whole_trimmed_span():
    tr = speech(GARDEN)
    sel = select(tr, (2.0, 20.0), mode="none", num_clips=5, trim_start=2.0, trim_end=20.0)
    assert [(m.start, m.end) for m in sel.moments] == [(2.0, 20.0)]


def test_no_speech_uses_energy_windows():
    feats = AudioFeatures(0.0, 0.05, tuple(np.where(np.arange(1200) % 400 < 200, -20.0, -60.0)))
    request = HighlightsRequest(Transcript(()), feats, ProcessOptions.build(clip_length="short"), (0.0, 60.0))
    sel = LocalMomentScorer().select(request)
    assert len(sel.moments) == 3
    assert any("no speech" in n for n in sel.notes)
    for m in sel.moments:
        assert 3.0 <= m.duration <= 15.0


def test_a_window_at_the_upper_bound_is_not_cut_inside_its_last_word():
    # 30 words from 10.0 to 24.9 s (one 14.9 s sentence), silence around: padding must give way
    words = [Word(round(10.0 + i * 0.5, 3), round(10.0 + i * 0.5 + 0.4, 3), "word") for i in range(30)]
    words[-1] = Word(24.5, 24.9, "end.")
    tr = Transcript(tuple(words), audio_duration=35.0)
    sel = select(tr, (0.0, 35.0), clip_length="short", num_clips=1)
    top = sel.moments[0]
    assert 3.0 - 1e-6 <= top.duration <= 15.0 + 1e-6
    assert not cuts_a_word(words, top.start) and not cuts_a_word(words, top.end), (top.start, top.end)
    assert top.start <= 10.0 and top.end >= 24.9  # the whole sentence, and no more than 15 s


def test_a_sentence_longer_than_the_range_is_never_cut_inside_a_word():
    # one unbroken 16 s run of words with no punctuation, longer than short's 15 s
    words = [Word(round(2.0 + i * 0.4, 3), round(2.0 + i * 0.4 + 0.35, 3), "word") for i in range(40)]
    tr = Transcript(tuple(words), audio_duration=20.0)
    sel = select(tr, (0.0, 20.0), clip_length="short", num_clips=2)
    for m in sel.moments:
        assert 3.0 - 1e-6 <= m.duration <= 15.0 + 1e-6
        assert not cuts_a_word(words, m.start) and not cuts_a_word(words, m.end)


@pytest.mark.parametrize(("span", "n", "expected"), [(8.0, 2, 2), (8.0, 3, 2), (6.4, 2, 2), (6.0, 2, 1),
                                                     (40.0, 3, 3), (31.0, 5, 5)])
def test_no_speech_tiles_the_span_with_as_many_windows_as_fit(span, n, expected):
    request = HighlightsRequest(Transcript(()), FLAT, ProcessOptions.build(clip_length="short", num_clips=n),
                                (0.0, span))
    sel = LocalMomentScorer().select(request)
    assert len(sel.moments) == expected
    spans = sorted((m.start, m.end) for m in sel.moments)
    for a, b in spans:
        assert 0.0 <= a < b <= span and 3.0 - 1e-6 <= b - a <= 15.0 + 1e-6
    assert all(x[1] <= y[0] for x, y in zip(spans, spans[1:], strict=False))


word_text = st.sampled_from(["you", "never", "the", "secret", "is", "90", "hiring", "soil", "why", "water"])


@st.composite
def random_words(draw, t: float) -> tuple[list[Word], float]:
    n = draw(st.integers(0, 120))
    words = []
    for _ in range(n):
        t += draw(st.sampled_from([0.02, 0.05, 0.1, 0.3, 0.8, 2.0]))
        d = draw(st.floats(0.05, 1.2))
        text = draw(word_text) + draw(st.sampled_from(["", "", "", ".", "?", ","]))
        words.append(Word(round(t, 3), round(t + d, 3), text))
        t += d
    return words, t


@st.composite
def run_near_a_bound(draw, t: float) -> tuple[list[Word], float]:
    """One sentence whose span lies within a second of a clipLength bound (3, 15, 20, 45, 90 s)."""
    bound = draw(st.sampled_from([3.0, 15.0, 20.0, 45.0, 90.0]))
    target = max(0.5, bound + draw(st.floats(-1.0, 1.0)))
    fewest = int(target // 1.2) + 1  # words of at most 1.2 s, as in speech
    n = draw(st.integers(fewest, fewest + 30))
    step = target / n
    fill = draw(st.sampled_from([0.5, 0.8, 0.95, 1.0]))  # 1.0: words touch, no gap to cut in
    words = []
    for i in range(n):
        a = t + i * step
        last = i == n - 1
        words.append(Word(round(a, 3), round(a + step * fill if not last else t + target, 3),
                          draw(word_text) + ("." if last else "")))
    return words, t + target


@st.composite
def transcripts(draw):
    words, t = [], draw(st.floats(0, 5))
    for _ in range(draw(st.integers(1, 3))):
        part = run_near_a_bound(t) if draw(st.booleans()) else random_words(t)
        more, t = draw(part)
        words += more
        t += draw(st.sampled_from([0.0, 0.05, 0.2, 0.4, 1.0, 3.0]))
    return Transcript(tuple(words), audio_duration=t)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    tr=transcripts(),
    length=st.sampled_from(["short", "medium", "long"]),
    n=st.integers(1, 10),
    extra=st.floats(0, 30),
    trim=st.floats(0, 10),
    prompt=st.sampled_from(["", "hiring", "why soil"]),
)
def test_windows_are_in_range_ordered_disjoint_and_on_word_boundaries(tr, length, n, extra, trim, prompt):
    end = (tr.words[-1].end if tr.words else 0.0) + extra + 1.0
    t0 = min(trim, end - 0.5)
    sel = select(tr, (t0, end), clip_length=length, num_clips=n, prompt=prompt)
    lo, hi = CLIP_LENGTH_RANGES[length]
    assert 1 <= len(sel.moments) <= n
    # only a span shorter than the minimum may give a shorter clip (the whole span); nothing may exceed hi
    short_span = end - t0 < lo
    inside = [w for w in tr.words if w.start >= t0 and w.end <= end]
    for m in sel.moments:
        assert t0 - 1e-6 <= m.start < m.end <= end + 1e-6
        assert m.duration <= hi + 1e-3, (m.start, m.end)
        if short_span:
            assert len(sel.moments) == 1 and (m.start, m.end) == pytest.approx((t0, end))
        else:
            assert lo - 1e-3 <= m.duration, (m.start, m.end)
        assert not cuts_a_word(inside, m.start) and not cuts_a_word(inside, m.end)
        assert 0.0 <= m.score <= 10.0
    scores = [m.score for m in sel.moments]
    assert scores == sorted(scores, reverse=True)
    spans = sorted((m.start, m.end) for m in sel.moments)
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:], strict=False))
