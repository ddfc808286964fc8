"""Captions: styles and presets, layout, sprite rasterising, the .ass track, the captions stage."""

from __future__ import annotations

from stages.captions.layout import (
    even_ceil,
    even_floor,
)
from stages.captions.stage import (
    BLACK,
    FONTS_DIR,
    HOLD_S,
    PAUSE_BREAK_S,
    POP_LEVELS,
    PRESETS,
    RGB,
    SAFE_WIDTH,
    WHITE,
    CaptionGroup,
    CaptionsRequest,
    CaptionsStage,
    CaptionStyle,
    CaptionTrack,
    FontInfo,
    build_caption_track,
    display_text,
    font_info,
    group_words,
)
from stages.captions.style import (
    load_font,
)

__all__ = [
    "BLACK",
    "CaptionGroup",
    "CaptionStyle",
    "CaptionTrack",
    "CaptionsRequest",
    "CaptionsStage",
    "FONTS_DIR",
    "FontInfo",
    "HOLD_S",
    "PAUSE_BREAK_S",
    "POP_LEVELS",
    "PRESETS",
    "RGB",
    "SAFE_WIDTH",
    "WHITE",
    "build_caption_track",
    "display_text",
    "even_ceil",
    "even_floor",
    "font_info",
    "group_words",
    "load_font",
]
