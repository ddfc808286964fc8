"""Who is calling: API keys and session cookies, resolved once per request; CSRF for cookies.

Middleware order (DESIGN.md): errors -> security headers -> CSRF -> auth -> rate limit. CSRF
therefore runs before auth and resolves the cookie's session itself; the lookup is cached on the
request so auth does not repeat it.

- A presented API key (``X-API-Key`` or ``Authorization: Bearer``) decides alone: wrong or
  revoked -> 401 at once, never a fallback to the cookie (a stale key must fail loudly, and a
  forged header cannot borrow the browser's session).
- Cookie-authenticated unsafe requests need an Origin/Referer naming this host, or the
  session's CSRF token in ``X-CSRF-Token``. API-key requests are exempt (browsers never attach
  keys on their own). Signup/login have no session yet; they are checked on Origin when sent.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from aiohttp import web

from http_gateway.accounts import AccountStore
from http_gateway.config import SETTINGS
from http_gateway.errors import Forbidden, Unauthorized
from http_gateway.models import Session, User
from http_gateway.plans import PLANS_KEY, Plans
from http_gateway.proxies import TrustedProxies
from http_gateway.ratelimit import ConcurrencyCap, LoginLimiter, SignupLimiter, make_storage

SESSION_COOKIE = "reels_session"
CSRF_HEADER = "X-CSRF-Token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
AUTH_ENTRY_PATHS = frozenset({"/api/auth/signup", "/api/auth/login"})

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Principal:
    user_id: str
    email: str
    via: Literal["session", "key"]
    key_id: str | None


ACCOUNTS: web.AppKey[AccountStore] = web.AppKey("accounts", AccountStore)
# Honour X-Forwarded-Proto / -For / -Host only behind a proxy the operator vouches for.
TRUST_PROXY: web.AppKey[TrustedProxies] = web.AppKey("trust_proxy", TrustedProxies)
LOGIN_LIMITER: web.AppKey[LoginLimiter] = web.AppKey("login_limiter", LoginLimiter)
SIGNUP_LIMITER: web.AppKey[SignupLimiter] = web.AppKey("signup_limiter", SignupLimiter)
#: password verifies (argon2, on its own pool) running at once per client IP
VERIFYING: web.AppKey[ConcurrencyCap] = web.AppKey("verifying", ConcurrencyCap)
MAX_VERIFIES_PER_IP = 4
#: requests without credentials in flight at once per client IP (CLIPORA_MAX_ANONYMOUS_PER_IP)
ANONYMOUS: web.AppKey[ConcurrencyCap] = web.AppKey("anonymous", ConcurrencyCap)

PRINCIPAL: web.RequestKey[Principal | None] = web.RequestKey("principal")
_COOKIE_LOOKUP: web.RequestKey[tuple[User, Session] | None] = web.RequestKey("cookie_session")


def get_principal(request: web.Request) -> Principal | None:
    return request.get(PRINCIPAL)


def require_user(request: web.Request) -> Principal:
    principal = get_principal(request)
    if principal is None:
        raise Unauthorized("authentication required")
    return principal


def require_session(request: web.Request) -> Principal:
    """Routes that manage credentials (keys, billing checkout/portal) take a browser session only."""
    principal = require_user(request)
    if principal.via != "session":
        raise Forbidden("this route requires a signed-in session; API keys are not accepted here")
    return principal


def current_session(request: web.Request) -> Session | None:
    """The cookie session behind this request (for its CSRF token), once resolved."""
    found = request.get(_COOKIE_LOOKUP)
    return found[1] if found else None


# -- request facts ------------------------------------------------------------------------------

def _trusted(request: web.Request) -> bool:
    return bool(request.config_dict.get(TRUST_PROXY, TrustedProxies()))


def is_https(request: web.Request) -> bool:
    if request.secure:
        return True
    proto = request.headers.get("X-Forwarded-Proto", "")
    return _trusted(request) and proto.split(",")[0].strip().lower() == "https"


def client_ip(request: web.Request) -> str:
    """The client's address: the peer, or behind trusted proxies the rightmost hop none of them owns."""
    proxies = request.config_dict.get(TRUST_PROXY)
    if proxies:
        return proxies.client(request.remote, request.headers.get("X-Forwarded-For", ""))
    return request.remote or "unknown"


def presented_key(request: web.Request) -> str | None:
    """The API key the client sent, if any (an empty X-API-Key still counts as presented)."""
    key = request.headers.get("X-API-Key")
    if key is not None:
        return key.strip()
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer":
        return token.strip()
    return None


def set_session_cookie(response: web.StreamResponse, request: web.Request, cookie: str, ttl_s: int) -> None:
    response.set_cookie(SESSION_COOKIE, cookie, max_age=ttl_s, path="/", httponly=True, samesite="Lax",
                        secure=is_https(request) or None)


def clear_session_cookie(response: web.StreamResponse, request: web.Request) -> None:
    response.set_cookie(SESSION_COOKIE, "", max_age=0, path="/", httponly=True, samesite="Lax",
                        secure=is_https(request) or None)


