"""Moment selection by a language model (Gemini or any OpenAI-compatible endpoint).

One flow for every model, behind :class:`ChatBackend` (one request in, JSON text out):

1. The local scorer analyses the request (sentences, genre, a score for every window).
2. The transcript goes out as timestamped sentence lines (``[12.34-15.80] S1: text``, the
   speaker label where one is known), in chunks of ``Settings.llm_chunk_tokens`` that
   overlap by one clip length, so a moment across a chunk edge is still seen. Where the
   chunks would exceed the job's token budget, only the chunks with the best local windows
   are sent (a note says so).
3. Each chunk asks for up to numClips moments with start/end, score and the spec's
   metadata, as JSON matching :data:`RESPONSE_SCHEMA`; the genre, the user's prompt and the
   clipLength range are in the instructions.
4. Errors, timeouts and malformed replies are retried with exponential backoff
   (``Settings.llm_retries`` tries per chunk, within the per-job ``Settings.llm_timeout_s``);
   a chunk that still fails, or a reply with no usable window, makes the whole selection
   fall back to the local scorer, with a note naming the reason (never a key).
5. Whatever came back is validated (validate.py): clamped, snapped to word boundaries,
   forced into the clipLength range, de-overlapped, ranked and cut to numClips.

With ``autoHook`` the model's title/hook/insight/emotion/hashtags are kept (cleaned and
length-limited; missing fields filled extractively); without it the metadata is extractive,
as the local scorer writes it.
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from engine.config import Settings
from engine.types import ClipMetadata, Moment, MomentSelection
from stages.moments.base import MomentRequest, ProviderFailure, redact
from stages.moments.genre import GENRE_GUIDANCE
from stages.moments.local import Analysis, LocalMomentScorer, shorten
from stages.moments.text import Sentence
from stages.moments.validate import Fitted, Proposal, choose

log = logging.getLogger("clipora.moments")

METADATA_FIELDS = ("title", "viral_hook", "key_insight", "dominant_emotion", "hashtags", "viral_score")

#: The reply's shape (OpenAPI-style subset that Gemini's response_schema accepts; also
#: given verbatim to OpenAI-compatible models as the JSON to produce).
RESPONSE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "moments": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "start": {"type": "number", "description": "clip start, seconds on the transcript's timeline"},
                    "end": {"type": "number", "description": "clip end, seconds"},
                    "score": {"type": "number", "description": "how likely it goes viral, 0-10"},
                    "title": {"type": "string", "description": "at most 8 words"},
                    "viral_hook": {"type": "string", "description": "the punchy first line on screen"},
                    "key_insight": {"type": "string", "description": "the one takeaway, one sentence"},
                    "dominant_emotion": {"type": "string", "description": "one word, e.g. excitement"},
                    "hashtags": {"type": "array", "items": {"type": "string"}, "description": "3-5, no #"},
                    "viral_score": {"type": "number", "description": "0-10"},
                },
                "required": ["start", "end", "score", *METADATA_FIELDS],
            },
        }
    },
    "required": ["moments"],
}


@dataclass(frozen=True)
class Completion:
    text: str
    tokens_in: int = 0  # as the server counted them; 0 when it did not say
    tokens_out: int = 0


class ChatBackend(Protocol):
    """One model endpoint: a system + user message in, the reply's JSON text out."""

    name: str

    @property
    def secrets(self) -> tuple[str, ...]:
        """Values that must never appear in a log, note or error (API keys)."""
        ...

    def complete(self, system: str, user: str, schema: dict[str, Any], timeout_s: float) -> Completion:
        """Raise :class:`ProviderFailure` (``retryable`` attribute) on any failure."""
        ...


class RetryableFailure(ProviderFailure):
    """A failure worth another try: timeout, 5xx, 429, a malformed reply."""


def estimate_tokens(text: str) -> int:
    return len(text) // 4 + 1


