"""/api/fonts and /api/styles (issue 17 item 5, brand styles): per-account uploaded fonts and saved styles,
and a job's captionStyleId resolved at submit into the captionStyle the job carries.

In-process gateway (workers=0) whose job function records the options each job runs with.
"""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from argon2 import PasswordHasher

from engine.errors import InvalidOptions
from http_gateway.app import create_app
from http_gateway.auth import ACCOUNTS
from http_gateway.config import GatewaySettings
from http_gateway.routes.fonts import MAX_FONT_BYTES
from http_gateway.routes.styles import resolve_edit_style
from tests.stages.captions.font_maker import make_font

PASSWORD = "Correct-Horse-7"
VIDEO = Path(__file__).resolve().parents[1] / "media" / "face_static.mp4"
TTF = make_font("Brick Test")
OTF = make_font("Brick Cff", cff=True)

pytestmark = pytest.mark.timeout(120)


def run(job, source, out_dir, work, bus, cancel):
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "manifest.json").write_text('{"clipCount": 0, "clips": []}')
    return {"clipCount": 0}


class Gateway:
    def __init__(self, client: Any, data: Path, app: Any) -> None:
        self.client, self.data, self.app = client, data, app
        self.origin = {"Origin": f"http://{client.host}:{client.port}"}

    async def account(self, email: str) -> dict[str, str]:
        """A new account's API key header; its session cookie is left in the client's jar only until the next."""
        c = self.client
        self.client.session.cookie_jar.clear()
        r = await c.post("/api/auth/signup", json={"email": email, "password": PASSWORD}, headers=self.origin)
        assert r.status == 201, await r.text()
        key = (await (await c.post("/api/keys", json={"name": "k"}, headers=self.origin)).json())["key"]
        self.client.session.cookie_jar.clear()
        return {"X-API-Key": key}

    async def upload_font(self, auth: dict[str, str], content: bytes, *, multipart: bool = True,
                          filename: str = "Brand.ttf") -> tuple[int, dict[str, Any]]:
        if multipart:
            form = aiohttp.FormData()
            form.add_field("font", content, filename=filename, content_type="font/ttf")
            r = await self.client.post("/api/fonts", data=form, headers=auth)
        else:
            r = await self.client.post("/api/fonts", data=content,
                                       headers={**auth, "Content-Type": "application/octet-stream"})
        return r.status, await r.json()

    async def call(self, method: str, path: str, auth: dict[str, str], body: Any = None) -> tuple[int, Any]:
        r = await self.client.request(method, path, json=body, headers=auth)
        return r.status, await r.json()

    async def submit(self, auth: dict[str, str], options: str) -> tuple[int, dict[str, Any]]:
        form = aiohttp.FormData()
        form.add_field("options", options)
        form.add_field("video", VIDEO.read_bytes(), filename="v.mp4", content_type="video/mp4")
        r = await self.client.post("/api/upload", data=form, headers=auth)
        return r.status, await r.json()


@pytest.fixture
async def gw(aiohttp_client, tmp_path) -> Gateway:
    app = create_app(GatewaySettings(data_dir=tmp_path, workers=0), run=run)
    app[ACCOUNTS].hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    return Gateway(await aiohttp_client(app), tmp_path, app)


