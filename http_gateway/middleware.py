"""The gateway's middlewares. Order (DESIGN.md): errors -> security headers -> CSRF -> auth.

The error middleware is the one place where exceptions become responses: every error is
``{"error": "..."}`` with its status. ApiError and engine ClipporaError carry their own status;
aiohttp's HTTPExceptions (unknown route 404, wrong method 405, body too large 413) keep theirs;
anything else is logged (with the job id when the request names one) and answers 500 without
internals.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from engine.errors import ClipporaError, QuotaExceeded
from http_gateway.auth import is_https
from http_gateway.errors import ApiError, RequestTimeout, engine_status

log = logging.getLogger("clipora.gateway")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}

_REASONS = {
    400: "bad request", 401: "authentication required", 403: "forbidden", 404: "not found",
    405: "method not allowed", 409: "conflict", 413: "request body too large", 429: "too many requests",
}


def request_job_id(request: web.Request) -> str | None:
    """The job a request is about, for log lines (path parameter or ?jobId=)."""
    return request.match_info.get("jobId") or request.query.get("jobId") or None


#: the status a request that its client abandoned is logged and counted under (nginx's convention);
#: nobody receives it
CLIENT_CLOSED_REQUEST = 499

#: an error names what was wrong, not all of it: a rejected 56 KB prompt is not echoed back whole
MAX_ERROR_CHARS = 300


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    if len(message) > MAX_ERROR_CHARS:
        message = message[: MAX_ERROR_CHARS - 1] + "…"
    response = web.json_response({"error": message}, status=status, headers=headers)
    response.headers.setdefault("Cache-Control", "no-store")  # an error is about this request only
    if status == 401:  # RFC 9110: a 401 names the scheme it wants (API keys are bearer tokens)
        response.headers.setdefault("WWW-Authenticate", 'Bearer realm="clipora"')
    add_security_headers(response)
    return response


def add_security_headers(response: web.StreamResponse) -> None:
    if response.prepared:  # a WebSocket or streamed body has sent its headers already
        return
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except RequestTimeout as exc:
        # the rest of the body is not coming: answer, then close at once rather than let aiohttp
        # linger (up to 10 s) reading a body that a stalled client will never send
        response = error_response(exc.status, exc.message, exc.headers)
        await response.prepare(request)
        await response.write_eof()
        request.protocol.force_close()
        return response
    except ApiError as exc:
        return error_response(exc.status, exc.message, exc.headers)
    except ClipporaError as exc:
        status = engine_status(exc)
        if status >= 500 and status != 503:
            log.error("engine error: %s", exc.message, extra={"job_id": request_job_id(request)})
            return error_response(500, "internal server error")
        headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, QuotaExceeded) else None
        return error_response(status, exc.message, headers)
    except web.HTTPException as exc:
        if exc.status < 400:  # redirects and the like pass through, with the security headers
            add_security_headers(exc)
            raise
        message = _REASONS.get(exc.status, exc.reason.lower() if exc.reason else "error")
        if exc.status == 413:
            message = "request body too large"
        headers = {k: v for k, v in exc.headers.items() if k.lower() in {"allow", "retry-after"}}
        return error_response(exc.status, message, headers)
    except ConnectionResetError as exc:  # the client left mid-request (aiohttp fails the body read so)
        log.info("client went away: %s %s (%s)", request.method, request.path, type(exc).__name__)
        return web.Response(status=CLIENT_CLOSED_REQUEST)  # written nowhere; logged and counted as such
    except Exception:
        log.exception("unhandled error in %s %s", request.method, request.path,
                      extra={"job_id": request_job_id(request)})
        return error_response(500, "internal server error")


@web.middleware
async def security_headers_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    response = await handler(request)
    add_security_headers(response)
    if is_https(request) and not response.prepared:  # served over TLS (or a trusted TLS proxy): stay there
        response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
    return response
