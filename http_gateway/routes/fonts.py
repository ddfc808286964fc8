"""/api/fonts: an account's uploaded caption fonts (TrueType / OpenType), for captionStyle.font.

- ``POST /api/fonts``: the font file, as multipart/form-data (a ``font`` file field, what the web app sends) or
  as the raw body (``curl --data-binary @Brand.ttf -H 'Content-Type: font/ttf'``). At most 10 MiB (413 past it,
  counted as it arrives). The content decides: a single TrueType (``glyf``) or OpenType (``CFF``) font, parsed
  with fontTools and opened with FreeType (Pillow) once; it is data, never executed. It needs the tables the
  caption renderer reads (head, hhea, OS/2, name, cmap, hmtx, maxp) and glyphs for basic Latin letters and
  digits; collections (.ttc), WOFF/WOFF2 and anything else are 400 with the reason. 201 with the font: its id
  (``font_…``), family and style names, glyph count and the Unicode ranges it covers whole (``coverage``).
- ``GET /api/fonts``: the account's fonts; ``GET /api/fonts/{id}``: one; ``GET /api/fonts/{id}/file``: the file
  (the web app's preview loads it).
- ``DELETE /api/fonts/{id}``: 409 while a saved style of the account names it; else the account's font is gone (new
  jobs and styles cannot name it), and its file is removed when no other upload has the same content. Clips
  already rendered keep their pixels; a later re-render of such a clip fails, saying the font is no longer stored.

Another account's font is as unknown as a missing one (404), in these routes and at submit (400
``captionStyle.font``). API key or browser session, as the job routes (unsafe methods from a session pass the
same CSRF rules). Files live once per content under the data root (engine.storage: fonts/<sha256>.ttf|otf),
where workers in other processes, or on other machines sharing the storage, find them.
"""

from __future__ import annotations

import asyncio
import secrets
import time
import unicodedata
from dataclasses import dataclass
from io import BytesIO
from typing import Any

from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import HttpProcessingError
from sqlalchemy import func, select

from engine.storage import fonts_dir, remove_font, store_font
from http_gateway.auth import require_user
from http_gateway.bodies import receiving
from http_gateway.config import SETTINGS
from http_gateway.errors import BadRequest, Conflict, NotFoundError, PayloadTooLarge
from http_gateway.models import CaptionStyleRecord, Font
from http_gateway.plans import PLANS_KEY
from http_gateway.routes.owned import count_owned, get_owned, list_owned, require_owned
from http_gateway.routes.uploads import display_name

MAX_FONT_BYTES = 10 * 1024 * 1024
MULTIPART_SLACK = 64 * 1024  # boundaries and part headers around the file
MAX_FONTS = 20  # per account
CHUNK = 256 * 1024
NO_STORE = {"Cache-Control": "no-store"}
FONT_ID = r"font_[0-9a-f]{16}"

#: the first four bytes of the files accepted, and the format each is
SFNT_MAGIC = {b"\x00\x01\x00\x00": "truetype", b"true": "truetype", b"OTTO": "opentype"}
REQUIRED_TABLES = ("head", "hhea", "OS/2", "name", "cmap", "hmtx", "maxp")
#: what every caption font must show: basic Latin letters and digits
REQUIRED_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
#: the ranges ``coverage`` names when the font has a glyph for every letter and digit in them
COVERAGE: dict[str, tuple[tuple[int, int], ...]] = {
    "basic-latin": ((0x21, 0x7E),),
    "latin-1": ((0xC0, 0xFF),),
    "latin-extended-a": ((0x100, 0x17F),),
    "greek": ((0x391, 0x3A1), (0x3A3, 0x3A9), (0x3B1, 0x3C9)),
    "cyrillic": ((0x410, 0x44F),),
    "vietnamese": ((0x1EA0, 0x1EF9),),
}


@dataclass(frozen=True)
class FontFacts:
    family: str
    style: str
    full_name: str
    format: str  # truetype | opentype
    ext: str  # ttf | otf
    glyphs: int
    coverage: list[str]


def _name(text: str | None, limit: int) -> str:
    return "".join(c for c in (text or "") if unicodedata.category(c)[0] != "C").strip()[:limit]


