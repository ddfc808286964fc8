"""ClipEdit: what a re-render of one finished clip may change (POST /api/clips/{jobId}/{index}/render).

Every field is optional; one left out keeps what the clip has now. Edits *accumulate*: a clip's
current edit (the manifest's ``edit``) merged with the new request (:meth:`ClipEdit.over`) is
applied to the clip as the job's analysis planned it, so changing the caption preset after a trim
keeps the trim, and a word corrected once stays corrected.

- ``start`` / ``end``: the clip's new window in source seconds (snapped to word boundaries when
  the clip is planned, so no word is cut in half);
- ``words``: corrections ``[{"index": i, "text": "..."}]``, ``i`` the word's position in the job's
  transcript (the editor's word list shows it): the text is replaced, its timing kept;
- ``captionPreset``, ``captionEmphasis``, ``captionEmoji``, ``captionStyle`` (replaced whole, not merged
  field by field), ``aspectRatio``, ``layout``, ``removeSilence``, ``removeFillers``,
  ``silenceThreshold``: as in ProcessOptions, for this clip.

Validated as strictly as ProcessOptions (InvalidOptions naming the field, the spec's error shape).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic.alias_generators import to_camel

from engine.errors import InvalidOptions
from engine.options import (
    AspectRatio,
    CaptionEmphasis,
    CaptionPreset,
    CaptionStyleOptions,
    Layout,
    ProcessOptions,
    style_error,
)

#: a re-rendered clip's length, seconds (the editor's trim handles stay within it)
MIN_EDIT_S = 1.0
MAX_EDIT_S = 180.0
MAX_WORD_CHARS = 64
MAX_CORRECTIONS = 2000

_STRICT = ConfigDict(frozen=True, extra="forbid", alias_generator=to_camel, populate_by_name=True, strict=True,
                     allow_inf_nan=False)


class WordFix(BaseModel):
    """One corrected word: its index in the job's transcript and the text to show instead."""

    model_config = _STRICT

    index: int = Field(ge=0)
    text: str = Field(min_length=1, max_length=MAX_WORD_CHARS, pattern=r"^[^\r\n\t]*\S[^\r\n\t]*$")


class ClipEdit(BaseModel):
    model_config = _STRICT

    start: float | None = Field(None, ge=0.0)
    end: float | None = Field(None, gt=0.0)
    words: list[WordFix] = Field(default_factory=list, max_length=MAX_CORRECTIONS)
    caption_preset: CaptionPreset | None = None
    caption_emphasis: CaptionEmphasis | None = None
    caption_emoji: bool | None = None
    caption_style: CaptionStyleOptions | None = None
    aspect_ratio: AspectRatio | None = None
    layout: Layout | None = None
    remove_silence: bool | None = None
    remove_fillers: bool | None = None
    silence_threshold: float | None = Field(None, ge=0.2, le=10.0)

    @model_validator(mode="after")
    def _window(self) -> ClipEdit:
        if self.start is not None and self.end is not None:
            if self.end - self.start < MIN_EDIT_S:
                raise ValueError(f"end must be at least {MIN_EDIT_S:g} s after start")
            if self.end - self.start > MAX_EDIT_S:
                raise ValueError(f"a clip lasts at most {MAX_EDIT_S:g} s (end - start)")
        return self

    # -- JSON edge -------------------------------------------------------------------------

    @classmethod
    def from_json(cls, data: Any) -> ClipEdit:
        if data is None:
            return cls()
        if not isinstance(data, dict):
            raise InvalidOptions("the edit must be a JSON object")
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise _invalid(exc) from None

    def to_json(self) -> dict[str, Any]:
        """Only the fields the edit sets (camelCase), words sorted by index."""
        out = self.model_dump(by_alias=True, exclude_none=True, exclude={"words"})
        for key in ("start", "end"):
            if key in out:
                out[key] = round(out[key], 3)
        if self.words:
            out["words"] = [{"index": w.index, "text": w.text} for w in sorted(self.words, key=lambda w: w.index)]
        return out

    @property
    def empty(self) -> bool:
        return not self.to_json()

    # -- applying it -------------------------------------------------------------------------

    def over(self, base: ClipEdit) -> ClipEdit:
        """This edit applied on top of ``base`` (the clip's current one): fields set here win,
        word corrections merge by index."""
        words = {w.index: w.text for w in base.words} | {w.index: w.text for w in self.words}
        merged = base.to_json() | self.to_json()
        merged.pop("words", None)
        if words:
            merged["words"] = [{"index": i, "text": words[i]} for i in sorted(words)]
        return ClipEdit.from_json(merged)  # the window rule again, on the merged fields

    def options(self, job: ProcessOptions) -> ProcessOptions:
        """The job's options with this edit's rendering fields in place."""
        changes = {k: v for k, v in {
            "caption_preset": self.caption_preset, "caption_emphasis": self.caption_emphasis,
            "caption_emoji": self.caption_emoji, "caption_style": self.caption_style,
            "aspect_ratio": self.aspect_ratio, "layout": self.layout,
            "remove_silence": self.remove_silence, "remove_fillers": self.remove_fillers,
            "silence_threshold": self.silence_threshold}.items() if v is not None}
        return job.model_copy(update=changes)

    def corrections(self) -> dict[int, str]:
        return {w.index: w.text for w in self.words}


_ALLOWED = {
    "start": "a number of seconds >= 0 (source time)",
    "end": "a number of seconds > start (source time)",
    "words": f'a list of at most {MAX_CORRECTIONS} {{"index": n, "text": "..."}} objects',
    "index": "a word's index in the job's transcript (an integer >= 0)",
    "text": f"a word of 1 to {MAX_WORD_CHARS} characters on one line",
    "captionPreset": '"none", "beasty", "karaoke" or "mozi"',
    "captionEmphasis": '"auto" or "none"',
    "captionEmoji": "true or false",
    "captionStyle": "an object of captionStyle fields (as in ProcessOptions)",
    "aspectRatio": '"9:16", "1:1", "4:5" or "16:9"',
    "layout": '"auto", "follow" or "split"',
    "removeSilence": "true or false",
    "removeFillers": "true or false",
    "silenceThreshold": "a number of seconds from 0.2 to 10",
}


def _invalid(exc: ValidationError) -> InvalidOptions:
    err = exc.errors()[0]
    loc = [str(p) for p in err.get("loc", ())]
    if not loc:  # the window rule
        msg = str(err.get("msg", "invalid edit")).removeprefix("Value error, ")
        return InvalidOptions(f"invalid edit: {msg}", field="end")
    if to_camel(loc[0]) == "captionStyle" and len(loc) > 1:
        return style_error(err, loc[1:], "captionStyle")
    if err.get("type") == "extra_forbidden":
        where = "word correction" if loc[0] == "words" else "edit field"
        known = "index, text" if loc[0] == "words" else ", ".join(k for k in _ALLOWED if k not in ("index", "text"))
        return InvalidOptions(f"unknown {where} '{loc[-1]}' (known: {known})", field=loc[-1])
    key = loc[-1] if loc[0] == "words" and len(loc) > 2 else loc[0]
    key = to_camel(key) if "_" in key else key
    where = f"words[{loc[1]}].{key}" if loc[0] == "words" and len(loc) > 2 else key
    expected = _ALLOWED.get(key, "a valid value")
    return InvalidOptions(f"invalid edit '{where}': got {err.get('input')!r}, expected {expected}", field=key)
