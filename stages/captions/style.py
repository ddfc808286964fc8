"""Caption presets and words: how each preset looks, its fonts, and how words are grouped and shown.

One :class:`CaptionStyle` per preset drives both the burned-in sprites and the .ass file.
Fonts ship in ``stages/fonts`` (package data; see its README); the .ass names them by family, so
a player needs that folder as its fonts dir (``ffmpeg -vf ass=clip.ass:fontsdir=stages/fonts``).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

from fontTools.ttLib import TTFont
from PIL import ImageFont

from engine.errors import PermanentError
from engine.storage import find_font
from engine.types import SENTENCE_END, Word

FONTS_DIR = Path(__file__).resolve().parents[1] / "fonts"  # stages/fonts (package data)

RGB = tuple[int, int, int]
WHITE: RGB = (255, 255, 255)
BLACK: RGB = (0, 0, 0)

PAUSE_BREAK_S = 0.6  # a silence longer than this starts a new group
HOLD_S = 0.3  # a group stays up this long after its last word when nothing follows soon
POP_LEVELS = 2  # pop animation quantised to this many scale steps (sprites are cached per step)
_STOPWORDS = frozenset(
    {
        "about", "after", "again", "also", "because", "been", "before", "being", "could", "didn",
        "does", "doing", "every", "from", "going", "have", "having", "here", "just", "like",
        "maybe", "might", "more", "most", "much", "never", "only", "other", "really", "should",
        "since", "some", "still", "than", "that", "their", "them", "then", "there", "these", "they",
        "thing", "things", "think", "this", "those", "through", "very", "want", "were", "what",
        "when", "where", "which", "while", "will", "with", "would", "your", "you're", "it's",
        "that's", "don't", "can't", "i'm", "we're", "they're",
    }
)


@dataclass(frozen=True, slots=True)
class CaptionStyle:
    """How one preset looks. Lengths ending in ``_em`` are fractions of the font's em size."""

    name: str
    font_file: str  # in FONTS_DIR, or an absolute path (an uploaded font: captionStyle.fontFile, found by find_font)
    max_words: int
    uppercase: bool
    size: float  # em size as a fraction of the output height for 9:16 (scaled for others)
    min_scale: float  # shrink at most this far on one line before wrapping to two
    text_rgb: RGB
    highlight: str  # "active": active word coloured; "karaoke": spoken words; "keywords"; "none"
    active_rgbs: tuple[RGB, ...] = ()  # active/spoken colour, rotating per group
    accent_rgbs: tuple[RGB, ...] = ()  # key word colours, rotating per key word
    outline_em: float = 0.1
    outline_rgb: RGB = BLACK
    shadow_rgb: RGB = BLACK  # captionStyle.shadowColor (the alpha is shadow_alpha)
    shadow_em: float = 0.05  # drop-shadow offset (right and down)
    shadow_blur_em: float = 0.03
    shadow_alpha: int = 200
    pop_scale: float = 1.0  # active word grows to this and back over pop_seconds
    pop_seconds: float = 0.15
    line_pitch_em: float = 1.0  # baseline-to-baseline distance when a group wraps
    strip_punct: bool = False  # drop trailing , . ; : (display only)
    #: the font of matching weight for text ``font_file`` cannot show (see :func:`style_for_text`)
    fallback_font: str = "NotoSans-Black.ttf"
    #: captionEmphasis (stages/captions/emphasis.py): ``emphasis`` on for this track; a group's word scoring at
    #: least ``emphasis_min`` (0: the preset has none) is drawn in ``accent_rgbs`` and pops to ``emphasis_scale``
    emphasis: bool = False
    emphasis_min: float = 0.0
    emphasis_scale: float = 1.0
    emoji: bool = False  # captionEmoji: an emoji above some groups (emphasis.group_emoji)
    centre: float = 0.0  # captionStyle.position: the captions' centre as a fraction of the height (0: default)

    @property
    def max_pop(self) -> float:
        """The largest scale any word reaches (what layout leaves room for)."""
        return max(self.pop_scale, self.emphasis_scale) if self.emphasis else self.pop_scale


