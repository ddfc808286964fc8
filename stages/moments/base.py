"""The moment-selection contract: what every provider takes and returns.

Input, :class:`MomentRequest` (all times are seconds on the source timeline):

- ``transcript``: the words of the trimmed span (``Word.speaker`` set where a diarization
  stage labelled them; ``None`` otherwise);
- ``features``: speech loudness over the span (for the energy feature);
- ``options``: the job's ProcessOptions (mode, numClips, clipLength, prompt, genre, autoHook);
- ``span``: the trimmed source span ``(t0, t1)``; no window leaves it;
- ``faces``: optional sparse face samples over the span (a handful of frames), used only
  to detect the genre when ``genre`` is ``auto``.

Output, :class:`engine.types.MomentSelection`: at most ``numClips`` :class:`Moment` windows,
ordered by score (best first), inside ``span``, never overlapping, never cutting a word,
each ``clipLength`` long (unless the span itself is shorter; ``notes`` say so), each with
the name of the provider that chose it (``Moment.provider``: ``local``, ``gemini``,
``openai``), its score breakdown (``Moment.reasons``) and the spec's metadata. A later
stage may drop windows (e.g. by speaker) without breaking any of these properties.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from engine.errors import ClipporaError
from engine.options import ProcessOptions
from engine.types import AudioFeatures, FaceSample, MomentSelection, Transcript

#: every provider's windows: seconds of silence kept before the first word and after the last,
#: and the least gap between two chosen windows
LEAD_IN = 0.15
LEAD_OUT = 0.35
MIN_GAP = 0.2


@dataclass(frozen=True)
class MomentRequest:
    transcript: Transcript
    features: AudioFeatures
    options: ProcessOptions
    span: tuple[float, float]  # the trimmed source span
    faces: tuple[FaceSample, ...] = ()


class MomentProvider(Protocol):
    """Anything that turns a request into a selection (local scorer, an LLM with fallback)."""

    name: str

    def select(self, request: MomentRequest) -> MomentSelection: ...


class ProviderFailure(Exception):
    """An LLM provider could not produce usable moments (error, timeout, malformed output).

    The message is safe to show: it never contains a key (see :func:`redact`).
    """


def redact(text: str, secrets: tuple[str, ...], limit: int | None = None) -> str:
    """``text`` with every secret (API key) replaced, for logs, notes and errors.

    ``limit`` cuts the result to that many characters, after redacting: cutting first
    could split a key and leave its first part unredacted.
    """
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "[redacted]")
    return text if limit is None else text[:limit]


class MomentsConfigError(ClipporaError, ValueError):
    """The moment-selection settings are unusable; the message names the setting to fix."""

    def __init__(self, message: str) -> None:
        super().__init__(f"moment selection is misconfigured: {message}")
