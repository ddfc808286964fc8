"""Caption presets -> a clip's caption track: burned-in YUVA sprites and matching caption files.

One :class:`CaptionStyle` per preset drives every output, so the pixels the render burns in
and the ``clip_NN.ass`` a player shows agree on font, size, colours, outline, position and
timing; ``clip_NN.srt`` and ``clip_NN.vtt`` (:mod:`stages.captions.subtitles`) carry the same
groups, words and times as plain text. Preset ``none`` burns nothing in, but its caption files
still carry the clip's words, grouped and styled by :data:`~stages.captions.style.PLAIN`.

Words are grouped (a few words on screen at a time), each group is laid out once to fit the
safe area, and a sprite is rasterised with Pillow only once per (group, active word, pop step),
converted to YUVA 4:2:0 once, and reused on every frame that shows it.

Fonts ship in ``stages/fonts`` (package data; see its README); the .ass names them by family, so
a player needs that folder as its fonts dir (``ffmpeg -vf ass=clip.ass:fontsdir=stages/fonts``).
"""

from __future__ import annotations

import bisect
import math
from collections import OrderedDict
from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import InvalidOptions
from engine.options import CaptionPreset
from engine.stage import Resources, Stage, StageContext
from engine.storage import write_text_atomic
from engine.types import Word
from kernels.composite import Sprite, sprite_from_rgba
from stages.captions.emphasis import emoji_layout, emoji_style, emphasised_words, group_emoji
from stages.captions.layout import (
    base_em_px,
    centre_y,
    even_ceil,
    even_floor,
    fit_dy,
    fit_layout,
    vertical_extent,
)
from stages.captions.sprites import GlyphMasks, combine, rasterise
from stages.captions.style import (
    PLAIN,
    POP_LEVELS,
    PRESETS,
    RGB,
    CaptionGroup,
    CaptionStyle,
    custom_style,
    group_words,
    is_keyword,
    style_for_text,
)


