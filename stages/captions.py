"""Caption presets -> a clip's caption track: burned-in YUVA sprites and a matching .ass file.

One :class:`CaptionStyle` per preset drives both outputs, so the pixels the render burns in
and the ``clip_NN.ass`` a player shows agree on font, size, colours, outline, position and
timing. Words are grouped (a few words on screen at a time), each group is laid out once to
fit the safe area, and a sprite is rasterised with Pillow only once per (group, active word,
pop step), converted to YUVA 4:2:0 once, and reused on every frame that shows it.

Fonts ship in ``stages/fonts`` (package data; see its README); the .ass names them by family, so
a player needs that folder as its fonts dir (``ffmpeg -vf ass=clip.ass:fontsdir=stages/fonts``).
"""

from __future__ import annotations

import bisect
import math
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
from fontTools.ttLib import TTFont
from PIL import Image, ImageFont

from engine.errors import InvalidOptions
from engine.options import CaptionPreset
from engine.stage import Stage, StageContext
from engine.storage import write_text_atomic
from engine.types import Word
from kernels.composite import Sprite, sprite_from_rgba

FONTS_DIR = Path(__file__).resolve().parent / "fonts"

RGB = tuple[int, int, int]
WHITE: RGB = (255, 255, 255)
BLACK: RGB = (0, 0, 0)

PAUSE_BREAK_S = 0.6  # a silence longer than this starts a new group
HOLD_S = 0.3  # a group stays up this long after its last word when nothing follows soon
SAFE_WIDTH = 0.85  # captions stay within this fraction of the output width
POP_LEVELS = 2  # pop animation quantised to this many scale steps (sprites are cached per step)
_SENTENCE_END = (".", "?", "!")
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
    font_file: str  # in FONTS_DIR
    max_words: int
    uppercase: bool
    size: float  # em size as a fraction of the output height for 9:16 (scaled for others)
    min_scale: float  # shrink at most this far on one line before wrapping to two
    text_rgb: RGB
    highlight: str  # "active": active word coloured; "karaoke": spoken words; "keywords"
    active_rgbs: tuple[RGB, ...] = ()  # active/spoken colour, rotating per group
    accent_rgbs: tuple[RGB, ...] = ()  # key word colours, rotating per key word
    outline_em: float = 0.1
    outline_rgb: RGB = BLACK
    shadow_em: float = 0.05  # drop-shadow offset (right and down)
    shadow_blur_em: float = 0.03
    shadow_alpha: int = 200
    pop_scale: float = 1.0  # active word grows to this and back over pop_seconds
    pop_seconds: float = 0.15
    line_pitch_em: float = 1.0  # baseline-to-baseline distance when a group wraps
    strip_punct: bool = False  # drop trailing , . ; : (display only)


PRESETS: dict[str, CaptionStyle] = {
    "beasty": CaptionStyle(
        name="beasty", font_file="LuckiestGuy-Regular.ttf", max_words=3, uppercase=True,
        size=0.068, min_scale=0.78, text_rgb=WHITE, highlight="active",
        active_rgbs=((255, 232, 31), (83, 255, 69)), outline_em=0.12, outline_rgb=(8, 8, 8),
        shadow_em=0.075, shadow_blur_em=0.035, shadow_alpha=220, pop_scale=1.2,
        line_pitch_em=0.92, strip_punct=True,
    ),
    "karaoke": CaptionStyle(
        name="karaoke", font_file="Poppins-ExtraBold.ttf", max_words=5, uppercase=False,
        size=0.044, min_scale=0.72, text_rgb=WHITE, highlight="karaoke",
        active_rgbs=((255, 214, 10),), outline_em=0.09, outline_rgb=(10, 10, 10),
        shadow_em=0.05, shadow_blur_em=0.04, shadow_alpha=170, line_pitch_em=1.2,
    ),
    "mozi": CaptionStyle(
        name="mozi", font_file="Montserrat-Black.ttf", max_words=3, uppercase=True,
        size=0.058, min_scale=0.78, text_rgb=WHITE, highlight="keywords",
        accent_rgbs=((255, 214, 10), (46, 232, 107), (255, 59, 48)), outline_em=0.11,
        shadow_em=0.045, shadow_blur_em=0.03, shadow_alpha=190, pop_scale=1.08,
        line_pitch_em=1.0, strip_punct=True,
    ),
}


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
def _font(font_file: str, px: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(FONTS_DIR / font_file), max(1, px))


