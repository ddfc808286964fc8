"""ProcessOptions: the one definition of what a job may ask for, shared by CLI and HTTP API.

Field names, defaults and ranges are those of the API reference (ProcessOptions table).
Python code uses snake_case attributes; JSON uses the spec's camelCase keys
(``ProcessOptions.from_json`` / ``to_json``).

Validation is strict: JSON ``true`` is not a count, ``"3"`` is not a number, ``"yes"`` is not
a boolean, and NaN/Infinity are refused. The CLI, which only has strings, converts them
explicitly first (:meth:`ProcessOptions.build`), then validates just as strictly.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic.alias_generators import to_camel

from engine.errors import InvalidOptions

Mode = Literal["ai", "none"]
ClipLength = Literal["short", "medium", "long"]
AspectRatio = Literal["9:16", "1:1", "4:5", "16:9"]
CaptionPreset = Literal["none", "beasty", "karaoke", "mozi"]
Genre = Literal["auto", "podcast", "interview", "vlog", "tutorial"]
Layout = Literal["auto", "follow", "split"]
CaptionEmphasis = Literal["auto", "none"]
#: ``language``: auto (detect it with a multilingual model; English with an English-only one) or the
#: ISO 639-1 code of a language Whisper transcribes (its 99, less the two without such a code)
Language = Literal[
    "auto", "af", "am", "ar", "as", "az", "ba", "be", "bg", "bn", "bo", "br", "bs", "ca", "cs",
    "cy", "da", "de", "el", "en", "es", "et", "eu", "fa", "fi", "fo", "fr", "gl", "gu", "ha", "he",
    "hi", "hr", "ht", "hu", "hy", "id", "is", "it", "ja", "jv", "ka", "kk", "km", "kn", "ko", "la",
    "lb", "ln", "lo", "lt", "lv", "mg", "mi", "mk", "ml", "mn", "mr", "ms", "mt", "my", "ne", "nl",
    "nn", "no", "oc", "pa", "pl", "ps", "pt", "ro", "ru", "sa", "sd", "si", "sk", "sl", "sn", "so",
    "sq", "sr", "su", "sv", "sw", "ta", "te", "tg", "th", "tk", "tl", "tr", "tt", "uk", "ur", "uz",
    "vi", "yi", "yo", "zh",
]

#: Allowed clip durations in seconds for each ``clipLength``.
CLIP_LENGTH_RANGES: dict[str, tuple[float, float]] = {
    "short": (3.0, 15.0),
    "medium": (20.0, 45.0),
    "long": (45.0, 90.0),
}

#: Output frame size (width, height) per aspect ratio: (for sources >= 1080p, below).
OUTPUT_SIZES: dict[str, tuple[tuple[int, int], tuple[int, int]]] = {
    "9:16": ((1080, 1920), (720, 1280)),
    "1:1": ((1080, 1080), (720, 720)),
    "4:5": ((1080, 1350), (720, 900)),
    "16:9": ((1920, 1080), (1280, 720)),
}

MAX_PROMPT_CHARS = 2000

#: captionStyle's fonts: the bundled families (stages/fonts)
CaptionFont = Literal["luckiest-guy", "montserrat-black", "poppins-extrabold", "noto-sans-black",
                      "noto-sans-extrabold"]
#: an uploaded font (POST /api/fonts): its id, ``font_`` and 16 hex digits
UPLOADED_FONT_ID = r"^font_[0-9a-f]{16}$"
#: a saved style (POST /api/styles): its id, ``sty_`` and 16 hex digits
STYLE_ID = r"^sty_[0-9a-f]{16}$"
#: where an uploaded font's file lives: its content address under the data root's fonts/ (engine.storage)
FONT_FILE = r"^[0-9a-f]{64}\.(ttf|otf)$"
_COLOUR = r"^#[0-9A-Fa-f]{6}$"


class CaptionStyleOptions(BaseModel):
    """A brand style over the caption preset: every field optional, each overriding the preset's."""

    model_config = ConfigDict(frozen=True, extra="forbid", alias_generator=to_camel, populate_by_name=True,
                              strict=True, allow_inf_nan=False)

    font: CaptionFont | Annotated[str, Field(pattern=UPLOADED_FONT_ID)] | None = Field(
        None, description="One of the bundled families, or the id (font_…) of a font the account uploaded to "
        "/api/fonts.")
    size: float | None = Field(None, ge=0.5, le=2.0, description="Text size, times the preset's.")
    text_color: str | None = Field(None, pattern=_COLOUR, description="The words' colour, #RRGGBB.")
    highlight_color: str | None = Field(None, pattern=_COLOUR, description="The accent colour: the spoken / "
                                        "active / key (emphasised) word's colour, #RRGGBB.")
    outline_color: str | None = Field(None, pattern=_COLOUR, description="The outline's colour, #RRGGBB.")
    shadow_color: str | None = Field(None, pattern=_COLOUR, description="The drop shadow's colour, #RRGGBB "
                                     "(the preset's opacity and offset).")
    outline_width: float | None = Field(None, ge=0.0, le=0.3, description="Outline width, in ems (0-0.3).")
    uppercase: bool | None = Field(None, description="Capital letters.")
    words_per_group: int | None = Field(None, ge=1, le=8, description="At most this many words on screen.")
    position: float | None = Field(None, ge=0.15, le=0.9, description="Where the captions' centre sits, as a "
                                   "fraction of the frame's height from the top (0.15-0.9).")
    font_file: str | None = Field(None, pattern=FONT_FILE, description="Set by the server, never by a client "
                                  "(any value sent is replaced): an uploaded font's file, <sha256>.ttf|otf under "
                                  "the data root's fonts/.")

    @property
    def uploaded_font(self) -> str | None:
        """The id of the uploaded font ``font`` names, or None for a bundled family (or none)."""
        return self.font if self.font and self.font.startswith("font_") else None

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, exclude_none=True)

    @classmethod
    def from_json(cls, data: Any, where: str = "captionStyle") -> CaptionStyleOptions:
        """Validate a captionStyle object, errors named ``where.field`` (a saved style's ``style``), or raise
        InvalidOptions."""
        if not isinstance(data, dict):
            raise InvalidOptions(f"invalid option '{where}': expected an object of captionStyle fields", field=where)
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            err = exc.errors()[0]
            raise style_error(err, [str(p) for p in err.get("loc", ())] or [where], where) from None


