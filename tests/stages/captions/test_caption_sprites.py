"""Caption sprites match the original whole-canvas Pillow rasteriser and float YUVA conversion.

``_reference_rgba`` / ``_reference_yuva`` are the implementation the fast path replaced
(ImageDraw on the full layout canvas, Pillow GaussianBlur, three full-size alpha
composites; float32 BT.709 with alpha-weighted chroma). Every state of a few seconds of
captions, for every preset at two output sizes, must come out within a level or two.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter

from engine.types import Word
from kernels.colour import _RGB_TO_YUV, rgba_to_yuva420
from stages.captions import (
    BLACK,
    POP_LEVELS,
    PRESETS,
    CaptionTrack,
    build_caption_track,
    even_ceil,
    even_floor,
    font_info,
    load_font,
)

SIZES = ((720, 1280), (1080, 1920))
TEXT = (
    "So the first thing 1,000 people asked me was why nobody talks about compounding; "
    "it's extraordinary. Then again, really? We tested it twice! Internationalization works"
)


def _words() -> list[Word]:
    out, t = [], 0.2
    for i, tok in enumerate(TEXT.split()):
        d = 0.12 + 0.035 * len(tok)
        out.append(Word(text=tok, start=t, end=t + d, probability=0.9))
        t += d + (0.7 if i % 9 == 8 else 0.05)
    return out


def _reference_rgba(tr: CaptionTrack, gi: int, active: int, step: int):
    style, lay, texts = tr.style, tr._layouts[gi], tr._groups[gi].texts
    fi = font_info(style.font_file)
    scale = 1 + (style.pop_scale - 1) * step / POP_LEVELS
    size = (lay.w, lay.h)
    stroke = Image.new("L", size, 0)
    fill = Image.new("L", size, 0)
    colour = Image.new("RGB", size, style.text_rgb)
    ds, df, dc = ImageDraw.Draw(stroke), ImageDraw.Draw(fill), ImageDraw.Draw(colour)
    base_font = load_font(style.font_file, lay.em)
    space = base_font.getlength(" ")
    for ln, baseline in zip(lay.lines, lay.baselines, strict=True):
        fonts = [load_font(style.font_file, round(lay.em * scale)) if i == active else base_font for i in ln]
        widths = [f.getlength(texts[i]) for f, i in zip(fonts, ln, strict=True)]
        x = (lay.w - sum(widths) - space * (len(ln) - 1)) / 2
        for f, i, wd in zip(fonts, ln, widths, strict=True):
            s = scale if i == active else 1.0
            by = baseline + fi.cap_em * lay.em * (s - 1) / 2
            sw = max(1, round(style.outline_em * lay.em * s))
            rgb = tr.word_colour(gi, i, active)
            ds.text((x, by), texts[i], font=f, anchor="ls", fill=255, stroke_width=sw, stroke_fill=255)
            df.text((x, by), texts[i], font=f, anchor="ls", fill=255)
            if rgb != style.text_rgb:
                dc.text((x, by), texts[i], font=f, anchor="ls", fill=rgb, stroke_width=sw, stroke_fill=rgb)
            x += wd + space
    out = Image.new("RGBA", size, (0, 0, 0, 0))
    if style.shadow_alpha > 0:
        off = round(style.shadow_em * lay.em)
        sh = Image.new("L", size, 0)
        sh.paste(stroke, (off, off))
        sh = sh.filter(ImageFilter.GaussianBlur(style.shadow_blur_em * lay.em))
        sh = sh.point(lambda v: v * style.shadow_alpha // 255)
        out = Image.merge("RGBA", (*Image.new("RGB", size, BLACK).split(), sh))
    outline = Image.new("RGB", size, style.outline_rgb)
    out = Image.alpha_composite(out, Image.merge("RGBA", (*outline.split(), stroke)))
    out = Image.alpha_composite(out, Image.merge("RGBA", (*colour.split(), fill)))
    arr = np.asarray(out)
    rows = np.flatnonzero(arr[..., 3].any(axis=1))
    cols = np.flatnonzero(arr[..., 3].any(axis=0))
    if rows.size == 0:
        return None
    y0, y1 = even_floor(rows[0]), min(lay.h, even_ceil(rows[-1] + 1))
    x0, x1 = even_floor(cols[0]), min(lay.w, even_ceil(cols[-1] + 1))
    return np.ascontiguousarray(arr[y0:y1, x0:x1]), lay.x + x0, lay.y + y0


def _box2_sum(x: np.ndarray) -> np.ndarray:
    return x[0::2, 0::2] + x[1::2, 0::2] + x[0::2, 1::2] + x[1::2, 1::2]


def _reference_yuva(rgba: np.ndarray) -> tuple[np.ndarray, ...]:
    h, w = rgba.shape[:2]
    rgba = np.pad(rgba, ((0, h % 2), (0, w % 2), (0, 0)))
    rgbf = rgba[..., :3].astype(np.float32)
    a = rgba[..., 3].astype(np.float32)
    y = rgbf @ _RGB_TO_YUV[0] + 16.0
    a_sum = _box2_sum(a)
    mean_rgb = _box2_sum(rgbf * a[..., None]) / np.maximum(a_sum, 1e-6)[..., None]
    c = np.where(a_sum[..., None] > 0, mean_rgb @ _RGB_TO_YUV[1:].T + 128.0, 128.0)

    def u8(v: np.ndarray) -> np.ndarray:
        return np.clip(np.rint(v), 0, 255).astype(np.uint8)

    return u8(y), u8(c[..., 0]), u8(c[..., 1]), rgba[..., 3].copy(), u8(a_sum / 4.0)


def _on_canvas(planes: tuple[np.ndarray, ...], x: int, y: int, shape: tuple[int, int]) -> list[np.ndarray]:
    """Y, U, V, A, A2 placed on an output-size canvas (transparent black elsewhere), as ints."""
    H, W = shape
    out = []
    full, half = (H, W, x, y), (H // 2, W // 2, x // 2, y // 2)
    for p, (ph, pw, sx, sy), bg in zip(planes, (full, half, half, full, half), (16, 128, 128, 0, 0), strict=True):
        c = np.full((ph, pw), bg, np.int32)
        c[sy : sy + p.shape[0], sx : sx + p.shape[1]] = p
        out.append(c)
    return out


@pytest.mark.parametrize("out_w,out_h", SIZES)
@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_sprites_match_reference(preset: str, out_w: int, out_h: int) -> None:
    words = _words()
    track = build_caption_track(words, preset, out_w, out_h, 0.0, words[-1].end + 0.5)
    states = {track.state_at(i / 30) for i in range(int(30 * (words[-1].end + 0.5)))} - {None}
    assert len(states) > 20
    if PRESETS[preset].pop_scale > 1:
        assert {s[2] for s in states} == set(range(POP_LEVELS + 1))  # every pop step is covered
    worst = {"Y": 0, "A": 0, "U": 0, "V": 0}
    for key in sorted(states):
        ref = _reference_rgba(track, *key)
        got = track.rasterise_state(*key)
        assert (ref is None) == (got is None)
        if ref is None:
            continue
        # RGBA: identical glyphs and composites; only the shadow blur may round differently
        canvas = (out_h, out_w)
        ref_rgba, got_rgba = (np.zeros((*canvas, 4), np.int32) for _ in range(2))
        ref_rgba[ref[2] : ref[2] + ref[0].shape[0], ref[1] : ref[1] + ref[0].shape[1]] = ref[0]
        got_rgba[got[2] : got[2] + got[0].shape[0], got[1] : got[1] + got[0].shape[1]] = got[0]
        vis = (ref_rgba[..., 3] > 0) | (got_rgba[..., 3] > 0)
        assert np.abs(ref_rgba[..., 3] - got_rgba[..., 3]).max() <= 2, key
        # the sprite the render blends
        sprite = track._render(*key)
        assert sprite is not None and sprite.x % 2 == 0 and sprite.y % 2 == 0
        r = _on_canvas(_reference_yuva(ref[0]), ref[1], ref[2], canvas)
        g = _on_canvas((sprite.y_plane, sprite.u, sprite.v, sprite.a, sprite.a2), sprite.x, sprite.y, canvas)
        # Y where the sprite shows (a pixel at alpha 1 or 2 may change colour when its alpha
        # moves by 1, which no one can see), and Y as blended (premultiplied) everywhere
        shown = (r[3] >= 16) & (g[3] >= 16)
        dy = np.abs(r[0] - g[0])[shown]
        assert dy.max() <= 2 and dy.mean() <= 0.1, (key, dy.max(), dy.mean())
        assert (np.abs(r[0] * r[3] - g[0] * g[3]) / 255).max() <= 2, key
        da = np.abs(r[3] - g[3])
        assert da.max() <= 2 and da[vis].mean() <= 0.1, (key, da.max(), da[vis].mean())
        assert np.abs(r[4] - g[4]).max() <= 2, key
        # chroma only matters where the sprite is opaque enough to show it
        solid = (r[4] >= 32) & (g[4] >= 32)
        for name, i in (("U", 1), ("V", 2)):
            d = np.abs(r[i] - g[i])[solid]
            assert d.max() <= 2 and d.mean() <= 0.1, (key, name, d.max(), d.mean())
            worst[name] = max(worst[name], int(d.max()))
        worst["Y"], worst["A"] = max(worst["Y"], int(dy.max())), max(worst["A"], int(da.max()))
    assert max(worst.values()) <= 2, worst


def test_rgba_to_yuva420_matches_float_reference() -> None:
    rng = np.random.default_rng(7)
    rgba = rng.integers(0, 256, (37, 51, 4), dtype=np.uint8)
    rgba[..., 3][rng.random((37, 51)) < 0.3] = 0  # fully transparent pixels, some whole blocks
    rgba[:4, :4, 3] = 0
    got = rgba_to_yuva420(rgba)
    ref = _reference_yuva(rgba)
    for name, g, r in zip(("y", "u", "v", "a", "a2"), got, ref, strict=True):
        assert g.shape == r.shape and g.dtype == np.uint8, name
        assert np.abs(g.astype(int) - r.astype(int)).max() <= 1, name
    assert got[1][0, 0] == 128 and got[2][0, 0] == 128  # no colour where nothing shows