# -- grouping -------------------------------------------------------------------------------


def display_text(text: str, style: CaptionStyle) -> str:
    """The word as shown: trimmed, cased, and safe inside .ass text (no override braces)."""
    t = text.strip().replace("{", "(").replace("}", ")").replace("\\", "/")
    if style.strip_punct:
        t = t.rstrip(",.;:") or t
    return t.upper() if style.uppercase else t


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
                or prev.text.strip().endswith(_SENTENCE_END)
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


# -- layout ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Layout:
    em: int
    lines: tuple[tuple[int, ...], ...]  # word indices per line
    x: int  # canvas top-left in output pixels (even)
    y: int
    w: int  # canvas size (even)
    h: int
    baselines: tuple[float, ...]  # per line, canvas coordinates


def _base_em(style: CaptionStyle, out_w: int, out_h: int) -> float:
    # Size follows the height for 9:16; wider frames get a slightly larger share of their
    # (shorter) height so a 16:9 caption is not tiny next to a 9:16 one.
    aspect = min(out_w / out_h, 16 / 9)
    return style.size * min(out_h, out_w * 16 / 9) * (aspect / 0.5625) ** 0.4


def _centre_y(out_w: int, out_h: int) -> float:
    return out_h * (0.70 if out_w / out_h < 0.9 else 0.78)


def _pad(style: CaptionStyle, em: float) -> int:
    return math.ceil(em * (style.outline_em * style.pop_scale + style.shadow_em
                               + 3 * style.shadow_blur_em)) + 4


def _line_width(widths: list[float], space: float, pop: float) -> float:
    """Width of a line when its widest word is popped (the widest any state gets)."""
    return sum(widths) + space * (len(widths) - 1) + max(widths) * (pop - 1)


def _fit(texts: Sequence[str], style: CaptionStyle, out_w: int, out_h: int) -> _Layout:
    base = _base_em(style, out_w, out_h)
    max_w = int(SAFE_WIDTH * out_w) - 4
    n = len(texts)

    def measure(em: int, lines: tuple[tuple[int, ...], ...]) -> int:
        f = _font(style.font_file, em)
        space = f.getlength(" ")
        widest = max(
            _line_width([f.getlength(texts[i]) for i in ln], space, style.pop_scale) for ln in lines
        )
        return math.ceil(widest) + 2 * _pad(style, em)

    def split2(em: int) -> tuple[tuple[int, ...], ...]:
        options = [(tuple(range(k)), tuple(range(k, n))) for k in range(1, n)]
        return min(options, key=lambda ls: measure(em, ls))

    scales = [s for s in np.arange(1.0, style.min_scale - 1e-9, -0.04)] + [style.min_scale]
    chosen: tuple[int, tuple[tuple[int, ...], ...]] | None = None
    for n_lines in (1, 2) if n > 1 else (1,):
        for s in scales:
            em = max(8, round(base * s))
            lines = (tuple(range(n)),) if n_lines == 1 else split2(em)
            if measure(em, lines) <= max_w:
                chosen = (em, lines)
                break
        if chosen:
            break
    if chosen is None:  # very long words: keep shrinking the tightest layout until it fits
        em = max(8, round(base * style.min_scale))
        lines = (tuple(range(n)),) if n == 1 else split2(em)
        while em > 8 and measure(em, lines) > max_w:
            em = max(8, int(em * 0.93))
        chosen = (em, lines)
    em, lines = chosen
    return _place(style, em, lines, measure(em, lines), out_w, out_h)


def _vertical_extent(style: CaptionStyle, em: float, n_lines: int, out_w: int, out_h: int
                     ) -> tuple[float, float, float]:
    """(first baseline, top, bottom) in output pixels of a block of n_lines at size em."""
    fi = font_info(style.font_file)
    pitch = style.line_pitch_em * em
    cap = fi.cap_em * em
    # centre the caps of the block (top of first line's caps .. last baseline) on the band
    b0 = _centre_y(out_w, out_h) + cap / 2 - (n_lines - 1) * pitch / 2
    pad = _pad(style, em)
    top = b0 - fi.ascent_em * em * style.pop_scale - pad
    bottom = b0 + (n_lines - 1) * pitch + (fi.descent_em * style.pop_scale
                                           + fi.cap_em * (style.pop_scale - 1) / 2) * em + pad
    return b0, top, bottom


