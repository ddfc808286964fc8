"""The local scorer: picks moments with no network (the default provider, and every LLM's fallback).

Candidate windows are spans of whole sentences (or, for very long sentences, word-boundary
units) whose length falls in the clipLength range, padded into the silence around the
speech so no word is cut. Score (0-10) = weighted sum of named features, all reported in
``Moment.reasons`` (the manifest's ``scoreBreakdown``):

- hook: the opening sentence's pull (question, number, "you", contrast, strong claim)
- complete: starts a thought and ends on a full stop
- emotion: emotion/sentiment intensity (lexicon hits, intensifiers, exclamations)
- energy: speech loudness of the span against the source's median
- pace: words per second near a lively 2.5-3.5
- density: share of the window that is speech
- relevance (with a prompt): how much the window is about the prompt — sentence embeddings
  (all-MiniLM-L6-v2, see embeddings.py) of each sentence and its topic against the prompt,
  blended with TF-IDF over topic segments with the prompt expanded by pseudo-relevance
  feedback; with a prompt it carries half the weight.

The weights depend on the genre (detected when ``auto``; genre.py). Metadata is extractive:
the best opening sentence as hook, the densest short sentence as title, keywords as
hashtags, a lexicon for dominant_emotion.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from engine.types import ClipMetadata, Moment, MomentSelection, Word
from stages.moments.base import LEAD_IN, LEAD_OUT, MIN_GAP, MomentRequest
from stages.moments.embeddings import SentenceEncoder, shared_encoder
from stages.moments.genre import GENRE_WEIGHTS, resolve_genre
from stages.moments.text import (
    Sentence,
    TfIdf,
    dominant_emotion,
    emotion_intensity,
    hashtags_from,
    hook_from,
    hook_strength,
    phrased,
    split_sentences,
    title_from,
    topic_segments,
)

PROMPT_SHARE = 0.5  # weight of relevance when the job has a prompt


def weights_for(genre: str, has_prompt: bool) -> dict[str, float]:
    base = GENRE_WEIGHTS.get(genre, GENRE_WEIGHTS["podcast"])
    total = sum(base.values())
    if not has_prompt:
        return {**{k: v / total for k, v in base.items()}, "relevance": 0.0}
    return {**{k: (1 - PROMPT_SHARE) * v / total for k, v in base.items()}, "relevance": PROMPT_SHARE}


@dataclass(frozen=True)
class Candidate:
    first: int  # sentence indices, inclusive (first > last: no speech)
    last: int
    start: float  # padded window
    end: float


class Analysis:
    """What the scorer knows about one request: sentences, TF-IDF, relevance, genre."""

    def __init__(self, request: MomentRequest, encoder: SentenceEncoder | None, max_unit: float) -> None:
        t0, t1 = request.span
        self.request = request
        self.words: list[Word] = [w for w in request.transcript.words if w.start >= t0 and w.end <= t1]
        self.sentences = split_sentences(self.words, max_unit)
        self.tfidf = TfIdf([s.text for s in self.sentences])
        self.genre, self.genre_signals = resolve_genre(request.options.genre, self.words, request.span,
                                                       request.faces)
        self.prompt = request.options.prompt.strip()
        self.relevance = sentence_relevance(self.prompt, self.sentences, self.tfidf, encoder)
        self.weights = weights_for(self.genre, bool(self.prompt))
        self.typical_level = request.features.speech_level()

    def candidate_for(self, start: float, end: float) -> Candidate:
        """The sentences whose middle lies in [start, end) (for windows an LLM chose)."""
        inside = [i for i, s in enumerate(self.sentences) if start <= (s.start + s.end) / 2 < end]
        return Candidate(inside[0], inside[-1], start, end) if inside else Candidate(0, -1, start, end)

    def score(self, c: Candidate) -> tuple[float, dict[str, float]]:
        span = self.sentences[c.first : c.last + 1] if c.last >= c.first else []
        words = [w for s in span for w in s.words]
        dur = max(c.end - c.start, 1e-6)
        speech = sum(w.end - w.start for w in words)
        feats = self.request.features
        level = feats.speech_level(c.start, c.end)
        wps = len(words) / dur
        f = {
            "hook": hook_strength(span[0].text) if span else 0.0,
            "complete": (0.5 * span[0].starts_thought + 0.5 * span[-1].ends_thought) if span else 0.0,
            "emotion": emotion_intensity(" ".join(s.text for s in span)) if span else 0.0,
            "energy": float(1.0 / (1.0 + np.exp(-(level - self.typical_level) / 2.0))) if feats.rms_db else 0.5,
            "pace": float(max(0.0, 1.0 - abs(wps - 3.0) / 3.0)) if words else 0.0,
            "density": min(1.0, speech / dur * 1.25),
            "relevance": _window_relevance(self.relevance, span, c.first),
        }
        score = 10.0 * sum(self.weights[k] * v for k, v in f.items())
        return round(min(10.0, max(0.0, score)), 2), {k: round(v, 3) for k, v in f.items()}

    def metadata(self, c: Candidate, score: float) -> ClipMetadata:
        span = self.sentences[c.first : c.last + 1] if c.last >= c.first else []
        return extractive_metadata(span, self.tfidf, score)


class LocalMomentScorer:
    """Picks windows without any network: the default provider."""

    name = "local"

    def __init__(self, use_embeddings: bool = True) -> None:
        self.use_embeddings = use_embeddings

    def encoder(self) -> SentenceEncoder | None:
        return shared_encoder() if self.use_embeddings else None

    def analyse(self, request: MomentRequest) -> Analysis:
        _, hi = request.options.clip_length_range
        return Analysis(request, self.encoder(), hi - LEAD_IN - LEAD_OUT)

    def select(self, request: MomentRequest) -> MomentSelection:
        opts = request.options
        t0, t1 = request.span
        if opts.mode == "none":
            words = [w for w in request.transcript.words if w.start >= t0 and w.end <= t1]
            meta = extractive_metadata(split_sentences(words, 1e9), TfIdf([w.text for w in words]), 5.0)
            moment = Moment(t0, t1, 5.0, {"full_source": 1.0}, meta, self.name)
            return MomentSelection((moment,), 1, (), opts.genre)
        a = self.analyse(request)
        lo, hi = opts.clip_length_range
        candidates = _candidates(a.sentences, lo, hi, t0, t1)
        notes: list[str] = []
        if not a.words:
            notes.append("no speech found: windows chosen by audio energy and position")
            candidates = _silent_candidates(t0, t1, lo, hi, opts.num_clips)
        scored = [(a.score(c), c) for c in candidates]
        chosen = _pick_non_overlapping(scored, opts.num_clips)
        if not a.words:
            tiling = _silent_tiling(t0, t1, lo, hi, opts.num_clips)
            if len(chosen) < len(tiling):  # the best-scored windows left no room for all that fit
                chosen = sorted(((a.score(c), c) for c in tiling), key=lambda it: (-it[0][0], it[1].start))
        if not chosen:
            if t1 - t0 <= hi:
                notes.append(
                    f"the source ({t1 - t0:.1f} s) has no span of {lo:g}-{hi:g} s; "
                    "returned the whole source as one clip"
                )
                fallback = Candidate(0, len(a.sentences) - 1, t0, t1)
            else:
                notes.append(f"no run of whole sentences fits {lo:g}-{hi:g} s; cut one on word boundaries")
                start, end = _word_bounded_window(a.words, t0, t1, lo, hi)
                fallback = a.candidate_for(start, end)
            chosen = [(a.score(fallback), fallback)]
        if len(chosen) < opts.num_clips:
            notes.append(
                f"requested {opts.num_clips} clips; the source had room for {len(chosen)} "
                f"non-overlapping {opts.clip_length} clips ({lo:g}-{hi:g} s)"
            )
        moments = tuple(
            Moment(c.start, c.end, score, reasons, a.metadata(c, score), self.name)
            for (score, reasons), c in chosen
        )
        return MomentSelection(moments, opts.num_clips, tuple(notes), a.genre)


def extractive_metadata(sentences: Sequence[Sentence], tfidf: TfIdf, score: float) -> ClipMetadata:
    texts = [s.text for s in sentences]
    joined = " ".join(texts)
    if not texts:
        return ClipMetadata("Untitled moment", "", "", "calm", (), round(score, 1))
    hook = hook_from(texts)
    statements = [t for t in texts if not t.endswith("?") and t != hook] or texts
    insight = max(statements, key=lambda t: sum(tfidf.vector(t).values()))
    return ClipMetadata(
        title=title_from([phrased(s) for s in sentences], tfidf),  # pauses mark where a phrase may end
        viral_hook=hook,
        key_insight=shorten(insight, 160),
        dominant_emotion=dominant_emotion(joined),
        hashtags=hashtags_from(joined, tfidf),
        viral_score=round(score, 1),
    )


def sentence_relevance(
    prompt: str, sentences: Sequence[Sentence], tfidf: TfIdf, encoder: SentenceEncoder | None
) -> np.ndarray:
    """Per sentence, 0-1: how much it, and the topic it belongs to, is about the prompt.

    Lexical: the transcript is split into topic segments (lexical cohesion); each segment is
    compared with the prompt (expanded with the vocabulary of the sentences that match it
    best), so a sentence that does not repeat the prompt's words still counts when its
    topic does. Semantic (where the embedding model is installed): cosine similarity of the
    sentence, its neighbours and its segment with the prompt, so "pollinating insects"
    finds a passage about bees and hives that shares no word with it.
    """
    n = len(sentences)
    if not prompt or not n:
        return np.zeros(n)
    texts = [s.text for s in sentences]
    query = tfidf.expand_query(prompt, texts)
    segments = np.array(topic_segments(texts, tfidf))
    seg_rel = {
        sid: tfidf.similarity(query, " ".join(t for t, s in zip(texts, segments, strict=True) if s == sid))
        for sid in set(segments.tolist())
    }
    lexical = np.array([seg_rel[sid] for sid in segments])
    lexical = lexical / lexical.max() if lexical.max() > 0 else lexical
    if encoder is None:
        return lexical
    vecs = encoder.encode(texts)
    sims = vecs @ encoder.encode([prompt])[0]
    seg_mean = np.array([sims[segments == sid].mean() for sid in segments])
    kernel = np.array([0.5, 1.0, 0.0, 1.0, 0.5])
    padded = np.pad(sims, 2, mode="edge")
    neigh = np.convolve(padded, kernel[::-1], mode="valid") / kernel.sum()
    context = 0.5 * sims + 0.25 * neigh + 0.25 * seg_mean
    base, top = float(np.median(context)), float(context.max())
    semantic = np.clip((context - base) / (top - base), 0.0, 1.0) if top > base + 1e-6 else np.zeros(n)
    semantic *= min(1.0, max(float(sims.max()), 0.0) / 0.3)  # nothing close to the prompt: weak everywhere
    return 0.6 * semantic + 0.4 * lexical


def _window_relevance(relevance: np.ndarray, span: Sequence[Sentence], first: int) -> float:
    """Duration-weighted share of the window that is on the prompt's topic."""
    if not span or relevance.size == 0:
        return 0.0
    durations = np.array([s.end - s.start for s in span])
    values = relevance[first : first + len(span)]
    return float(np.dot(values, durations) / max(durations.sum(), 1e-6))


