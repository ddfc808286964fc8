"""Captions in other scripts (issue 19, item 3): the font a track uses has a glyph for every character it
shows (fontTools cmap), the burned-in sprite is drawn from it, and libass picks the same font from
stages/fonts for the .ass without falling back to a system font for any glyph."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from engine.types import Word
from stages.captions import (
    FONTS_DIR,
    PLAIN,
    PRESETS,
    build_caption_track,
    font_info,
    missing_chars,
    style_for_text,
)

SAMPLES = {  # language -> a phrase with the letters its script needs beyond Latin-1
    "ru": "Съешь же ещё этих мягких французских булок, да выпей чаю",
    "uk": "Гей, ґедзю, чуєш: їжак і єнот",
    "el": "Γειά σου κόσμε, καλημέρα, ψυχή",
    "pl": "Zażółć gęślą jaźń, łódź",
    "cs": "Příliš žluťoučký kůň úpěl ďábelské ódy",
    "tr": "Pijamalı hasta yağız şoföre çabucak güvendi",
    "ro": "Înșiră-te mărgărite, țară",
    "vi": "Tiếng Việt có dấu, người ơi",
    "es": "¿Mañana? ¡Sí, señor pingüino!",
    "de": "Größe, Übermäßig schön, Äpfel",
    "fr": "Où êtes-vous, cœur façade",
}
FALLBACK_ONLY = {"ru", "uk", "el", "pl", "cs", "tr", "ro", "vi"}


def words(text: str) -> list[Word]:
    return [Word(0.2 + i * 0.3, 0.45 + i * 0.3, w) for i, w in enumerate(text.split())]


def style_of(preset: str):
    return PLAIN if preset == "none" else PRESETS[preset]


@pytest.mark.parametrize("language", sorted(SAMPLES))
@pytest.mark.parametrize("preset", ["beasty", "karaoke", "mozi", "none"])
def test_every_character_has_a_glyph_in_the_chosen_font(language: str, preset: str) -> None:
    track = build_caption_track(words(SAMPLES[language]), preset, 720, 1280, 0.0, 10.0, language)
    texts = [t for g in track.events for t in g.texts]
    assert track.style is not None and texts
    assert missing_chars(track.style.font_file, texts) == set()
    weight = {"NotoSans-Black.ttf": 900, "NotoSans-ExtraBold.ttf": 800}
    if language in FALLBACK_ONLY:
        assert missing_chars(style_of(preset).font_file, texts), "the preset's own font would have shown tofu"
        assert track.style.font_file == style_of(preset).fallback_font
        # the fallback matches the preset's weight: ExtraBold for Poppins ExtraBold, Black for the others
        assert weight[track.style.font_file] == (800 if style_of(preset).font_file.startswith("Poppins") else 900)
    else:
        assert track.style.font_file == style_of(preset).font_file
    if preset != "none":
        rgba, _, _ = track.rasterise_state(0, 0, 0)
        assert int(rgba[..., 3].max()) == 255


def test_the_choice_follows_the_language_and_the_text() -> None:
    beasty = PRESETS["beasty"]
    assert style_for_text(beasty, ["HOLA"], "es") is beasty
    assert style_for_text(beasty, ["HOLA"], "").font_file == beasty.font_file
    # a language outside Latin-1 uses the fallback even for a clip whose words happen to fit, so all of a
    # job's clips look alike
    assert style_for_text(beasty, ["OK"], "pl").font_file == beasty.fallback_font
    # a Latin-1 language whose words need more (a name, a loan word) switches too
    assert style_for_text(beasty, ["ŁÓDŹ"], "en").font_file == beasty.fallback_font
    # a script neither font has stays as it was: the fallback would show no more of it
    assert style_for_text(beasty, ["東京"], "").font_file == beasty.font_file
    # the fallback's line pitch leaves room for Cyrillic descenders (Д, Ц, Щ)
    assert style_for_text(beasty, ["ДА"], "ru").line_pitch_em >= 1.0


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg not installed")
@pytest.mark.parametrize("language", ["ru", "el", "cs"])
def test_libass_finds_the_font_for_every_glyph(language: str, tmp_path: Path) -> None:
    track = build_caption_track(words(SAMPLES[language]), "beasty", 720, 1280, 0.0, 10.0, language)
    ass = tmp_path / "c.ass"
    track.write_ass(ass)
    assert track.style is not None
    family = font_info(track.style.font_file).family
    run = subprocess.run([
        "ffmpeg", "-v", "verbose", "-y", "-f", "lavfi", "-i", "color=c=gray:s=720x1280:d=3", "-ss", "0.5",
        "-vf", f"ass={ass}:fontsdir={FONTS_DIR}", "-frames:v", "1", str(tmp_path / "out.png"),
    ], capture_output=True, text=True, timeout=60, check=True)
    picks = re.findall(r"fontselect: \((.+?), \d+, \d+\) -> ([^,]+),", run.stderr)
    assert picks and all(asked == family and got == Path(track.style.font_file).stem for asked, got in picks), picks
    assert "not found" not in run.stderr, [ln for ln in run.stderr.splitlines() if "not found" in ln]


@pytest.mark.parametrize(("word", "caps"), [
    ("Καλημέρα", "ΚΑΛΗΜΕΡΑ"), ("άνθρωπος", "ΑΝΘΡΩΠΟΣ"), ("ὁδός", "ΟΔΟΣ"), ("ΐ", "Ϊ"),  # Greek drops its accents
    ("día", "DÍA"), ("Ärger", "ÄRGER"), ("привет", "ПРИВЕТ"), ("ŝi", "ŜI"),  # the others keep theirs
])
def test_uppercase_presets_write_capitals_as_each_script_does(word, caps):
    from stages.captions.style import display_text

    assert display_text(word, PRESETS["beasty"]) == caps
