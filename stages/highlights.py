"""highlights: choose the clip windows (the local scorer) and their extractive metadata.

Windows are spans of whole sentences (or, for very long sentences, word-boundary units)
whose length falls in the clipLength range, never overlapping, padded into the silence
around the speech so no word is cut. Score (0-10) = weighted sum of named features:

- hook: the opening sentence's pull (question, number, "you", contrast, strong claim)
- complete: starts a thought and ends on a full stop
- energy: speech loudness of the span against the source's median
- pace: words per second near a lively 2.5-3.5
- density: share of the window that is speech
- relevance: TF-IDF similarity to the user's prompt (weighted up when a prompt is given)

``MomentProvider`` is the seam for the LLM providers (a later issue): anything that
turns a request into a MomentSelection can stand in for ``LocalMomentScorer``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from engine.options import ProcessOptions
from engine.stage import Stage, StageContext
from engine.types import AudioFeatures, ClipMetadata, Moment, MomentSelection, Transcript
from stages.moment_text import (
    Sentence,
    TfIdf,
    dominant_emotion,
    hook_strength,
    split_sentences,
    title_from,
    topic_segments,
)

LEAD_IN = 0.15  # seconds of silence kept before the first word
LEAD_OUT = 0.35  # and after the last
MIN_GAP = 0.2  # between two chosen windows

WEIGHTS = {"hook": 0.30, "complete": 0.20, "energy": 0.15, "pace": 0.10, "density": 0.10, "relevance": 0.15}
WEIGHTS_WITH_PROMPT = {
    "hook": 0.18, "complete": 0.12, "energy": 0.08, "pace": 0.05, "density": 0.07, "relevance": 0.50,
}


@dataclass(frozen=True)
class HighlightsRequest:
    transcript: Transcript
    features: AudioFeatures
    options: ProcessOptions
    span: tuple[float, float]  # the trimmed source span


class MomentProvider(Protocol):
    name: str

    def select(self, request: HighlightsRequest) -> MomentSelection: ...


class HighlightsStage(Stage[HighlightsRequest, MomentSelection]):
    name = "highlights"

    def __init__(self, provider: MomentProvider | None = None) -> None:
        self.provider = provider or LocalMomentScorer()

    def process(self, inputs: HighlightsRequest, ctx: StageContext) -> MomentSelection:
        ctx.progress(0.0, f"scoring moments ({self.provider.name})")
        result = self.provider.select(inputs)
        ctx.progress(1.0, f"{len(result.moments)} of {result.requested} clips chosen")
        return result


@dataclass(frozen=True)
class Candidate:
    first: int  # sentence indices, inclusive
    last: int
    start: float  # padded window
    end: float


class LocalMomentScorer:
    """Picks windows without any network: the default provider."""

    name = "local"

    def select(self, request: HighlightsRequest) -> MomentSelection:
        opts = request.options
        t0, t1 = request.span
        words = [w for w in request.transcript.words if w.start >= t0 and w.end <= t1]
        if opts.mode == "none":
            meta = self._metadata(split_sentences(words, 1e9), TfIdf([w.text for w in words]), 5.0)
            moment = Moment(t0, t1, 5.0, {"full_source": 1.0}, meta, self.name)
            return MomentSelection((moment,), 1)
        lo, hi = opts.clip_length_range
        sentences = split_sentences(words, hi - LEAD_IN - LEAD_OUT)
        tfidf = TfIdf([s.text for s in sentences])
        candidates = _candidates(sentences, lo, hi, t0, t1)
        notes: list[str] = []
        if not words:
            notes.append("no speech found: windows chosen by audio energy and position")
            candidates = _silent_candidates(t0, t1, lo, hi)
        relevance = _sentence_relevance(opts.prompt, sentences, tfidf)
        scored = [(self._score(c, sentences, request, relevance), c) for c in candidates]
        chosen = _pick_non_overlapping(scored, opts.num_clips)
        if not chosen:
            notes.append(
                f"the source ({t1 - t0:.1f} s) has no span of {lo:g}-{hi:g} s; "
                "returned the whole source as one clip"
            )
            whole = Candidate(0, len(sentences) - 1, t0, t1)
            chosen = [(self._score(whole, sentences, request, relevance), whole)]
        if len(chosen) < opts.num_clips:
            notes.append(
                f"requested {opts.num_clips} clips; the source had room for {len(chosen)} "
                f"non-overlapping {opts.clip_length} clips ({lo:g}-{hi:g} s)"
            )
        moments = []
        for (score, reasons), c in chosen:
            picked = sentences[c.first : c.last + 1] if sentences else []
            moments.append(
                Moment(c.start, c.end, score, reasons,
                       self._metadata(picked, tfidf, score), self.name)
            )
        return MomentSelection(tuple(moments), opts.num_clips, tuple(notes))

    def _score(
        self, c: Candidate, sentences: Sequence[Sentence], req: HighlightsRequest, relevance: np.ndarray,
    ) -> tuple[float, dict[str, float]]:
        span = sentences[c.first : c.last + 1] if sentences else []
        words = [w for s in span for w in s.words]
        dur = max(c.end - c.start, 1e-6)
        speech = sum(w.end - w.start for w in words)
        level = req.features.speech_level(c.start, c.end)
        typical = req.features.speech_level()
        wps = len(words) / dur
        f = {
            "hook": hook_strength(span[0].text) if span else 0.0,
            "complete": (0.5 * span[0].starts_thought + 0.5 * span[-1].ends_thought) if span else 0.0,
            "energy": float(1.0 / (1.0 + np.exp(-(level - typical) / 2.0))) if req.features.rms_db else 0.5,
            "pace": float(max(0.0, 1.0 - abs(wps - 3.0) / 3.0)) if words else 0.0,
            "density": min(1.0, speech / dur * 1.25),
            "relevance": _window_relevance(relevance, span, c.first),
        }
        weights = WEIGHTS_WITH_PROMPT if req.options.prompt.strip() else WEIGHTS
        score = 10.0 * sum(weights[k] * v for k, v in f.items())
        return round(score, 2), {k: round(v, 3) for k, v in f.items()}

    def _metadata(self, sentences: Sequence[Sentence], tfidf: TfIdf, score: float) -> ClipMetadata:
        texts = [s.text for s in sentences]
        joined = " ".join(texts)
        if not texts:
            return ClipMetadata("Untitled moment", "", "", "calm", (), round(score, 1))
        hook = max(texts[:2], key=hook_strength)
        statements = [t for t in texts if not t.endswith("?") and t != hook] or texts
        insight = max(statements, key=lambda t: sum(tfidf.vector(t).values()))
        return ClipMetadata(
            title=title_from(texts, tfidf),
            viral_hook=_shorten(hook, 120),
            key_insight=_shorten(insight, 160),
            dominant_emotion=dominant_emotion(joined),
            hashtags=tuple(tfidf.keywords(joined, 5)),
            viral_score=round(score, 1),
        )


def _sentence_relevance(prompt: str, sentences: Sequence[Sentence], tfidf: TfIdf) -> np.ndarray:
    """Per sentence, 0-1: how much the topic it belongs to is about the prompt.

    The transcript is split into topic segments (lexical cohesion); each segment is
    compared with the prompt (expanded with the vocabulary of the sentences that match it
    best), so a sentence that does not repeat the prompt's words still counts when its
    topic does, and a passing mention in another topic counts little.
    """
    if not prompt.strip() or not sentences:
        return np.zeros(len(sentences))
    texts = [s.text for s in sentences]
    query = tfidf.expand_query(prompt, texts)
    segments = topic_segments(texts, tfidf)
    seg_text: dict[int, list[str]] = {}
    for sid, text in zip(segments, texts, strict=True):
        seg_text.setdefault(sid, []).append(text)
    seg_rel = {sid: tfidf.similarity(query, " ".join(parts)) for sid, parts in seg_text.items()}
    raw = np.array([seg_rel[sid] for sid in segments])
    top = raw.max()
    return raw / top if top > 0 else raw


def _window_relevance(relevance: np.ndarray, span: Sequence[Sentence], first: int) -> float:
    """Duration-weighted share of the window that is on the prompt's topic."""
    if not span or relevance.size == 0:
        return 0.0
    durations = np.array([s.end - s.start for s in span])
    values = relevance[first : first + len(span)]
    return float(np.dot(values, durations) / max(durations.sum(), 1e-6))