class ProcessOptions(BaseModel):
    """What one job asks for. Every key is optional; defaults follow the API reference."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        alias_generator=to_camel,
        populate_by_name=True,
        strict=True,
        allow_inf_nan=False,
    )

    mode: Mode = Field("ai", description="ai = pick viral moments; none = one full-source clip.")
    num_clips: int = Field(3, ge=1, le=10, description="Clips to generate, 1-10.")
    clip_length: ClipLength = Field("medium", description="short 3-15 s, medium 20-45 s, long 45-90 s.")
    aspect_ratio: AspectRatio = Field("9:16", description="Output frame shape.")
    caption_preset: CaptionPreset = Field("none", description="Burned-in caption style.")
    caption_emphasis: CaptionEmphasis = Field(
        "auto", description="auto = the beasty and mozi presets give about one key word per caption group (a "
        "number, a name, one of the clip's keywords, a strong verb) the preset's accent colour and a stronger pop; "
        "none = no emphasis (mozi colours its longest word, as before). Karaoke is never emphasised.")
    caption_style: CaptionStyleOptions | None = Field(
        None, description="A brand style over captionPreset: font (a bundled family), size, textColor, "
        "highlightColor (the accent: active, spoken and key words), outlineColor, shadowColor, outlineWidth, "
        "uppercase, wordsPerGroup, position; each field optional. font may name an uploaded font (font_…, "
        "/api/fonts) of the account.")
    caption_style_id: str | None = Field(
        None, pattern=STYLE_ID, description="A saved style of the account (sty_…, /api/styles): the server puts "
        "its captionStyle (and its captionPreset, unless captionPreset is given) in the job at submit, so a later "
        "edit of the saved style does not change the job; captionStyle fields sent with it override the saved "
        "style's, field by field.")
    caption_emoji: bool = Field(False, description="Put an emoji matching a caption's word (money, fire, idea, "
                                "rocket, time, …) above the caption group, at most one every 3 s; burned-in "
                                "presets and the .ass.")
    remove_ai_voice: bool = Field(True, description="Splice out AI-host turns in interviews.")
    auto_hook: bool = Field(True, description="Let the LLM write hook, title and hashtags.")
    prompt: str = Field("", max_length=MAX_PROMPT_CHARS, description="Free-form focus instruction.")
    genre: Genre = Field("auto", description="Content genre; auto detects it.")
    trim_start: float = Field(0.0, ge=0.0, description="Cut the source before this time (s).")
    trim_end: float | None = Field(None, gt=0.0, description="Cut the source after this time (s).")
    layout: Layout = Field(
        "auto",
        description="Framing with several people: follow = crop on whoever is talking; split = 9:16 stacks "
        "two speakers when both are on screen; auto = follow.",
    )

    remove_silence: bool = Field(False, description="Shorten pauses longer than silenceThreshold to ~0.15 s "
                                 "(frame-aligned cuts, audio crossfaded); the length range applies to the result.")
    silence_threshold: float = Field(0.6, ge=0.2, le=10.0, description="Pauses longer than this (s) are "
                                     "shortened when removeSilence is on.")
    remove_fillers: bool = Field(False, description='Cut "um", "uh", "erm", "hmm" and, where they stand alone '
                                 'between pauses, "you know", "like", "I mean".')
    language: Language = Field(
        "auto", description="The spoken language, as an ISO 639-1 code (e.g. en, es, de, ru), or auto: detected "
        "by the multilingual speech model when the server runs one (CLIPORA_WHISPER_MODEL=base), else English. "
        "Other languages than English need that model (400 otherwise). Captions switch to a font that has the "
        "language's letters (Latin-extended, Cyrillic, Greek, Vietnamese) where the preset's font lacks them.",
    )
    webhook_url: str | None = Field(
        None, max_length=2048, pattern=r"^[Hh][Tt][Tt][Pp][Ss]?://[^\s]+$",
        description="POST job.completed / job.failed here when the job ends, signed (Standard Webhooks) "
        "with the account's signing secret; the address must pass the URL-ingest policy.",
    )

    @model_validator(mode="after")
    def _trim_order(self) -> ProcessOptions:
        if self.trim_end is not None and self.trim_end <= self.trim_start:
            raise ValueError("trimEnd must be greater than trimStart")
        return self

    # -- JSON edge -------------------------------------------------------------------------

    @classmethod
    def from_json(cls, data: Any) -> ProcessOptions:
        """Validate a JSON object (camelCase keys) into options, or raise InvalidOptions."""
        if data is None:
            return cls()
        if not isinstance(data, dict):
            raise InvalidOptions("options must be a JSON object")
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise _to_invalid_options(exc) from None

    @classmethod
    def build(cls, **fields: Any) -> ProcessOptions:
        """Validate snake_case keyword fields (what the CLI has), or raise InvalidOptions.

        Strings for numeric fields (``--num-clips 4``, ``--trim-start 1.5``) are converted
        here, explicitly; anything else is validated as strictly as JSON.
        """
        try:
            return cls.model_validate({k: _from_cli(k, v) for k, v in fields.items() if v is not None})
        except ValidationError as exc:
            raise _to_invalid_options(exc) from None

    def to_json(self) -> dict[str, Any]:
        """The options as the API reports them (camelCase keys, every field present; captionStyle with only
        the fields it sets)."""
        out = self.model_dump(by_alias=True)
        if self.caption_style is not None:
            out["captionStyle"] = self.caption_style.to_json()
        return out

    @property
    def clip_length_range(self) -> tuple[float, float]:
        return CLIP_LENGTH_RANGES[self.clip_length]

    def check_speech_model(self, multilingual: bool) -> None:
        """InvalidOptions (400 at submit, exit 2 in the CLI) for a language other than English when
        the installation's speech model is English-only (``Settings.whisper_multilingual``)."""
        if not multilingual and self.language not in ("auto", "en"):
            raise InvalidOptions(
                f"invalid option 'language': got {self.language!r}, but this server's speech model is English-only; "
                "expected \"auto\" or \"en\" (other languages need CLIPORA_WHISPER_MODEL=base)", field="language")