async def test_fonts_upload_list_get_file_and_are_the_accounts_own(gw: Gateway) -> None:
    ann, bob = await gw.account("ann@example.com"), await gw.account("bob@example.com")
    status, ttf = await gw.upload_font(ann, TTF)
    assert status == 201, ttf
    assert ttf["id"].startswith("font_") and (ttf["family"], ttf["style"], ttf["format"]) == (
        "Brick Test", "Regular", "truetype")
    assert ttf["sizeBytes"] == len(TTF) and ttf["originalName"] == "Brand.ttf" and ttf["glyphs"] > 60
    assert ttf["coverage"] == ["basic-latin"]
    status, otf = await gw.upload_font(ann, OTF, multipart=False)  # the raw file as the body
    assert status == 201 and otf["format"] == "opentype" and otf["family"] == "Brick Cff", otf
    # stored once per content under the data root, where workers look
    assert (gw.data / "fonts" / f"{hashlib.sha256(TTF).hexdigest()}.ttf").read_bytes() == TTF
    status, listed = await gw.call("GET", "/api/fonts", ann)
    assert status == 200 and [f["id"] for f in listed["fonts"]] == [ttf["id"], otf["id"]]
    assert (await gw.call("GET", f"/api/fonts/{ttf['id']}", ann)) == (200, ttf)
    r = await gw.client.get(ttf["fileUrl"], headers=ann)
    assert r.status == 200 and await r.read() == TTF and r.headers["Content-Type"] == "font/ttf"
    # another account: as unknown as a missing font
    assert (await gw.call("GET", "/api/fonts", bob)) == (200, {"fonts": []})
    for method, path in (("GET", f"/api/fonts/{ttf['id']}"), ("GET", f"/api/fonts/{ttf['id']}/file"),
                         ("DELETE", f"/api/fonts/{ttf['id']}"), ("GET", "/api/fonts/font_0000000000000000")):
        assert await gw.call(method, path, bob) == (404, {"error": "font not found"}), (method, path)
    # no credentials: 401, the spec's shape
    for method, path in (("GET", "/api/fonts"), ("POST", "/api/fonts"), ("GET", "/api/styles"),
                         ("POST", "/api/styles")):
        r = await gw.client.request(method, path)
        assert (r.status, await r.json()) == (401, {"error": "authentication required"})


@pytest.mark.parametrize("content, message", [
    (b"", "font file required"),
    (b"<html>not a font</html>", "not a TrueType or OpenType font"),
    (b"ttcf" + TTF[4:], "font collections"),
    (b"wOFF" + TTF[4:], "WOFF"),
    (TTF[:700], "could not be read"),
    (make_font("Abc Only", chars="ABC"), "no glyphs for basic Latin letters and digits"),
])
async def test_what_is_not_a_usable_font_is_400(gw: Gateway, content: bytes, message: str) -> None:
    ann = await gw.account("ann@example.com")
    status, body = await gw.upload_font(ann, content)
    assert status == 400 and message in body["error"] and set(body) == {"error"}, body
    assert not any((gw.data / "fonts").glob("*")) if (gw.data / "fonts").exists() else True


async def test_a_font_over_10_mib_is_413_declared_or_streamed(gw: Gateway) -> None:
    ann = await gw.account("ann@example.com")
    big = TTF + b"\0" * (MAX_FONT_BYTES + 1 - len(TTF))
    status, body = await gw.upload_font(ann, big, multipart=False)
    assert status == 413 and "10 MiB" in body["error"], body

    async def chunks():  # no Content-Length: counted as it arrives
        for _ in range(11):
            yield b"\0" * (1024 * 1024)

    r = await gw.client.post("/api/fonts", data=chunks(), headers={**ann, "Content-Type": "font/ttf"})
    assert r.status == 413 and "too large" in (await r.json())["error"]
    status, body = await gw.upload_font(ann, big)  # multipart
    assert status == 413, body