def _even_floor(v: float) -> int:
    return math.floor(v / 2) * 2


def _even_ceil(v: float) -> int:
    return math.ceil(v / 2) * 2


def _place(style: CaptionStyle, em: int, lines: tuple[tuple[int, ...], ...], width: int,
           out_w: int, out_h: int) -> _Layout:
    b0, top, bottom = _vertical_extent(style, em, len(lines), out_w, out_h)
    x, y = _even_floor((out_w - width) / 2), _even_floor(top)
    w, h = _even_ceil(width), _even_ceil(bottom - y)
    pitch = style.line_pitch_em * em
    return _Layout(em, lines, x, y, w, h, tuple(b0 - y + i * pitch for i in range(len(lines))))


# -- rasterising helpers --------------------------------------------------------------------


def _paste_ink(dst: np.ndarray, mask: np.ndarray, x: int, y: int, ink: int | RGB) -> None:
    """Draw ``ink`` through ``mask`` at (x, y) into ``dst`` (clipped), as Pillow's draw_bitmap does.

    Pillow blends each channel as ``DIV255(dst * (255 - m) + ink * m)`` with
    ``DIV255(v) = ((v + 128) + ((v + 128) >> 8)) >> 8``; all of it fits in uint16.
    """
    H, W = dst.shape[:2]
    h, w = mask.shape
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, W), min(y + h, H)
    if x1 <= x0 or y1 <= y0:
        return
    m = mask[y0 - y : y1 - y, x0 - x : x1 - x].astype(np.uint16)
    region = dst[y0:y1, x0:x1]
    if dst.ndim == 3:
        m = m[..., None]
        ink_arr = np.asarray(ink, np.uint16)
    else:
        ink_arr = np.uint16(ink)
    acc = region * (255 - m)
    acc += ink_arr * m
    acc += 128
    acc += acc >> 8
    acc >>= 8
    region[...] = acc


@lru_cache(maxsize=32)
def _shadow_kernel(radius: float) -> np.ndarray | None:
    """1-D kernel equal to Pillow's GaussianBlur(radius): three fractional box passes.

    Pillow (libImaging/BoxBlur.c) blurs with three box filters of radius ``l + a`` whose
    weights are 24-bit fixed point; convolving the three boxes gives one separable kernel
    (Pillow rounds to uint8 between passes, so the result may differ from it by 1 level).
    """
    f = np.float32
    r = f(radius)
    if r <= 0:
        return None
    sigma2 = r * r / f(3)
    box_len = f(math.sqrt(12.0 * float(sigma2) + 1.0))
    lo = f(math.floor((float(box_len) - 1.0) / 2.0))
    a = (f(2) * lo + f(1)) * (lo * (lo + f(1)) - f(3) * sigma2)
    a = a / (f(6) * (sigma2 - (lo + f(1)) * (lo + f(1))))
    fr = lo + a
    ri = int(fr)
    ww = int(f(1 << 24) / (fr * f(2) + f(1)))
    fw = ((1 << 24) - (ri * 2 + 1) * ww) // 2
    box = np.array([fw] + [ww] * (2 * ri + 1) + [fw], np.float64) / (1 << 24)
    return np.convolve(np.convolve(box, box), box).astype(np.float32)


