"""captionStyle: a brand style over the preset (issue 17 item 5, the style part): font, size, colours,
outline, uppercase, words per group and position, in the burned-in pixels and in the .ass alike."""

from __future__ import annotations

import numpy as np
import pytest

from engine.types import Word
from stages.captions import PRESETS, build_caption_track
from stages.captions.style import STYLE_FONTS, custom_style

WORDS = [Word(0.5 + 0.4 * i, 0.8 + 0.4 * i, t) for i, t in
         enumerate("we shipped the new editor last week and everyone loved it so much".split())]
GREEN, MAGENTA = (0, 255, 0), (255, 0, 255)


def _ink(rgba: np.ndarray, rgb: tuple[int, int, int], tol: int = 40) -> int:
    near = np.all(np.abs(rgba[..., :3].astype(int) - np.array(rgb)) <= tol, axis=-1)
    return int((near & (rgba[..., 3] > 200)).sum())


def _track(preset: str, custom=None):
    return build_caption_track(WORDS, preset, 720, 1280, 0.0, 10.0, custom=custom, emphasis="none")


def test_each_field_overrides_the_preset() -> None:
    base = PRESETS["beasty"]
    s = custom_style(base, {"font": "poppins-extrabold", "size": 1.5, "textColor": "#00FF00",
                            "highlightColor": "#FF00FF", "outlineColor": "#102030", "outlineWidth": 0.2,
                            "uppercase": False, "wordsPerGroup": 5, "position": 0.3})
    assert (s.font_file, s.fallback_font) == STYLE_FONTS["poppins-extrabold"]
    assert s.size == pytest.approx(base.size * 1.5) and s.text_rgb == GREEN and s.active_rgbs == (MAGENTA,)
    assert s.accent_rgbs == (MAGENTA,) and s.outline_rgb == (16, 32, 48) and s.outline_em == 0.2
    assert (s.uppercase, s.max_words, s.centre) == (False, 5, 0.3)
    assert custom_style(base, None) is base and custom_style(base, {}) is base


def test_the_colours_words_and_position_are_burned_in() -> None:
    plain = _track("beasty")
    styled = _track("beasty", {"textColor": "#00FF00", "highlightColor": "#FF00FF", "wordsPerGroup": 5,
                               "position": 0.3, "uppercase": False})
    assert max(len(g.words) for g in styled.events) == 5 > max(len(g.words) for g in plain.events)
    assert styled.events[0].texts[0] == "we"  # not in capitals
    rgba, _x, y = styled.rasterise_state(0, 1, 0)  # the second word active
    assert _ink(rgba, GREEN) > 200 and _ink(rgba, MAGENTA) > 100  # the words green, the active one magenta
    plain_rgba, _px, py = plain.rasterise_state(0, 1, 0)
    assert _ink(plain_rgba, GREEN) == 0
    # centred at 30 % of the height instead of the preset's 70 %
    assert abs((y + rgba.shape[0] / 2) / 1280 - 0.3) < 0.05 and (py + plain_rgba.shape[0] / 2) / 1280 > 0.6
    band = styled.band
    assert band[0] < 0.3 * 1280 < band[1]


def test_the_ass_names_the_font_and_colours_the_style_sets() -> None:
    ass = _track("karaoke", {"font": "montserrat-black", "textColor": "#00FF00", "outlineColor": "#102030"}).ass_text()
    style_line = next(line for line in ass.splitlines() if line.startswith("Style: karaoke,"))
    assert style_line.split(",")[1] == "Montserrat Black"
    assert "&H0000FF00" in style_line and "&H00302010" in style_line  # ASS colours are &HAABBGGRR