async def _cookie_session(request: web.Request) -> tuple[User, Session] | None:
    if _COOKIE_LOOKUP in request:
        return request[_COOKIE_LOOKUP]
    cookie = request.cookies.get(SESSION_COOKIE)
    found = await request.config_dict[ACCOUNTS].session_user(cookie) if cookie else None
    request[_COOKIE_LOOKUP] = found
    return found


# -- CSRF ---------------------------------------------------------------------------------------

def _netloc(value: str, scheme: str) -> str:
    value = value.strip().lower()
    default = {"http": ":80", "https": ":443"}.get(scheme, "")
    return value[: -len(default)] if default and value.endswith(default) else value


def origin_matches(request: web.Request) -> bool | None:
    """True/False when an Origin (else Referer) names/doesn't name this host; None when absent."""
    source = request.headers.get("Origin") or request.headers.get("Referer")
    if not source:
        return None
    parts = urlsplit(source)
    if not parts.netloc:  # "null" (sandboxed/opaque origins) or garbage
        return False
    hosts = [request.host]
    if _trusted(request) and request.headers.get("X-Forwarded-Host"):
        hosts.append(request.headers["X-Forwarded-Host"].split(",")[0])
    origin = _netloc(parts.netloc, parts.scheme)
    # the scheme is not compared: behind a TLS proxy without TRUST_PROXY the request looks like http
    return any(origin in (_netloc(h, "http"), _netloc(h, "https")) for h in hosts)


@web.middleware
async def csrf_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.method not in UNSAFE_METHODS or presented_key(request) is not None:
        return await handler(request)
    has_cookie = bool(request.cookies.get(SESSION_COOKIE))
    entry = request.path in AUTH_ENTRY_PATHS
    matches = origin_matches(request)
    if matches is False and (has_cookie or entry):
        raise Forbidden("cross-site request rejected: Origin does not match this host")
    if matches is None and has_cookie and not entry:
        found = await _cookie_session(request)
        if found is not None:
            token = request.headers.get(CSRF_HEADER, "")
            if not token or not hmac.compare_digest(token.encode(), found[1].csrf_token.encode()):
                raise Forbidden(f"CSRF check failed: send an Origin header for this host or {CSRF_HEADER}")
    return await handler(request)


# -- authentication -----------------------------------------------------------------------------

@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    key = presented_key(request)
    principal: Principal | None = None
    if key is not None:
        store = request.config_dict[ACCOUNTS]
        found_key = await store.key_user(key)
        if found_key is None:
            raise Unauthorized("invalid or revoked API key")
        user, api_key = found_key
        plans = request.config_dict.get(PLANS_KEY)
        if plans is not None and not (plan := plans.of(user)).api_access:
            # not revoked: the key works again when the account's plan includes API access again
            raise Forbidden(f"API keys need a plan with API access (Business); this account is on the "
                            f"{plan.name} plan")
        await store.touch_key(api_key)
        principal = Principal(user.id, user.email, "key", api_key.id)
    else:
        found = await _cookie_session(request)
        if found is not None:
            principal = Principal(found[0].id, found[0].email, "session", None)
    request[PRINCIPAL] = principal
    cap = request.config_dict.get(ANONYMOUS)
    if principal is not None or cap is None:
        return await handler(request)
    # without credentials nothing else bounds a client: its stalled or slow requests count here
    with cap.hold(client_ip(request), "too many requests in progress from this address; try again in a moment"):
        return await handler(request)


def setup_routes(app: web.Application) -> None:
    """Adds /api/auth/*, /api/keys* and /api/billing/*, the accounts' plans (CLIPORA_BILLING), and the
    login and sign-up limiters where none is set: counted in the settings' CLIPORA_RATE_LIMIT_STORAGE
    (memory:// without settings)."""
    from http_gateway.routes import auth as auth_routes
    from http_gateway.routes import billing as billing_routes
    from http_gateway.routes import keys as key_routes

    settings = app.get(SETTINGS)
    if LOGIN_LIMITER not in app or SIGNUP_LIMITER not in app:
        storage = make_storage(settings.rate_limit_storage if settings else "memory://")
        if LOGIN_LIMITER not in app:
            app[LOGIN_LIMITER] = LoginLimiter(storage=storage)
        if SIGNUP_LIMITER not in app:
            per_hour = settings.signups_per_ip_per_hour if settings else 10
            app[SIGNUP_LIMITER] = SignupLimiter(per_hour, 3600, storage=storage)
    if VERIFYING not in app:
        app[VERIFYING] = ConcurrencyCap(MAX_VERIFIES_PER_IP)
    if ANONYMOUS not in app:
        app[ANONYMOUS] = ConcurrencyCap(settings.max_anonymous_per_ip if settings else 32)
    if PLANS_KEY not in app:
        app[PLANS_KEY] = Plans(app[ACCOUNTS].db, settings.billing, settings.default_plan, settings.max_upload_bytes) \
            if settings else Plans(app[ACCOUNTS].db)
    auth_routes.setup(app)
    key_routes.setup(app)
    billing_routes.setup(app)
