"""The local provider's metadata without an LLM: titles are complete phrases of <= 60 characters
ending at a phrase boundary, hooks are whole sentences, hashtags are lower-case words of the clip.

Judged on the committed speech (its sentences, from tests/media/truth.json), on the phrases real
footage produced badly before ("A specific answer to that question, the Treasury", "Coloradoans,
tired of being the second most dangerous"), on every clip the scorer picks, and on a real
recording (jfk.wav in ../shared/media, transcribed) where it is present.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.options import ProcessOptions
from engine.types import AudioFeatures
from stages.moments import HighlightsRequest, LocalMomentScorer
from stages.moments.text import (
    _DANGLING,
    _PHRASE_STARTERS,
    PAUSE_MARK,
    TfIdf,
    hashtags_from,
    hook_from,
    title_from,
    tokens,
)
from tests.stages.moments.test_highlights import speech

MEDIA = Path(__file__).resolve().parents[2] / "media"
TRUTH = json.loads((MEDIA / "truth.json").read_text())["files"]["speech_topics.mp4"]["sentences"]
SENTENCES = [s["text"] for s in TRUTH]
FLAT = AudioFeatures(0.0, 0.05, ())


def assert_title(title: str, texts: list[str]) -> None:
    """<= 60 characters, a run of the clip's words, ending where a phrase ends: at punctuation, at a
    pause (PAUSE_MARK in phrased text), at the clip's end, or just before a word that starts a phrase."""
    assert 0 < len(title) <= 60, title
    last = title.split()[-1].lower().strip(",;:'\"")
    assert last not in _DANGLING, f"{title!r} ends on {last!r}"
    assert not title.endswith(("…", ",", ";", ":")), title
    said: list[tuple[str, bool]] = []  # (word, a phrase boundary follows it)
    for token in " ".join(texts).split():
        if token == PAUSE_MARK:
            if said:
                said[-1] = (said[-1][0], True)
            continue
        said.append((token.lower().strip(",.;:?!"), token[-1] in ",.;:?!"))
    wanted = [w.lower().strip(",.;:?!") for w in title.split()]
    n = len(wanted)
    starts = [i for i in range(len(said) - n + 1) if [w for w, _ in said[i:i + n]] == wanted]
    assert starts, f"{title!r} is not a run of the clip's words"
    ends_well = any(said[i + n - 1][1] or i + n == len(said) or said[i + n][0] in _PHRASE_STARTERS
                    for i in starts)
    assert ends_well, f"{title!r} stops mid-phrase"


@pytest.mark.parametrize(("texts", "expected"), [
    (["A specific answer to that question, the Treasury Department said it would publish the figures next "
      "spring."], "A specific answer to that question"),
    (["And so, my fellow Americans, ask not what your country can do for you, ask what you can do for your "
      "country."], "Ask not what your country can do for you"),
    (["Coloradoans, tired of being the second most dangerous state for drivers in the West, voted for the new "
      "law."], None),
    (["The board approved three hundred and fifty million dollars for the new high school building program "
      "across the entire district this year"], None),
])
def test_titles_are_complete_phrases(texts, expected):
    title = title_from(texts, TfIdf(texts))
    assert_title(title, texts)
    if expected:
        assert title == expected


def test_committed_speech_titles_hooks_and_hashtags():
    """Every run of 1-4 consecutive sentences of the committed speech, as a clip would hold them."""
    tfidf = TfIdf(SENTENCES)
    for i in range(len(SENTENCES)):
        for n in (1, 2, 3, 4):
            texts = SENTENCES[i:i + n]
            assert_title(title_from(texts, tfidf), texts)
            hook = hook_from(texts)
            assert hook in texts, "the hook is one whole sentence of the clip"
            clip_words = set(tokens(" ".join(texts)))
            tags = hashtags_from(" ".join(texts), tfidf)
            assert tags and all(t == t.lower() and t.isalpha() and t in clip_words for t in tags), tags


def test_the_scorers_clips_carry_such_metadata():
    transcript = speech(SENTENCES)
    request = HighlightsRequest(transcript, FLAT, ProcessOptions.build(num_clips=4, clip_length="short"),
                                (0.0, transcript.audio_duration))
    selection = LocalMomentScorer(use_embeddings=False).select(request)
    assert len(selection.moments) >= 3
    for m in selection.moments:
        said = " ".join(w.text for w in transcript.words_between(m.start, m.end))
        assert_title(m.metadata.title, [said])
        assert m.metadata.viral_hook and m.metadata.viral_hook in said and not m.metadata.viral_hook.endswith("…")
        assert all(t in set(tokens(said)) and t == t.lower() for t in m.metadata.hashtags)


def test_a_real_recording(shared_media, tmp_path):
    """JFK's inaugural line through the pipeline's transcription (tiny.en writes it without a comma):
    the title ends where he pauses, the hook is the whole sentence, the hashtags are words of it."""
    from faster_whisper import decode_audio

    from stages.moments.local import extractive_metadata
    from stages.moments.text import phrased, split_sentences
    from stages.speech import TranscribeRequest
    from tests.judges import pipeline_transcriber

    audio, ctx, stage = pipeline_transcriber(decode_audio(str(shared_media / "jfk.wav"), sampling_rate=16_000),
                                             tmp_path)
    words = stage.process(TranscribeRequest(audio), ctx).words
    sentences = split_sentences(words, 90.0)
    said = [s.text for s in sentences]
    assert len(" ".join(said)) > 60  # longer than a title: it must be cut well
    meta = extractive_metadata(sentences, TfIdf(said), 5.0)
    assert_title(meta.title, [phrased(s) for s in sentences])
    assert meta.viral_hook in said
    assert all(t in set(tokens(" ".join(said))) for t in meta.hashtags)
    print(f"\njfk.wav: {' '.join(phrased(s) for s in sentences)!r} -> title {meta.title!r}")
