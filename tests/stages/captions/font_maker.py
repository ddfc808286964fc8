"""Small TrueType / OpenType fonts made on the spot with fontTools' FontBuilder (tests of uploaded fonts).

Every glyph is a block with a square hole ("brick" letters), nothing like any bundled family, so a caption set
in it is told apart from the bundled ones pixel by pixel.
"""

from __future__ import annotations

import io
import string

from fontTools.fontBuilder import FontBuilder
from fontTools.pens.t2CharStringPen import T2CharStringPen
from fontTools.pens.ttGlyphPen import TTGlyphPen

LATIN = string.ascii_letters + string.digits + ".,!?'-:;%&"
UPEM = 1000


def _draw(pen, width: int) -> None:
    # outer block (clockwise for TrueType) and a square hole
    pen.moveTo((60, 0))
    pen.lineTo((60, 700))
    pen.lineTo((width - 60, 700))
    pen.lineTo((width - 60, 0))
    pen.closePath()
    pen.moveTo((180, 200))
    pen.lineTo((width - 180, 200))
    pen.lineTo((width - 180, 500))
    pen.lineTo((180, 500))
    pen.closePath()


def make_font(family: str = "Brick Test", chars: str = LATIN, *, cff: bool = False, style: str = "Regular") -> bytes:
    """A font whose ``chars`` are brick glyphs (and a space): TrueType outlines, or CFF (an .otf) with ``cff``."""
    names = [".notdef", "space"] + [f"g{ord(c):04X}" for c in chars]
    cmap = {32: "space", **{ord(c): f"g{ord(c):04X}" for c in chars}}
    widths = {n: (600 if n != "space" else 280) for n in names}
    fb = FontBuilder(UPEM, isTTF=not cff)
    fb.setupGlyphOrder(names)
    fb.setupCharacterMap(cmap)
    if cff:
        charstrings = {}
        for n in names:
            pen = T2CharStringPen(widths[n], None)
            if n != "space":
                _draw(pen, widths[n])
            charstrings[n] = pen.getCharString()
        fb.setupCFF(family.replace(" ", ""), {"FullName": f"{family} {style}"}, charstrings, {})
    else:
        glyphs = {}
        for n in names:
            pen = TTGlyphPen(None)
            if n != "space":
                _draw(pen, widths[n])
            glyphs[n] = pen.glyph()
        fb.setupGlyf(glyphs)
    fb.setupHorizontalMetrics({n: (widths[n], 60 if n != "space" else 0) for n in names})
    fb.setupHorizontalHeader(ascent=800, descent=-200)
    fb.setupNameTable({"familyName": family, "styleName": style})
    fb.setupOS2(sTypoAscender=800, sTypoDescender=-200, usWinAscent=800, usWinDescent=200, sCapHeight=700,
                sxHeight=700)
    fb.setupPost()
    out = io.BytesIO()
    fb.save(out)
    return out.getvalue()
