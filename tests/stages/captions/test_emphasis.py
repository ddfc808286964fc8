"""captionEmphasis and captionEmoji: the salient word's accent colour and stronger pop, the emoji above a
group (at most one every 3 s), in the burned-in sprites and in the .ass; none/false leave today's output."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import emoji as emoji_data
import numpy as np
import pytest
from fontTools.ttLib import TTFont
from PIL import Image

from engine.errors import InvalidOptions
from engine.types import Word
from stages.captions import FONTS_DIR, PRESETS, CaptionTrack, build_caption_track, group_words
from stages.captions.emphasis import (
    EMOJI_EVERY_S,
    EMOJI_FONT,
    EMOJI_LEXICON,
    emoji_for,
    emphasised_words,
    group_emoji,
    word_salience,
)

TEXT = ("So we made $200 in 3 days with Kubernetes. The money was on fire and the rocket idea crushed "
        "everything at OpenAI, then growth doubled every time we tried it again. Honestly that coffee habit cost "
        "me money, but the music and my dog made me happy")
KEYWORDS = ("kubernetes",)


def _words(text: str = TEXT, start: float = 0.5, step: float = 0.4) -> list[Word]:
    return [Word(start + i * step, start + i * step + 0.3, t) for i, t in enumerate(text.split())]


def _track(preset: str, **kw) -> CaptionTrack:
    return build_caption_track(_words(), preset, 720, 1280, 0.0, 30.0, keywords=KEYWORDS, **kw)


def _state(track: CaptionTrack, gi: int, wi: int, dt: float = 0.08):
    """The RGBA the track shows ``dt`` after word ``wi`` of group ``gi`` starts (mid-pop at 0.08 s)."""
    return track.rasterise_state(*track.state_at(track.events[gi].words[wi].start + dt))


def _ink(rgba: np.ndarray, rgb: tuple[int, int, int], tol: int = 40) -> int:
    """Opaque pixels of colour ``rgb`` (within ``tol`` per channel)."""
    near = np.all(np.abs(rgba[..., :3].astype(int) - np.array(rgb)) <= tol, axis=-1)
    return int((near & (rgba[..., 3] > 200)).sum())


# -- salience -------------------------------------------------------------------------------


def test_salience_picks_the_number_the_name_and_the_keyword_never_a_stopword() -> None:
    assert word_salience("$200", False) > word_salience("Kubernetes", False, {"kubernetes"}) \
        > word_salience("OpenAI", False) > word_salience("everything", False) > 0
    assert 3 <= word_salience("crushed", False) < 3.1 and 3 <= word_salience("OpenAI", False) < 3.1  # verb, name
    assert word_salience("the", False) == word_salience("with", False) == word_salience("...", False) == 0
    assert word_salience("Money", True) < word_salience("Money", False)  # a capital opening a sentence says nothing
    groups = group_words(_words(), PRESETS["beasty"])
    picks = emphasised_words(groups, KEYWORDS, PRESETS["beasty"].emphasis_min)
    chosen = {groups[i].words[w].text for i, w in enumerate(picks) if w is not None}
    assert {"$200", "Kubernetes.", "OpenAI,", "crushed", "doubled"} <= chosen  # "3" shares $200's group
    assert not chosen & {"So", "we", "in", "with", "the", "The", "at", "it", "was", "on"}
    assert all(w is None or len(g.words) > w for g, w in zip(groups, picks, strict=True))  # at most one a group
    # deterministic, and mozi (every group with a content word) emphasises at least as often as beasty
    assert picks == emphasised_words(groups, KEYWORDS, PRESETS["beasty"].emphasis_min)
    mozi = emphasised_words(groups, KEYWORDS, PRESETS["mozi"].emphasis_min)
    assert sum(m is not None for m in mozi) >= sum(p is not None for p in picks)


def test_the_lexicon_matches_word_forms() -> None:
    assert emoji_for("Money,") == "💰" and emoji_for("rockets") == "🚀" and emoji_for("loved") == "❤"
    assert emoji_for("running") == "🏃" and emoji_for("ideas!") == "💡" and emoji_for("TIME") == "⏰"
    assert emoji_for("the") is None and emoji_for("") is None and emoji_for("12") is None


# -- the lexicon and its font ---------------------------------------------------------------


def test_every_lexicon_emoji_is_an_emoji_the_bundled_font_draws() -> None:
    assert 150 <= len(EMOJI_LEXICON) <= 300
    for word, char in EMOJI_LEXICON.items():
        assert word == word.lower() and word.isalpha(), word
        assert len(char) == 1, (word, char)  # one code point: no ZWJ sequence the plain layout would split
        assert emoji_data.is_emoji(char) or emoji_data.is_emoji(char + "\ufe0f"), (word, char)
    font = TTFont(FONTS_DIR / EMOJI_FONT)
    cmap = font.getBestCmap()
    glyf = font["glyf"]
    for char in set(EMOJI_LEXICON.values()):
        name = cmap.get(ord(char))
        assert name is not None, f"{char} ({emoji_data.demojize(char)}) is not in {EMOJI_FONT}"
        assert glyf[name].numberOfContours != 0, char  # drawn, not an empty glyph
    # only full-Unicode cmaps: libass takes the first Microsoft Unicode one (see scripts/make_emoji_font.py)
    assert {t.format for t in font["cmap"].tables} == {12}
    assert (FONTS_DIR / EMOJI_FONT).stat().st_size < 150_000  # subset to the lexicon
    assert "SIL Open Font License" in (FONTS_DIR / "NotoEmoji-LICENSE.txt").read_text()


# -- sprites --------------------------------------------------------------------------------


@pytest.mark.parametrize("preset", ["beasty", "mozi"])
def test_the_emphasised_word_is_drawn_in_the_accent_colour_and_pops_larger(preset: str) -> None:
    on, off = _track(preset, emphasis="auto"), _track(preset, emphasis="none")
    style = on.style
    assert style is not None and style.emphasis and style.accent_rgbs
    gi = next(i for i, g in enumerate(on.events) if any(w.text == "$200" for w in g.words))
    wi = on.emphasised[gi]
    assert wi is not None and on.events[gi].words[wi].text == "$200"
    accent = style.accent_rgbs[sum(e is not None for e in on.emphasised[:gi]) % len(style.accent_rgbs)]
    still = _state(on, gi, 0, 0.2)  # another word active: the emphasised one still in the accent colour
    assert still is not None and _ink(still[0], accent) > 300
    popped, plain_pop = _state(on, gi, wi), _state(off, gi, wi)
    assert popped is not None and plain_pop is not None
    assert _ink(popped[0], accent) > 1.15 * _ink(still[0], accent)  # the stronger pop: more accent ink
    assert popped[0].shape[0] > plain_pop[0].shape[0]  # taller than the ordinary pop
    if preset == "beasty":  # without emphasis, beasty never shows its accent
        assert _ink(off.rasterise_state(0, 0, 0)[0], accent, 25) == 0


def test_emphasis_none_and_karaoke_keep_todays_sprites_and_ass() -> None:
    """captionEmphasis none (and karaoke whatever it says): the same sprites and .ass as a track of the bare
    preset (the look before emphasis existed); mozi still colours its key words."""
    words = _words()
    for preset, emphasis in (("beasty", "none"), ("mozi", "none"), ("karaoke", "auto"), ("karaoke", "none")):
        track = build_caption_track(words, preset, 720, 1280, 0.0, 30.0, emphasis=emphasis, keywords=KEYWORDS)
        groups = group_words(words, PRESETS[preset])
        bare = CaptionTrack(PRESETS[preset], groups, 720, 1280)
        assert track.style == PRESETS[preset] and track.band == bare.band
        assert track.ass_text() == bare.ass_text()
        for t in np.arange(0.0, 30.0, 0.05):
            a, b = track.sprite_at(float(t)), bare.sprite_at(float(t))
            assert (a is None) == (b is None)
            if a is not None and b is not None:
                assert (a.x, a.y) == (b.x, b.y) and np.array_equal(a.y_plane, b.y_plane) and np.array_equal(a.a, b.a)
    mozi = build_caption_track(words, "mozi", 720, 1280, 0.0, 30.0)
    assert _ink(mozi.rasterise_state(1, 1, 0)[0], PRESETS["mozi"].accent_rgbs[0]) > 200  # "$200", as before


def test_unknown_emphasis_is_refused() -> None:
    with pytest.raises(InvalidOptions) as info:
        build_caption_track(_words(), "beasty", 720, 1280, 0.0, 30.0, emphasis="loud")
    assert info.value.field == "captionEmphasis"


@pytest.mark.parametrize("preset", ["beasty", "mozi", "karaoke"])
def test_emoji_come_at_most_every_3_s_above_their_group(preset: str) -> None:
    track = _track(preset, emphasis="auto", emoji=True)
    shown = [(g, e) for g, e in zip(track.events, track.emoji, strict=True) if e]
    assert len(shown) >= 3
    starts = [g.start for g, _ in shown]
    assert all(b - a >= EMOJI_EVERY_S - 1e-9 for a, b in zip(starts, starts[1:], strict=False))
    # every group with a lexicon word that starts 3 s after the last emoji gets one (none skipped needlessly)
    assert group_emoji(track.events, track.emphasised) == track.emoji
    band = track.band
    for gi, e in enumerate(track.emoji):
        if e is None:
            continue
        with_emoji = _state(track, gi, 0, 0.2)
        without = _state(_track(preset, emphasis="auto"), gi, 0, 0.2)
        assert with_emoji is not None and without is not None
        rgba, x, y = with_emoji
        # the emoji's pixels: above the words' sprite, non-empty, white with the preset's dark outline
        above = rgba[: without[2] - y]
        assert above.shape[0] > 20 and _ink(above, (255, 255, 255), 30) > 150 and (above[..., 3] > 200).sum() > 400
        assert band[0] <= y and y + rgba.shape[0] <= band[1]  # inside the band the render moves on fit shots
    # no emoji option: none
    assert not any(_track(preset, emphasis="auto").emoji)


# -- .ass ---------------------------------------------------------------------------------


def _dialogues(ass: str, style: str) -> list[list[str]]:
    return [ln.split(",", 9) for ln in ass.splitlines() if ln.startswith("Dialogue:") and ln.split(",")[3] == style]


def test_the_ass_carries_the_accent_the_stronger_pop_and_the_emoji_events() -> None:
    track = _track("beasty", emphasis="auto", emoji=True)
    ass = track.ass_text()
    style = track.style
    assert style is not None
    r, g, b = style.accent_rgbs[0]
    assert f"\\c&H00{b:02X}{g:02X}{r:02X}" in ass
    pct = round(style.emphasis_scale * 100)
    assert f"\\fscx{pct}\\fscy{pct}" in ass and f"\\fscx{round(style.pop_scale * 100)}" in ass
    assert re.search(r"^Style: emoji,Noto Emoji,", ass, re.M)
    events = _dialogues(ass, "emoji")
    assert [e[9][-1] for e in events] == [e for e in track.emoji if e]
    assert all(re.match(r"\{\\an2\\pos\(360,\d+(\.\d)?\)", e[9]) for e in events)
    assert "emoji" not in _track("beasty", emphasis="auto").ass_text()


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg not installed")
@pytest.mark.parametrize("preset", ["beasty", "mozi"])
def test_libass_draws_the_emoji_where_the_sprite_has_it(preset: str, tmp_path: Path) -> None:
    """libass finds every emoji in the bundled font (no missing glyph) and draws it in the rows above the words
    that the burned-in sprite gives it."""
    track = _track(preset, emphasis="auto", emoji=True)
    ass = tmp_path / "c.ass"
    track.write_ass(ass)
    # a one-line group: libass sets a wrapped group's lines further apart than the sprite (the emoji follows
    # libass's own first line there)
    gi = next(i for i, e in enumerate(track.emoji) if e and len(track._layouts[i].lines) == 1)
    t = track.events[gi].words[-1].start + 0.2
    run = subprocess.run([
        "ffmpeg", "-v", "debug", "-y", "-f", "lavfi", "-i", "color=c=gray:s=720x1280:d=30", "-ss", f"{t:.2f}",
        "-vf", f"ass={ass}:fontsdir={FONTS_DIR}", "-frames:v", "1", str(tmp_path / "f.png"),
    ], capture_output=True, text=True, timeout=60, check=True)
    assert "not found" not in run.stderr, [ln for ln in run.stderr.splitlines() if "not found" in ln][:3]
    drawn = np.asarray(Image.open(tmp_path / "f.png").convert("L")).astype(int)
    rgba, x, y = track.rasterise_state(*track.state_at(t))
    words = _track(preset, emphasis="auto").rasterise_state(*track.state_at(t))
    emoji_rows = range(y, words[2])  # the sprite's emoji: above its words
    ink = np.flatnonzero((np.abs(drawn - 128) > 60).sum(axis=1) >= 4)
    got = [r for r in ink if r < words[2] + 4]
    assert got, "libass drew nothing above the words"
    assert abs(min(got) - min(r for r in emoji_rows if (rgba[r - y, :, 3] > 100).any())) <= 10


def test_on_fit_shots_the_emoji_event_moves_down_with_the_words() -> None:
    base = _track("beasty", emphasis="auto", emoji=True)
    gi = next(i for i, e in enumerate(base.emoji) if e)
    g = base.events[gi]
    mid = (g.start + g.end) / 2
    fit = build_caption_track(_words(), "beasty", 720, 1280, 0.0, 30.0, keywords=KEYWORDS, emphasis="auto",
                              emoji=True, fit_spans=((mid, 30.0),), fit_bottom=900)
    assert fit.fit_offset > 0 and fit.band == base.band
    pos = [(e[1], float(re.search(r"\\pos\(360,([\d.]+)\)", e[9]).group(1)))
           for e in _dialogues(fit.ass_text(), "emoji")]
    was = dict((e[1], float(re.search(r"\\pos\(360,([\d.]+)\)", e[9]).group(1)))
               for e in _dialogues(base.ass_text(), "emoji"))
    first, second = pos[0], pos[1]  # the first emoji's event, cut in two at the fit shot's start
    assert first[1] == was[first[0]] and second[0] not in was  # before the cut: where it always was
    assert abs(second[1] - (first[1] + fit.fit_offset)) < 0.11  # from the cut on: lower by the render's dy