PRESETS: dict[str, CaptionStyle] = {
    "beasty": CaptionStyle(
        name="beasty", font_file="LuckiestGuy-Regular.ttf", max_words=3, uppercase=True,
        size=0.068, min_scale=0.78, text_rgb=WHITE, highlight="active",
        active_rgbs=((255, 232, 31), (83, 255, 69)), outline_em=0.12, outline_rgb=(8, 8, 8),
        shadow_em=0.075, shadow_blur_em=0.035, shadow_alpha=220, pop_scale=1.2,
        line_pitch_em=0.92, strip_punct=True, accent_rgbs=((255, 56, 56),), emphasis_min=3.0,
        emphasis_scale=1.32,
    ),
    "karaoke": CaptionStyle(
        name="karaoke", font_file="Poppins-ExtraBold.ttf", max_words=5, uppercase=False,
        size=0.044, min_scale=0.72, text_rgb=WHITE, highlight="karaoke",
        active_rgbs=((255, 214, 10),), outline_em=0.09, outline_rgb=(10, 10, 10),
        shadow_em=0.05, shadow_blur_em=0.04, shadow_alpha=170, line_pitch_em=1.2,
        fallback_font="NotoSans-ExtraBold.ttf",
    ),
    "mozi": CaptionStyle(
        name="mozi", font_file="Montserrat-Black.ttf", max_words=3, uppercase=True,
        size=0.058, min_scale=0.78, text_rgb=WHITE, highlight="keywords",
        accent_rgbs=((255, 214, 10), (46, 232, 107), (255, 59, 48)), outline_em=0.11,
        shadow_em=0.045, shadow_blur_em=0.03, shadow_alpha=190, pop_scale=1.08,
        line_pitch_em=1.0, strip_punct=True, emphasis_min=1.0, emphasis_scale=1.18,
    ),
}

#: captionPreset "none": nothing is burned in, but the caption files (.ass, .srt, .vtt) still carry
#: the clip's words, grouped and shown in this plain style (as typed, no highlight, no animation)
PLAIN = CaptionStyle(
    name="plain", font_file="Poppins-ExtraBold.ttf", max_words=5, uppercase=False,
    size=0.044, min_scale=0.72, text_rgb=WHITE, highlight="none", outline_em=0.09,
    outline_rgb=(10, 10, 10), shadow_em=0.05, shadow_blur_em=0.04, shadow_alpha=170, line_pitch_em=1.2,
    fallback_font="NotoSans-ExtraBold.ttf",
)


@dataclass(frozen=True, slots=True)
class CaptionGroup:
    """Words shown together from ``start`` to ``end``; ``texts`` are what is displayed."""

    start: float
    end: float
    words: tuple[Word, ...]
    texts: tuple[str, ...]


# -- fonts ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FontInfo:
    family: str  # name table family, what the .ass Style names
    cap_em: float  # cap height / em
    ascent_em: float  # Pillow's (hhea) ascent / em
    descent_em: float
    ass_em: float  # libass font size per em: (winAscent + winDescent) / unitsPerEm
    win_descent_em: float


@lru_cache(maxsize=8)
def font_info(font_file: str) -> FontInfo:
    tt = TTFont(FONTS_DIR / font_file, lazy=True)
    upem = float(tt["head"].unitsPerEm)
    os2, hhea = tt["OS/2"], tt["hhea"]
    family = tt["name"].getDebugName(16) or tt["name"].getDebugName(1) or font_file
    cap = float(getattr(os2, "sCapHeight", 0) or 0.7 * upem)
    return FontInfo(
        family=family,
        cap_em=cap / upem,
        ascent_em=hhea.ascent / upem,
        descent_em=-hhea.descent / upem,
        ass_em=(os2.usWinAscent + os2.usWinDescent) / upem,
        win_descent_em=os2.usWinDescent / upem,
    )


@lru_cache(maxsize=64)
def load_font(font_file: str, px: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(FONTS_DIR / font_file), max(1, px))


@lru_cache(maxsize=16)
def font_chars(font_file: str) -> frozenset[int]:
    """The code points the font has a glyph for (its cmap)."""
    return frozenset(TTFont(FONTS_DIR / font_file, lazy=True).getBestCmap())