def inspect_font(content: bytes) -> FontFacts:
    """What the font is, or BadRequest saying why it is not one the captions can use. Runs fontTools' parser
    and FreeType's loader on the bytes (in a thread: the caller's); nothing in the file is run as code."""
    from fontTools.ttLib import TTFont, TTLibError
    from PIL import ImageFont

    magic = content[:4]
    if magic == b"ttcf":
        raise BadRequest("font collections (.ttc/.otc) are not accepted: upload one TrueType (.ttf) or OpenType "
                         "(.otf) font")
    if magic in (b"wOFF", b"wOF2"):
        raise BadRequest("WOFF/WOFF2 web fonts are not accepted: upload the TrueType (.ttf) or OpenType (.otf) file")
    if magic not in SFNT_MAGIC:
        raise BadRequest("not a TrueType or OpenType font: expected a .ttf or .otf file")
    try:
        tt = TTFont(BytesIO(content), lazy=False, recalcBBoxes=False, recalcTimestamp=False)
        missing = [t for t in REQUIRED_TABLES if t not in tt]
        if missing:
            raise BadRequest(f"the font lacks tables the captions need: {', '.join(missing)}")
        outlines = "glyf" if "glyf" in tt else "CFF " if "CFF " in tt else "CFF2" if "CFF2" in tt else None
        if outlines is None:
            raise BadRequest("the font has no outlines (glyf or CFF table): bitmap-only fonts are not accepted")
        cmap = tt.getBestCmap() or {}
        names = tt["name"]
        family = _name(names.getDebugName(16) or names.getDebugName(1), 200)
        style = _name(names.getDebugName(17) or names.getDebugName(2), 200) or "Regular"
        full = _name(names.getDebugName(4), 300) or f"{family} {style}"
        glyphs = int(tt["maxp"].numGlyphs)
        upem = int(tt["head"].unitsPerEm)
        os2, hhea = tt["OS/2"], tt["hhea"]
        metrics_ok = upem > 0 and os2.usWinAscent + os2.usWinDescent > 0 and hhea.ascent - hhea.descent > 0
        for tag in tt.keys():  # every table parses (a damaged one is refused now, not in a job)
            tt[tag]
    except BadRequest:
        raise
    except (TTLibError, Exception) as exc:  # fontTools raises many kinds on a damaged file
        raise BadRequest(f"the font could not be read ({type(exc).__name__}): not a usable TrueType or OpenType "
                         "font") from None
    if not family:
        raise BadRequest("the font has no family name (name table, IDs 1/16)")
    if "," in family:
        raise BadRequest("the font's family name has a comma, which a .ass subtitle Style cannot name")
    if not metrics_ok:
        raise BadRequest("the font's vertical metrics are empty (head.unitsPerEm, OS/2 usWinAscent/Descent, hhea)")
    lacking = [c for c in REQUIRED_CHARS if ord(c) not in cmap]
    if lacking:
        raise BadRequest("the font has no glyphs for basic Latin letters and digits (missing: "
                         f"{''.join(lacking[:20])}{'…' if len(lacking) > 20 else ''})")
    try:  # what the caption renderer does with it: FreeType opens it and draws letters
        face = ImageFont.truetype(BytesIO(content), 64)
        if face.getbbox("Ag")[2] <= 0:
            raise ValueError("empty glyphs")
        face.getmask("Ag")
    except Exception:
        raise BadRequest("FreeType could not draw the font's letters: not a usable font") from None
    coverage = [name for name, ranges in COVERAGE.items()
                if all(cp in cmap for a, b in ranges for cp in range(a, b + 1)
                       if unicodedata.category(chr(cp))[0] in "LN")]
    fmt = "opentype" if outlines.startswith("CFF") else "truetype"
    return FontFacts(family, style, full, fmt, "otf" if fmt == "opentype" else "ttf", glyphs, coverage)


def font_json(f: Font) -> dict[str, Any]:
    return {"id": f.id, "family": f.family, "style": f.style, "fullName": f.full_name, "format": f.format,
            "sizeBytes": f.size_bytes, "glyphs": f.glyphs, "coverage": list(f.coverage or []),
            "originalName": f.original_name, "createdAt": f.created_at, "fileUrl": f"/api/fonts/{f.id}/file"}


def _too_large() -> PayloadTooLarge:
    return PayloadTooLarge(f"font file too large: the limit is {MAX_FONT_BYTES} bytes (10 MiB)")


async def _read_part(part: BodyPartReader) -> bytes:
    raw = bytearray()
    while chunk := await part.read_chunk(CHUNK):
        raw += chunk
        if len(raw) > MAX_FONT_BYTES:
            raise _too_large()
    return bytes(raw)