# -- prompt -----------------------------------------------------------------------------


def transcript_lines(sentences: Sequence[Sentence]) -> list[tuple[float, float, str]]:
    """(start, end, line) per sentence: ``[12.34-15.80] S1: text`` (speaker where known)."""
    out = []
    for s in sentences:
        speaker = s.words[0].speaker
        who = f"{speaker}: " if speaker else ""
        out.append((s.start, s.end, f"[{s.start:.2f}-{s.end:.2f}] {who}{s.text}"))
    return out


def chunk_lines(lines: Sequence[tuple[float, float, str]], max_tokens: int,
                overlap_s: float) -> list[list[tuple[float, float, str]]]:
    """Consecutive runs of lines of at most ``max_tokens``, each repeating the previous
    chunk's last ``overlap_s`` seconds."""
    chunks: list[list[tuple[float, float, str]]] = []
    i = 0
    while i < len(lines):
        cur: list[tuple[float, float, str]] = []
        used = 0
        j = i
        while j < len(lines) and (not cur or used + estimate_tokens(lines[j][2]) <= max_tokens):
            cur.append(lines[j])
            used += estimate_tokens(lines[j][2])
            j += 1
        chunks.append(cur)
        if j >= len(lines):
            break
        back = j
        while back - 1 > i + 1 and lines[j - 1][1] - lines[back - 1][0] < overlap_s:
            back -= 1
        i = back
    return chunks


def system_prompt(genre: str, auto_hook: bool) -> str:
    meta = (
        "For each moment write a punchy title (at most 8 words), a viral_hook (the first line a "
        "viewer reads, under 12 words), the key_insight, the dominant_emotion (one word) and 3-5 "
        "hashtags without '#'."
        if auto_hook
        else "Fill the metadata fields briefly; they may be replaced."
    )
    return (
        "You are a short-form video editor. From a timestamped transcript you pick the moments "
        "people would actually post as vertical reels: each must stand alone (start at the start "
        "of a thought, end on a complete sentence), open with a hook in its first seconds, and "
        "carry one clear idea, story or emotional peak. "
        f"{GENRE_GUIDANCE.get(genre, '')} {meta} "
        "Times are seconds on the transcript's own timeline; use the line times given. "
        "Answer with JSON only, of this shape: "
        + json.dumps(RESPONSE_SCHEMA, separators=(",", ":"))
    )


def user_prompt(request: MomentRequest, genre: str, chunk: Sequence[tuple[float, float, str]],
                part: int, parts: int) -> str:
    opts = request.options
    lo, hi = opts.clip_length_range
    focus = opts.prompt.strip()
    head = [
        f"Genre: {genre}.",
        f"Pick up to {opts.num_clips} non-overlapping moments, each {lo:g}-{hi:g} seconds long.",
        f"The usable span is {request.span[0]:.2f}-{request.span[1]:.2f} s.",
        (f"The user's focus (favour moments about this above all): {focus}" if focus
         else "No focus was given: pick the strongest moments."),
    ]
    if parts > 1:
        head.append(f"This is part {part} of {parts} of the transcript ({chunk[0][0]:.2f}-{chunk[-1][1]:.2f} s); "
                    "pick only moments inside this part.")
    return "\n".join(head) + "\n\nTranscript:\n" + "\n".join(line for _, _, line in chunk)


# -- reply --------------------------------------------------------------------------------

_FENCE = re.compile(r"^\s*```(?:json)?\s*|\s*```\s*$", re.I)


