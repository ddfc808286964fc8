"""The clip editor on the job page, in real Chromium against the real server: trim with the handles,
click a word to correct it, pick another caption style, "Render again" with live progress, then the
new version plays (its URL carries ?v=2) and the card lists the earlier version."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.http_gateway.conftest import LiveServer, new_account, upload, wait_for_job
from tests.web.conftest import DESKTOP, Console, shoot

VIDEO = Path(__file__).resolve().parents[1] / "media" / "speech_topics.mp4"
OPTIONS = json.dumps({"mode": "none", "trimEnd": 12, "captionPreset": "beasty", "aspectRatio": "9:16"})

pytestmark = pytest.mark.slow


async def _finished(base: str) -> tuple[Any, str]:
    account = await new_account(base, "cutter@example.com")
    status, body = await upload(base, account.key, VIDEO, OPTIONS)
    assert status == 200, body
    job = await wait_for_job(base, account.key, body["jobId"], timeout_s=240)
    assert job["status"] == "completed", job
    return account, job["id"]


def test_edit_a_clip_and_render_it_again(browser: Any, web_server: LiveServer, artifacts: Path) -> None:
    base = web_server.url
    # Playwright's sync API holds this thread's event loop: the API client runs in a thread of its own
    with ThreadPoolExecutor(1) as pool:
        account, job_id = pool.submit(asyncio.run, _finished(base)).result()
    context = browser.new_context(viewport=DESKTOP)
    context.add_cookies([{"name": "reels_session", "value": account.cookies["reels_session"], "url": base}])
    page = context.new_page()
    console = Console()
    console.attach(page)
    page.goto(f"{base}/jobs/{job_id}")
    card = page.locator("#clip-01")
    card.wait_for()
    original = card.locator("video").get_attribute("src") or ""
    assert original.endswith("/clip_01.mp4")

    card.get_by_role("button", name="Edit clip 1").click()
    editor = page.locator("#editor")
    editor.get_by_role("heading", name="Edit clip 1").wait_for()
    words = editor.locator("#editor-words .word")
    words.nth(5).wait_for()
    assert words.count() >= 10
    assert editor.locator("#editor-version").text_content() == "Version 1"

    # trim: the start handle moved with the keyboard (as a user would), the end from a word's menu
    start = editor.get_by_label("Start", exact=True)
    start.focus()
    for _ in range(150):
        page.keyboard.press("ArrowRight")  # 0.01 s a step
    assert abs(float(start.input_value()) - 1.5) < 0.05
    words.nth(words.count() - 4).click()
    word_dialog = page.locator("#word-dialog")
    word_dialog.get_by_role("button", name="End clip here").click()
    # correct a word inside the clip
    inside = editor.locator("#editor-words .word.in")
    target = inside.nth(2)
    heard = target.text_content()
    target.click()
    word_dialog.get_by_label("Text shown in the captions").fill("Zebra")
    word_dialog.get_by_role("button", name="Save word").click()
    assert editor.locator("#editor-words .word.fixed").text_content() == "Zebra"
    editor.get_by_label("Caption style").select_option("karaoke")
    shoot(page, artifacts, "clip-editor-desktop")

    editor.get_by_role("button", name="Render again").click()
    editor.locator("#editor-progress").wait_for(state="visible")
    expect(editor.locator("#editor-version")).to_have_text("Version 2", timeout=180_000)
    assert editor.locator("#editor-progress").is_hidden()
    new_src = editor.locator("#editor-video").get_attribute("src") or ""
    assert new_src.endswith("/clip_01.mp4?v=2")
    # the new version plays in the editor and on the card, which lists the earlier one
    for _ in range(300):  # (wait_for_function evaluates strings, which the page's CSP forbids)
        if page.evaluate("() => document.querySelector('#editor-video').readyState") >= 2:
            break
        page.wait_for_timeout(100)
    assert page.evaluate("() => document.querySelector('#editor-video').duration") > 1.0
    editor.get_by_role("button", name="Close").click()
    card = page.locator("#clip-01")
    assert (card.locator("video").get_attribute("src") or "").endswith("?v=2")
    assert "Version 2" in (card.locator(".clip-versions").text_content() or "")
    assert card.get_by_role("link", name="Download version 1 of clip 1").get_attribute("href", timeout=5000) \
        .endswith("/clip_01.v1.mp4")

    # the server has it: the edit, the correction in the transcript, the karaoke captions
    request = urllib.request.Request(f"{base}/api/clips/{job_id}", headers={"X-API-Key": account.key})
    with urllib.request.urlopen(request, timeout=10) as r:
        clip = json.loads(r.read())["clips"][0]
    assert clip["edit"]["captionPreset"] == "karaoke" and {"text": "Zebra"}.items() <= clip["edit"]["words"][0].items()
    assert "Zebra" in clip["transcript"] and heard not in clip["transcript"].split()
    assert abs(clip["start"] - 1.5) < 0.3 and clip["end"] - clip["start"] >= 1.0
    shoot(page, artifacts, "clip-edited-desktop")
    # a render's own page is its job's
    request = urllib.request.Request(f"{base}/api/clips/{job_id}/1/edit", headers={"X-API-Key": account.key})
    with urllib.request.urlopen(request, timeout=10) as r:
        renders = json.loads(r.read())["renders"]
    assert [x["status"] for x in renders] == ["completed"]
    page.goto(f"{base}/jobs/{renders[0]['id']}")
    assert page.url == f"{base}/jobs/{job_id}"
    assert console.errors == []
    context.close()
