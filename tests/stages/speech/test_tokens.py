"""Tokens the ASR splits ("1" ",000", "self" "-starter", "90" "%") are joined back into the words a
reader expects, with their timing merged; and the transcribe stage does it on real speech."""

from __future__ import annotations

import re
import subprocess

import pytest

from engine.stage import StageContext
from engine.types import AnalysisAudio, Word
from stages.speech import TranscribeRequest, TranscribeStage
from stages.speech import transcribe as transcribe_module
from stages.speech.tokens import join_split_tokens
from tests.judges import pipeline_transcriber


def words(*pieces: tuple[str, float, float]) -> list[Word]:
    return [Word(a, b, text, 0.9 - 0.1 * i) for i, (text, a, b) in enumerate(pieces)]


@pytest.mark.parametrize(("pieces", "expected"), [
    ([("Below", 0.0, 0.3), ("1", 0.35, 0.5), (",000", 0.5, 0.8), ("meters", 0.85, 1.2)],
     ["Below", "1,000", "meters"]),
    ([("It", 0.0, 0.1), ("was", 0.1, 0.2), ("3", 0.25, 0.4), (".5", 0.4, 0.6), ("degrees.", 0.6, 1.0)],
     ["It", "was", "3.5", "degrees."]),
    ([("90", 0.0, 0.3), ("%", 0.3, 0.5), ("of", 0.55, 0.6)], ["90%", "of"]),
    ([("$", 0.0, 0.1), ("350", 0.1, 0.5), ("million", 0.55, 0.9)], ["$350", "million"]),
    ([("a", 0.0, 0.1), ("self", 0.15, 0.4), ("-starter.", 0.4, 0.8)], ["a", "self-starter."]),
    ([("well-", 0.0, 0.3), ("known", 0.3, 0.6)], ["well-known"]),
    ([("nine", 0.0, 0.3), ("o", 0.35, 0.4), ("'clock.", 0.4, 0.7)], ["nine", "o'clock."]),
    ([("I", 0.0, 0.1), ("don", 0.15, 0.3), ("'t", 0.3, 0.4), ("know", 0.45, 0.7)], ["I", "don't", "know"]),
    ([("the", 0.0, 0.1), ("21", 0.15, 0.4), ("st", 0.4, 0.5), ("century", 0.55, 0.9)], ["the", "21st", "century"]),
    # separate words stay separate: a pause between the pieces, or spellings that are not one word
    ([("1", 0.0, 0.2), (",000", 0.9, 1.2)], ["1", ",000"]),
    ([("Yes,", 0.0, 0.2), ("and", 0.2, 0.4)], ["Yes,", "and"]),
    ([("10", 0.0, 0.2), ("people", 0.2, 0.5)], ["10", "people"]),
    ([("-", 0.0, 0.1), ("well", 0.1, 0.3)], ["-", "well"]),
])
def test_split_tokens_are_joined(pieces, expected):
    joined = join_split_tokens(words(*pieces))
    assert [w.text for w in joined] == expected


def test_joined_timing_spans_the_pieces():
    a, b, c = join_split_tokens(words(("Below", 0.0, 0.3), ("1", 0.35, 0.5), (",000", 0.5, 0.8),
                                      ("meters", 0.85, 1.2)))
    assert (b.start, b.end) == (0.35, 0.8)
    assert b.probability == pytest.approx(0.7)  # the lower of the pieces'
    assert a.end <= b.start and b.end <= c.start


SAID = ("Below 1,000 meters, 90% of the light is gone. She is a self-starter who paid $350 for it. "
        "We met at 9 o'clock, and it was 3.5 degrees.")
PIECE = re.compile(r"^[,.%']|^-\w")  # a token that only continues the word before it


@pytest.fixture(scope="module")
def spoken(tmp_path_factory) -> tuple[AnalysisAudio, StageContext, TranscribeStage]:
    from faster_whisper import decode_audio

    tmp = tmp_path_factory.mktemp("tokens")
    wav = tmp / "said.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(wav), SAID], check=True)
    return pipeline_transcriber(decode_audio(str(wav), sampling_rate=16_000), tmp)


def test_the_transcript_has_whole_words(spoken, monkeypatch):
    """The same model on the same speech, with and without the joining: the joined transcript has no
    dangling piece, says the same text with the pieces' spaces removed, and keeps time order."""
    audio, ctx, stage = spoken
    joined = stage.process(TranscribeRequest(audio), ctx).words
    monkeypatch.setattr(transcribe_module, "join_split_tokens", lambda ws: list(ws))
    raw = stage.process(TranscribeRequest(audio), ctx).words
    pieces = [w.text for w in raw if PIECE.match(w.text)]
    assert not [w.text for w in joined if PIECE.match(w.text)], [w.text for w in joined]
    assert "".join(w.text for w in joined) == "".join(w.text for w in raw)
    assert len(joined) <= len(raw) - len(pieces)  # each piece joined (and "$" "350", "well-" "known")
    assert all(b.start >= a.end for a, b in zip(joined, joined[1:], strict=False))
    print(f"\nASR pieces joined: {pieces}; transcript: {' '.join(w.text for w in joined)}")