#: languages whose alphabet the presets' own fonts (Basic Latin + Latin-1) hold: their captions keep the
#: preset's display font; every other language's captions are set in the preset's fallback (Noto Sans of
#: the same weight: Latin-extended, Cyrillic, Greek, Vietnamese), so all clips of a job look alike
LATIN1_LANGUAGES = frozenset({"af", "br", "ca", "da", "de", "en", "es", "eu", "fi", "fo", "fr", "gl", "id", "is",
                              "it", "la", "lb", "ms", "nl", "nn", "no", "oc", "pt", "sq", "sv", "sw", "tl"})


def missing_chars(font_file: str, texts: Sequence[str]) -> set[str]:
    """The characters of ``texts`` (spaces aside) that ``font_file`` has no glyph for: what would be tofu."""
    have = font_chars(font_file)
    return {c for t in texts for c in t if not c.isspace() and ord(c) not in have}


def style_for_text(style: CaptionStyle, texts: Sequence[str], language: str = "") -> CaptionStyle:
    """The style whose font shows ``texts``: the preset's own for a language its font holds (unless it lacks
    characters of the text the fallback has), else the preset's :attr:`~CaptionStyle.fallback_font` (unless
    that shows less of the text). A script neither font covers is tofu in both."""
    own, fallback = missing_chars(style.font_file, texts), missing_chars(style.fallback_font, texts)
    if language and language not in LATIN1_LANGUAGES:
        use_fallback = len(fallback) <= len(own)
    else:
        use_fallback = len(fallback) < len(own)
    if not use_fallback:
        return style
    # at least a full em between lines: the fallback's Cyrillic capitals descend (Д, Ц, Щ)
    return replace(style, font_file=style.fallback_font, line_pitch_em=max(style.line_pitch_em, 1.0))



#: captionStyle.font -> (font file, the Noto Sans of its weight for letters it lacks)
STYLE_FONTS: dict[str, tuple[str, str]] = {
    "luckiest-guy": ("LuckiestGuy-Regular.ttf", "NotoSans-Black.ttf"),
    "montserrat-black": ("Montserrat-Black.ttf", "NotoSans-Black.ttf"),
    "poppins-extrabold": ("Poppins-ExtraBold.ttf", "NotoSans-ExtraBold.ttf"),
    "noto-sans-black": ("NotoSans-Black.ttf", "NotoSans-Black.ttf"),
    "noto-sans-extrabold": ("NotoSans-ExtraBold.ttf", "NotoSans-ExtraBold.ttf"),
}


def _rgb(hex_colour: str) -> RGB:
    v = hex_colour.lstrip("#")
    return (int(v[0:2], 16), int(v[2:4], 16), int(v[4:6], 16))


def uploaded_font_path(custom: dict[str, Any], near: Path | None = None) -> Path:
    """The file of the uploaded font captionStyle names (``font: font_…``, ``fontFile: <sha256>.ttf|otf``, set
    by the gateway at submit): found under the data root (engine.storage.find_font, from ``near``, a file of
    the job), its content checked against its name. PermanentError when the job does not say which file or
    the storage no longer has it (the font was deleted since)."""
    name = custom.get("fontFile")
    if not name:
        raise PermanentError(f"captionStyle.font {custom.get('font')!r} is an uploaded font, which only a job "
                             "submitted to the server that has it can use")
    path = find_font(str(name), near)
    if path is None:
        raise PermanentError(f"the uploaded font {custom.get('font')} of captionStyle is no longer stored (deleted?); "
                             "choose another captionStyle.font")
    return path


def custom_style(style: CaptionStyle, custom: dict[str, Any] | None, near: Path | None = None) -> CaptionStyle:
    """``style`` with captionStyle's fields (camelCase JSON, validated by engine.options) in place:
    font (a bundled family, or an uploaded font's file: :func:`uploaded_font_path`, from ``near``), size (times
    the preset's), text/highlight/outline/shadow colours, outline width, uppercase, words per group, position.
    The highlight colour is the accent: the active, spoken and key word's colour alike. An uploaded font keeps
    the preset's fallback (Noto Sans of its weight) for letters it lacks."""
    if not custom:
        return style
    changes: dict[str, Any] = {}
    if custom.get("font") in STYLE_FONTS:
        changes["font_file"], changes["fallback_font"] = STYLE_FONTS[custom["font"]]
    elif str(custom.get("font") or "").startswith("font_"):
        changes["font_file"] = str(uploaded_font_path(custom, near))
    if custom.get("size") is not None:
        changes["size"] = style.size * float(custom["size"])
    if custom.get("textColor"):
        changes["text_rgb"] = _rgb(custom["textColor"])
    if custom.get("highlightColor"):
        rgb = _rgb(custom["highlightColor"])
        changes["active_rgbs"], changes["accent_rgbs"] = (rgb,), (rgb,)
    if custom.get("outlineColor"):
        changes["outline_rgb"] = _rgb(custom["outlineColor"])
    if custom.get("shadowColor"):
        changes["shadow_rgb"] = _rgb(custom["shadowColor"])
    if custom.get("outlineWidth") is not None:
        changes["outline_em"] = float(custom["outlineWidth"])
    if custom.get("uppercase") is not None:
        changes["uppercase"] = bool(custom["uppercase"])
    if custom.get("wordsPerGroup") is not None:
        changes["max_words"] = int(custom["wordsPerGroup"])
    if custom.get("position") is not None:
        changes["centre"] = float(custom["position"])
    return replace(style, **changes)


