"""Caption sprite rasterisation: one state of a laid-out word group as a cropped straight-alpha RGBA.

Glyph masks come from FreeType once per (font, text, stroke, sub-pixel offset) and are cached;
only the rectangle the text and its shadow cover is drawn, in stroke / fill / colour layers,
the shadow blurred with one separable cv2 filter, and the layers composited by Pillow.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable, Sequence
from functools import lru_cache

import cv2
import numpy as np
from PIL import Image, ImageFont

from stages.captions.layout import CaptionLayout, even_ceil, even_floor
from stages.captions.style import POP_LEVELS, RGB, CaptionStyle, font_info, load_font

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


# -- glyph masks ----------------------------------------------------------------------------


class GlyphMasks:
    """Glyph coverage masks, most recently used kept; the oldest go past ``size`` entries."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._masks: OrderedDict[tuple[object, ...], tuple[np.ndarray, int, int]] = OrderedDict()

    def mask(self, font: ImageFont.FreeTypeFont, text: str, x: float, y: float, sw: int
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
            if len(self._masks) > self._size:
                self._masks.popitem(last=False)
        else:
            self._masks.move_to_end(key)
        mask, ox, oy = got
        return mask, int(x) + ox, int(y) + oy


# -- one state ------------------------------------------------------------------------------


def rasterise(style: CaptionStyle, lay: CaptionLayout, texts: Sequence[str], active: int, step: int,
              word_colour: Callable[[int], RGB], masks: GlyphMasks, emphasised: int | None = None
              ) -> tuple[np.ndarray, int, int] | None:
    """The state's straight-alpha RGBA, cropped to its visible pixels (even-aligned), at (x, y).

    Pixel for pixel what Pillow's ImageDraw + GaussianBlur + alpha_composite give on the
    whole layout canvas (the shadow blur may differ by 1 level), but only the rectangle the
    text and its shadow cover is touched: glyph masks are pasted with Pillow's own blend
    rounding, the shadow is one separable cv2 filter, the layers are composited by Pillow. The
    ``emphasised`` word (captionEmphasis) pops to ``style.emphasis_scale`` when it is the active one.
    """
    fi = font_info(style.font_file)
    top_scale = (style.emphasis_scale if style.emphasis and emphasised is not None and active == emphasised
                 else style.pop_scale)
    scale = 1 + (top_scale - 1) * step / POP_LEVELS
    base_font = load_font(style.font_file, lay.em)
    space = base_font.getlength(" ")
    words: list[tuple[np.ndarray, int, int, np.ndarray, int, int, RGB]] = []
    for ln, baseline in zip(lay.lines, lay.baselines, strict=True):
        fonts = [
            load_font(style.font_file, round(lay.em * scale)) if i == active else base_font
            for i in ln
        ]
        widths = [f.getlength(texts[i]) for f, i in zip(fonts, ln, strict=True)]
        x = (lay.w - sum(widths) - space * (len(ln) - 1)) / 2
        for f, i, wd in zip(fonts, ln, widths, strict=True):
            s = scale if i == active else 1.0
            # grow around the middle of the caps, not the baseline, so the pop is centred
            by = baseline + fi.cap_em * lay.em * (s - 1) / 2
            sw = max(1, round(style.outline_em * lay.em * s))
            words.append((*masks.mask(f, texts[i], x, by, sw), *masks.mask(f, texts[i], x, by, 0),
                          word_colour(i)))
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
    rx0 = max(0, even_floor(min(b[0] for b in boxes)))
    ry0 = max(0, even_floor(min(b[1] for b in boxes)))
    rx1 = min(lay.w, even_ceil(max(b[2] for b in boxes)))
    ry1 = min(lay.h, even_ceil(max(b[3] for b in boxes)))
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
    y0, y1 = even_floor(rows[0]), even_ceil(rows[-1] + 1)
    x0, x1 = even_floor(cols[0]), even_ceil(cols[-1] + 1)
    crop = (slice(y0, y1), slice(x0, x1))
    r, g, b = (np.full((y1 - y0, x1 - x0), c, np.uint8) for c in style.outline_rgb)
    out = Image.alpha_composite(
        Image.fromarray(cv2.merge([np.full_like(zero[crop], c) for c in style.shadow_rgb] + [sh[crop]])
                        if style.shadow_rgb != (0, 0, 0) else cv2.merge([zero[crop]] * 3 + [sh[crop]])),
        Image.fromarray(cv2.merge([r, g, b, stroke[crop]])),
    )
    top = Image.fromarray(cv2.merge([*cv2.split(colour[crop]), fill[crop]]))
    arr = np.asarray(Image.alpha_composite(out, top))
    return np.ascontiguousarray(arr), lay.x + rx0 + x0, lay.y + ry0 + y0


def combine(parts: Sequence[tuple[np.ndarray, int, int] | None]) -> tuple[np.ndarray, int, int] | None:
    """Straight-alpha RGBA pieces at (x, y) (even) composited, later over earlier, on their union rectangle."""
    got = [p for p in parts if p is not None]
    if len(got) <= 1:
        return got[0] if got else None
    x0, y0 = min(p[1] for p in got), min(p[2] for p in got)
    x1 = max(p[1] + p[0].shape[1] for p in got)
    y1 = max(p[2] + p[0].shape[0] for p in got)
    canvas = Image.new("RGBA", (x1 - x0, y1 - y0))
    for rgba, x, y in got:
        canvas.alpha_composite(Image.fromarray(rgba), (x - x0, y - y0))
    return np.ascontiguousarray(np.asarray(canvas)), x0, y0
