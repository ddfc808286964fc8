"""The web app: server-rendered pages (jinja2 templates in http_gateway/web) over the JSON API.

Pages are HTML shells with what the server already knows (the user, the CSRF token, the
option defaults, the API document); everything they *do* goes through the same JSON API
that curl uses, from small ES modules in ``web/static/js`` (no inline script, no CDN), so
there is one implementation of every rule and the browser shows the API's own errors.

Signed-out visitors of a signed-in page are sent to ``/login?next=<page>``. Pages answer with
a Content-Security-Policy that allows only this origin's scripts, styles, media and
WebSocket, and ``Cache-Control: no-store`` (they embed the CSRF token).

Route names start with ``web.``: they are the web app, not the API, so the OpenAPI document
(and its completeness test) leaves them out.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp_jinja2
import jinja2
import langcodes
import markupsafe
from aiohttp import web

from engine.options import CLIP_LENGTH_RANGES, ProcessOptions
from http_gateway.accounts import MAX_ACTIVE_KEYS, MIN_PASSWORD_LENGTH
from http_gateway.auth import ACCOUNTS, TRUST_PROXY, Principal, current_session, get_principal, is_https
from http_gateway.config import SETTINGS
from http_gateway.errors import Forbidden, NotFoundError
from http_gateway.openapi import build_document
from http_gateway.plans import PLANS_KEY
from http_gateway.proxies import TrustedProxies
from http_gateway.routes.jobs import owned_job
from http_gateway.shapes import job_json
from http_gateway.web import STATIC_DIR, TEMPLATES_DIR
from http_gateway.web.docs import api_reference

# the caption presets' fonts (the captions stage renders with the same files); the app factory
# (the composition root) says where they are, so this module never imports a stage
FONTS_DIR: web.AppKey[Path] = web.AppKey("fonts_dir", Path)

PAGE_CSP = "; ".join([
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "media-src 'self'",
    "font-src 'self'",
    "connect-src 'self'",  # fetch + the same-origin WebSocket (CSP3: 'self' covers ws:/wss:)
    "manifest-src 'self'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
])
PAGE_HEADERS = {"Content-Security-Policy": PAGE_CSP, "Cache-Control": "no-store"}
SAFE_NEXT = re.compile(r"/(?!/)[A-Za-z0-9/_\-.]*")
NAV = (("/", "Dashboard"), ("/keys", "API keys"), ("/docs", "API docs"), ("/billing", "Plans"))


def _session(request: web.Request) -> Principal | None:
    """The signed-in browser user; an API key does not sign a browser in."""
    principal = get_principal(request)
    return principal if principal is not None and principal.via == "session" else None


def _login_redirect(request: web.Request) -> web.HTTPFound:
    return web.HTTPFound(f"/login?next={quote(request.path_qs, safe='/')}")


def base_url(request: web.Request) -> str:
    """This server as the visitor reaches it (for curl examples that work when pasted)."""
    host = request.host
    if request.config_dict.get(TRUST_PROXY, TrustedProxies()) and request.headers.get("X-Forwarded-Host"):
        host = request.headers["X-Forwarded-Host"].split(",")[0].strip()
    return f"{'https' if is_https(request) else 'http'}://{host}"


async def _render(request: web.Request, template: str, page: str, status: int = 200,
                  **context: Any) -> web.Response:
    principal = _session(request)
    user = await request.config_dict[ACCOUNTS].get_user(principal.user_id) if principal else None
    session = current_session(request) if principal else None
    plans = request.config_dict[PLANS_KEY]
    plan = plans.of(user) if user else None
    context.update(
        page=page, nav=NAV, user=user, csrf_token=session.csrf_token if session else "", plan=plan,
        billing=plans.billing,
        max_upload_bytes=plans.upload_limit(plan) if plan else request.config_dict[SETTINGS].max_upload_bytes,
    )
    response = aiohttp_jinja2.render_template(template, request, context, status=status)
    response.headers.update(PAGE_HEADERS)
    return response


async def _signed_in(request: web.Request) -> Principal:
    principal = _session(request)
    if principal is None:
        raise _login_redirect(request)
    return principal


# -- pages --------------------------------------------------------------------------------------

# the options the dashboard lays out by hand; any other ProcessOptions field gets a generic control
DESIGNED_OPTIONS = frozenset({"mode", "numClips", "clipLength", "aspectRatio", "captionPreset", "removeAiVoice",
                              "autoHook", "prompt", "genre", "trimStart", "trimEnd"})


#: labels the option's name does not spell well
LABELS = {"captionStyle": "Brand caption style (JSON)"}


def _is_object(spec: dict[str, Any]) -> bool:
    return "$ref" in spec or any("$ref" in s or s.get("type") == "object" for s in spec.get("anyOf", []))


def generic_option(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    """How to show an option the page has no special control for: its kind, label, default."""
    types = [spec["type"]] if "type" in spec else [s.get("type") for s in spec.get("anyOf", [])]
    kind = "enum" if "enum" in spec else "json" if _is_object(spec) else next(
        (k for k in ("boolean", "integer", "number", "string") if k in types), "string")
    label = LABELS.get(name) or re.sub(r"\burl\b", "URL", re.sub(r"(?<!^)([A-Z])", r" \1", name).capitalize())
    enum = list(spec.get("enum", []))
    labels = {str(v): str(v).capitalize() for v in enum}
    if name == "language":  # ISO 639-1 codes, shown by their English names (langcodes), in that order
        labels = {code: "Detect it" if code == "auto" else f"{langcodes.Language.get(code).display_name()} ({code})"
                  for code in enum}
        enum = ["auto", *sorted((c for c in enum if c != "auto"), key=lambda c: labels[c])]
    return {"name": name, "kind": kind, "label": label, "nullable": "null" in types,
            "default": spec.get("default"), "enum": enum, "labels": labels, "minimum": spec.get("minimum"),
            "maximum": spec.get("maximum"), "description": spec.get("description", "")}


async def dashboard(request: web.Request) -> web.Response:
    await _signed_in(request)
    schema = ProcessOptions.model_json_schema(by_alias=True)["properties"]
    extra = [generic_option(name, spec) for name, spec in schema.items() if name not in DESIGNED_OPTIONS]
    return await _render(request, "dashboard.html", "/", options=schema, extra_options=extra,
                         clip_ranges=CLIP_LENGTH_RANGES)


async def keys_page(request: web.Request) -> web.Response:
    await _signed_in(request)
    return await _render(request, "keys.html", "/keys", max_keys=MAX_ACTIVE_KEYS)


async def job_page(request: web.Request) -> web.Response:
    principal = await _signed_in(request)
    job_id = request.match_info["jobId"]
    try:
        job = await owned_job(request, job_id, principal)
    except (NotFoundError, Forbidden):  # someone else's job is as unknown as a missing one
        return await _render(request, "not_found.html", "", status=404,
                             title="Job not found", detail="There is no job with this id in your account.")
    if job.is_render:  # a clip re-render's page is its job's, where the clip and its editor are
        raise web.HTTPFound(f"/jobs/{job.parent_id}")
    return await _render(request, "job.html", "/jobs", job=job_json(job))


async def auth_page(request: web.Request) -> web.Response:
    mode = "signup" if request.path == "/signup" else "login"
    nxt = request.query.get("next", "/")
    nxt = nxt if SAFE_NEXT.fullmatch(nxt) else "/"
    if _session(request) is not None:
        raise web.HTTPFound(nxt)
    return await _render(request, "auth.html", request.path, mode=mode, next=nxt,
                         min_password_length=MIN_PASSWORD_LENGTH)


async def docs_page(request: web.Request) -> web.Response:
    base = base_url(request)
    return await _render(request, "docs.html", "/docs", base=base, ref=api_reference(build_document(), base))


async def billing_page(request: web.Request) -> web.Response:
    checkout = request.query.get("checkout")  # Stripe's return pages: ?checkout=success | cancelled
    return await _render(request, "billing.html", "/billing",
                         checkout=checkout if checkout in ("success", "cancelled") else None)


def code_spans(text: str) -> markupsafe.Markup:
    """Escaped text with `backticked` spans as <code> (the OpenAPI descriptions use Markdown's)."""
    return markupsafe.Markup(re.sub(r"`([^`]+)`", r"<code>\1</code>", str(markupsafe.escape(text))))


def setup(app: web.Application) -> None:
    env = aiohttp_jinja2.setup(app, loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)), autoescape=True,
                               undefined=jinja2.StrictUndefined)
    static = app.router.add_static("/static/", STATIC_DIR, name="web.static", append_version=True)

    def asset(path: str) -> str:
        return str(static.url_for(filename=path))

    env.globals["asset"] = asset
    env.filters["code_spans"] = code_spans
    fonts = app.get(FONTS_DIR)
    if fonts is not None and fonts.is_dir():
        app.router.add_static("/fonts/", fonts, name="web.fonts")
    app.router.add_get("/", dashboard, name="web.dashboard")
    app.router.add_get("/signup", auth_page, name="web.signup")
    app.router.add_get("/login", auth_page, name="web.login")
    app.router.add_get("/keys", keys_page, name="web.keys")
    app.router.add_get("/jobs/{jobId}", job_page, name="web.job")
    app.router.add_get("/docs", docs_page, name="web.docs")
    app.router.add_get("/billing", billing_page, name="web.billing")