def _shorten(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0]
    return cut.rstrip(",;:") + "…"


def _candidates(sentences: Sequence[Sentence], lo: float, hi: float, t0: float, t1: float) -> list[Candidate]:
    """Every run of whole units that, padded into the surrounding silence, fits [lo, hi]."""
    out: list[Candidate] = []
    n = len(sentences)
    for i in range(n):
        for j in range(i, n):
            core = sentences[j].end - sentences[i].start
            if core > hi:
                break
            # Silence we may use: up to the neighbouring words (midway) or the span edges.
            left_room = sentences[i].start - (
                (sentences[i - 1].end + sentences[i].start) / 2 if i > 0 else t0
            )
            right_room = (
                (sentences[j].end + sentences[j + 1].start) / 2 if j + 1 < n else t1
            ) - sentences[j].end
            start = sentences[i].start - min(LEAD_IN, left_room)
            end = sentences[j].end + min(LEAD_OUT, right_room)
            if end - start < lo:  # stretch into silence to reach the minimum, if there is room
                need = lo - (end - start)
                extra_l = min(max(0.0, left_room - (sentences[i].start - start)), need / 2)
                extra_r = min(max(0.0, right_room - (end - sentences[j].end)), need - extra_l)
                extra_l = min(max(0.0, left_room - (sentences[i].start - start)), need - extra_r)
                start, end = start - extra_l, end + extra_r
            if end - start > hi:
                end = start + hi
            if lo - 1e-6 <= end - start <= hi + 1e-6:
                out.append(Candidate(i, j, max(t0, start), min(t1, end)))
    return out


def _silent_candidates(t0: float, t1: float, lo: float, hi: float) -> list[Candidate]:
    length = min(hi, max(lo, (lo + hi) / 2))
    if t1 - t0 < lo:
        return []
    length = min(length, t1 - t0)
    step = max(length / 2, 1.0)
    starts = np.arange(t0, t1 - length + 1e-6, step)
    return [Candidate(0, -1, float(s), float(s + length)) for s in starts]


def _pick_non_overlapping(
    scored: list[tuple[tuple[float, dict[str, float]], Candidate]], n: int
) -> list[tuple[tuple[float, dict[str, float]], Candidate]]:
    """Greedy by score (ties: earlier first), skipping windows that overlap a chosen one."""
    chosen: list[tuple[tuple[float, dict[str, float]], Candidate]] = []
    for item in sorted(scored, key=lambda it: (-it[0][0], it[1].start)):
        c = item[1]
        if all(c.end + MIN_GAP <= o.start or c.start >= o.end + MIN_GAP for _, o in chosen):
            chosen.append(item)
            if len(chosen) == n:
                break
    return chosen
