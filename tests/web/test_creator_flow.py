"""The creator's whole way through the web app, in real Chromium against the real server.

sign up -> create a key (shown once) -> upload a video with non-default options -> watch it
complete live (no reload) -> play a clip -> download it -> revoke the key -> log out.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from engine.options import ProcessOptions
from tests.http_gateway.conftest import PASSWORD, LiveServer
from tests.web.conftest import DESKTOP, PHONE, Console, shoot

MEDIA = Path(__file__).resolve().parents[1] / "media"
VIDEO = MEDIA / "face_static.mp4"  # 10 s, a face and two spoken sentences
EMAIL = "creator@example.com"
JOB_TIMEOUT_MS = 180_000

pytestmark = pytest.mark.slow


def api_get(base: str, path: str, key: str) -> tuple[int, Any]:
    request = urllib.request.Request(f"{base}{path}", headers={"X-API-Key": key})
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def test_sign_up_key_upload_watch_play_download_revoke_logout(browser: Any, web_server: LiveServer,
                                                               artifacts: Path) -> None:
    base = web_server.url
    context = browser.new_context(viewport=DESKTOP, accept_downloads=True)
    page = context.new_page()
    console = Console()
    console.attach(page)

    # signed out, the dashboard sends you to the login page; pages carry a strict CSP
    response = page.goto(f"{base}/")
    assert page.url == f"{base}/login?next=/"
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "default-src 'none'" in csp and "unsafe-inline" not in csp

    # sign up
    page.get_by_role("link", name="Create an account").click()
    page.wait_for_url(f"{base}/signup")
    shoot(page, artifacts, "signup-desktop")
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    page.wait_for_url(f"{base}/")
    assert page.get_by_text(EMAIL).is_visible()

    # create a key: the plaintext once, with a warning; it works against the API
    page.get_by_role("link", name="API keys").click()
    page.wait_for_url(f"{base}/keys")
    page.get_by_label("Name").fill("ci laptop")
    page.get_by_role("button", name="Create key").click()
    secret = page.locator("#new-key-value")
    secret.wait_for()
    key = secret.text_content() or ""
    assert re.fullmatch(r"ck_live_[A-Za-z0-9_-]{43}", key), key
    assert page.get_by_text("You won't see it again").is_visible()
    row = page.locator("tr", has_text="ci laptop")
    row.get_by_text("active").wait_for()  # the list is re-read after the create: wait for its row
    assert key[:12] in (row.text_content() or "")
    shoot(page, artifacts, "keys-created-desktop")
    assert api_get(base, "/api/jobs", key) == (200, {"jobs": []})
    page.reload()
    page.locator("tr", has_text="ci laptop").wait_for()
    assert page.locator("#new-key").is_hidden()
    assert key not in page.content()

    # upload with non-default options, chosen by label as a user would
    page.get_by_role("link", name="Dashboard").click()
    page.wait_for_url(f"{base}/")
    page.evaluate("window.__sameDocument = true")  # gone if anything reloads the page
    page.evaluate("""() => {
        window.__statuses = [];
        new MutationObserver(() => {
            for (const li of document.querySelectorAll('#job-list li[data-status]')) {
                const last = window.__statuses[window.__statuses.length - 1];
                if (last !== li.dataset.status) window.__statuses.push(li.dataset.status);
            }
        }).observe(document.getElementById('job-list'), {subtree: true, childList: true, attributes: true});
    }""")
    page.set_input_files("#video", str(VIDEO))
    assert page.get_by_text(re.compile(r"face_static\.mp4 · 114 KB")).is_visible()
    page.get_by_text("Whole video").click()
    page.get_by_label("Number of clips").fill("2")
    page.get_by_label("Clip length").select_option("short")
    page.locator("label.ratio-choice", has_text="1:1").click()
    page.locator("label.preset-choice", has_text="Beasty").click()
    page.get_by_label("Genre").select_option("vlog")
    page.get_by_label("Trim end in seconds").fill("2.5")
    page.get_by_label("Focus (optional)").fill("the secret")
    page.get_by_text("Auto hook").click()  # on by default: now off
    shoot(page, artifacts, "dashboard-filled-desktop")
    page.get_by_role("button", name="Create clips").click()

    item = page.locator("li.job-item", has_text="face_static.mp4")
    item.wait_for()
    page.locator('li.job-item[data-status="completed"]').wait_for(timeout=JOB_TIMEOUT_MS)
    assert page.evaluate("window.__sameDocument") is True
    statuses = page.evaluate("window.__statuses")
    assert statuses[-1] == "completed" and len(statuses) >= 2, statuses  # seen live, before the end
    assert "1 clip" in (item.text_content() or "")
    item.locator("img.job-thumb").wait_for()
    shoot(page, artifacts, "dashboard-completed-desktop")

    # the server got exactly what the controls said
    status, jobs = api_get(base, "/api/jobs", key)
    job = jobs["jobs"][0]
    chosen = {"mode": "none", "numClips": 2, "clipLength": "short", "aspectRatio": "1:1", "captionPreset": "beasty",
              "autoHook": False, "prompt": "the secret", "genre": "vlog", "trimEnd": 2.5}
    assert job["options"] == {**ProcessOptions().to_json(), **chosen}

    # the job page: a playable, seekable clip with its details and downloads
    item.get_by_role("link").click()
    page.wait_for_url(f"{base}/jobs/{job['id']}")
    video = page.locator("#clip-01 video")
    video.wait_for()
    page.wait_for_function("() => document.querySelector('#clip-01 video').readyState >= 1")
    duration = video.evaluate("v => v.duration")
    assert 2.0 < duration < 3.0, duration
    video.evaluate("v => { v.muted = true; return v.play(); }")
    page.wait_for_function("() => document.querySelector('#clip-01 video').currentTime > 0.3", timeout=15_000)
    video.evaluate("v => { v.pause(); v.currentTime = 1.5; }")
    page.wait_for_function("() => Math.abs(document.querySelector('#clip-01 video').currentTime - 1.5) < 0.1")
    status, manifest = api_get(base, f"/api/clips/{job['id']}", key)
    clip = manifest["clips"][0]
    assert page.locator("#clip-01 .clip-title").text_content() == (clip["metadata"]["title"] or "Clip 1")
    assert page.locator("#clip-01 .score").text_content() == f"{clip['metadata']['viral_score']:.1f} / 10"
    assert page.locator("#clip-01 .tags").text_content() == " ".join(f"#{t}" for t in clip["metadata"]["hashtags"])
    assert page.locator("#clip-01 .clip-media").evaluate("m => m.classList.contains('ar-1-1')")
    assert page.locator("#job-status").text_content() == "Completed"
    shoot(page, artifacts, "job-desktop")

    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download clip_01.mp4").click()
    download = download_info.value
    assert download.suggested_filename == "clip_01.mp4"
    downloaded = Path(download.path()).read_bytes()
    request = urllib.request.Request(f"{base}/api/clips/{job['id']}/clip_01.mp4", headers={"X-API-Key": key})
    with urllib.request.urlopen(request) as r:
        assert downloaded == r.read() and len(downloaded) > 10_000
    # the caption files beside the .ass: SubRip and WebVTT
    for ext in ("ass", "srt", "vtt"):
        a = page.get_by_role("link", name=f"Download clip_01.{ext}")
        assert a.get_attribute("download") == f"clip_01.{ext}"
        assert a.get_attribute("href") == clip["captionsUrl" if ext == "ass" else f"{ext}Url"]
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download clip_01.vtt").click()
    assert Path(download_info.value.path()).read_text(encoding="utf-8").startswith("WEBVTT")

    # phone width: the same pages still fit
    page.set_viewport_size(PHONE)
    shoot(page, artifacts, "job-phone")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    for path, name in (("/", "dashboard"), ("/keys", "keys"), ("/docs", "docs"), ("/billing", "billing")):
        page.goto(f"{base}{path}")
        page.wait_for_load_state("networkidle")
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], path
        shoot(page, artifacts, f"{name}-phone")
    page.set_viewport_size(DESKTOP)

    # delete the job from its page, after confirming: gone from the list and from the API
    page.goto(f"{base}/jobs/{job['id']}")
    page.get_by_role("button", name="Delete job").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_role("button", name="Keep it").click()
    assert api_get(base, f"/api/jobs/{job['id']}", key)[0] == 200  # cancelled: nothing happened
    page.get_by_role("button", name="Delete job").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete job").click()
    page.wait_for_url(f"{base}/")  # via /?deleted=1, which says so and tidies the address
    page.get_by_text("Job deleted").wait_for()
    assert api_get(base, f"/api/jobs/{job['id']}", key)[0] == 404
    page.wait_for_load_state("networkidle")
    assert page.locator(f"[data-job-id='{job['id']}']").count() == 0

    # revoke the key, after confirming; the API refuses it at once
    page.goto(f"{base}/keys")
    page.get_by_role("button", name="Revoke key ci laptop").click()
    dialog = page.get_by_role("dialog")
    assert dialog.get_by_text("ci laptop").is_visible()
    dialog.get_by_role("button", name="Revoke key").click()
    page.locator("tr.revoked", has_text="ci laptop").wait_for()
    assert page.get_by_text("0 of 10 active").is_visible()
    assert api_get(base, "/api/jobs", key) == (401, {"error": "invalid or revoked API key"})

    # log out: the dashboard is closed again
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url(f"{base}/login")
    page.goto(f"{base}/")
    assert page.url == f"{base}/login?next=/"
    page.goto(f"{base}/keys")
    assert page.url == f"{base}/login?next=/keys"

    assert console.errors == []
    context.close()


def test_pages_in_dark_mode_at_both_widths(browser: Any, web_server: LiveServer, artifacts: Path) -> None:
    """The public pages render in the dark theme without console errors (screenshots to look at)."""
    base = web_server.url
    for size, suffix in ((DESKTOP, "desktop"), (PHONE, "phone")):
        context = browser.new_context(viewport=size, color_scheme="dark")
        page = context.new_page()
        console = Console()
        console.attach(page)
        for path in ("/login", "/docs", "/billing"):
            response = page.goto(f"{base}{path}")
            assert response.status == 200 and "default-src 'none'" in response.headers["content-security-policy"]
            page.wait_for_load_state("networkidle")
            assert page.evaluate("document.documentElement.dataset.theme") == "dark"
            assert page.evaluate("document.documentElement.scrollWidth") <= size["width"], (path, suffix)
            shoot(page, artifacts, f"dark{path.replace('/', '-')}-{suffix}")
        assert console.errors == []
        context.close()