def parse_reply(text: str) -> list[Proposal]:
    """The proposals in a reply; :class:`RetryableFailure` when it is not the JSON asked for."""
    try:
        data = json.loads(_FENCE.sub("", text or ""))
    except ValueError:
        raise RetryableFailure(f"malformed reply (not JSON): {text[:60]!r}") from None
    items = data.get("moments") if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise RetryableFailure("malformed reply (no 'moments' list)")
    out: list[Proposal] = []
    for item in items:
        if not isinstance(item, dict):
            continue
        try:
            start, end = float(item["start"]), float(item["end"])
            score = float(item.get("score", item.get("viral_score", 5.0)))  # type: ignore[arg-type]
        except (KeyError, TypeError, ValueError):
            continue
        if not (math.isfinite(start) and math.isfinite(end) and math.isfinite(score)) or end <= start:
            continue
        meta = {k: item[k] for k in METADATA_FIELDS if k in item}
        out.append(Proposal(start, end, min(10.0, max(0.0, score)), meta))
    if not out:
        raise RetryableFailure("malformed reply (no usable moment)")
    return out


def clean_metadata(raw: dict[str, Any], fallback: ClipMetadata, score: float) -> ClipMetadata:
    """The model's metadata, trimmed to sane lengths; missing or empty fields extractive."""

    def text(key: str, limit: int, default: str) -> str:
        value = raw.get(key)
        if not isinstance(value, str) or not value.strip():
            return default
        return shorten(" ".join(value.split()), limit)

    tags_raw = raw.get("hashtags")
    tags: list[str] = []
    if isinstance(tags_raw, list):
        for t in tags_raw:
            tag = re.sub(r"[^\w]", "", str(t)).strip("_")
            if tag and tag.lower() not in {x.lower() for x in tags}:
                tags.append(tag[:40])
    emotion = text("dominant_emotion", 30, fallback.dominant_emotion).lower().split()
    try:
        given = raw.get("viral_score")
        viral = float(given) if given is not None else score
    except (TypeError, ValueError):
        viral = score
    return ClipMetadata(
        title=text("title", 100, fallback.title),
        viral_hook=text("viral_hook", 150, fallback.viral_hook),
        key_insight=text("key_insight", 240, fallback.key_insight),
        dominant_emotion=emotion[0].strip(".,!") if emotion else fallback.dominant_emotion,
        hashtags=tuple(tags[:8]) or fallback.hashtags,
        viral_score=round(min(10.0, max(0.0, viral if math.isfinite(viral) else score)), 1),
    )


# -- the provider ---------------------------------------------------------------------------


