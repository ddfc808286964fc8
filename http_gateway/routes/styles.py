"""/api/styles: an account's saved caption styles, used as a job's ``captionStyleId``; and the submit-time rule
that turns captionStyleId and uploaded fonts into what the job carries.

- ``POST /api/styles`` ``{"name": "Brand", "style": {captionStyle fields}, "captionPreset": "beasty"}``
  (captionPreset optional, null: the job's own): 201 with the style, id ``sty_…``. ``style`` is validated by
  the same model as a job's captionStyle (engine.options.CaptionStyleOptions), its errors named
  ``style.<field>``; ``style.font`` may name one of the account's uploaded fonts (``font_…``; 400 otherwise).
- ``GET /api/styles``, ``GET /api/styles/{id}``; ``PATCH /api/styles/{id}`` (any of name, style — replaced
  whole —, captionPreset); ``PUT /api/styles/{id}`` (name and style, the whole style); ``DELETE
  /api/styles/{id}``. Another account's style is 404. API key or browser session, as the job routes.

**At submit** (:func:`resolve_caption_style`, for uploads, URL jobs and MCP's create_clips alike): a
``captionStyleId`` is looked up in the account (400 ``captionStyleId`` when it has no such style) and its style
copied into the job's ``captionStyle``; ``captionStyle`` fields sent with it override the saved style's, field by
field; the saved ``captionPreset`` applies unless the request sets ``captionPreset``. The job keeps the id only
as a record of where its style came from: editing or deleting the saved style later changes no job. An
uploaded ``captionStyle.font`` must be the account's (400 ``captionStyle.font``); the gateway then sets
``captionStyle.fontFile`` to the font's content address (``<sha256>.ttf|otf`` under the data root's fonts/),
which is what the worker opens; a ``fontFile`` a client sends is always replaced. A clip re-render's edit
(POST /api/clips/{jobId}/{index}/render) passes the same rule: its captionStyle's font, and a captionStyleId.
"""

from __future__ import annotations

import re
import secrets
import time
from typing import Any, get_args

from aiohttp import web

from engine.errors import InvalidOptions
from engine.options import CaptionPreset, CaptionStyleOptions, ProcessOptions
from http_gateway.auth import require_user
from http_gateway.bodies import JSON_BODY_LIMIT, json_object
from http_gateway.errors import BadRequest, Conflict, NotFoundError
from http_gateway.models import CaptionStyleRecord, Font
from http_gateway.plans import PLANS_KEY
from http_gateway.routes.owned import AppState, count_owned, find_owned, list_owned, require_owned

MAX_STYLES = 50  # per account
MAX_NAME = 100
NO_STORE = {"Cache-Control": "no-store"}
STYLE_ID = r"sty_[0-9a-f]{16}"
FIELDS = ("name", "style", "captionPreset")
PRESETS = get_args(CaptionPreset)


def style_json(r: CaptionStyleRecord) -> dict[str, Any]:
    return {"id": r.id, "name": r.name, "style": dict(r.style or {}), "captionPreset": r.caption_preset,
            "createdAt": r.created_at, "updatedAt": r.updated_at}


# -- the submit-time rule ---------------------------------------------------------------------------------


async def with_font_file(app: AppState, user_id: str, style: CaptionStyleOptions,
                         where: str = "captionStyle") -> CaptionStyleOptions:
    """``style`` with ``fontFile`` as the server decides it: the account's uploaded font's file for ``font:
    font_…`` (InvalidOptions naming ``where.font`` when the account has no such font), else none."""
    data = style.to_json()
    data.pop("fontFile", None)
    if style.uploaded_font:
        font = await find_owned(app, Font, style.uploaded_font, user_id)
        if font is None:
            raise InvalidOptions(f"invalid option '{where}.font': got {style.uploaded_font!r}, but this account has "
                                 "no uploaded font with that id (GET /api/fonts lists them)", field=f"{where}.font")
        data["fontFile"] = font.file
    return CaptionStyleOptions.model_validate(data)


