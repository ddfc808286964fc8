"""Gateway errors. Every one becomes ``{"error": message}`` with its status, in the error
middleware (the only place errors map to responses).

    ApiError (500)
    ├── BadRequest (400)        malformed input, a missing field, a bad option
    ├── Unauthorized (401)      no or wrong credentials (a wrong/revoked key never falls back)
    ├── Forbidden (403)         not yours, or an API key where only a session is accepted
    ├── NotFoundError (404)
    ├── NotAcceptable (406)     an Accept the route cannot answer (/mcp answers JSON)
    ├── Conflict (409)          email exists, 11th key
    ├── RequestTimeout (408)    a body that stalled; sent with Connection: close
    ├── PayloadTooLarge (413)
    ├── UnsupportedMediaType (415) a body of a type the route does not take
    ├── RangeNotSatisfiable (416) carries Content-Range: bytes */size
    ├── TooManyRequests (429)   carries Retry-After seconds
    └── ServiceUnavailable (503)

Engine errors (engine.errors) map to a status here too (:func:`engine_status`), so every
status the API answers with is decided in this one module.
"""

from __future__ import annotations

from engine.errors import (
    BackendUnavailable,
    Busy,
    ClipporaError,
    InvalidOptions,
    JobCancelled,
    NotFound,
    PermanentError,
    PipelineUnavailable,
    QuotaExceeded,
    RetryableError,
)

#: the status of each engine error class (the most specific class of an error decides)
ENGINE_STATUS: dict[type[ClipporaError], int] = {
    InvalidOptions: 400,
    PermanentError: 400,  # InvalidMedia, a refused URL
    NotFound: 404,
    JobCancelled: 409,
    Busy: 409,
    QuotaExceeded: 429,
    RetryableError: 503,
    BackendUnavailable: 503,
    PipelineUnavailable: 503,
}


def engine_status(exc: ClipporaError) -> int:
    for cls in type(exc).__mro__:
        if cls in ENGINE_STATUS:
            return ENGINE_STATUS[cls]
    return 500


class ApiError(Exception):
    status = 500

    def __init__(self, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers or {}


class BadRequest(ApiError):
    status = 400


class Unauthorized(ApiError):
    status = 401


class Forbidden(ApiError):
    status = 403


class NotFoundError(ApiError):
    status = 404


class NotAcceptable(ApiError):
    status = 406


class Conflict(ApiError):
    status = 409


class RequestTimeout(ApiError):
    status = 408

    def __init__(self, message: str) -> None:
        # the rest of the body will not come: the connection is closed after this answer
        super().__init__(message, headers={"Connection": "close"})


class PayloadTooLarge(ApiError):
    status = 413


class UnsupportedMediaType(ApiError):
    status = 415


class TooManyRequests(ApiError):
    status = 429

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message, headers={"Retry-After": str(max(1, int(retry_after)))})
        self.retry_after = retry_after


class ServiceUnavailable(ApiError):
    status = 503


class RangeNotSatisfiable(ApiError):
    status = 416

    def __init__(self, message: str, size: int) -> None:
        super().__init__(message, headers={"Content-Range": f"bytes */{size}"})
