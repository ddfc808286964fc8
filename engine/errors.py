"""Errors raised by the engine and its stages.

Hierarchy (the gateway maps these to HTTP status codes, in http_gateway/errors.py)::

    ClipporaError                 base
    ├── InvalidOptions            a ProcessOptions field is out of range
    ├── PermanentError            the job cannot succeed as submitted; do not retry
    │   └── InvalidMedia          the source is not a usable video
    ├── RetryableError            transient (network, out of memory); the job is attempted again
    ├── BackendUnavailable        the requested compute backend cannot run here
    ├── PipelineUnavailable       the executor is down or its queue is full
    ├── QuotaExceeded             the account has as many jobs in flight as it may
    ├── NotFound                  no such job (or not visible to the caller)
    └── JobCancelled              the job was cancelled while running

Messages are written for the person who submitted the job: they say what is wrong
and, where it helps, what is allowed. They never carry secrets or stack traces.
"""

from __future__ import annotations


class ClipporaError(Exception):
    """Base class of every error the engine raises on purpose."""


    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class InvalidOptions(ClipporaError):
    """A ProcessOptions value is missing its allowed type or range."""


    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class PermanentError(ClipporaError):
    """The job cannot succeed with this input; retrying will not help."""



class InvalidMedia(PermanentError):
    """The source has no decodable video, zero duration, or an unsupported container."""


class RetryableError(ClipporaError):
    """A transient failure (network, memory pressure); the stage may be retried."""



class BackendUnavailable(ClipporaError):
    """The requested backend (e.g. cuda) cannot run on this machine."""



class PipelineUnavailable(ClipporaError):
    """The pipeline cannot take work now (executor stopped, queue at its bound)."""



class QuotaExceeded(ClipporaError):
    """The account has as many jobs in flight as it may; ``retry_after`` seconds is a fair guess."""

    def __init__(self, message: str, retry_after: int = 30) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class NotFound(ClipporaError):
    """The job (or file) does not exist."""



class Busy(ClipporaError):
    """The thing asked for is being done already (a render of this clip is queued or running)."""


class JobCancelled(ClipporaError):
    """Raised inside a stage when the job's cancel flag is seen."""


    def __init__(self, message: str = "job cancelled") -> None:
        super().__init__(message)
