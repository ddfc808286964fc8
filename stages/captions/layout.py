"""Caption layout: the size, line breaks and position of a word group within the output's safe area."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from stages.captions.style import CaptionStyle, font_info, load_font

SAFE_WIDTH = 0.85  # captions stay within this fraction of the output width


@dataclass(frozen=True, slots=True)
class CaptionLayout:
    em: int
    lines: tuple[tuple[int, ...], ...]  # word indices per line
    x: int  # canvas top-left in output pixels (even)
    y: int
    w: int  # canvas size (even)
    h: int
    baselines: tuple[float, ...]  # per line, canvas coordinates


def base_em_px(style: CaptionStyle, out_w: int, out_h: int) -> float:
    # Size follows the height for 9:16; wider frames get a slightly larger share of their
    # (shorter) height so a 16:9 caption is not tiny next to a 9:16 one.
    aspect = min(out_w / out_h, 16 / 9)
    return style.size * min(out_h, out_w * 16 / 9) * (aspect / 0.5625) ** 0.4


def centre_y(out_w: int, out_h: int, centre: float = 0.0) -> float:
    """Where captions are centred: ``centre`` (a style's position, a fraction of the height) or the default."""
    if centre:
        return out_h * centre
    return out_h * (0.70 if out_w / out_h < 0.9 else 0.78)


def _pad(style: CaptionStyle, em: float) -> int:
    return math.ceil(em * (style.outline_em * style.max_pop + style.shadow_em
                               + 3 * style.shadow_blur_em)) + 4


def pad_px(style: CaptionStyle, em: float) -> int:
    """The room a canvas leaves around its text: outline (popped), shadow and its blur."""
    return _pad(style, em)


def _line_width(widths: list[float], space: float, pop: float) -> float:
    """Width of a line when its widest word is popped (the widest any state gets)."""
    return sum(widths) + space * (len(widths) - 1) + max(widths) * (pop - 1)


def fit_layout(texts: Sequence[str], style: CaptionStyle, out_w: int, out_h: int) -> CaptionLayout:
    base = base_em_px(style, out_w, out_h)
    max_w = int(SAFE_WIDTH * out_w) - 4
    n = len(texts)

    def measure(em: int, lines: tuple[tuple[int, ...], ...]) -> int:
        f = load_font(style.font_file, em)
        space = f.getlength(" ")
        widest = max(
            _line_width([f.getlength(texts[i]) for i in ln], space, style.max_pop) for ln in lines
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


def vertical_extent(style: CaptionStyle, em: float, n_lines: int, out_w: int, out_h: int
                     ) -> tuple[float, float, float]:
    """(first baseline, top, bottom) in output pixels of a block of n_lines at size em."""
    fi = font_info(style.font_file)
    pitch = style.line_pitch_em * em
    cap = fi.cap_em * em
    # centre the caps of the block (top of first line's caps .. last baseline) on the band
    b0 = centre_y(out_w, out_h, style.centre) + cap / 2 - (n_lines - 1) * pitch / 2
    pad = _pad(style, em)
    top = b0 - fi.ascent_em * em * style.max_pop - pad
    bottom = b0 + (n_lines - 1) * pitch + (fi.descent_em * style.max_pop
                                           + fi.cap_em * (style.max_pop - 1) / 2) * em + pad
    return b0, top, bottom


#: on a "fit" shot the caption band's top clears the fitted picture's bottom edge by this fraction of
#: the output height (as far as the frame allows)
FIT_MARGIN = 0.02


def fit_dy(top: int, height: int, picture_bottom: int, out_h: int, margin: float = FIT_MARGIN) -> int:
    """How far (even px, >= 0) a caption band at rows ``top`` .. ``top + height`` moves down on the frames of
    a "fit" shot: its top to ``picture_bottom`` + the margin, its bottom kept inside the frame. The one rule
    the render (burned-in sprites) and the .ass writer both use."""
    gap = int(round(margin * out_h / 2)) * 2
    dy = max(0, picture_bottom + gap - top)
    dy = min(dy, max(0, out_h - height - top))
    return dy - dy % 2


def even_floor(v: float) -> int:
    return math.floor(v / 2) * 2


def even_ceil(v: float) -> int:
    return math.ceil(v / 2) * 2


def _place(style: CaptionStyle, em: int, lines: tuple[tuple[int, ...], ...], width: int,
           out_w: int, out_h: int) -> CaptionLayout:
    b0, top, bottom = vertical_extent(style, em, len(lines), out_w, out_h)
    x, y = even_floor((out_w - width) / 2), even_floor(top)
    w, h = even_ceil(width), even_ceil(bottom - y)
    pitch = style.line_pitch_em * em
    return CaptionLayout(em, lines, x, y, w, h, tuple(b0 - y + i * pitch for i in range(len(lines))))