async def _read_upload(request: web.Request) -> tuple[bytes, str]:
    """(the font's bytes, the client's file name as display text) from a multipart ``font`` field or the raw body."""
    declared = request.content_length
    multipart = request.content_type.startswith("multipart/")
    if declared is not None and declared > MAX_FONT_BYTES + (MULTIPART_SLACK if multipart else 0):
        raise _too_large()
    if not multipart:
        raw = bytearray()
        while chunk := await request.content.read(CHUNK):
            raw += chunk
            if len(raw) > MAX_FONT_BYTES:
                raise _too_large()
        return bytes(raw), ""
    content: bytes | None = None
    name = ""
    try:
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                raise BadRequest("nested multipart bodies are not accepted")
            if part.name == "font" and content is None:
                name = display_name(part.filename) if part.filename else ""
                content = await _read_part(part)
            else:
                await part.release()
    except (ValueError, AssertionError, HttpProcessingError):
        raise BadRequest("malformed multipart/form-data body") from None
    if content is None:
        raise BadRequest("font file required (send multipart/form-data with a 'font' file field, or the file "
                         "as the body)")
    return content, name


async def upload_font(request: web.Request) -> web.Response:
    principal = require_user(request)
    settings = request.config_dict[SETTINGS]
    async with receiving(request, idle_s=settings.upload_idle_timeout_s):
        content, original = await _read_upload(request)
    if not content:
        raise BadRequest("font file required (the body is empty)")
    facts = await asyncio.to_thread(inspect_font, content)
    db = request.config_dict[PLANS_KEY].db
    async with db.session() as s:
        count = await count_owned(s, Font, principal.user_id)
    if count >= MAX_FONTS:
        raise Conflict(f"an account has at most {MAX_FONTS} fonts; delete one first")
    name = await asyncio.to_thread(store_font, settings.data_dir, content, facts.ext)
    font = Font(id=f"font_{secrets.token_hex(8)}", user_id=principal.user_id, family=facts.family,
                style=facts.style, full_name=facts.full_name, file=name, format=facts.format,
                size_bytes=len(content), glyphs=facts.glyphs, coverage=facts.coverage,
                original_name=original or f"{facts.full_name}.{facts.ext}"[:255], created_at=int(time.time() * 1000))
    async with db.session() as s, s.begin():
        s.add(font)
    return web.json_response(font_json(font), status=201, headers=NO_STORE)


async def owned_font(request: web.Request, font_id: str, user_id: str) -> Font:
    """The account's font ``font_id``; NotFoundError (404) for a missing one and for another account's."""
    return await require_owned(request.config_dict, Font, font_id, user_id, "font")


async def list_fonts(request: web.Request) -> web.Response:
    principal = require_user(request)
    rows = await list_owned(request.config_dict, Font, principal.user_id)
    return web.json_response({"fonts": [font_json(f) for f in rows]}, headers=NO_STORE)


async def get_font(request: web.Request) -> web.Response:
    principal = require_user(request)
    font = await owned_font(request, request.match_info["font_id"], principal.user_id)
    return web.json_response(font_json(font), headers=NO_STORE)


async def font_file(request: web.Request) -> web.FileResponse:
    principal = require_user(request)
    font = await owned_font(request, request.match_info["font_id"], principal.user_id)
    path = fonts_dir(request.config_dict[SETTINGS].data_dir) / font.file
    if not path.is_file():
        raise NotFoundError("font file not found")
    return web.FileResponse(path, headers={"Content-Type": f"font/{'otf' if font.format == 'opentype' else 'ttf'}",
                                           "Cache-Control": "private, max-age=86400",
                                           "Content-Disposition": "attachment"})


async def delete_font(request: web.Request) -> web.Response:
    principal = require_user(request)
    font_id = request.match_info["font_id"]
    db = request.config_dict[PLANS_KEY].db
    async with db.session() as s, s.begin():
        font = await get_owned(s, Font, font_id, principal.user_id)
        if font is None:
            raise NotFoundError("font not found")
        styles = list(await s.scalars(select(CaptionStyleRecord).where(
            CaptionStyleRecord.user_id == principal.user_id)))
        using = [st.id for st in styles if (st.style or {}).get("font") == font_id]
        if using:
            raise Conflict(f"the font is used by saved style(s) {', '.join(using)}; change or delete them first")
        await s.delete(font)
        others = await s.scalar(select(func.count()).select_from(Font).where(Font.file == font.file,
                                                                             Font.id != font_id))
    if not others:
        await asyncio.to_thread(remove_font, request.config_dict[SETTINGS].data_dir, font.file)
    return web.json_response({"deleted": font_id}, headers=NO_STORE)


def setup(app: web.Application) -> None:
    app.router.add_get("/api/fonts", list_fonts)
    app.router.add_post("/api/fonts", upload_font)
    app.router.add_get(f"/api/fonts/{{font_id:{FONT_ID}}}", get_font)
    app.router.add_get(f"/api/fonts/{{font_id:{FONT_ID}}}/file", font_file)
    app.router.add_delete(f"/api/fonts/{{font_id:{FONT_ID}}}", delete_font)