def shorten(text: str, limit: int) -> str:
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
            # Padding lies in silence only (left_room/right_room), so any amount of it keeps
            # the window on word boundaries; over ``hi`` it gives way (tail first), never a word.
            lead, tail = max(0.0, min(LEAD_IN, left_room)), max(0.0, min(LEAD_OUT, right_room))
            if core + lead + tail < lo:  # stretch into silence to reach the minimum, if there is room
                need = lo - (core + lead + tail)
                extra_l = min(max(0.0, left_room - lead), need / 2)
                extra_r = min(max(0.0, right_room - tail), need - extra_l)
                extra_l = min(max(0.0, left_room - lead), need - extra_r)
                lead, tail = lead + extra_l, tail + extra_r
            over = core + lead + tail - hi
            if over > 0:
                cut = min(tail, over)
                tail, lead = tail - cut, max(0.0, lead - (over - cut))
            start, end = max(t0, sentences[i].start - lead), min(t1, sentences[j].end + tail)
            if lo - 1e-6 <= end - start <= hi + 1e-6:
                out.append(Candidate(i, j, start, end))
    return out


def _word_bounded_window(words: Sequence[Word], t0: float, t1: float, lo: float, hi: float) -> tuple[float, float]:
    """A window of at most ``hi`` (at least ``lo`` where one exists) that starts and ends outside
    every word: for when no run of whole sentences fits the range."""

    def snap_end(t: float) -> float:  # the latest word boundary at or before t
        for w in words:
            if w.start < t < w.end:
                return w.start
        return t

    best = (t0, snap_end(min(t1, t0 + hi)))
    for start in [t0, *(w.end for w in words)]:
        if start >= t1:
            break
        end = snap_end(min(t1, start + hi))
        if end - start >= lo - 1e-6:
            return start, end
        if end - start > best[1] - best[0]:
            best = (start, end)
    return best


