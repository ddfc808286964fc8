""".ass writer for a CaptionTrack: the same preset, layout and timing as the burned-in sprites.

Kept apart from stages/captions/stage.py only for size; it reads the track's layout (stages/captions/layout.py).
"""

from __future__ import annotations

from stages.captions.layout import SAFE_WIDTH, CaptionLayout, base_em_px, vertical_extent
from stages.captions.stage import CaptionTrack
from stages.captions.style import BLACK, PRESETS, RGB, CaptionGroup, CaptionStyle, font_info

# -- .ass rendering -------------------------------------------------------------------------


def _ass_time(t: float) -> str:
    cs = max(0, round(t * 100))
    return f"{cs // 360000}:{cs // 6000 % 60:02d}:{cs // 100 % 60:02d}.{cs % 100:02d}"


def _ass_colour(rgb: RGB, alpha: int = 255) -> str:
    """&HAABBGGRR; ASS alpha is transparency (00 = opaque)."""
    return f"&H{255 - alpha:02X}{rgb[2]:02X}{rgb[1]:02X}{rgb[0]:02X}"


def _ass_num(v: float) -> str:
    return f"{v:.1f}".rstrip("0").rstrip(".")


def _ass_metrics(style: CaptionStyle, em: float) -> tuple[str, str, str]:
    """(Fontsize, Outline, Shadow) for libass at Pillow em size ``em``.

    libass sizes a font by its Windows ascent+descent, Pillow by the em, hence ``ass_em``.
    """
    fi = font_info(style.font_file)
    return (
        _ass_num(em * fi.ass_em),
        _ass_num(style.outline_em * em),
        _ass_num(style.shadow_em * em),
    )


def _margin_v(track: CaptionTrack, lay: CaptionLayout) -> int:
    """Bottom margin that puts libass's last baseline where the sprite's last baseline is."""
    assert track.style is not None
    fi = font_info(track.style.font_file)
    baseline = lay.y + lay.baselines[-1]
    return max(0, round(track.out_h - baseline - fi.win_descent_em * lay.em))


def render_ass(track: CaptionTrack) -> str:
    style = track.style or PRESETS["beasty"]
    W, H = track.out_w, track.out_h
    fi = font_info(style.font_file)
    base_em = round(base_em_px(style, W, H))
    fs, bord, shad = _ass_metrics(style, base_em)
    karaoke = style.highlight == "karaoke"
    sung = style.active_rgbs[0] if karaoke else style.text_rgb
    margin_lr = round((1 - SAFE_WIDTH) / 2 * W)
    b0, _, _ = vertical_extent(style, base_em, 1, W, H)
    margin_v = max(0, round(H - b0 - fi.win_descent_em * base_em))
    head = [
        "[Script Info]",
        f"; Clipora caption track, preset {track.preset}"
        + (" (not burned in; plain style)." if style.highlight == "none" else "."),
        "; Fonts ship in stages/fonts: ffmpeg -vf ass=FILE:fontsdir=stages/fonts",
        "ScriptType: v4.00+",
        f"PlayResX: {W}",
        f"PlayResY: {H}",
        "ScaledBorderAndShadow: yes",
        "WrapStyle: 2",
        "YCbCr Matrix: TV.709",
        "",
        "[V4+ Styles]",
        ("Format: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, "
        "BackColour, Bold, Italic, Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, "
        "BorderStyle, Outline, Shadow, Alignment, MarginL, MarginR, MarginV, Encoding"),
        (f"Style: {style.name},{fi.family},{fs},{_ass_colour(sung)},{_ass_colour(style.text_rgb)},"
        f"{_ass_colour(style.outline_rgb)},{_ass_colour(BLACK, style.shadow_alpha)},0,0,0,0,"
        f"100,100,0,0,1,{bord},{shad},2,{margin_lr},{margin_lr},{margin_v},1"),
        "",
        "[Events]",
        "Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text",
    ]
    lines = []
    for gi, g in enumerate(track.events):
        lay = track._layouts[gi]
        prefix = ""
        if lay.em != base_em:
            efs, ebord, eshad = _ass_metrics(style, lay.em)
            prefix = f"{{\\fs{efs}\\bord{ebord}\\shad{eshad}}}"
        mv = _margin_v(track, lay)

        def dialogue(t0: float, t1: float, text: str, mv: int = mv) -> None:
            if round(t1 * 100) > round(t0 * 100):
                lines.append(
                    f"Dialogue: 0,{_ass_time(t0)},{_ass_time(t1)},{style.name},,0,0,{mv},,{text}"
                )

        if karaoke:
            dialogue(g.start, g.end, prefix + _karaoke_text(g, lay))
            continue
        if style.highlight == "none":  # nothing changes while the group is up: one event
            dialogue(g.start, g.end, prefix + _join_lines(list(g.texts), lay))
            continue
        for ai, w in enumerate(g.words):
            t0 = g.start if ai == 0 else w.start
            t1 = g.words[ai + 1].start if ai + 1 < len(g.words) else g.end
            dialogue(t0, t1, prefix + _state_text(track, gi, ai, lay))
    return "\n".join(head + lines) + "\n"


def _join_lines(parts: list[str], lay: CaptionLayout) -> str:
    return "\\N".join(" ".join(parts[i] for i in ln) for ln in lay.lines)


def _state_text(track: CaptionTrack, gi: int, active: int, lay: CaptionLayout) -> str:
    """Text of one (group, active word) state: colours and the pop as override tags."""
    style = track.style
    assert style is not None
    g = track.events[gi]
    base = _ass_colour(style.text_rgb)
    parts = []
    for wi, text in enumerate(g.texts):
        rgb = track.word_colour(gi, wi, active)
        tags = f"\\c{_ass_colour(rgb)}" if rgb != style.text_rgb else ""
        if wi == active and style.pop_scale > 1:
            half = round(style.pop_seconds * 500)
            pct = round(style.pop_scale * 100)
            tags += (f"\\t(0,{half},\\fscx{pct}\\fscy{pct})"
                     f"\\t({half},{2 * half},\\fscx100\\fscy100)")
        if tags:
            parts.append(f"{{{tags}}}{text}{{\\c{base}\\fscx100\\fscy100}}")
        else:
            parts.append(text)
    return _join_lines(parts, lay)


def _karaoke_text(g: CaptionGroup, lay: CaptionLayout) -> str:
    """One line with \\k per word: a word turns from Secondary to Primary at its start."""
    bounds = [w.start for w in g.words] + [g.end]
    cs = [round((b - g.start) * 100) for b in bounds]
    parts = [f"{{\\k{max(0, cs[i + 1] - cs[i])}}}{t}" for i, t in enumerate(g.texts)]
    return _join_lines(parts, lay)
