"""The dashboard's brand style, in real Chromium against the real server: upload a font, style the captions
(the live preview on the preset's sample follows: font, colours, position), save the style, pick it again
after a reload, and submit a job with it: the job carries the saved style, resolved at submit."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.http_gateway.conftest import LiveServer, new_account
from tests.stages.captions.font_maker import make_font
from tests.web.conftest import DESKTOP, PHONE, Console, shoot

VIDEO = Path(__file__).resolve().parents[1] / "media" / "face_static.mp4"

pytestmark = pytest.mark.slow


def _api(base: str, path: str, key: str) -> Any:
    with urllib.request.urlopen(urllib.request.Request(f"{base}{path}", headers={"X-API-Key": key}), timeout=10) as r:
        return json.loads(r.read())


def _preview(page: Any) -> dict[str, Any]:
    return page.evaluate("""() => {
        const c = document.querySelector('#preview-caption');
        const frame = document.querySelector('#style-preview').getBoundingClientRect();
        const box = c.getBoundingClientRect();
        const words = [...c.querySelectorAll('.w')].map((w) => ({
            text: w.textContent, accent: w.classList.contains('on') || w.classList.contains('key'),
            color: getComputedStyle(w).color, shadow: getComputedStyle(w).textShadow, hidden: w.hidden}));
        return {family: getComputedStyle(c).fontFamily, words,
                centre: (box.top + box.height / 2 - frame.top) / frame.height, style: c.dataset.style};
    }""")


def test_upload_a_font_style_save_pick_and_submit(browser: Any, web_server: LiveServer, artifacts: Path) -> None:
    base = web_server.url
    with ThreadPoolExecutor(1) as pool:  # Playwright's sync API holds this thread's event loop
        account = pool.submit(asyncio.run, new_account(base, "brand@example.com")).result()
    context = browser.new_context(viewport=DESKTOP)
    context.add_cookies([{"name": "reels_session", "value": account.cookies["reels_session"], "url": base}])
    page = context.new_page()
    console = Console()
    console.attach(page)
    page.goto(f"{base}/")
    section = page.locator("#brand-style")
    section.wait_for()

    # a font: uploaded from the file control, listed, and put in the changes
    page.set_input_files("#font-file", files=[{"name": "Brick.ttf", "mimeType": "font/ttf",
                                                "buffer": make_font("Brick Test")}])
    expect(page.locator("#font-list li")).to_have_count(1)
    expect(page.locator("#font-list .font-name")).to_have_text("Brick Test Regular")
    font_id = _api(base, "/api/fonts", account.key)["fonts"][0]["id"]
    changes = page.get_by_label("Changes (JSON)")
    expect(changes).to_have_value(json.dumps({"font": font_id}, separators=(",", ":")))

    # the style, on beasty's sample: the preview follows every change
    page.locator(".preset-choice", has_text="Beasty").click()
    changes.fill(json.dumps({"font": font_id, "textColor": "#00FF00", "highlightColor": "#FF00FF",
                             "shadowColor": "#FF0000", "position": 0.3}))
    for _ in range(100):  # the uploaded face loads in the page (document.fonts)
        if page.evaluate(f"() => document.fonts.check('16px \"clipora-{font_id}\"')"):
            break
        page.wait_for_timeout(100)
    assert page.evaluate(f"() => document.fonts.check('16px \"clipora-{font_id}\"')")
    seen = _preview(page)
    assert f"clipora-{font_id}" in seen["family"]
    assert [w["color"] for w in seen["words"]] == ["rgb(0, 255, 0)", "rgb(255, 0, 255)"]  # "The", "secret" (active)
    assert all("rgb(255, 0, 0)" in w["shadow"] for w in seen["words"])
    assert abs(seen["centre"] - 0.3) < 0.06
    changes.fill('{"position": 0.8')  # not JSON yet: the preview leaves the changes out, and says so
    expect(page.locator("#style-status")).to_contain_text("not a JSON object")
    changes.fill(json.dumps({"font": font_id, "textColor": "#00FF00", "shadowColor": "#FF0000", "position": 0.3}))
    shoot(page, artifacts, "brand-style-desktop")

    # saved: it is in the picker, chosen, and the changes are cleared (the preview keeps the look)
    page.get_by_label("Name for the current style").fill("Brand")
    page.get_by_role("button", name="Save style").click()
    picker = page.get_by_label("Saved style")
    expect(picker.locator("option", has_text="Brand (beasty)")).to_have_count(1)
    expect(changes).to_have_value("")
    style_id = picker.input_value()
    assert style_id.startswith("sty_")
    assert _preview(page)["words"][0]["color"] == "rgb(0, 255, 0)"

    # after a reload: pick it, and its preset comes with it
    page.reload()
    expect(page.locator("#opt-captionStyleId option", has_text="Brand (beasty)")).to_have_count(1)
    assert page.locator('input[name="captionPreset"][value="none"]').is_checked()
    picker.select_option(style_id)
    assert page.locator('input[name="captionPreset"][value="beasty"]').is_checked()
    seen = _preview(page)
    assert seen["words"][0]["color"] == "rgb(0, 255, 0)" and abs(seen["centre"] - 0.3) < 0.06
    changes.fill('{"textColor": "#FFFFFF"}')  # a change over the saved style
    assert _preview(page)["words"][0]["color"] == "rgb(255, 255, 255)"
    page.set_viewport_size(PHONE)
    section.scroll_into_view_if_needed()
    page.screenshot(path=str(artifacts / "brand-style-phone.png"))
    assert page.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"]  # nothing sideways
    page.set_viewport_size(DESKTOP)

    # submit: the job carries the saved style, the change over it, and the font's file
    page.set_input_files("#video", str(VIDEO))
    page.locator(".segmented label, label", has_text="Whole video").first.click()
    page.get_by_label("Trim end in seconds (empty: to the end)").fill("2")
    page.get_by_role("button", name="Create clips").click()
    for _ in range(100):
        jobs = _api(base, "/api/jobs", account.key)["jobs"]
        if jobs:
            break
        page.wait_for_timeout(100)
    assert len(jobs) == 1
    options = _api(base, f"/api/jobs/{jobs[0]['id']}", account.key)["options"]
    assert options["captionStyleId"] == style_id and options["captionPreset"] == "beasty"
    style = options["captionStyle"]
    assert style["font"] == font_id and style["textColor"] == "#FFFFFF" and style["shadowColor"] == "#FF0000"
    assert style["position"] == 0.3 and style["fontFile"].endswith(".ttf")
    assert console.errors == []
