"""Build the captions' emoji font (stages/fonts/NotoEmoji-Bold.ttf) from the @fontsource/noto-emoji package.

    cd "$(mktemp -d)" && npm pack @fontsource/noto-emoji@5.3.2 && tar xzf fontsource-noto-emoji-5.3.2.tgz
    .venv/bin/python scripts/make_emoji_font.py "$PWD/package"

The package's ``emoji`` subset WOFF of weight 700 (Noto Emoji, monochrome outlines) is unwrapped to TrueType
and subset with fontTools to the code points of the captions' emoji lexicon
(stages/captions/emphasis.py, EMOJI_LEXICON): glyphs, metrics and names of those kept unchanged. SIL OFL 1.1,
which allows this; the licence is stages/fonts/NotoEmoji-LICENSE.txt (the package's LICENSE). Run it again
after adding an emoji to the lexicon (tests/stages/captions/test_emphasis.py checks the font covers it).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from fontTools import subset
from fontTools.ttLib import TTFont

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from stages.captions.emphasis import EMOJI_FONT, EMOJI_LEXICON  # noqa: E402

FONTS = ROOT / "stages" / "fonts"


def build(package: Path, out_dir: Path = FONTS) -> Path:
    font = TTFont(package / "files" / "noto-emoji-emoji-700-normal.woff")
    font.flavor = None
    options = subset.Options()
    options.layout_features = ["*"]
    options.name_IDs = ["*"]
    options.notdef_outline = True
    sub = subset.Subsetter(options)
    sub.populate(unicodes=sorted({ord(c) for e in EMOJI_LEXICON.values() for c in e} | {0x20}))
    sub.subset(font)
    # only the full-Unicode cmaps: libass takes the first Microsoft Unicode cmap, and the BMP-only (3, 1)
    # table sorts before (3, 10), which would hide every emoji above U+FFFF from the .ass
    cmap = font["cmap"]
    cmap.tables = [t for t in cmap.tables if t.format == 12]
    out = out_dir / EMOJI_FONT
    font.save(out)
    shutil.copyfile(package / "LICENSE", out_dir / "NotoEmoji-LICENSE.txt")
    return out


if __name__ == "__main__":
    print(build(Path(sys.argv[1])))
