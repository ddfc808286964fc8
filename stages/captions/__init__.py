"""Captions: styles and presets, layout, sprite rasterising, the .ass/.srt/.vtt files, the captions stage."""

from __future__ import annotations

from stages.captions.layout import FIT_MARGIN, SAFE_WIDTH, even_ceil, even_floor, fit_dy
from stages.captions.stage import CaptionsRequest, CaptionsStage, CaptionTrack, build_caption_track
from stages.captions.style import (
    BLACK,
    FONTS_DIR,
    HOLD_S,
    PAUSE_BREAK_S,
    PLAIN,
    POP_LEVELS,
    PRESETS,
    RGB,
    WHITE,
    CaptionGroup,
    CaptionStyle,
    FontInfo,
    display_text,
    font_info,
    group_words,
    load_font,
    missing_chars,
    style_for_text,
)

__all__ = [
    "BLACK",
    "FIT_MARGIN",
    "FONTS_DIR",
    "HOLD_S",
    "PAUSE_BREAK_S",
    "PLAIN",
    "POP_LEVELS",
    "PRESETS",
    "RGB",
    "SAFE_WIDTH",
    "WHITE",
    "CaptionGroup",
    "CaptionStyle",
    "CaptionTrack",
    "CaptionsRequest",
    "CaptionsStage",
    "FontInfo",
    "build_caption_track",
    "display_text",
    "even_ceil",
    "even_floor",
    "fit_dy",
    "font_info",
    "group_words",
    "load_font",
    "missing_chars",
    "style_for_text",
]