_INT_FIELDS = frozenset({"num_clips"})
_FLOAT_FIELDS = frozenset({"trim_start", "trim_end", "silence_threshold"})


def _from_cli(name: str, value: Any) -> Any:
    """A command-line string converted to the field's type; left as is when it does not convert
    (strict validation then refuses it with the field's message)."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    try:
        if name in _INT_FIELDS:
            return int(text)
        if name in _FLOAT_FIELDS:
            return float(text)  # "inf"/"nan" convert, and are refused by allow_inf_nan=False
    except ValueError:
        return value
    return value


_ALLOWED: dict[str, str] = {
    "mode": '"ai" or "none"',
    "numClips": "an integer from 1 to 10",
    "clipLength": '"short", "medium" or "long"',
    "aspectRatio": '"9:16", "1:1", "4:5" or "16:9"',
    "captionPreset": '"none", "beasty", "karaoke" or "mozi"',
    "captionEmphasis": '"auto" or "none"',
    "captionEmoji": "true or false",
    "captionStyle": "an object of captionStyle fields, or null",
    "captionStyleId": "the id of a saved style (sty_ and 16 hex digits), or null",
    "removeAiVoice": "true or false",
    "autoHook": "true or false",
    "prompt": f"a string of at most {MAX_PROMPT_CHARS} characters",
    "genre": '"auto", "podcast", "interview", "vlog" or "tutorial"',
    "trimStart": "a finite number of seconds >= 0",
    "trimEnd": "a finite number of seconds greater than trimStart, or null",
    "layout": '"auto", "follow" or "split"',
    "removeSilence": "true or false",
    "silenceThreshold": "a number of seconds from 0.2 to 10",
    "removeFillers": "true or false",
    "language": '"auto" or an ISO 639-1 code the speech model knows, e.g. "en", "es", "de", "ru"',
    "webhookUrl": "an http(s) URL of at most 2048 characters, or null",
}


_STYLE_ALLOWED: dict[str, str] = {
    "font": '"luckiest-guy", "montserrat-black", "poppins-extrabold", "noto-sans-black", "noto-sans-extrabold" '
            "or an uploaded font's id (font_ and 16 hex digits)",
    "size": "a number from 0.5 to 2 (times the preset's size)",
    "textColor": "a colour as #RRGGBB",
    "highlightColor": "a colour as #RRGGBB",
    "outlineColor": "a colour as #RRGGBB",
    "shadowColor": "a colour as #RRGGBB",
    "outlineWidth": "a number of ems from 0 to 0.3",
    "uppercase": "true or false",
    "wordsPerGroup": "an integer from 1 to 8",
    "position": "a fraction of the frame's height from 0.15 to 0.9",
    "fontFile": "nothing: the server sets it from an uploaded font",
}


def style_error(err: Any, loc: list[str], where: str) -> InvalidOptions:
    """A captionStyle field's error, named as ``where.field`` (ProcessOptions and ClipEdit alike)."""
    name = to_camel(loc[0]) if "_" in loc[0] else loc[0]
    if err.get("type") == "extra_forbidden":
        return InvalidOptions(f"unknown {where} field '{loc[0]}' (known: {', '.join(_STYLE_ALLOWED)})",
                              field=f"{where}.{loc[0]}")
    if err.get("type") in ("model_type", "model_attributes_type", "dict_type"):
        return InvalidOptions(f"invalid option '{where}': expected an object of captionStyle fields, or null",
                              field=where)
    return InvalidOptions(f"invalid option '{where}.{name}': got {err.get('input')!r}, expected "
                          f"{_STYLE_ALLOWED.get(name, 'a valid value')}", field=f"{where}.{name}")


def _to_invalid_options(exc: ValidationError) -> InvalidOptions:
    err = exc.errors()[0]
    loc = [str(p) for p in err.get("loc", ()) if p != "__root__"]
    if not loc:
        # model-level validator (trim order)
        msg = str(err.get("msg", "invalid options")).removeprefix("Value error, ")
        return InvalidOptions(f"invalid options: {msg}", field="trimEnd")
    key = to_camel(loc[0]) if "_" in loc[0] else loc[0]
    if key == "captionStyle" and len(loc) > 1:
        return style_error(err, loc[1:], "captionStyle")
    if err.get("type") == "extra_forbidden":
        known = ", ".join(_ALLOWED)
        return InvalidOptions(f"unknown option '{loc[0]}' (known options: {known})", field=loc[0])
    allowed = _ALLOWED.get(key, "a valid value")
    return InvalidOptions(
        f"invalid option '{key}': got {err.get('input')!r}, expected {allowed}", field=key
    )
