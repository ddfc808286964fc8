"""genre: detect podcast / interview / vlog / tutorial when the job says ``genre: auto``.

Four kinds of evidence, each a number a person can check (all are returned as signals):

- speakers: distinct ``Word.speaker`` labels (where a diarization stage set them) and how
  often the turn changes;
- faces: how many faces the sparse face samples show (two or more: a conversation on
  camera; none: screen recording or b-roll);
- speech density: the share of the span that is speech, and words per minute;
- vocabulary: cue words per 100 words for each genre (``click``, ``step``, ``install`` for
  tutorials; ``today``, ``my``, ``went`` for vlogs; ``episode``, ``guest`` for podcasts;
  questions and ``tell me`` for interviews).

The genre then shapes the local scorer's weights and the LLM prompt (see GENRE_WEIGHTS and
GENRE_GUIDANCE).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np

from engine.types import FaceSample, Word
from stages.moments.text import tokens

GENRES = ("podcast", "interview", "vlog", "tutorial")

CUES: dict[str, frozenset[str]] = {
    "tutorial": frozenset(
        """step steps click select open install type run press first next then finally menu button
        tab settings tutorial guide how setup configure command file folder screen download drag""".split()
    ),
    "vlog": frozenset(
        """today i i'm my me went we're vlog guys trip day morning tonight here's amazing beautiful
        hotel beach city travel walked walking coffee breakfast""".split()
    ),
    "podcast": frozenset(
        """episode podcast listeners show guest welcome back host subscribe conversation discuss
        topic sponsor""".split()
    ),
    "interview": frozenset(
        """tell me you your describe career experience question answer background role why how""".split()
    ),
}

#: Local scorer weights per genre (relevance is added when the job has a prompt).
GENRE_WEIGHTS: dict[str, dict[str, float]] = {
    "podcast": {"hook": 0.30, "complete": 0.22, "emotion": 0.14, "energy": 0.14, "pace": 0.10, "density": 0.10},
    "interview": {"hook": 0.32, "complete": 0.24, "emotion": 0.14, "energy": 0.10, "pace": 0.10, "density": 0.10},
    "vlog": {"hook": 0.24, "complete": 0.14, "emotion": 0.26, "energy": 0.20, "pace": 0.10, "density": 0.06},
    "tutorial": {"hook": 0.16, "complete": 0.38, "emotion": 0.04, "energy": 0.08, "pace": 0.14, "density": 0.20},
}

GENRE_GUIDANCE: dict[str, str] = {
    "podcast": "A podcast: favour strong opinions, surprising claims and stories that stand alone "
               "without the rest of the episode.",
    "interview": "An interview: favour a sharp question together with its complete answer, and "
                 "answers that reveal something personal or contrarian.",
    "vlog": "A vlog: favour emotional peaks, reveals, reactions and visually lively moments.",
    "tutorial": "A tutorial: favour one complete tip or step that works on its own, with its "
                "result; never cut a step in half.",
}


def detect_genre(
    words: Sequence[Word], span: tuple[float, float], faces: Sequence[FaceSample] = ()
) -> tuple[str, dict[str, float]]:
    """(genre, signals). Ties and an empty transcript fall back to ``podcast``."""
    t0, t1 = span
    minutes = max((t1 - t0) / 60.0, 1e-6)
    toks = [t for w in words for t in tokens(w.text)]
    n = max(len(toks), 1)
    cue = {g: 100.0 * sum(t in lex for t in toks) / n for g, lex in CUES.items()}
    speakers = Counter(w.speaker for w in words if w.speaker)
    main = [s for s, c in speakers.items() if c >= 0.05 * len(words)]
    turns = sum(1 for a, b in zip(words, words[1:], strict=False) if a.speaker and b.speaker and a.speaker != b.speaker)
    counts = np.array([len(s.faces) for s in faces], dtype=float)
    questions = sum(w.text.endswith("?") for w in words)
    sentences = max(1, sum(w.text.endswith((".", "?", "!")) for w in words))
    signals = {
        "speakers": float(len(main)),
        "turns_per_min": turns / minutes,
        "faces_median": float(np.median(counts)) if counts.size else -1.0,
        "faces_multi_share": float((counts >= 2).mean()) if counts.size else 0.0,
        "faces_none_share": float((counts == 0).mean()) if counts.size else 0.0,
        "speech_share": min(1.0, sum(w.end - w.start for w in words) / max(t1 - t0, 1e-6)),
        "words_per_min": len(words) / minutes,
        "question_share": questions / sentences,
        **{f"cue_{g}": round(v, 3) for g, v in cue.items()},
    }
    if not words:
        return "vlog" if counts.size and signals["faces_none_share"] < 0.5 else "podcast", signals
    two_people = len(main) >= 2 or signals["faces_multi_share"] >= 0.5
    score = {
        "podcast": 0.6 + 0.6 * cue["podcast"] + (0.5 if two_people else 0.0)
        + (0.4 if signals["speech_share"] > 0.6 else 0.0),
        "interview": 0.4 * cue["interview"] + 3.0 * signals["question_share"]
        + (0.9 if two_people else 0.0) + (0.4 if signals["turns_per_min"] >= 1.0 else 0.0),
        "vlog": 0.5 * cue["vlog"] + (0.6 if signals["speech_share"] < 0.45 else 0.0)
        + (0.3 if len(main) <= 1 and signals["faces_median"] == 1 else 0.0),
        "tutorial": 0.9 * cue["tutorial"] + (0.4 if signals["faces_none_share"] >= 0.6 else 0.0)
        + (0.2 if len(main) <= 1 else 0.0),
    }
    genre = max(GENRES, key=lambda g: (score[g], -GENRES.index(g)))
    signals.update({f"score_{g}": round(v, 3) for g, v in score.items()})
    return genre, signals


def resolve_genre(requested: str, words: Sequence[Word], span: tuple[float, float],
                  faces: Sequence[FaceSample] = ()) -> tuple[str, dict[str, float]]:
    """The job's genre: as asked, or detected when ``auto``."""
    if requested != "auto":
        return requested, {}
    return detect_genre(words, span, faces)
