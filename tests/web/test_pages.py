"""The pages as HTTP sees them (no browser): who gets which page, the headers, what the docs
and the dashboard are built from, and that every asset a page names is served and packaged."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from typing import Any

import aiohttp
import pytest

from engine.options import ProcessOptions
from http_gateway.openapi import build_document
from http_gateway.web import STATIC_DIR
from http_gateway.web.docs import api_reference, curl_example, type_label
from tests.http_gateway.conftest import PASSWORD, LiveServer

PUBLIC = ("/login", "/signup", "/docs", "/billing")
PRIVATE = ("/", "/keys", "/jobs/abcdefgh12")


class Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def tags_of(html: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = Tags()
    parser.feed(html)
    return parser.tags


@pytest.fixture
async def client(web_server: LiveServer) -> AsyncIterator[aiohttp.ClientSession]:
    """A cookie-keeping client of the real server (one per test: a fresh, signed-out browser)."""
    async with aiohttp.ClientSession(base_url=web_server.url, cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        yield session


async def sign_up(client: aiohttp.ClientSession) -> str:
    email = f"pages-{uuid.uuid4().hex[:8]}@example.com"
    origin = str(client._base_url).rstrip("/")
    r = await client.post("/api/auth/signup", json={"email": email, "password": PASSWORD}, headers={"Origin": origin})
    assert r.status == 201
    return email


def assert_page_headers(headers: Any) -> None:
    csp = headers["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["default-src"] == "'none'" and directives["script-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'" and "unsafe" not in csp
    assert headers["Cache-Control"] == "no-store" and headers["X-Frame-Options"] == "DENY"


async def test_signed_out_visitors_get_public_pages_and_go_to_login_for_the_rest(client: aiohttp.ClientSession) -> None:
    for path in PUBLIC:
        r = await client.get(path)
        assert r.status == 200 and r.content_type == "text/html", path
        assert_page_headers(r.headers)
    for path in PRIVATE:
        r = await client.get(path, allow_redirects=False)
        assert r.status == 302 and r.headers["Location"] == f"/login?next={path}", path


async def test_signed_in_pages_and_login_bounces_back(client: aiohttp.ClientSession) -> None:
    email = await sign_up(client)
    for path in ("/", "/keys", "/billing", "/docs"):
        r = await client.get(path)
        assert r.status == 200, path
        html = await r.text()
        assert email in html and 'name="csrf-token"' in html
        assert_page_headers(r.headers)
    r = await client.get("/login?next=/keys", allow_redirects=False)
    assert (r.status, r.headers["Location"]) == (302, "/keys")
    r = await client.get("/jobs/abcdefgh12")  # no such job: a page that says so
    assert r.status == 404 and "Job not found" in await r.text()


async def test_next_only_leads_to_this_site(client: aiohttp.ClientSession) -> None:
    for evil in ("//evil.example/x", "https://evil.example/", "/\\evil.example", "javascript:alert(1)"):
        r = await client.get("/login", params={"next": evil})
        form = next(a for t, a in tags_of(await r.text()) if t == "form")
        assert form["data-next"] == "/", evil
    r = await client.get("/login", params={"next": "/jobs/abc123DEF45"})
    assert next(a for t, a in tags_of(await r.text()) if t == "form")["data-next"] == "/jobs/abc123DEF45"


async def test_pages_have_no_inline_script_or_style_and_every_asset_is_served(client: aiohttp.ClientSession) -> None:
    await sign_up(client)
    assets: set[str] = set()
    for path in ("/", "/keys", "/billing", "/docs", "/login"):
        html = await (await client.get(path)).text()
        for tag, attrs in tags_of(html):
            assert "style" not in attrs, (path, tag)  # style-src 'self' would refuse it
            assert not any(name.startswith("on") for name in attrs), (path, tag)
            if tag == "script":
                assert attrs.get("src", "").startswith("/static/"), (path, attrs)
            for name in ("src", "href"):
                if (attrs.get(name) or "").startswith("/static/"):
                    assets.add(str(attrs[name]))
    assert "<script>" not in html
    for js in STATIC_DIR.glob("js/*.js"):  # what modules import, unversioned
        for imported in re.findall(r'from "\./([\w.]+)"', js.read_text()):
            assets.add(f"/static/js/{imported}")
    assert len(assets) >= 8
    for url in sorted(assets):
        r = await client.get(url)
        assert r.status == 200, url
        if url.split("?")[0].endswith(".js"):
            assert "javascript" in r.content_type, url
    css = (STATIC_DIR / "app.css").read_text()
    for font in re.findall(r'url\("(/fonts/[^"]+)"\)', css):
        assert (await client.get(font)).status == 200, font


async def test_the_dashboard_has_a_labelled_control_for_every_option(client: aiohttp.ClientSession) -> None:
    await sign_up(client)
    tags = tags_of(await (await client.get("/")).text())
    labelled = {a.get("for") for t, a in tags if t == "label"}
    defaults = ProcessOptions().to_json()
    for name, default in defaults.items():
        names = lambda a: (a.get("name"), a.get("data-option"), a.get("id"))  # noqa: E731
        controls = [(t, a) for t, a in tags if t in ("input", "select", "textarea") and name in names(a)]
        assert controls, f"no control for option {name}"
        tag, attrs = controls[0]
        if attrs.get("type") == "radio":
            checked = [a["value"] for t, a in controls if "checked" in a]
            assert checked == [default], name
        elif attrs.get("type") == "checkbox":
            assert ("checked" in attrs) is default, name
            continue  # wrapped in its <label>
        elif attrs.get("type") == "number":
            assert (attrs.get("value") or None) == (None if default is None else str(default)), name
        if attrs.get("type") != "radio":
            assert attrs["id"] in labelled, f"{name} has no <label for>"
    selected = {a.get("value") for t, a in tags if t == "option" and "selected" in a}
    assert {defaults["clipLength"], defaults["genre"]} <= selected


async def test_docs_are_built_from_the_openapi_document_with_the_readers_host(client: aiohttp.ClientSession) -> None:
    html = await (await client.get("/docs", headers={"Host": "clips.example.com:8443"})).text()
    doc = build_document()
    for path, ops in doc["paths"].items():
        for method in ops:
            assert f'id="{method}-' in html and f"<code>{path}</code>" in html, (method, path)
    assert "curl -X POST http://clips.example.com:8443/api/upload \\" in html
    assert "-H &#34;X-API-Key: $CLIPORA_API_KEY&#34;" in html
    for field in ProcessOptions.model_json_schema(by_alias=True)["properties"]:
        assert f"<code>{field}</code>" in html, field


def test_reference_follows_refs_and_new_routes() -> None:
    doc = build_document()
    assert type_label({"anyOf": [{"type": "number"}, {"type": "null"}]}, doc) == "number | null"
    assert type_label({"$ref": "#/components/schemas/ProcessOptions"}, doc) == "object"
    doc["paths"]["/api/things/{jobId}"] = {"post": {
        "summary": "A new route", "tags": ["jobs"], "responses": {"200": {"description": "OK"}},
        "parameters": [{"name": "jobId", "in": "path", "required": True, "schema": {"type": "string"}}],
        "requestBody": {"content": {"application/json": {"schema": {
            "type": "object", "required": ["count"], "properties": {"count": {"type": "integer", "minimum": 2}}}}}}}}
    ref = api_reference(doc, "https://h.example")
    op = next(o for s in ref.sections for o in s.operations if o.path == "/api/things/{jobId}")
    assert op.curl == ("curl -X POST https://h.example/api/things/JOB_ID \\\n"
                       '  -H "X-API-Key: $CLIPORA_API_KEY" \\\n'
                       '  -H "Content-Type: application/json" \\\n'
                       "  -d '{\"count\":2}'")
    keys = doc["paths"]["/api/keys"]["post"]
    assert "-b jar" in curl_example("post", "/api/keys", keys, doc, "http://h") and "X-API-Key" not in \
        curl_example("post", "/api/keys", keys, doc, "http://h")
