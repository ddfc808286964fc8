"""Brand styles' uploaded fonts and shadow colour in the caption renderer (issue 17 item 5).

An uploaded font is found from the job's files (engine.storage.find_font: <data>/fonts/<sha256>.ttf), its
content checked against its name, and used for the burned-in sprites and named by the .ass; shadowColor
colours the drop shadow in both.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.errors import PermanentError
from engine.storage import find_font, store_font
from engine.types import Word
from stages.captions import FONTS_DIR, build_caption_track
from tests.stages.captions.font_maker import make_font

WORDS = [Word(0.5 + 0.4 * i, 0.8 + 0.4 * i, t) for i, t in enumerate("brand fonts look great on clips".split())]
FONT_ID = "font_0123456789abcdef"


@pytest.fixture
def data(tmp_path: Path) -> tuple[Path, Path, str]:
    """(data root, a clip's .ass path under it as a worker writes it, the stored font's file name)."""
    name = store_font(tmp_path, make_font("Brick Test"), "ttf")
    ass = tmp_path / "jobs" / "j1" / "work" / "clips" / "01" / "clip_01.ass"
    ass.parent.mkdir(parents=True)
    return tmp_path, ass, name


def _track(custom, near=None, preset="beasty"):
    return build_caption_track(WORDS, preset, 720, 1280, 0.0, 6.0, custom=custom, emphasis="none", font_near=near)


def test_a_clip_set_in_an_uploaded_font_differs_from_the_bundled_one(data) -> None:
    root, ass, name = data
    bundled = _track(None)
    uploaded = _track({"font": FONT_ID, "fontFile": name}, ass)
    assert Path(uploaded.style.font_file) == root / "fonts" / name  # found from the job's folder
    a, _ax, _ay = bundled.rasterise_state(0, 0, 0)
    b, _bx, _by = uploaded.rasterise_state(0, 0, 0)
    # brick glyphs: every letter a block with a square hole; compare the letters' fill (light ink, not the dark
    # outline) on a common canvas
    h, w = max(a.shape[0], b.shape[0]), max(a.shape[1], b.shape[1])
    ma, mb = np.zeros((h, w), bool), np.zeros((h, w), bool)
    ma[: a.shape[0], : a.shape[1]] = (a[..., 3] > 200) & (a[..., :3].min(axis=-1) > 150)
    mb[: b.shape[0], : b.shape[1]] = (b[..., 3] > 200) & (b[..., :3].min(axis=-1) > 150)
    assert ma.sum() > 1000 and mb.sum() > 1000
    assert (ma ^ mb).sum() > 0.5 * max(ma.sum(), mb.sum())
    Image.fromarray(b).save(root / "uploaded_sprite.png")  # for a look by hand
    # the .ass names the uploaded family (libass finds it by that name in a fontsdir holding the file)
    text = uploaded.ass_text()
    style = next(line for line in text.splitlines() if line.startswith("Style: beasty,"))
    assert style.split(",")[1] == "Brick Test" and "uploaded font" in text


def test_the_font_is_found_only_with_the_content_its_name_promises(data, monkeypatch) -> None:
    root, ass, name = data
    monkeypatch.delenv("CLIPORA_DATA_DIR", raising=False)
    assert find_font(name, ass) == (root / "fonts" / name).resolve()
    assert find_font(name, root.parent / "elsewhere" / "x.ass") is None
    assert find_font("../" + name, ass) is None and find_font("x.ttf", ass) is None
    (root / "fonts" / name).write_bytes(make_font("Other"))  # replaced behind the store's back
    assert find_font(name, ass) is None
    with pytest.raises(PermanentError, match="no longer stored"):
        _track({"font": FONT_ID, "fontFile": name}, ass)
    with pytest.raises(PermanentError, match="only a job submitted to the server"):
        _track({"font": FONT_ID}, ass)  # the CLI: nothing says which file


def test_letters_the_uploaded_font_lacks_fall_back_to_noto(data) -> None:
    root, ass, name = data
    words = [Word(0.5, 0.9, "Привет"), Word(1.0, 1.4, "мир")]
    track = build_caption_track(words, "karaoke", 720, 1280, 0.0, 3.0, language="ru",
                                custom={"font": FONT_ID, "fontFile": name}, font_near=ass)
    assert track.style.font_file.startswith("NotoSans-")


def test_the_shadow_colour_is_burned_in_and_in_the_ass() -> None:
    red = (255, 0, 0)
    plain = _track({"outlineWidth": 0.0})
    shadowed = _track({"outlineWidth": 0.0, "shadowColor": "#FF0000", "textColor": "#FFFFFF"})
    assert shadowed.style.shadow_rgb == red

    def reddish(rgba: np.ndarray) -> int:
        px = rgba[..., :3].astype(int)
        return int(((px[..., 0] > 120) & (px[..., 1] < 60) & (px[..., 2] < 60) & (rgba[..., 3] > 60)).sum())

    assert reddish(shadowed.rasterise_state(0, 0, 0)[0]) > 200 and reddish(plain.rasterise_state(0, 0, 0)[0]) == 0
    style = next(line for line in shadowed.ass_text().splitlines() if line.startswith("Style: beasty,"))
    back = style.split(",")[6]  # BackColour: the shadow, &HAABBGGRR
    assert back.endswith("0000FF") and back != "&H00000000"


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg with libass")
def test_libass_draws_the_ass_in_the_uploaded_font(data, tmp_path) -> None:
    root, ass_path, name = data
    track = _track({"font": FONT_ID, "fontFile": name}, ass_path)
    track.write_ass(ass_path)
    fonts = tmp_path / "fontsdir"
    fonts.mkdir()
    for f in (root / "fonts" / name, FONTS_DIR / "LuckiestGuy-Regular.ttf"):
        shutil.copy(f, fonts / f.name)
    frames = {}
    for label, path in (("uploaded", ass_path), ("bundled", ass_path.with_name("bundled.ass"))):
        if label == "bundled":
            _track(None).write_ass(path)
        png = tmp_path / f"{label}.png"
        run = subprocess.run(["ffmpeg", "-v", "verbose", "-y", "-f", "lavfi", "-i", "color=c=gray:s=720x1280:d=2",
                              "-ss", "0.7", "-vf", f"ass={path}:fontsdir={fonts}", "-frames:v", "1", str(png)],
                             check=True, capture_output=True, text=True)
        frames[label] = np.asarray(Image.open(png).convert("L")).astype(int)
        if label == "uploaded":  # libass picked the uploaded family itself, not a fallback
            assert "fontselect: (Brick Test, 400, 0) -> Brick Test" in run.stderr, run.stderr[-2000:]
    assert np.abs(frames["uploaded"] - frames["bundled"]).mean() > 1.0  # the brick letters, not Luckiest Guy