# -- grouping -------------------------------------------------------------------------------


def display_text(text: str, style: CaptionStyle) -> str:
    """The word as shown: trimmed, cased, and safe inside .ass text (no override braces)."""
    t = text.strip().replace("{", "(").replace("}", ")").replace("\\", "/")
    if style.strip_punct:
        t = t.rstrip(",.;:") or t
    return upper(t) if style.uppercase else t


#: accents Greek drops in capitals (tonos/oxia, varia, perispomeni, breathings); the dialytika stays
_GREEK_CAPS_DROP = frozenset("\u0300\u0301\u0342\u0313\u0314")


def _greek(c: str) -> bool:
    return "\u0370" <= c <= "\u03ff" or "\u1f00" <= c <= "\u1fff"


def upper(text: str) -> str:
    """Capitals as each script writes them: Greek loses its accents in all-caps (Καλημέρα ->
    ΚΑΛΗΜΕΡΑ, ΐ -> Ϊ); other letters keep theirs (día -> DÍA)."""
    u = text.upper()
    if not any(_greek(c) for c in u):
        return u
    out: list[str] = []
    base_greek = False
    for c in unicodedata.normalize("NFD", u):
        if unicodedata.combining(c):
            if not (base_greek and c in _GREEK_CAPS_DROP):
                out.append(c)
            continue
        base_greek = _greek(c)
        out.append(c)
    return unicodedata.normalize("NFC", "".join(out))


def _clean_words(words: Sequence[Word]) -> list[Word]:
    """Sorted, non-empty words with monotone, non-negative durations."""
    out: list[Word] = []
    for w in sorted((w for w in words if w.text.strip()), key=lambda w: w.start):
        start = max(w.start, out[-1].start) if out else w.start
        out.append(replace(w, start=start, end=max(w.end, start)))
    return out


def group_words(words: Sequence[Word], style: CaptionStyle) -> list[CaptionGroup]:
    """Consecutive words in groups of at most ``style.max_words``, broken at . ? ! and pauses.

    A group shows from its first word's start until the next group starts when that follows
    within a pause; otherwise until its last word's end + HOLD_S (never past the next start).
    """
    clean = _clean_words(words)
    runs: list[list[Word]] = []
    for w in clean:
        if runs:
            cur = runs[-1]
            prev = cur[-1]
            brk = (
                len(cur) >= style.max_words
                or prev.text.strip().endswith(SENTENCE_END)
                or w.start - prev.end > PAUSE_BREAK_S
            )
            if not brk:
                cur.append(w)
                continue
        runs.append([w])
    groups: list[CaptionGroup] = []
    for i, run in enumerate(runs):
        start, last_end = run[0].start, run[-1].end
        end = last_end + HOLD_S
        if i + 1 < len(runs):
            nxt = runs[i + 1][0].start
            end = nxt if nxt - last_end <= PAUSE_BREAK_S else min(end, nxt)
        end = max(end, start + 0.01)
        texts = tuple(display_text(w.text, style) for w in run)
        groups.append(CaptionGroup(start, end, tuple(run), texts))
    return groups


def is_keyword(text: str) -> bool:
    core = "".join(c for c in text.lower() if c.isalnum() or c == "'")
    return any(c.isdigit() for c in core) or (len(core) >= 5 and core not in _STOPWORDS)
