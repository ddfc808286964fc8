"""Words as a reader expects them: tokens Whisper splits apart, joined back with their timing.

Whisper's word timestamps come from its sub-word tokens, and some words arrive in pieces: "1"
",000", "3" ".5", "90" "%", "$" "5", "self" "-starter", "well-" "known", "o" "'clock", "don" "'t".
Captions then show "1 ,000" and a caption group may even break between the pieces. Each rule
below joins a piece to the word before it when the two touch in time (a gap of at most
``MAX_GAP_S``: a real pause means two words); the joined word runs from the first piece's start
to the last one's end, with the lower of their probabilities and the first one's speaker.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from engine.types import Word

#: pieces further apart than this (seconds) are separate words however they are spelled
MAX_GAP_S = 0.25

_DIGIT_END = re.compile(r"\d$")
_THOUSANDS = re.compile(r"^[.,]\d")  # ",000" "/ ".5" after a digit
_PERCENT = re.compile(r"^%")  # "%" "%," after a digit
_CURRENCY = frozenset({"$", "£", "€", "¥", "#"})  # "$" then "5"; "#" then "1"
_HYPHEN_NEXT = re.compile(r"^-\w")  # "-starter" after a word
_APOSTROPHE_NEXT = re.compile(r"^['’](s|t|re|ve|ll|d|m|clock|em|n)\b", re.IGNORECASE)
_WORD_END = re.compile(r"\w$")
_STARTS_WORD = re.compile(r"^\w")
_ORDINAL = re.compile(r"^(st|nd|rd|th)\b", re.IGNORECASE)  # "21" "st"


def _joins(prev: str, nxt: str) -> bool:
    """Whether ``nxt`` continues ``prev`` as one written word."""
    if _DIGIT_END.search(prev) and (_THOUSANDS.match(nxt) or _PERCENT.match(nxt) or _ORDINAL.match(nxt)):
        return True
    if prev in _CURRENCY and nxt[:1].isdigit():
        return True
    if _WORD_END.search(prev) and (_HYPHEN_NEXT.match(nxt) or _APOSTROPHE_NEXT.match(nxt)):
        return True
    return prev.endswith("-") and len(prev) > 1 and bool(_STARTS_WORD.match(nxt))


def join_split_tokens(words: Iterable[Word], max_gap_s: float = MAX_GAP_S) -> list[Word]:
    """``words`` with every split word joined back (see the module docstring); order kept."""
    out: list[Word] = []
    for w in words:
        if out:
            prev = out[-1]
            if w.start - prev.end <= max_gap_s and _joins(prev.text, w.text):
                out[-1] = Word(prev.start, max(prev.end, w.end), prev.text + w.text,
                               min(prev.probability, w.probability), prev.speaker)
                continue
        out.append(w)
    return out