async def saved_style(app: AppState, user_id: str, style_id: str) -> CaptionStyleRecord | None:
    return await find_owned(app, CaptionStyleRecord, style_id, user_id)


async def _merged(app: AppState, user_id: str, style_id: str | None, style: CaptionStyleOptions | None,
                  where: str) -> tuple[CaptionStyleOptions | None, str | None]:
    """(the captionStyle: the saved style's fields under ``style``'s, the saved captionPreset or None)."""
    if style_id is None:
        return style, None
    record = await saved_style(app, user_id, style_id)
    if record is None:
        raise InvalidOptions(f"invalid option '{where}': got {style_id!r}, but this account has no saved style "
                             "with that id (GET /api/styles lists them)", field=where)
    merged = dict(record.style or {}) | (style.to_json() if style is not None else {})
    return CaptionStyleOptions.from_json(merged), record.caption_preset


async def resolve_caption_style(app: AppState, user_id: str, options: ProcessOptions) -> ProcessOptions:
    """The options a job is stored with: captionStyleId's saved style in captionStyle (see the module's rule)
    and an uploaded font's file in captionStyle.fontFile. InvalidOptions (400) naming the field otherwise."""
    if options.caption_style is None and options.caption_style_id is None:
        return options
    style, preset = await _merged(app, user_id, options.caption_style_id, options.caption_style, "captionStyleId")
    changes: dict[str, Any] = {}
    if style is not None:
        changes["caption_style"] = await with_font_file(app, user_id, style)
    if preset is not None and "caption_preset" not in options.model_fields_set:
        changes["caption_preset"] = preset
    return options.model_copy(update=changes)


async def resolve_edit_style(app: AppState, user_id: str, body: dict[str, Any]) -> dict[str, Any]:
    """A re-render's edit (JSON) with the same rule: ``captionStyleId`` (not a ClipEdit field) becomes its
    captionStyle (and captionPreset unless the edit sets one), and an uploaded font its fontFile."""
    style_id, raw = body.get("captionStyleId"), body.get("captionStyle")
    if style_id is None and not isinstance(raw, dict):
        return body  # a captionStyleId of null is left for ClipEdit to refuse, as any unknown field
    if style_id is not None and not (isinstance(style_id, str) and _is_style_id(style_id)):
        raise InvalidOptions(f"invalid edit field 'captionStyleId': got {style_id!r}, expected the id of a saved "
                             "style (sty_ and 16 hex digits)", field="captionStyleId")
    style = CaptionStyleOptions.from_json(raw) if isinstance(raw, dict) else None
    style, preset = await _merged(app, user_id, style_id, style, "captionStyleId")
    out = {k: v for k, v in body.items() if k != "captionStyleId"}
    if style is not None:
        out["captionStyle"] = (await with_font_file(app, user_id, style)).to_json()
    if preset is not None and "captionPreset" not in body:
        out["captionPreset"] = preset
    return out


def _is_style_id(value: str) -> bool:
    return re.fullmatch(STYLE_ID, value) is not None


# -- the routes ---------------------------------------------------------------------------------------------


def _name(value: Any) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_NAME \
            or any(not c.isprintable() for c in value):
        raise BadRequest(f"name must be printable text of 1 to {MAX_NAME} characters")
    return value.strip()


def _preset(value: Any) -> str | None:
    if value is not None and value not in PRESETS:
        raise InvalidOptions(f"invalid option 'captionPreset': got {value!r}, expected "
                             f"{', '.join(repr(p) for p in PRESETS)} or null", field="captionPreset")
    return value


async def _style(request: web.Request, user_id: str, value: Any) -> dict[str, Any]:
    style = CaptionStyleOptions.from_json(value, "style")  # errors name style.<field>
    checked = await with_font_file(request.config_dict, user_id, style, "style")
    data = checked.to_json()
    data.pop("fontFile", None)  # the font is looked up again at each submit, by its id
    return data


