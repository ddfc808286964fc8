"""What the web app says when something goes wrong: inline form errors, the upload limit checked
before sending, API errors as sentences, a failed job explained. Real Chromium, real server
(with a small upload limit, so the pre-check can be tested with a committed file).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from http_gateway.accounts import MIN_PASSWORD_LENGTH
from tests.http_gateway.conftest import PASSWORD, LiveServer
from tests.web.conftest import DESKTOP, PHONE, Console, shoot

MEDIA = Path(__file__).resolve().parents[1] / "media"
LIMIT = 500_000  # bytes: speech_topics.mp4 (848 KB) is over it, face_static.mp4 (117 KB) under

BAD_OPTION = "invalid option 'clipLength': got 'huge', expected \"short\", \"medium\" or \"long\""

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def small_server(tmp_path_factory: pytest.TempPathFactory, server_cache: Path) -> Iterator[LiveServer]:
    server = LiveServer(tmp_path_factory.mktemp("web-small") / "data", server_cache,
                        {"CLIPORA_MAX_UPLOAD_BYTES": str(LIMIT)}).start()
    yield server
    server.stop()


def signed_in_page(browser: Any, base: str, email: str, viewport: dict[str, int] = DESKTOP) -> tuple[Any, Console]:
    context = browser.new_context(viewport=viewport)
    page = context.new_page()
    console = Console()
    console.attach(page)
    page.goto(f"{base}/signup")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    page.wait_for_url(f"{base}/")
    return page, console


def only_expected(errors: list[str], *allowed: str) -> list[str]:
    """Console errors other than the failed responses a test provokes on purpose."""
    return [e for e in errors if not any(a in e for a in allowed)]


def test_signup_and_login_errors_are_inline(browser: Any, small_server: LiveServer, artifacts: Path) -> None:
    base = small_server.url
    page, console = signed_in_page(browser, base, "taken@example.com")
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url(f"{base}/login")

    # the email is taken: said next to the email field
    page.goto(f"{base}/signup")
    page.get_by_label("Email").fill("taken@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    email_error = page.locator("#email-error")
    email_error.wait_for()
    assert email_error.text_content() == "An account with this email already exists. Log in instead?"
    assert page.get_by_label("Email").get_attribute("aria-invalid") == "true"

    # too short: the page checks the server's MIN_PASSWORD_LENGTH itself, before any request
    posts: list[str] = []

    def on_request(request: Any) -> None:
        if request.method == "POST":
            posts.append(request.url)

    page.on("request", on_request)
    page.get_by_label("Email").fill("new@example.com")
    page.get_by_label("Password").fill("x" * (MIN_PASSWORD_LENGTH - 1))
    page.get_by_role("button", name="Create account").click()
    password_error = page.locator("#password-error")
    password_error.wait_for()
    assert password_error.text_content() == f"Use at least {MIN_PASSWORD_LENGTH} characters."
    assert posts == []
    page.remove_listener("request", on_request)
    assert f"At least {MIN_PASSWORD_LENGTH} characters" in (page.locator("#password-hint").text_content() or "")

    # a weak password: the server's rule, next to the password field
    page.get_by_label("Email").fill("new@example.com")
    page.get_by_label("Password").fill("abcdefghij")
    page.get_by_role("button", name="Create account").click()
    password_error = page.locator("#password-error")
    password_error.wait_for()
    assert "mix at least two of" in (password_error.text_content() or "")
    shoot(page, artifacts, "signup-errors-desktop")

    # a wrong password at login: one message, no hint which part was wrong
    page.goto(f"{base}/login")
    page.get_by_label("Email").fill("taken@example.com")
    page.get_by_label("Password").fill("Wrong-Horse-8")
    page.get_by_role("button", name="Log in").click()
    form_error = page.locator("#form-error")
    form_error.wait_for()
    assert form_error.text_content() == "That email and password don't match an account."
    assert page.url == f"{base}/login"

    # keyboard only: Tab to the fields, Enter submits, and we land on the dashboard
    page.get_by_label("Email").fill("")
    page.get_by_label("Email").focus()
    page.keyboard.type("taken@example.com")
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{base}/")
    assert only_expected(console.errors, "status of 409", "status of 400", "status of 401") == []


def test_upload_limit_url_errors_and_a_failed_job(browser: Any, small_server: LiveServer, artifacts: Path) -> None:
    base = small_server.url
    page, console = signed_in_page(browser, base, "limits@example.com", PHONE)
    uploads: list[str] = []
    page.on("request", lambda r: uploads.append(r.url) if "/api/upload" in r.url else None)

    # over the server's limit: refused before a byte is sent
    page.set_input_files("#video", str(MEDIA / "speech_topics.mp4"))
    error = page.locator("#job-error")
    error.wait_for()
    assert error.text_content() == ("“speech_topics.mp4” is 828 KB; the limit is 488 KB. "
                                    "Trim or compress it first, or import it from a link.")
    page.get_by_role("button", name="Create clips").click()
    assert error.text_content() == "Choose a video file (or drop one on the box), or paste a link to a video."
    assert uploads == []
    shoot(page, artifacts, "dashboard-limit-phone")

    # a bad option is caught at the field, before anything is sent
    page.get_by_label("Video link").fill("https://example.com/talk.mp4")
    page.get_by_label("Number of clips").fill("12")
    page.get_by_role("button", name="Create clips").click()
    assert error.text_content() == "Number of clips must be a whole number from 1 to 10."
    assert page.get_by_label("Number of clips").evaluate("el => el === document.activeElement")
    page.get_by_label("Number of clips").fill("4")

    # importing from a link while the server has no such route: a sentence, not "not found"
    page.route("**/api/upload/url", lambda route: route.fulfill(
        status=404, content_type="application/json", body=json.dumps({"error": "not found"})))
    page.get_by_role("button", name="Create clips").click()
    page.wait_for_function("() => document.querySelector('#job-error').textContent.includes('link')")
    assert error.text_content() == ("Importing from a link isn't available on this server yet. "
                                    "Download the video and upload the file instead.")
    sent: list[Any] = []
    page.unroute("**/api/upload/url")
    page.route("**/api/upload/url", lambda route: (sent.append(route.request.post_data_json), route.fulfill(
        status=400, content_type="application/json",
        body=json.dumps({"error": BAD_OPTION}))))
    page.get_by_role("button", name="Create clips").click()
    page.wait_for_function("() => document.querySelector('#job-error').textContent.startsWith('Clip length')")
    assert error.text_content() == 'Clip length must be "short", "medium" or "long" (got \'huge\').'
    assert sent[0]["url"] == "https://example.com/talk.mp4" and sent[0]["options"]["numClips"] == 4
    page.unroute("**/api/upload/url")

    # a job the pipeline refuses: the list and the job page say why
    page.get_by_label("Video link").fill("")
    page.set_input_files("#video", str(MEDIA / "face_static.mp4"))
    page.get_by_label("Trim start in seconds").fill("30")
    page.get_by_role("button", name="Create clips").click()
    failed = page.locator('li.job-item[data-status="failed"]')
    failed.wait_for(timeout=60_000)
    reason = "trimStart (30 s) is at or past the end of the source (10.00 s)"
    assert reason in (failed.text_content() or "")
    failed.get_by_role("link").click()
    page.locator("#failure").wait_for()
    assert page.locator("#failure-message").text_content() == reason
    assert page.locator("#job-status").text_content() == "Failed"
    assert page.locator("#progress-card").is_hidden()
    shoot(page, artifacts, "job-failed-phone")

    # someone else's (or no) job: a 404 page, not a stack trace
    response = page.goto(f"{base}/jobs/abcdefgh12345")
    assert response.status == 404 and page.get_by_role("heading", name="Job not found").is_visible()
    assert only_expected(console.errors, "status of 404", "status of 400") == []
