"""/api/auth: signup, login, logout, me.

Login answers the same 401 for an unknown email and a wrong password (and takes the same time,
see AccountStore.authenticate), and is limited per client IP and per email: past the limit it
answers 429 with Retry-After without checking the password at all. Sign-up (an argon2 hash each)
is limited per client IP the same way (CLIPORA_SIGNUPS_PER_IP_PER_HOUR).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from http_gateway.accounts import MAX_EMAIL_LENGTH, MAX_PASSWORD_LENGTH, normalize_email
from http_gateway.auth import (
    ACCOUNTS,
    LOGIN_LIMITER,
    SESSION_COOKIE,
    SIGNUP_LIMITER,
    VERIFYING,
    clear_session_cookie,
    client_ip,
    current_session,
    require_user,
    set_session_cookie,
)
from http_gateway.bodies import AUTH_BODY_LIMIT, json_object
from http_gateway.errors import BadRequest, TooManyRequests, Unauthorized
from http_gateway.models import Session, User
from http_gateway.plans import PLANS_KEY, Plans

NO_STORE = {"Cache-Control": "no-store"}  # bodies carry the CSRF token


def user_json(user: User, plans: Plans) -> dict[str, Any]:
    return {"id": user.id, "email": user.email, "plan": plans.of(user).id, "createdAt": user.created_at}


def credentials(body: dict[str, Any]) -> tuple[str, str]:
    """(email, password) of an auth body, lengths checked before anything else looks at them."""
    email, password = body.get("email"), body.get("password")
    if not isinstance(email, str) or not isinstance(password, str):
        raise BadRequest("email and password required")
    if len(email) > MAX_EMAIL_LENGTH:
        raise BadRequest(f"email must be at most {MAX_EMAIL_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise BadRequest(f"password must be at most {MAX_PASSWORD_LENGTH} characters")
    return email, password


def _signed_in(request: web.Request, user: User, cookie: str, session: Session, status: int) -> web.Response:
    response = web.json_response({"user": user_json(user, request.config_dict[PLANS_KEY]),
                                  "csrfToken": session.csrf_token},
                                 status=status, headers=NO_STORE)
    set_session_cookie(response, request, cookie, request.config_dict[ACCOUNTS].session_ttl_s)
    return response


async def signup(request: web.Request) -> web.Response:
    email, password = credentials(await json_object(request, limit=AUTH_BODY_LIMIT))
    wait = request.config_dict[SIGNUP_LIMITER].attempt(client_ip(request))
    if wait:
        raise TooManyRequests("too many sign-ups from this address; try again later", wait)
    store = request.config_dict[ACCOUNTS]
    user = await store.create_user(email, password)
    cookie, session = await store.create_session(user.id)
    return _signed_in(request, user, cookie, session, 201)


async def login(request: web.Request) -> web.Response:
    email, password = credentials(await json_object(request, limit=AUTH_BODY_LIMIT))
    try:
        email_key = normalize_email(email)
    except BadRequest:  # cannot be an account; still verified (below) so it costs the same
        email_key = email.strip().lower()
    limiter = request.config_dict[LOGIN_LIMITER]
    ip = client_ip(request)
    # the attempt is counted before the password is checked: parallel guesses cannot all get in
    # while the first ones are still being verified; a success clears the email's count
    wait = limiter.attempt(ip, email_key)
    if wait:
        raise TooManyRequests("too many failed login attempts; try again later", wait)
    store = request.config_dict[ACCOUNTS]
    busy = "too many logins in progress from this address; try again in a moment"
    with request.config_dict[VERIFYING].hold(ip, busy):
        user = await store.authenticate(email_key, password)
    if user is None:
        raise Unauthorized("invalid email or password")
    limiter.succeeded(email_key)
    old = request.cookies.get(SESSION_COOKIE)
    if old:  # rotation: a cookie planted before login must not become an authenticated session
        await store.delete_session(old)
    cookie, session = await store.create_session(user.id)
    return _signed_in(request, user, cookie, session, 200)


async def logout(request: web.Request) -> web.Response:
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        await request.config_dict[ACCOUNTS].delete_session(cookie)
    response = web.json_response({"ok": True})
    clear_session_cookie(response, request)
    return response


async def me(request: web.Request) -> web.Response:
    principal = require_user(request)
    user = await request.config_dict[ACCOUNTS].get_user(principal.user_id)
    if user is None:  # deleted between the lookup and now
        raise Unauthorized("authentication required")
    plans = request.config_dict[PLANS_KEY]
    body: dict[str, Any] = {"user": user_json(user, plans), "via": principal.via, "usage": await plans.usage(user)}
    session = current_session(request)
    if principal.via == "session" and session is not None:
        body["csrfToken"] = session.csrf_token
    return web.json_response(body, headers=NO_STORE)


def setup(app: web.Application) -> None:
    app.router.add_post("/api/auth/signup", signup)
    app.router.add_post("/api/auth/login", login)
    app.router.add_post("/api/auth/logout", logout)
    app.router.add_get("/api/auth/me", me)