async def _body(request: web.Request, *, required: tuple[str, ...]) -> dict[str, Any]:
    body = await json_object(request, limit=JSON_BODY_LIMIT, not_json="the body is not valid JSON",
                             not_object='the body must be a JSON object: {"name": "…", "style": {…}}')
    unknown = [k for k in body if k not in FIELDS]
    if unknown:
        raise BadRequest(f"unknown field '{unknown[0]}' (known: {', '.join(FIELDS)})")
    for k in required:
        if k not in body:
            raise BadRequest(f"{k} required")
    return body


async def owned_style(request: web.Request, user_id: str) -> CaptionStyleRecord:
    """The account's style named in the path; 404 for a missing one and for another account's alike."""
    return await require_owned(request.config_dict, CaptionStyleRecord, request.match_info["style_id"], user_id,
                               "style")


async def list_styles(request: web.Request) -> web.Response:
    principal = require_user(request)
    rows = await list_owned(request.config_dict, CaptionStyleRecord, principal.user_id)
    return web.json_response({"styles": [style_json(r) for r in rows]}, headers=NO_STORE)


async def create_style(request: web.Request) -> web.Response:
    principal = require_user(request)
    body = await _body(request, required=("name", "style"))
    name, preset = _name(body["name"]), _preset(body.get("captionPreset"))
    style = await _style(request, principal.user_id, body["style"])
    now = int(time.time() * 1000)
    record = CaptionStyleRecord(id=f"sty_{secrets.token_hex(8)}", user_id=principal.user_id, name=name, style=style,
                                caption_preset=preset, created_at=now, updated_at=now)
    async with request.config_dict[PLANS_KEY].db.session() as s, s.begin():
        if await count_owned(s, CaptionStyleRecord, principal.user_id) >= MAX_STYLES:
            raise Conflict(f"an account has at most {MAX_STYLES} saved styles; delete one first")
        s.add(record)
    return web.json_response(style_json(record), status=201, headers=NO_STORE)


async def get_style(request: web.Request) -> web.Response:
    principal = require_user(request)
    return web.json_response(style_json(await owned_style(request, principal.user_id)), headers=NO_STORE)


async def update_style(request: web.Request) -> web.Response:
    """PATCH: the fields given; PUT: name and style required, captionPreset null when left out."""
    principal = require_user(request)
    whole = request.method == "PUT"
    record = await owned_style(request, principal.user_id)
    body = await _body(request, required=("name", "style") if whole else ())
    changes: dict[str, Any] = {}
    if "name" in body:
        changes["name"] = _name(body["name"])
    if "captionPreset" in body or whole:
        changes["caption_preset"] = _preset(body.get("captionPreset"))
    if "style" in body:
        changes["style"] = await _style(request, principal.user_id, body["style"])
    async with request.config_dict[PLANS_KEY].db.session() as s, s.begin():
        current = await s.get(CaptionStyleRecord, record.id)
        if current is None:
            raise NotFoundError("style not found")
        for k, v in changes.items():
            setattr(current, k, v)
        current.updated_at = int(time.time() * 1000)
        record = current
    return web.json_response(style_json(record), headers=NO_STORE)


async def delete_style(request: web.Request) -> web.Response:
    principal = require_user(request)
    record = await owned_style(request, principal.user_id)
    async with request.config_dict[PLANS_KEY].db.session() as s, s.begin():
        current = await s.get(CaptionStyleRecord, record.id)
        if current is not None:
            await s.delete(current)
    return web.json_response({"deleted": record.id}, headers=NO_STORE)


def setup(app: web.Application) -> None:
    app.router.add_get("/api/styles", list_styles)
    app.router.add_post("/api/styles", create_style)
    path = f"/api/styles/{{style_id:{STYLE_ID}}}"
    app.router.add_get(path, get_style)
    app.router.add_patch(path, update_style)
    app.router.add_put(path, update_style)
    app.router.add_delete(path, delete_style)