async def test_saved_styles_crud_validated_field_by_field(gw: Gateway) -> None:
    ann, bob = await gw.account("ann@example.com"), await gw.account("bob@example.com")
    _, font = await gw.upload_font(ann, TTF)
    _, bobs_font = await gw.upload_font(bob, OTF)
    bad = [
        ({"name": "x", "style": {"textColor": "red"}}, "invalid option 'style.textColor': got 'red'"),
        ({"name": "x", "style": {"size": 5}}, "'style.size'"),
        ({"name": "x", "style": {"bogus": 1}}, "unknown style field 'bogus'"),
        ({"name": "x", "style": {"font": "comic-sans"}}, "'style.font'"),
        ({"name": "x", "style": {"font": bobs_font["id"]}}, "invalid option 'style.font'"),
        ({"name": "x", "style": []}, "'style'"),
        ({"name": "x", "style": {}, "captionPreset": "fancy"}, "captionPreset"),
        ({"name": "", "style": {}}, "name must be"),
        ({"style": {}}, "name required"),
        ({"name": "x", "style": {}, "extra": 1}, "unknown field 'extra'"),
    ]
    for body, message in bad:
        status, got = await gw.call("POST", "/api/styles", ann, body)
        assert status == 400 and message in got["error"], (body, got)
    status, made = await gw.call("POST", "/api/styles", ann, {
        "name": "Brand", "style": {"font": font["id"], "textColor": "#FFD60A", "fontFile": "0" * 64 + ".ttf"},
        "captionPreset": "beasty"})
    assert status == 201, made
    assert made["id"].startswith("sty_") and made["style"] == {"font": font["id"], "textColor": "#FFD60A"}
    assert made["captionPreset"] == "beasty" and made["name"] == "Brand"
    sid = made["id"]
    assert (await gw.call("GET", "/api/styles", ann))[1]["styles"] == [made]
    assert await gw.call("GET", f"/api/styles/{sid}", ann) == (200, made)
    status, patched = await gw.call("PATCH", f"/api/styles/{sid}", ann, {"name": "Brand 2",
                                                                          "style": {"shadowColor": "#FF0000"}})
    assert status == 200 and patched["name"] == "Brand 2" and patched["style"] == {"shadowColor": "#FF0000"}
    assert patched["captionPreset"] == "beasty"  # not given: kept
    assert (await gw.call("PATCH", f"/api/styles/{sid}", ann, {"style": {"position": 2}}))[0] == 400
    status, put = await gw.call("PUT", f"/api/styles/{sid}", ann, {"name": "Brand 3", "style": {"uppercase": False}})
    assert status == 200 and put["captionPreset"] is None and put["style"] == {"uppercase": False}
    assert (await gw.call("PUT", f"/api/styles/{sid}", ann, {"name": "x"}))[0] == 400  # style required
    for method, body in (("GET", None), ("PATCH", {"name": "mine"}), ("PUT", {"name": "a", "style": {}}),
                         ("DELETE", None)):
        assert await gw.call(method, f"/api/styles/{sid}", bob, body) == (404, {"error": "style not found"})
    assert (await gw.call("GET", "/api/styles", bob))[1] == {"styles": []}
    assert await gw.call("DELETE", f"/api/styles/{sid}", ann) == (200, {"deleted": sid})
    assert (await gw.call("GET", f"/api/styles/{sid}", ann))[0] == 404


async def test_a_session_writes_styles_under_the_csrf_rules(gw: Gateway) -> None:
    c = gw.client
    r = await c.post("/api/auth/signup", json={"email": "cat@example.com", "password": PASSWORD}, headers=gw.origin)
    csrf = (await r.json())["csrfToken"]
    body = {"name": "Mine", "style": {"textColor": "#00FF00"}}
    r = await c.post("/api/styles", json=body)  # the cookie alone: no Origin, no token
    assert r.status == 403 and "CSRF" in (await r.json())["error"]
    r = await c.post("/api/styles", json=body, headers={"X-CSRF-Token": csrf})
    assert r.status == 201, await r.text()
    form = aiohttp.FormData()
    form.add_field("font", TTF, filename="b.ttf")
    r = await c.post("/api/fonts", data=form, headers=gw.origin)
    assert r.status == 201, await r.text()


async def test_a_font_in_use_is_409_and_its_file_goes_with_its_last_upload(gw: Gateway) -> None:
    ann, bob = await gw.account("ann@example.com"), await gw.account("bob@example.com")
    _, font = await gw.upload_font(ann, TTF)
    _, same = await gw.upload_font(bob, TTF)  # the same file, another account: one stored copy
    path = gw.data / "fonts" / f"{hashlib.sha256(TTF).hexdigest()}.ttf"
    _, style = await gw.call("POST", "/api/styles", ann, {"name": "B", "style": {"font": font["id"]}})
    status, body = await gw.call("DELETE", f"/api/fonts/{font['id']}", ann)
    assert status == 409 and style["id"] in body["error"]
    await gw.call("DELETE", f"/api/styles/{style['id']}", ann)
    assert await gw.call("DELETE", f"/api/fonts/{font['id']}", ann) == (200, {"deleted": font["id"]})
    assert path.is_file()  # bob's upload still names it
    assert (await gw.call("DELETE", f"/api/fonts/{same['id']}", bob))[0] == 200
    assert not path.exists()