def _silent_fit(t0: float, t1: float, lo: float, hi: float, n: int) -> tuple[int, float]:
    """How many non-overlapping windows a span without speech gets (at most ``n``), and their length."""
    span = t1 - t0
    if span < lo - 1e-9:
        return 0, 0.0
    k = max(1, min(n, int((span + MIN_GAP + 1e-9) // (lo + MIN_GAP))))
    length = min(hi, max(lo, (lo + hi) / 2), (span - (k - 1) * MIN_GAP) / k)
    return k, max(lo, length) if k > 1 else min(span, max(lo, length))


def _silent_candidates(t0: float, t1: float, lo: float, hi: float, n: int = 1) -> list[Candidate]:
    """Sliding windows over a span without speech, sized so that as many as fit can be chosen."""
    k, length = _silent_fit(t0, t1, lo, hi, n)
    if not k:
        return []
    step = max(length / 2, 1.0)
    starts = np.arange(t0, t1 - length + 1e-6, step)
    return [Candidate(0, -1, float(s), min(t1, float(s + length))) for s in starts]


def _silent_tiling(t0: float, t1: float, lo: float, hi: float, n: int) -> list[Candidate]:
    """``k`` windows spread evenly over the span, non-overlapping: what fits, guaranteed."""
    k, length = _silent_fit(t0, t1, lo, hi, n)
    if not k:
        return []
    gap = (t1 - t0 - k * length) / (k - 1) if k > 1 else 0.0
    out = []
    for i in range(k):
        start = t0 + i * (length + gap)
        out.append(Candidate(0, -1, start, min(t1, start + length)))
    return out


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
