"""Build the captions' fallback fonts (stages/fonts/NotoSans-*.ttf) from the @fontsource/noto-sans package.

    cd "$(mktemp -d)" && npm pack @fontsource/noto-sans@5.3.0 && tar xzf fontsource-noto-sans-5.3.0.tgz
    .venv/bin/python scripts/make_caption_fonts.py "$PWD/package"

Each weight's subset WOFF files (latin, latin-ext, cyrillic, greek, vietnamese) are unwrapped to TrueType
and merged into one font with fontTools (glyphs, metrics and names unchanged; the font's own first subset
wins where two hold the same character). SIL OFL 1.1, which allows this; the licence is
stages/fonts/NotoSans-LICENSE.txt (the package's LICENSE).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from fontTools.merge import Merger
from fontTools.ttLib import TTFont

SUBSETS = ("latin", "latin-ext", "cyrillic", "greek", "vietnamese")
WEIGHTS = {800: "NotoSans-ExtraBold.ttf", 900: "NotoSans-Black.ttf"}
FONTS = Path(__file__).resolve().parents[1] / "stages" / "fonts"


def build(package: Path, out_dir: Path = FONTS) -> list[Path]:
    written = []
    with tempfile.TemporaryDirectory() as tmp:
        for weight, name in WEIGHTS.items():
            parts = []
            for subset in SUBSETS:
                font = TTFont(package / "files" / f"noto-sans-{subset}-{weight}-normal.woff")
                font.flavor = None
                part = Path(tmp) / f"{subset}-{weight}.ttf"
                font.save(part)
                parts.append(str(part))
            merged = Merger().merge(parts)
            merged.save(out_dir / name)
            written.append(out_dir / name)
    return written


if __name__ == "__main__":
    for path in build(Path(sys.argv[1])):
        print(path)