async def test_submit_with_caption_style_id_carries_the_resolved_style(gw: Gateway) -> None:
    ann, bob = await gw.account("ann@example.com"), await gw.account("bob@example.com")
    _, font = await gw.upload_font(ann, TTF)
    _, bobs_font = await gw.upload_font(bob, OTF)
    _, style = await gw.call("POST", "/api/styles", ann, {
        "name": "Brand", "style": {"font": font["id"], "textColor": "#FFD60A", "size": 1.2},
        "captionPreset": "mozi"})
    file = f"{hashlib.sha256(TTF).hexdigest()}.ttf"
    # the saved style, with captionStyle's fields over it; its preset, as none was asked for
    status, job = await gw.submit(ann, f'{{"mode": "none", "captionStyleId": "{style["id"]}", '
                                       '"captionStyle": {"size": 1.5, "fontFile": "' + "0" * 64 + '.ttf"}}')
    assert status == 200, job
    want = {"font": font["id"], "textColor": "#FFD60A", "size": 1.5, "fontFile": file}
    assert job["options"]["captionStyle"] == want and job["options"]["captionPreset"] == "mozi"
    assert job["options"]["captionStyleId"] == style["id"]
    # a later edit of the saved style does not change the job
    await gw.call("PATCH", f"/api/styles/{style['id']}", ann, {"style": {"textColor": "#000000"}})
    status, stored = await gw.call("GET", f"/api/jobs/{job['jobId']}", ann)
    assert status == 200 and stored["options"]["captionStyle"] == want
    # captionPreset given: it wins over the saved style's
    status, job2 = await gw.submit(ann, f'{{"captionStyleId": "{style["id"]}", "captionPreset": "karaoke"}}')
    assert status == 200 and job2["options"]["captionPreset"] == "karaoke"
    assert job2["options"]["captionStyle"]["textColor"] == "#000000"
    # another account's style and font are unknown here: 400 naming the field
    status, body = await gw.submit(bob, f'{{"captionStyleId": "{style["id"]}"}}')
    assert status == 400 and body["error"].startswith("invalid option 'captionStyleId'"), body
    status, body = await gw.submit(bob, f'{{"captionStyle": {{"font": "{font["id"]}"}}}}')
    assert status == 400 and body["error"].startswith("invalid option 'captionStyle.font'"), body
    # a bundled font: no fontFile, whatever the client sent
    status, job3 = await gw.submit(bob, '{"captionStyle": {"font": "montserrat-black", "fontFile": "' + "1" * 64
                                   + '.ttf"}}')
    assert status == 200 and job3["options"]["captionStyle"] == {"font": "montserrat-black"}
    status, job4 = await gw.submit(bob, f'{{"captionStyle": {{"font": "{bobs_font["id"]}"}}}}')
    assert status == 200 and job4["options"]["captionStyle"]["fontFile"].endswith(".otf")
    for _ in range(100):  # the fake jobs end before the test does
        jobs = (await gw.call("GET", "/api/jobs", ann))[1]["jobs"]
        if all(j["status"] in ("completed", "failed") for j in jobs):
            break
        await asyncio.sleep(0.05)


async def test_a_rerender_edit_resolves_the_same_way(gw: Gateway) -> None:
    ann = await gw.account("ann@example.com")
    await gw.account("bob@example.com")
    _, font = await gw.upload_font(ann, TTF)
    _, style = await gw.call("POST", "/api/styles", ann, {"name": "B", "style": {"font": font["id"]},
                                                          "captionPreset": "beasty"})
    users = {}
    for email in ("ann@example.com", "bob@example.com"):
        users[email] = (await gw.app[ACCOUNTS].user_by_email(email)).id
    edit = await resolve_edit_style(gw.app, users["ann@example.com"], {"captionStyleId": style["id"], "end": 3.0})
    assert edit == {"end": 3.0, "captionPreset": "beasty",
                    "captionStyle": {"font": font["id"], "fontFile": f"{hashlib.sha256(TTF).hexdigest()}.ttf"}}
    with pytest.raises(InvalidOptions, match="captionStyle.font"):
        await resolve_edit_style(gw.app, users["bob@example.com"], {"captionStyle": {"font": font["id"]}})
    assert await resolve_edit_style(gw.app, users["bob@example.com"], {"end": 2.0}) == {"end": 2.0}
