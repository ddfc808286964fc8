"""/billing in Chromium with Stripe billing on (a fake Stripe on loopback): this month's usage, an
upgrade button that goes to Stripe Checkout, and the portal button once the account has checked out.

Stripe's pages are not reached: the browser's navigation to checkout.stripe.test is answered by a
stub page (Playwright routing), after checking it is the URL the server got from Stripe.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.http_gateway.conftest import PASSWORD, LiveServer
from tests.http_gateway.fake_stripe import FakeStripe
from tests.web.conftest import DESKTOP, PHONE, Console, shoot

SECRET_KEY = "sk_test_web"
VIDEO = Path(__file__).resolve().parents[1] / "media" / "face_static.mp4"


@pytest.fixture(scope="module")
def stripe_fake() -> Iterator[FakeStripe]:
    fake = FakeStripe(SECRET_KEY).start_in_thread()
    yield fake
    fake.stop_thread()


@pytest.fixture(scope="module")
def billing_server(tmp_path_factory: pytest.TempPathFactory, server_cache: Path,
                   stripe_fake: FakeStripe) -> Iterator[LiveServer]:
    env = {"CLIPORA_BILLING": "stripe", "CLIPORA_STRIPE_SECRET_KEY": SECRET_KEY,
           "CLIPORA_STRIPE_WEBHOOK_SECRET": "whsec_web", "CLIPORA_STRIPE_API_BASE": stripe_fake.url,
           "CLIPORA_STRIPE_PRICES": "creator=price_c,business=price_b", "CLIPORA_URL_ALLOWLIST": "127.0.0.1"}
    env["CLIPORA_URL_PORTS"] = f"80,443,{stripe_fake.port}"  # a loopback webhook receiver may be reached
    server = LiveServer(tmp_path_factory.mktemp("billing") / "data", server_cache, env).start()
    yield server
    server.stop()


def signed_up(browser: Any, base: str, email: str) -> tuple[Any, Any, Console]:
    """A new desktop page, its console watched, signed up through the sign-up form."""
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    console = Console()
    console.attach(page)
    page.goto(f"{base}/signup")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    page.wait_for_url(f"{base}/")
    return context, page, console


def test_billing_page_shows_usage_and_upgrades_through_checkout(browser: Any, billing_server: LiveServer,
                                                                 stripe_fake: FakeStripe, artifacts: Path) -> None:
    base = billing_server.url
    context, page, console = signed_up(browser, base, "payer@example.com")

    page.goto(f"{base}/billing")
    usage = page.locator("#usage-minutes")
    usage.get_by_text("0.0 of 60 minutes used").wait_for()
    assert page.locator("#current-plan").text_content() == "Free"
    assert page.locator("article.plan", has_text="Free").get_by_text("Your plan").is_visible()
    shoot(page, artifacts, "billing-desktop")

    # no portal before a first checkout (the API would answer 409)
    assert page.get_by_role("button", name="Manage subscription").count() == 0

    # upgrade: the button asks the server for a Checkout Session and goes to its URL
    reached: list[str] = []
    page.route("https://checkout.stripe.test/**", lambda route: (reached.append(route.request.url), route.fulfill(
        status=200, content_type="text/html", body="<!doctype html><title>Stripe Checkout (stub)</title>")))
    page.get_by_role("button", name="Choose Creator").click()
    page.wait_for_url("https://checkout.stripe.test/**")
    [session] = stripe_fake.calls("/v1/checkout/sessions")
    assert session["form"]["line_items[0][price]"] == "price_c"
    assert session["form"]["success_url"] == f"{base}/billing?checkout=success"
    assert reached and reached[0].startswith("https://checkout.stripe.test/cs_test_")

    # Stripe sends the browser back: the page says the plan changes once the payment is confirmed
    page.goto(f"{base}/billing?checkout=success")
    assert page.get_by_text("Your plan changes as soon as the payment is confirmed").is_visible()
    page.set_viewport_size(PHONE)
    shoot(page, artifacts, "billing-phone")
    # after checkout the account has a Stripe customer: the portal button is offered and goes to Stripe
    page.set_viewport_size(DESKTOP)
    page.goto(f"{base}/billing")
    page.route("https://billing.stripe.test/**", lambda route: route.fulfill(
        status=200, content_type="text/html", body="<!doctype html><title>Stripe portal (stub)</title>"))
    page.get_by_role("button", name="Manage subscription").click()
    page.wait_for_url("https://billing.stripe.test/**")
    assert stripe_fake.calls("/v1/billing_portal/sessions")[0]["form"]["return_url"] == f"{base}/billing"
    assert console.errors == [], console.errors
    context.close()


def test_dashboard_shows_the_webhook_signing_secret_once(browser: Any, billing_server: LiveServer,
                                                         stripe_fake: FakeStripe, artifacts: Path) -> None:
    """A job with a webhook URL, the account's first: the dashboard shows the signing secret once."""
    base = billing_server.url
    context, page, console = signed_up(browser, base, "hooks@example.com")
    receiver = f"http://127.0.0.1:{stripe_fake.port}/receiver"  # allowed by this server's policy
    for expect_secret in (True, False):
        page.set_input_files("#video", str(VIDEO))
        page.get_by_text("Whole video").click()
        page.get_by_label("Trim end in seconds").fill("2")
        page.get_by_label("Webhook URL").fill(receiver)
        page.get_by_role("button", name="Create clips").click()
        page.get_by_text("Upload complete").first.wait_for()
        box = page.locator("#webhook-secret")
        if expect_secret:
            box.wait_for()
            secret = page.locator("#webhook-secret-value").text_content() or ""
            assert secret.startswith("whsec_") and len(secret) > 30, secret
            shoot(page, artifacts, "dashboard-webhook-secret-desktop")
            page.reload()
            assert page.locator("#webhook-secret").is_hidden()
        else:
            page.wait_for_timeout(500)
            assert box.is_hidden()  # the secret exists now: never shown again
    assert console.errors == [], console.errors
    context.close()