class LLMMomentSelector:
    """A MomentProvider that asks a model, validates, and falls back to the local scorer."""

    def __init__(self, backend: ChatBackend, settings: Settings, local: LocalMomentScorer | None = None,
                 backoff_s: float = 1.0) -> None:
        self.backend = backend
        self.name = backend.name
        self.settings = settings
        self.local = local or LocalMomentScorer()
        self.backoff_s = backoff_s

    def select(self, request: MomentRequest) -> MomentSelection:
        if request.options.mode == "none":
            return self.local.select(request)
        try:
            return self._select(request)
        except ProviderFailure as exc:
            reason = redact(str(exc), self.backend.secrets)
            log.warning("moment provider %s failed (%s); using the local scorer", self.name, reason)
            sel = self.local.select(request)
            note = f"{self.name} could not pick moments ({reason}); the local scorer chose them"
            return replace(sel, notes=(*sel.notes, note))

    def _select(self, request: MomentRequest) -> MomentSelection:
        s = self.settings
        opts = request.options
        lo, hi = opts.clip_length_range
        analysis = self.local.analyse(request)
        if not analysis.sentences:
            raise ProviderFailure("no speech to send")
        chunks = chunk_lines(transcript_lines(analysis.sentences), s.llm_chunk_tokens, hi)
        notes: list[str] = []
        chunks = self._within_budget(chunks, analysis, request, notes)
        deadline = time.monotonic() + s.llm_timeout_s
        system = system_prompt(analysis.genre, opts.auto_hook)
        proposals: list[Proposal] = []
        for k, chunk in enumerate(chunks, start=1):
            user = user_prompt(request, analysis.genre, chunk, k, len(chunks))
            proposals += self._ask(system, user, deadline)
        fitted = choose(proposals, analysis.words, request.span, lo, hi, opts.num_clips)
        if not fitted:
            raise ProviderFailure("no usable window in the reply")
        if len(fitted) < opts.num_clips:
            notes.append(f"requested {opts.num_clips} clips; {self.name} proposed {len(fitted)} usable "
                         f"non-overlapping {opts.clip_length} windows ({lo:g}-{hi:g} s)")
        t0, t1 = request.span
        if t1 - t0 < lo:
            notes.append(f"the source ({t1 - t0:.1f} s) is shorter than {lo:g} s; returned the whole source")
        moments = tuple(self._moment(f, analysis, opts.auto_hook) for f in fitted)
        return MomentSelection(moments, opts.num_clips, tuple(notes), analysis.genre)

    def _moment(self, f: Fitted, analysis: Analysis, auto_hook: bool) -> Moment:
        c = analysis.candidate_for(f.start, f.end)
        _, reasons = analysis.score(c)
        score = round(f.proposal.score, 2)
        extractive = analysis.metadata(c, score)
        meta = clean_metadata(f.proposal.metadata, extractive, score) if auto_hook else extractive
        return Moment(f.start, f.end, score, {**reasons, "model_score": score}, meta, self.name)

    def _within_budget(self, chunks: list[list[tuple[float, float, str]]], analysis: Analysis,
                       request: MomentRequest, notes: list[str]) -> list[list[tuple[float, float, str]]]:
        """All chunks when they fit the token budget; else those with the best local windows."""
        budget = self.settings.llm_token_budget
        overhead = estimate_tokens(system_prompt(analysis.genre, True)) + 200 + self.settings.llm_max_output_tokens
        cost = [overhead + sum(estimate_tokens(line) for _, _, line in c) for c in chunks]
        if sum(cost) <= budget:
            return chunks
        lo, hi = request.options.clip_length_range

        def best_local(chunk: list[tuple[float, float, str]]) -> float:
            inside = [i for i, s in enumerate(analysis.sentences) if chunk[0][0] <= s.start and s.end <= chunk[-1][1]]
            if not inside:
                return 0.0
            return max(analysis.score(analysis.candidate_for(analysis.sentences[i].start,
                                                             analysis.sentences[i].start + hi))[0]
                       for i in inside[:: max(1, len(inside) // 40)])

        order = sorted(range(len(chunks)), key=lambda i: -best_local(chunks[i]))
        keep, spent = [], 0
        for i in order:
            if spent + cost[i] <= budget:
                keep.append(i)
                spent += cost[i]
        if not keep:
            raise ProviderFailure(f"token budget {budget} is smaller than one request (~{min(cost)} tokens)")
        notes.append(f"token budget {budget}: sent {len(keep)} of {len(chunks)} transcript chunks "
                     "(those with the best local scores)")
        return [chunks[i] for i in sorted(keep)]

    def _ask(self, system: str, user: str, deadline: float) -> list[Proposal]:
        s = self.settings

        def remaining() -> float:
            return deadline - time.monotonic()

        def once() -> list[Proposal]:
            left = remaining()
            if left <= 0.05:
                raise ProviderFailure(f"per-job timeout of {s.llm_timeout_s:g} s reached")
            reply = self.backend.complete(system, user, RESPONSE_SCHEMA, min(s.llm_request_timeout_s, left))
            return parse_reply(reply.text)

        retrying = Retrying(
            stop=stop_after_attempt(max(1, s.llm_retries)),
            wait=wait_exponential(multiplier=self.backoff_s, max=8),
            retry=retry_if_exception(lambda e: isinstance(e, RetryableFailure) and remaining() > 0.05),
            before_sleep=lambda rs: log.info(
                "moment provider %s: retrying after %s", self.name,
                redact(str(rs.outcome.exception()) if rs.outcome else "", self.backend.secrets)),
            reraise=True,
        )
        return retrying(once)