@lru_cache(maxsize=8)
def _alpha_lut(alpha: int) -> np.ndarray:
    return (np.arange(256) * alpha // 255).astype(np.uint8)


# -- the track ------------------------------------------------------------------------------


def _is_keyword(text: str) -> bool:
    core = "".join(c for c in text.lower() if c.isalnum() or c == "'")
    return any(c.isdigit() for c in core) or (len(core) >= 5 and core not in _STOPWORDS)


class CaptionTrack:
    """A clip's captions: groups with clip-relative times, sprites per frame time, .ass text."""

    _CACHE_SIZE = 48
    _MASK_CACHE_SIZE = 256

    def __init__(self, style: CaptionStyle | None, groups: list[CaptionGroup], out_w: int,
                 out_h: int) -> None:
        self.style = style
        self.out_w, self.out_h = out_w, out_h
        self._groups = groups
        self._starts = [g.start for g in groups]
        self._layouts = [_fit(g.texts, style, out_w, out_h) for g in groups] if style else []
        self._colours = [self._fixed_colours(i) for i in range(len(groups))]
        self._cache: OrderedDict[tuple[int, int, int], Sprite | None] = OrderedDict()
        self._masks: OrderedDict[tuple[object, ...], tuple[np.ndarray, int, int]] = OrderedDict()

    @property
    def events(self) -> list[CaptionGroup]:
        return list(self._groups)

    @property
    def band(self) -> tuple[int, int]:
        """(y0, y1) output rows that every caption sprite lies within."""
        if self.style is None:
            c = _even_floor(_centre_y(self.out_w, self.out_h))
            return c, c
        em = round(_base_em(self.style, self.out_w, self.out_h))
        _, top, bottom = _vertical_extent(self.style, em, 2, self.out_w, self.out_h)
        return max(0, _even_floor(top)), min(self.out_h, _even_ceil(bottom) + 2)

    def _fixed_colours(self, gi: int) -> list[RGB | None]:
        """Per-word colours that do not depend on timing (mozi key words)."""
        style, group = self.style, self._groups[gi]
        if style is None or style.highlight != "keywords":
            return [None] * len(group.texts)
        seen = sum(
            1 for g in self._groups[:gi] if any(_is_keyword(t) for t in g.texts)
        )
        cands = [i for i, t in enumerate(group.texts) if _is_keyword(t)]
        out: list[RGB | None] = [None] * len(group.texts)
        if cands:
            best = max(cands, key=lambda i: (any(c.isdigit() for c in group.texts[i]),
                                             len(group.texts[i])))
            out[best] = style.accent_rgbs[seen % len(style.accent_rgbs)]
        return out

    def word_colour(self, gi: int, wi: int, active: int) -> RGB:
        style = self.style
        assert style is not None
        fixed = self._colours[gi][wi]
        if fixed is not None:
            return fixed
        if style.highlight == "active" and wi == active:
            return style.active_rgbs[gi % len(style.active_rgbs)]
        if style.highlight == "karaoke" and wi <= active:
            return style.active_rgbs[gi % len(style.active_rgbs)]
        return style.text_rgb

    def state_at(self, t: float) -> tuple[int, int, int] | None:
        """(group, active word, pop step) shown at clip time t, or None between groups."""
        gi = bisect.bisect_right(self._starts, t) - 1
        if gi < 0 or t >= self._groups[gi].end:
            return None
        g = self._groups[gi]
        active = max(0, bisect.bisect_right([w.start for w in g.words], t) - 1)
        step = 0
        assert self.style is not None
        dt = t - g.words[active].start
        if self.style.pop_scale > 1 and 0 <= dt < self.style.pop_seconds:
            step = round(math.sin(math.pi * dt / self.style.pop_seconds) * POP_LEVELS)
        return gi, active, step

    def sprite_at(self, t: float) -> Sprite | None:
        """The sprite to burn in at clip time ``t``, or None; rasterised once per state."""
        key = self.state_at(t) if self.style is not None else None
        if key is None:
            return None
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        sprite = self._render(*key)
        self._cache[key] = sprite
        if len(self._cache) > self._CACHE_SIZE:
            self._cache.popitem(last=False)
        return sprite

    def rgba_at(self, t: float) -> tuple[np.ndarray, int, int] | None:
        """The RGBA image (and its x, y) shown at ``t``; for posters and previews."""
        key = self.state_at(t) if self.style is not None else None
        return None if key is None else self._rasterise(*key)

    def _render(self, gi: int, active: int, step: int) -> Sprite | None:
        got = self._rasterise(gi, active, step)
        if got is None:
            return None
        rgba, x, y = got
        return sprite_from_rgba(rgba, x, y)

    def _mask(self, font: ImageFont.FreeTypeFont, text: str, x: float, y: float, sw: int
              ) -> tuple[np.ndarray, int, int]:
        """``text``'s coverage as ``ImageDraw.text(anchor="ls")`` draws it at (x, y): (mask, left, top).

        Cached per (font, text, stroke, sub-pixel offset): a word drawn the same way in several
        states (all the words that are not popping) goes through FreeType once per group.
        """
        fx, fy = math.modf(x)[0], math.modf(y)[0]
        key = (font.path, font.size, text, sw, fx, fy)
        got = self._masks.get(key)
        if got is None:
            core, (ox, oy) = font.getmask2(text, "L", None, None, None, sw, "ls", 255, (fx, fy),
                                           stroke_filled=True)
            got = (np.asarray(Image.Image()._new(core)), ox, oy)
            self._masks[key] = got
            if len(self._masks) > self._MASK_CACHE_SIZE:
                self._masks.popitem(last=False)
        else:
            self._masks.move_to_end(key)
        mask, ox, oy = got
        return mask, int(x) + ox, int(y) + oy

    def _rasterise(self, gi: int, active: int, step: int) -> tuple[np.ndarray, int, int] | None:
        """The state's straight-alpha RGBA, cropped to its visible pixels (even-aligned), at (x, y).

        Pixel for pixel what Pillow's ImageDraw + GaussianBlur + alpha_composite give on the
        whole layout canvas (the shadow blur may differ by 1 level), but only the rectangle the
        text and its shadow cover is touched: glyph masks are pasted with Pillow's own blend
        rounding, the shadow is one separable cv2 filter, the layers are composited by Pillow.
        """
        style, lay, texts = self.style, self._layouts[gi], self._groups[gi].texts
        assert style is not None
        fi = font_info(style.font_file)
        scale = 1 + (style.pop_scale - 1) * step / POP_LEVELS
        base_font = _font(style.font_file, lay.em)
        space = base_font.getlength(" ")
        words: list[tuple[np.ndarray, int, int, np.ndarray, int, int, RGB]] = []
        for ln, baseline in zip(lay.lines, lay.baselines, strict=True):
            fonts = [
                _font(style.font_file, round(lay.em * scale)) if i == active else base_font
                for i in ln
            ]
            widths = [f.getlength(texts[i]) for f, i in zip(fonts, ln, strict=True)]
            x = (lay.w - sum(widths) - space * (len(ln) - 1)) / 2
            for f, i, wd in zip(fonts, ln, widths, strict=True):
                s = scale if i == active else 1.0
                # grow around the middle of the caps, not the baseline, so the pop is centred
                by = baseline + fi.cap_em * lay.em * (s - 1) / 2
                sw = max(1, round(style.outline_em * lay.em * s))
                words.append((*self._mask(f, texts[i], x, by, sw), *self._mask(f, texts[i], x, by, 0),
                              self.word_colour(gi, i, active)))
                x += wd + space
        # the rectangle of the canvas anything lands in: text, and shadow + its blur's reach
        boxes = [(sx, sy, sx + sm.shape[1], sy + sm.shape[0]) for sm, sx, sy, *_ in words]
        boxes += [(fx, fy, fx + fm.shape[1], fy + fm.shape[0]) for _, _, _, fm, fx, fy, _ in words]
        shadow = style.shadow_alpha > 0
        off = round(style.shadow_em * lay.em)
        kernel = _shadow_kernel(style.shadow_blur_em * lay.em) if shadow else None
        if shadow:
            reach = 0 if kernel is None else len(kernel) // 2 + 1
            boxes += [(bx0 + off - reach, by0 + off - reach, bx1 + off + reach, by1 + off + reach)
                      for bx0, by0, bx1, by1 in boxes[: len(words)]]
        rx0 = max(0, _even_floor(min(b[0] for b in boxes)))
        ry0 = max(0, _even_floor(min(b[1] for b in boxes)))
        rx1 = min(lay.w, _even_ceil(max(b[2] for b in boxes)))
        ry1 = min(lay.h, _even_ceil(max(b[3] for b in boxes)))
        if rx1 <= rx0 or ry1 <= ry0:
            return None
        rh, rw = ry1 - ry0, rx1 - rx0
        stroke = np.zeros((rh, rw), np.uint8)
        fill = np.zeros((rh, rw), np.uint8)
        colour = np.empty((rh, rw, 3), np.uint8)
        colour[...] = style.text_rgb
        for sm, sx, sy, fm, fx, fy, rgb in words:
            _paste_ink(stroke, sm, sx - rx0, sy - ry0, 255)
            _paste_ink(fill, fm, fx - rx0, fy - ry0, 255)
            if rgb != style.text_rgb:  # the colour map starts as text_rgb everywhere
                _paste_ink(colour, sm, sx - rx0, sy - ry0, rgb)
        zero = np.zeros((rh, rw), np.uint8)
        sh = zero
        if shadow:
            sh = np.zeros((rh, rw), np.uint8)
            # the stroke moved (off, off) within the canvas; region edges inside the canvas are
            # blank, and at the canvas edges the filter replicates the edge as Pillow's does
            a0, a1 = max(0, off), min(rh, rh + off)
            b0, b1 = max(0, off), min(rw, rw + off)
            if a1 > a0 and b1 > b0:
                sh[a0:a1, b0:b1] = stroke[a0 - off : a1 - off, b0 - off : b1 - off]
            if kernel is not None:
                sh = cv2.sepFilter2D(sh, -1, kernel, kernel, borderType=cv2.BORDER_REPLICATE)
            sh = cv2.LUT(sh, _alpha_lut(style.shadow_alpha))
        # anything drawn has alpha > 0 in the result (alpha_composite never lowers alpha)
        seen = cv2.max(cv2.max(sh, stroke), fill)
        rows = np.flatnonzero(seen.any(axis=1))
        if rows.size == 0:
            return None
        cols = np.flatnonzero(seen.any(axis=0))
        # crop to the visible pixels (even-aligned) so each frame blends as little as possible
        y0, y1 = _even_floor(rows[0]), _even_ceil(rows[-1] + 1)
        x0, x1 = _even_floor(cols[0]), _even_ceil(cols[-1] + 1)
        crop = (slice(y0, y1), slice(x0, x1))
        r, g, b = (np.full((y1 - y0, x1 - x0), c, np.uint8) for c in style.outline_rgb)
        out = Image.alpha_composite(
            Image.fromarray(cv2.merge([zero[crop]] * 3 + [sh[crop]])),
            Image.fromarray(cv2.merge([r, g, b, stroke[crop]])),
        )
        top = Image.fromarray(cv2.merge([*cv2.split(colour[crop]), fill[crop]]))
        arr = np.asarray(Image.alpha_composite(out, top))
        return np.ascontiguousarray(arr), lay.x + rx0 + x0, lay.y + ry0 + y0

    # -- .ass ---------------------------------------------------------------------------------

    def ass_text(self) -> str:
        """The track as an Advanced SubStation Alpha script (PlayRes = output size)."""
        from stages.caption_ass import render_ass  # the writer reads this module's layout

        return render_ass(self)

    def write_ass(self, path: Path) -> None:
        """Write the .ass atomically (temporary sibling, then rename)."""
        write_text_atomic(Path(path), self.ass_text())


def build_caption_track(words: Sequence[Word], preset: CaptionPreset | str, out_w: int,
                        out_h: int, clip_start: float, clip_end: float) -> CaptionTrack:
    """The caption track of one clip; word times are source seconds, the track's clip-relative.

    Words whose midpoint lies in [clip_start, clip_end) are kept; nothing is shown outside
    [0, clip_end - clip_start].
    """
    if preset == "none":
        return CaptionTrack(None, [], out_w, out_h)
    style = PRESETS.get(preset)
    if style is None:
        raise InvalidOptions(f"unknown caption preset {preset!r}", field="captionPreset")
    dur = max(0.0, clip_end - clip_start)
    inside = [
        replace(w, start=min(max(w.start - clip_start, 0.0), dur),
                end=min(max(w.end - clip_start, 0.0), dur))
        for w in words
        if clip_start <= (w.start + w.end) / 2 < clip_end
    ]
    groups = []
    for g in group_words(inside, style):
        end = min(g.end, dur)
        if end > g.start:
            groups.append(replace(g, end=end))
    return CaptionTrack(style, groups, out_w, out_h)


@dataclass(frozen=True)
class CaptionsRequest:
    words: Sequence[Word]
    preset: str
    out_w: int
    out_h: int
    start: float
    end: float
    ass_path: Path


class CaptionsStage(Stage[CaptionsRequest, CaptionTrack]):
    """Builds a clip's caption track and writes its clip_NN.ass (always, even for preset none)."""

    name = "captions"

    def process(self, inputs: CaptionsRequest, ctx: StageContext) -> CaptionTrack:
        track = build_caption_track(
            inputs.words, inputs.preset, inputs.out_w, inputs.out_h, inputs.start, inputs.end
        )
        track.write_ass(inputs.ass_path)
        ctx.progress(1.0, f"{len(track.events)} caption groups")
        return track