class CaptionTrack:
    """A clip's captions: groups with clip-relative times, sprites per frame time, file texts.

    ``burned`` False (preset none): :meth:`sprite_at` shows nothing, the files still hold the groups.
    """

    _CACHE_SIZE = 48
    _MASK_CACHE_SIZE = 256

    def __init__(self, style: CaptionStyle | None, groups: list[CaptionGroup], out_w: int,
                 out_h: int, *, burned: bool = True, fit_spans: Sequence[tuple[float, float]] = (),
                 fit_bottom: int = 0, keywords: Collection[str] = ()) -> None:
        self.style = style
        self.burned = burned and style is not None
        self.out_w, self.out_h = out_w, out_h
        self._groups = groups
        self._layouts = [fit_layout(g.texts, style, out_w, out_h) for g in groups] if style else []
        # captionEmphasis / captionEmoji (stages/captions/emphasis.py): per group, its emphasised word and emoji
        self.emphasised: list[int | None] = (
            emphasised_words(groups, keywords, style.emphasis_min) if style is not None and style.emphasis
            else [None] * len(groups))
        self.emoji: list[str | None] = (
            group_emoji(groups, self.emphasised) if style is not None and style.emoji else [None] * len(groups))
        self.emoji_layouts = [emoji_layout(style, lay, e, out_w) if style is not None and e else None
                              for lay, e in zip(self._layouts, self.emoji, strict=False)]
        #: clip-time spans of the "fit" shots (the whole frame over a blurred fill) and how far the captions
        #: move down during them (:func:`~stages.captions.layout.fit_dy`, the render's rule), for the .ass
        self.fit_spans = tuple(sorted((float(a), float(b)) for a, b in fit_spans if b > a))
        self.fit_offset = 0
        if self.fit_spans and style is not None:
            top, bottom = self._style_band()
            self.fit_offset = fit_dy(top, bottom - top, fit_bottom, out_h) if bottom > top else 0
        self._starts = [g.start for g in groups]
        self._colours = [self._fixed_colours(i) for i in range(len(groups))]
        self._cache: OrderedDict[tuple[int, int, int], Sprite | None] = OrderedDict()
        self._masks = GlyphMasks(self._MASK_CACHE_SIZE)
        self._emoji_rgba: dict[int, tuple[np.ndarray, int, int] | None] = {}

    @property
    def events(self) -> list[CaptionGroup]:
        return list(self._groups)

    @property
    def preset(self) -> str:
        """The captionPreset this track was built for (``none`` when nothing is burned in)."""
        return self.style.name if self.style is not None and self.burned else "none"

    @property
    def band(self) -> tuple[int, int]:
        """(y0, y1) output rows that every caption sprite lies within."""
        if self.style is None or not self.burned:
            c = even_floor(centre_y(self.out_w, self.out_h, self.style.centre if self.style else 0.0))
            return c, c
        return self._style_band()

    def _style_band(self) -> tuple[int, int]:
        """:attr:`band` of the style, burned in or not (the .ass of preset none moves on fit shots too)."""
        assert self.style is not None
        em = round(base_em_px(self.style, self.out_w, self.out_h))
        _, top, bottom = vertical_extent(self.style, em, 2, self.out_w, self.out_h)
        top = min([top, *(lay.y for lay in self.emoji_layouts if lay is not None)])  # emoji above their groups
        return max(0, even_floor(top)), min(self.out_h, even_ceil(bottom) + 2)

    def _fixed_colours(self, gi: int) -> list[RGB | None]:
        """Per-word colours that do not depend on timing (the emphasised word; mozi key words without emphasis)."""
        style, group = self.style, self._groups[gi]
        if style is not None and style.emphasis:
            out_e: list[RGB | None] = [None] * len(group.texts)
            em = self.emphasised[gi]
            if em is not None and style.accent_rgbs:
                seen_e = sum(1 for e in self.emphasised[:gi] if e is not None)
                out_e[em] = style.accent_rgbs[seen_e % len(style.accent_rgbs)]
            return out_e
        if style is None or style.highlight != "keywords":
            return [None] * len(group.texts)
        seen = sum(
            1 for g in self._groups[:gi] if any(is_keyword(t) for t in g.texts)
        )
        cands = [i for i, t in enumerate(group.texts) if is_keyword(t)]
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
        key = self.state_at(t) if self.burned else None
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

    def _render(self, gi: int, active: int, step: int) -> Sprite | None:
        got = self.rasterise_state(gi, active, step)
        if got is None:
            return None
        rgba, x, y = got
        return sprite_from_rgba(rgba, x, y)

    def rasterise_state(self, gi: int, active: int, step: int) -> tuple[np.ndarray, int, int] | None:
        """The state's straight-alpha RGBA, cropped to its visible pixels (even-aligned), at (x, y)."""
        style = self.style
        assert style is not None
        text = rasterise(style, self._layouts[gi], self._groups[gi].texts, active, step,
                         lambda i: self.word_colour(gi, i, active), self._masks, self.emphasised[gi])
        if self.emoji[gi] is None:
            return text
        return combine([text, self._emoji_sprite(gi)])

    def _emoji_sprite(self, gi: int) -> tuple[np.ndarray, int, int] | None:
        """The group's emoji (straight-alpha RGBA at x, y), rasterised once per group like its words."""
        if gi not in self._emoji_rgba:
            char, lay = self.emoji[gi], self.emoji_layouts[gi]
            assert self.style is not None and char is not None and lay is not None
            es = emoji_style(self.style)
            self._emoji_rgba[gi] = rasterise(es, lay, (char,), -1, 0, lambda i: es.text_rgb, self._masks)
        return self._emoji_rgba[gi]

    # -- .ass ---------------------------------------------------------------------------------

    def ass_text(self) -> str:
        """The track as an Advanced SubStation Alpha script (PlayRes = output size)."""
        from stages.captions.ass import render_ass  # the writer reads this module's layout

        return render_ass(self)

    def write_ass(self, path: Path) -> None:
        """Write the .ass atomically (temporary sibling, then rename)."""
        write_text_atomic(Path(path), self.ass_text())

    # -- .srt / .vtt: the same groups, words and times -----------------------------------------

    def srt_text(self) -> str:
        from stages.captions.subtitles import render_srt

        return render_srt(self.events)

    def vtt_text(self) -> str:
        from stages.captions.subtitles import render_vtt

        return render_vtt(self.events, self.preset)

    def write_files(self, ass_path: Path) -> tuple[Path, Path, Path]:
        """Write the .ass and, beside it, the .srt and .vtt (each atomically); returns the three paths."""
        ass_path = Path(ass_path)
        srt_path, vtt_path = ass_path.with_suffix(".srt"), ass_path.with_suffix(".vtt")
        self.write_ass(ass_path)
        write_text_atomic(srt_path, self.srt_text())
        write_text_atomic(vtt_path, self.vtt_text())
        return ass_path, srt_path, vtt_path


