""".ass writer for a CaptionTrack: the same preset, layout and timing as the burned-in sprites.

Kept apart from stages/captions/stage.py only for size; it reads the track's layout (stages/captions/layout.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

from stages.captions.emphasis import EMOJI_FONT, emoji_style
from stages.captions.layout import SAFE_WIDTH, CaptionLayout, base_em_px, vertical_extent
from stages.captions.stage import CaptionTrack
from stages.captions.style import PRESETS, RGB, CaptionGroup, CaptionStyle, font_info

EMOJI_STYLE = "emoji"  # the .ass Style of captionEmoji's events

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
        *([f"; {fi.family} is an uploaded font ({Path(style.font_file).name}): add the folder that holds it as a "
           "fontsdir"] if Path(style.font_file).is_absolute() else []),
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
        f"{_ass_colour(style.outline_rgb)},{_ass_colour(style.shadow_rgb, style.shadow_alpha)},0,0,0,0,"
        f"100,100,0,0,1,{bord},{shad},2,{margin_lr},{margin_lr},{margin_v},1"),
        *([_emoji_style_line(style, base_em)] if any(track.emoji) else []),
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

        def dialogue(t0: float, t1: float, text: Callable[[float], str], mv: int = mv, prefix: str = prefix) -> None:
            # split at the fit shots' edges: inside one, the event sits as far down as the render moves the
            # burned-in sprite (track.fit_offset); ``text(t)`` is the text of the piece that starts at t
            for a, b, fit in _fit_pieces(t0, t1, track.fit_spans):
                if round(b * 100) > round(a * 100):
                    v = max(0, mv - track.fit_offset) if fit else mv
                    lines.append(
                        f"Dialogue: 0,{_ass_time(a)},{_ass_time(b)},{style.name},,0,0,{v},,{prefix}{text(a)}"
                    )

        if track.emoji[gi] is not None:
            lines.extend(_emoji_events(track, gi))
        if karaoke:
            dialogue(g.start, g.end, partial(_karaoke_text, g, lay))
            continue
        if style.highlight == "none":  # nothing changes while the group is up: one event
            dialogue(g.start, g.end, partial(_plain_text, g, lay))
            continue
        for ai, w in enumerate(g.words):
            t0 = g.start if ai == 0 else w.start
            t1 = g.words[ai + 1].start if ai + 1 < len(g.words) else g.end
            dialogue(t0, t1, partial(_state_piece, track, gi, ai, lay, t0))
    return "\n".join(head + lines) + "\n"


def _emoji_style_line(style: CaptionStyle, em: float) -> str:
    """The emoji's Style: the bundled emoji font, in the text colour, with the preset's outline and shadow."""
    es = emoji_style(style)
    fs, bord, shad = _ass_metrics(es, em)
    white = _ass_colour(style.text_rgb)
    return (f"Style: {EMOJI_STYLE},{font_info(EMOJI_FONT).family},{fs},{white},{white},"
            f"{_ass_colour(style.outline_rgb)},{_ass_colour(style.shadow_rgb, style.shadow_alpha)},0,0,0,0,"
            f"100,100,0,0,1,{bord},{shad},2,0,0,0,1")


def _emoji_events(track: CaptionTrack, gi: int) -> list[str]:
    """The group's emoji as its own event (layer 1, \\pos at the bottom centre of where the sprite draws it),
    for as long as the group shows; lower by the fit offset on fit shots, like the words."""
    assert track.style is not None
    g, lay, char = track.events[gi], track.emoji_layouts[gi], track.emoji[gi]
    assert lay is not None and char is not None
    fs, bord, shad = _ass_metrics(emoji_style(track.style), lay.em)
    bottom = lay.y + lay.baselines[0] + font_info(EMOJI_FONT).win_descent_em * lay.em
    # libass sets a wrapped group's lines a font height apart (the sprite: line_pitch_em), bottom-aligned on
    # the same last baseline: above a group of two lines the emoji moves up by the difference
    text = track._layouts[gi]
    bottom -= (len(text.lines) - 1) * (font_info(track.style.font_file).ass_em - track.style.line_pitch_em) * text.em
    out = []
    for a, b, fit in _fit_pieces(g.start, g.end, track.fit_spans):
        if round(b * 100) > round(a * 100):
            y = bottom + (track.fit_offset if fit else 0)
            tags = f"\\an2\\pos({_ass_num(track.out_w / 2)},{_ass_num(y)})\\fs{fs}\\bord{bord}\\shad{shad}"
            out.append(f"Dialogue: 1,{_ass_time(a)},{_ass_time(b)},{EMOJI_STYLE},,0,0,0,,{{{tags}}}{char}")
    return out


def _fit_pieces(t0: float, t1: float, spans: Sequence[tuple[float, float]]) -> list[tuple[float, float, bool]]:
    """[t0, t1) cut at the edges of ``spans`` (sorted): (start, end, inside a span) pieces in order."""
    cuts = sorted({t0, t1, *(x for a, b in spans for x in (a, b) if t0 < x < t1)})
    return [(a, b, any(sa <= (a + b) / 2 < sb for sa, sb in spans)) for a, b in zip(cuts, cuts[1:], strict=False)]


def _plain_text(g: CaptionGroup, lay: CaptionLayout, t0: float) -> str:
    return _join_lines(list(g.texts), lay)


def _state_piece(track: CaptionTrack, gi: int, active: int, lay: CaptionLayout, start: float, t0: float) -> str:
    """The state's text for the event piece starting at ``t0`` (the state starts at ``start``: the pop only then)."""
    return _state_text(track, gi, active, lay, pop=round(t0 * 100) == round(start * 100))


