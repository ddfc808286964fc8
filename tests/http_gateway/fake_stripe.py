"""A fake Stripe API on loopback: records what the server sends and answers like Stripe would.

Only the calls Clipora makes: create a customer, a Checkout Session, a Customer Portal session.
Every request must carry the configured secret key as a Bearer token (401 otherwise, as Stripe).
Events Stripe would send to /api/billing/webhook are built and signed by :func:`signed_event`
(Stripe's scheme: ``Stripe-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "t.payload">``).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class FakeStripe:
    secret_key: str
    requests: list[dict[str, Any]] = field(default_factory=list)
    port: int = 0
    runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> FakeStripe:
        app = web.Application()
        app.router.add_post("/v1/customers", self.customer)
        app.router.add_post("/v1/checkout/sessions", self.checkout)
        app.router.add_post("/v1/billing_portal/sessions", self.portal)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    async def _record(self, request: web.Request) -> dict[str, str] | web.Response:
        form = {k: str(v) for k, v in (await request.post()).items()}
        self.requests.append({"path": request.path, "auth": request.headers.get("Authorization"), "form": form,
                              "idempotency": request.headers.get("Idempotency-Key")})
        if request.headers.get("Authorization") != f"Bearer {self.secret_key}":
            return web.json_response({"error": {"type": "invalid_request_error", "message": "Invalid API Key"}},
                                     status=401)
        return form

    async def customer(self, request: web.Request) -> web.Response:
        form = await self._record(request)
        if isinstance(form, web.Response):
            return form
        return web.json_response({"id": f"cus_{secrets.token_hex(6)}", "object": "customer",
                                  "email": form.get("email")})

    async def checkout(self, request: web.Request) -> web.Response:
        form = await self._record(request)
        if isinstance(form, web.Response):
            return form
        session_id = f"cs_test_{secrets.token_hex(8)}"
        return web.json_response({"id": session_id, "object": "checkout.session", "mode": form.get("mode"),
                                  "customer": form.get("customer"), "url": f"https://checkout.stripe.test/{session_id}"})

    async def portal(self, request: web.Request) -> web.Response:
        form = await self._record(request)
        if isinstance(form, web.Response):
            return form
        return web.json_response({"id": f"bps_{secrets.token_hex(6)}", "object": "billing_portal.session",
                                  "customer": form.get("customer"), "url": "https://billing.stripe.test/p/session"})

    # -- for synchronous tests (the browser's): its own event loop in a thread ----------------------

    def start_in_thread(self) -> FakeStripe:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.start(), self._loop).result(10)
        return self

    def stop_thread(self) -> None:
        asyncio.run_coroutine_threadsafe(self.stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def calls(self, path: str) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["path"] == path]


def signed_event(webhook_secret: str, event_type: str, obj: dict[str, Any], event_id: str | None = None,
                 at: int | None = None) -> tuple[bytes, str]:
    """(payload, Stripe-Signature header) of one event, as Stripe signs them."""
    at = at or int(time.time())
    payload = json.dumps({"id": event_id or f"evt_{secrets.token_hex(8)}", "object": "event", "type": event_type,
                          "api_version": "2025-01-01", "created": at, "data": {"object": obj}}).encode()
    mac = hmac.new(webhook_secret.encode(), f"{at}.".encode() + payload, hashlib.sha256).hexdigest()
    return payload, f"t={at},v1={mac}"