def build_caption_track(words: Sequence[Word], preset: CaptionPreset | str, out_w: int,
                        out_h: int, clip_start: float, clip_end: float, language: str = "", *,
                        fit_spans: Sequence[tuple[float, float]] = (), fit_bottom: int = 0,
                        emphasis: str = "none", emoji: bool = False, keywords: Collection[str] = (),
                        custom: dict[str, Any] | None = None, font_near: Path | None = None) -> CaptionTrack:
    """The caption track of one clip; word times are source seconds, the track's clip-relative.

    Words whose midpoint lies in [clip_start, clip_end) are kept; nothing is shown outside
    [0, clip_end - clip_start]. Preset ``none`` burns nothing in (``burned`` False) but groups the
    words in the :data:`PLAIN` style for the caption files. ``language`` (the transcript's) and the
    words choose the font (:func:`~stages.captions.style.style_for_text`): the preset's, or a Noto Sans
    of its weight for letters the preset's font lacks; sprites and the .ass use the same one.
    ``fit_spans`` (clip seconds) and ``fit_bottom`` (the fitted picture's bottom row): the "fit" shots,
    during which the .ass places its events where the render moves the sprites (below the picture).
    ``emphasis`` (captionEmphasis: ``auto`` for the presets that have it, beasty and mozi; ``none``) and
    ``emoji`` (captionEmoji, burned-in presets only) as :mod:`stages.captions.emphasis` chooses them;
    ``keywords``: the clip's keywords (the moment scorer's, lower-case words as spoken), the most salient kind
    after numbers. ``custom``: captionStyle's fields over the preset (:func:`~stages.captions.style.custom_style`);
    ``font_near``: a file of the job, from which an uploaded font is found under the data root.
    """
    style = PLAIN if preset == "none" else PRESETS.get(preset)
    if style is None:
        raise InvalidOptions(f"unknown caption preset {preset!r}", field="captionPreset")
    style = custom_style(style, custom, font_near)
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
    style = style_for_text(style, [t for g in groups for t in g.texts], language)
    if emphasis not in ("auto", "none"):
        raise InvalidOptions(f"unknown caption emphasis {emphasis!r}", field="captionEmphasis")
    if emphasis == "auto" and style.emphasis_min > 0:
        style = replace(style, emphasis=True)
    if emoji and preset != "none":
        style = replace(style, emoji=True)
    return CaptionTrack(style, groups, out_w, out_h, burned=preset != "none", fit_spans=fit_spans,
                        fit_bottom=fit_bottom, keywords=keywords)


@dataclass(frozen=True)
class CaptionsRequest:
    words: Sequence[Word]
    preset: str
    out_w: int
    out_h: int
    start: float
    end: float
    ass_path: Path  # clip_NN.ass; clip_NN.srt and clip_NN.vtt are written beside it
    language: str = ""  # the transcript's (ISO 639-1): it picks the font with the script's letters
    #: the clip's "fit" shots on the clip timeline, and the fitted picture's bottom edge (output px): the
    #: .ass moves its events there as the render moves the burned-in captions
    fit_spans: tuple[tuple[float, float], ...] = ()
    fit_bottom: int = 0
    emphasis: str = "none"  # captionEmphasis (compose passes the job's, default auto)
    emoji: bool = False  # captionEmoji
    keywords: tuple[str, ...] = ()  # the clip's keywords (stages.moments.keyword_forms of its metadata)
    custom: dict[str, Any] | None = None  # captionStyle (its JSON): a brand style over the preset


class CaptionsStage(Stage[CaptionsRequest, CaptionTrack]):
    """Builds a clip's caption track and writes its clip_NN.ass, .srt and .vtt (always, even for preset
    none, where nothing is burned in but the files hold the words; a clip without words gets files
    without cues)."""

    name = "captions"
    resources = Resources(cpus=1.0)

    def process(self, inputs: CaptionsRequest, ctx: StageContext) -> CaptionTrack:
        track = build_caption_track(
            inputs.words, inputs.preset, inputs.out_w, inputs.out_h, inputs.start, inputs.end, inputs.language,
            fit_spans=inputs.fit_spans, fit_bottom=inputs.fit_bottom, emphasis=inputs.emphasis, emoji=inputs.emoji,
            keywords=inputs.keywords, custom=inputs.custom, font_near=inputs.ass_path,
        )
        track.write_files(inputs.ass_path)
        ctx.progress(1.0, f"{len(track.events)} caption groups")
        return track
