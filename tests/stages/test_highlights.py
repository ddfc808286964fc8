"""The local moment scorer: windows in range, non-overlapping, on word boundaries, explainable."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.options import CLIP_LENGTH_RANGES, ProcessOptions
from engine.types import AudioFeatures, Transcript, Word
from stages.highlights import HighlightsRequest, LocalMomentScorer

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
    assert top.reasons["relevance"] > 0.8
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


word_text = st.sampled_from(["you", "never", "the", "secret", "is", "90", "hiring", "soil", "why", "water"])


@st.composite
def transcripts(draw):
    n = draw(st.integers(0, 120))
    words, t = [], draw(st.floats(0, 5))
    for _ in range(n):
        t += draw(st.sampled_from([0.02, 0.05, 0.1, 0.3, 0.8, 2.0]))
        d = draw(st.floats(0.05, 1.2))
        text = draw(word_text) + draw(st.sampled_from(["", "", "", ".", "?", ","]))
        words.append(Word(round(t, 3), round(t + d, 3), text))
        t += d
    return Transcript(tuple(words), audio_duration=t)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
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
    fallback = len(sel.moments) == 1 and abs(sel.moments[0].start - t0) < 2e-3 and abs(sel.moments[0].end - end) < 2e-3
    inside = [w for w in tr.words if w.start >= t0 and w.end <= end]
    for m in sel.moments:
        assert t0 - 1e-6 <= m.start < m.end <= end + 1e-6
        if not fallback:
            assert lo - 1e-3 <= m.duration <= hi + 1e-3
        assert not cuts_a_word(inside, m.start) and not cuts_a_word(inside, m.end)
        assert 0.0 <= m.score <= 10.0
    scores = [m.score for m in sel.moments]
    assert scores == sorted(scores, reverse=True)
    spans = sorted((m.start, m.end) for m in sel.moments)
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:], strict=False))