def _join_lines(parts: list[str], lay: CaptionLayout) -> str:
    return "\\N".join(" ".join(parts[i] for i in ln) for ln in lay.lines)


def _state_text(track: CaptionTrack, gi: int, active: int, lay: CaptionLayout, pop: bool = True) -> str:
    """Text of one (group, active word) state: colours and the pop as override tags (``pop`` False: an
    event continuing the state after a fit-shot edge, whose pop has started already, shows no pop)."""
    style = track.style
    assert style is not None
    g = track.events[gi]
    base = _ass_colour(style.text_rgb)
    parts = []
    for wi, text in enumerate(g.texts):
        rgb = track.word_colour(gi, wi, active)
        tags = f"\\c{_ass_colour(rgb)}" if rgb != style.text_rgb else ""
        if wi == active and style.pop_scale > 1 and pop:
            half = round(style.pop_seconds * 500)
            emphasised = style.emphasis and track.emphasised[gi] == wi  # captionEmphasis: the stronger pop
            pct = round((style.emphasis_scale if emphasised else style.pop_scale) * 100)
            tags += (f"\\t(0,{half},\\fscx{pct}\\fscy{pct})"
                     f"\\t({half},{2 * half},\\fscx100\\fscy100)")
        if tags:
            parts.append(f"{{{tags}}}{text}{{\\c{base}\\fscx100\\fscy100}}")
        else:
            parts.append(text)
    return _join_lines(parts, lay)


def _karaoke_text(g: CaptionGroup, lay: CaptionLayout, t0: float | None = None) -> str:
    """One line with \\k per word: a word turns from Secondary to Primary at its start (times from ``t0``,
    the event's start, the group's by default: words already spoken by then are sung at once)."""
    t0 = g.start if t0 is None else t0
    bounds = [w.start for w in g.words] + [g.end]
    cs = [round((max(b, t0) - t0) * 100) for b in bounds]
    parts = [f"{{\\k{max(0, cs[i + 1] - cs[i])}}}{t}" for i, t in enumerate(g.texts)]
    return _join_lines(parts, lay)
