"""Caption presets: grouping, layout in the safe band, sprites, and the .ass track."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from fontTools.ttLib import TTFont

from engine.errors import InvalidOptions
from engine.types import Word
from kernels.colour import rgb_to_yuv420, yuv420_to_rgb
from kernels.composite import blend_sprite_i420
from stages.captions import FONTS_DIR, PLAIN, PRESETS, build_caption_track, group_words

SIZES = [(1080, 1920), (1080, 1080), (1080, 1350), (1920, 1080), (720, 1280)]
STYLED = ["beasty", "karaoke", "mozi"]

TEXT = (
    "So here's the thing nobody tells you about making 100 videos. "
    "It changes everything! Honestly, incomprehensibilities aside, we kept going "
    "and going until the audience finally showed up"
)


def rgba_at(track, t: float):
    """The RGBA image (and its x, y) the track shows at ``t``, or None."""
    key = track.state_at(t) if track.style is not None else None
    return None if key is None else track.rasterise_state(*key)


def _words(text: str = TEXT, start: float = 10.0, gap: float = 0.05) -> list[Word]:
    out, t = [], start
    for tok in text.split():
        d = 0.12 + 0.035 * len(tok)
        out.append(Word(t, t + d, tok))
        t += d + gap
    return out


def _norm(s: str) -> str:
    return re.sub(r"[^0-9a-z']", "", s.lower())


# -- grouping -------------------------------------------------------------------------------


@pytest.mark.parametrize("preset", STYLED)
def test_groups_respect_max_words_punctuation_and_monotone_times(preset: str) -> None:
    style = PRESETS[preset]
    words = _words()
    groups = group_words(words, style)
    assert [w for g in groups for w in g.words] == words  # every word once, in order
    for g in groups:
        assert 1 <= len(g.words) <= style.max_words
        assert g.start == g.words[0].start and g.end > g.start
        assert all(w.text.endswith((".", "?", "!")) is False for w in g.words[:-1])
    for a, b in zip(groups, groups[1:], strict=False):
        assert a.end <= b.start + 1e-9  # never two groups at once
        assert a.start < b.start
    assert any(g.words[-1].text == "videos." for g in groups)


def test_pause_breaks_a_group_and_hides_the_caption() -> None:
    words = [Word(0.0, 0.3, "one"), Word(0.35, 0.6, "two"), Word(2.0, 2.3, "three")]
    g = group_words(words, PRESETS["beasty"])
    assert [[w.text for w in x.words] for x in g] == [["one", "two"], ["three"]]
    assert g[0].end == pytest.approx(0.6 + 0.3)  # held 0.3 s, not until the next group
    close = [Word(0.0, 0.3, "a."), Word(0.5, 0.8, "b")]
    g2 = group_words(close, PRESETS["beasty"])
    assert len(g2) == 2 and g2[0].end == pytest.approx(0.5)  # bridged to the next group


def test_track_is_clip_relative_and_inside_the_clip() -> None:
    words = _words(start=10.0)
    clip_start, clip_end = words[3].start, words[15].end - 0.05
    tr = build_caption_track(words, "beasty", 720, 1280, clip_start, clip_end)
    dur = clip_end - clip_start
    shown = [w.text for g in tr.events for w in g.words]
    assert shown[0] == words[3].text and shown[-1] == words[15].text
    for g in tr.events:
        assert 0.0 <= g.start < g.end <= dur + 1e-9
        assert all(0.0 <= w.start <= w.end <= dur + 1e-9 for w in g.words)
    assert tr.sprite_at(-0.01) is None and tr.sprite_at(dur + 0.01) is None


def test_none_preset_burns_nothing_but_its_ass_holds_the_words_and_unknown_preset(tmp_path: Path) -> None:
    words = _words()
    tr = build_caption_track(words, "none", 720, 1280, 10.0, 20.0)
    assert not tr.burned and tr.preset == "none" and tr.style is PLAIN
    assert tr.events and all(tr.sprite_at(g.start + 0.01) is None for g in tr.events)
    tr.write_ass(tmp_path / "none.ass")
    text = (tmp_path / "none.ass").read_text()
    assert "[Events]" in text and "PlayResX: 720" in text and "preset none" in text
    # one event per group (nothing changes while it is up), the words as typed
    dialogues = _dialogue_texts(text)
    assert len(dialogues) == len(tr.events)
    shown = [w for d in dialogues for w in re.sub(r"\{[^}]*\}", "", d).replace("\\N", " ").split()]
    assert shown == [w.text for w in words if 10.0 <= (w.start + w.end) / 2 < 20.0]
    assert not re.search(r"\\(c|t\()", "".join(dialogues))  # no colour or pop tags (only a size)
    empty = build_caption_track([], "none", 720, 1280, 10.0, 20.0)
    assert empty.events == [] and "Dialogue:" not in empty.ass_text()
    with pytest.raises(InvalidOptions):
        build_caption_track(_words(), "comic-sans", 720, 1280, 10.0, 20.0)


# -- sprites --------------------------------------------------------------------------------


@pytest.mark.parametrize(("w", "h"), SIZES)
@pytest.mark.parametrize("preset", STYLED)
def test_sprites_stay_in_band_and_safe_width(preset: str, w: int, h: int) -> None:
    tr = build_caption_track(_words(), preset, w, h, 10.0, 40.0)
    y0, y1 = tr.band
    centre = 0.70 if w / h < 0.9 else 0.78
    assert y0 < centre * h < y1 and 0 <= y0 and y1 <= h
    assert y1 - y0 < 0.35 * h  # room for two lines with the pop
    seen = 0
    for g in tr.events:
        # the first word's pop peak (widest state) and a settled later word
        for t in (g.words[0].start + 0.075, g.words[-1].start + 0.2):
            s = tr.sprite_at(min(t, g.end - 1e-3))
            assert s is not None
            seen += 1
            assert s.x % 2 == 0 and s.y % 2 == 0
            assert y0 <= s.y and s.y + s.h <= y1, (s.y, s.h, tr.band)
            assert s.x >= 0.075 * w - 1 and s.x + s.w <= 0.925 * w + 1, (s.x, s.w)
    assert seen >= 2 * len(tr.events) > 0


def test_sprites_are_cached_per_state() -> None:
    tr = build_caption_track(_words(), "beasty", 720, 1280, 10.0, 40.0)
    g = tr.events[0]
    settled = g.words[0].start + 0.2
    if len(g.words) > 1:
        settled = min(settled, g.words[1].start - 1e-3)
    assert tr.sprite_at(settled) is tr.sprite_at(settled - 1e-3)
    assert tr.sprite_at(g.words[0].start + 0.075) is not tr.sprite_at(settled)


def test_beasty_pop_grows_the_active_word() -> None:
    tr = build_caption_track(_words(), "beasty", 1080, 1920, 10.0, 40.0)
    g = next(g for g in tr.events if g.words[0].end - g.words[0].start > 0.2)
    peak = tr.sprite_at(g.words[0].start + 0.075)
    rest = tr.sprite_at(g.words[0].start + 0.16)
    assert peak is not None and rest is not None
    assert int((peak.a > 128).sum()) > int((rest.a > 128).sum()) * 1.03


def _yellow_pixels(rgba: np.ndarray) -> int:
    r, g, b, a = (rgba[..., i].astype(int) for i in range(4))
    return int(((a > 200) & (r > 200) & (g > 170) & (b < 90)).sum())


def test_karaoke_highlight_follows_the_spoken_word() -> None:
    tr = build_caption_track(_words(), "karaoke", 1080, 1920, 10.0, 40.0)
    g = tr.events[0]
    assert len(g.words) >= 3
    first = rgba_at(tr, g.words[0].start + 0.01)
    third = rgba_at(tr, g.words[2].start + 0.01)
    assert first is not None and third is not None
    assert _yellow_pixels(third[0]) > 1.5 * _yellow_pixels(first[0]) > 0
    s1, s3 = tr.sprite_at(g.words[0].start + 0.01), tr.sprite_at(g.words[2].start + 0.01)
    assert s1 is not None and s3 is not None and s1 is not s3
    assert s1.u.shape != s3.u.shape or not np.array_equal(s1.u, s3.u)


def test_mozi_colours_a_key_word() -> None:
    tr = build_caption_track(_words("we made 100 videos"), "mozi", 1080, 1920, 10.0, 20.0)
    got = rgba_at(tr, tr.events[0].start + 0.3)
    assert got is not None and _yellow_pixels(got[0]) > 200  # "100" in the first accent


@pytest.mark.parametrize("preset", STYLED)
def test_composited_frame_shows_caption_in_band(preset: str, tmp_path: Path) -> None:
    from PIL import Image

    w, h = 720, 1280
    tr = build_caption_track(_words(), preset, w, h, 10.0, 40.0)
    y, u, v = rgb_to_yuv420(np.full((h, w, 3), 128, np.uint8))
    s = tr.sprite_at(tr.events[0].words[0].start + 0.1)
    assert s is not None
    blend_sprite_i420(y, u, v, s)
    rgb = yuv420_to_rgb(y, u, v)
    Image.fromarray(rgb).save(tmp_path / f"{preset}.png")
    y0, y1 = tr.band
    diff = np.abs(rgb.astype(int) - 128).max(axis=-1) > 30
    assert diff[y0:y1].sum() > 2000  # text, outline and shadow
    assert diff[:y0].sum() == 0 and diff[y1:].sum() == 0


# -- .ass ---------------------------------------------------------------------------------


def _dialogue_texts(ass: str) -> list[str]:
    return [line.split(",", 9)[9] for line in ass.splitlines() if line.startswith("Dialogue:")]


@pytest.mark.parametrize("preset", STYLED)
def test_ass_has_every_word_in_order(preset: str, tmp_path: Path) -> None:
    words = _words()
    tr = build_caption_track(words, preset, 1080, 1920, 0.0, 60.0)
    path = tmp_path / "clip_01.ass"
    tr.write_ass(path)
    ass = path.read_text(encoding="utf-8")
    assert list(tmp_path.iterdir()) == [path]  # the temporary file was renamed away
    assert "PlayResX: 1080" in ass and "PlayResY: 1920" in ass
    assert "ScaledBorderAndShadow: yes" in ass
    style = next(line for line in ass.splitlines() if line.startswith("Style:")).split(",")
    font_file = PRESETS[preset].font_file
    family = TTFont(FONTS_DIR / font_file)["name"].getDebugName(1)
    assert style[1] == family and style[18] == "2"
    # the text of each group's last state (karaoke: one line per group) holds all its words
    seen: list[str] = []
    for g_text in _dialogue_texts(ass):
        plain = re.sub(r"\{[^}]*\}", "", g_text).replace("\\N", " ")
        toks = [_norm(t) for t in plain.split()]
        if not seen or toks[: len(toks)] != seen[-len(toks) :]:
            seen.extend(toks)
    assert seen == [_norm(w.text) for w in words]
    times = re.findall(r"Dialogue: 0,(\d:\d\d:\d\d\.\d\d),(\d:\d\d:\d\d\.\d\d),", ass)
    assert len(times) == len(_dialogue_texts(ass))
    secs = [
        (int(a[0]) * 3600 + int(a[2:4]) * 60 + float(a[5:]),
         int(b[0]) * 3600 + int(b[2:4]) * 60 + float(b[5:]))
        for a, b in times
    ]
    assert all(s < e for s, e in secs)
    assert all(b[0] >= a[1] - 1e-9 for a, b in zip(secs, secs[1:], strict=False))


def test_ass_states_start_at_each_word() -> None:
    words = _words("one two three", start=0.0)
    tr = build_caption_track(words, "beasty", 720, 1280, 0.0, 10.0)
    starts = re.findall(r"Dialogue: 0,0:00:(\d\d\.\d\d)", tr.ass_text())
    assert [float(s) for s in starts] == [round(w.start, 2) for w in words]
    k = build_caption_track(words, "karaoke", 720, 1280, 0.0, 10.0).ass_text()
    ks = [int(x) for x in re.findall(r"\\k(\d+)", k)]
    assert len(ks) == 3 and ks[0] == round(100 * (words[1].start - words[0].start))


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg not installed")
@pytest.mark.parametrize("preset", STYLED)
def test_ffmpeg_renders_the_ass(preset: str, tmp_path: Path) -> None:
    from PIL import Image

    tr = build_caption_track(_words(start=0.0), preset, 720, 1280, 0.0, 2.0)
    ass = tmp_path / "c.ass"
    tr.write_ass(ass)
    out = tmp_path / "out.png"
    cmd = [
        "ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "color=c=gray:s=720x1280:d=2",
        "-ss", "0.5", "-vf", f"ass={ass}:fontsdir={FONTS_DIR}", "-frames:v", "1", str(out),
    ]
    subprocess.run(cmd, check=True, capture_output=True, timeout=60)
    img = np.asarray(Image.open(out).convert("RGB")).astype(int)
    grey = img[5, 5]
    y0, y1 = tr.band
    changed = np.abs(img - grey).max(axis=-1) > 30
    assert changed[y0:y1].sum() > 2000
    assert changed[: y0 - 60].sum() == 0
