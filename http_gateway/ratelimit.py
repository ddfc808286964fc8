"""Login-failure and sign-up limits, on the ``limits`` package's moving-window strategy.

The default storage is ``memory://``: embedded, one process, one event loop, state deliberately
lost on restart (a limit on guessing, not an audit log). A multi-gateway deployment points
``limits`` at shared storage instead, e.g. ``CLIPORA_RATE_LIMIT_STORAGE=redis://host:6379/0``
(needs the ``redis`` package), so every gateway counts against the same windows; those calls are
then synchronous network round trips on the event loop, so a busy cluster would move this module
to ``limits.aio``. Time is ``time.time()``, which is what ``limits``' storages read.

Memory stays bounded: ``MemoryStorage`` drops expired *entries* by itself (a timer after each
hit), but in limits 5.x it keeps the emptied per-key list for good, and the keys here are
client-chosen (any email string, any address). ``_PrunedMemoryStorage`` therefore clears keys
whose entries have all expired, at most once per ``sweep_every_s``.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator

from limits import RateLimitItem, RateLimitItemPerSecond
from limits.storage import MemoryStorage, Storage, storage_from_string
from limits.strategies import MovingWindowRateLimiter

from http_gateway.errors import TooManyRequests

DEFAULT_STORAGE = "memory://"
SUPPORTED_SCHEMES = ("memory", "redis", "rediss", "redis+unix", "redis+cluster", "redis+sentinel",
                     "valkey", "valkeys", "valkey+unix", "valkey+cluster", "valkey+sentinel",
                     "memcached", "mongodb", "mongodb+srv")  # synchronous storages only: no async+*


def storage_problem(uri: str) -> str | None:
    """Why ``uri`` cannot name a rate-limit storage, or None (a cheap check, nothing connects)."""
    scheme, sep, _ = uri.partition("://")
    if not sep or scheme not in SUPPORTED_SCHEMES:
        return f"must be memory:// or a synchronous limits storage URI such as redis://host:6379/0, not {uri!r}"
    return None


class _PrunedMemoryStorage(MemoryStorage):
    """``MemoryStorage`` that also forgets keys once all their moving-window entries expired."""

    def __init__(self, sweep_every_s: float = 60.0) -> None:
        super().__init__()
        self.sweep_every_s = sweep_every_s
        self._last_sweep = time.time()

    def acquire_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
        acquired = super().acquire_entry(key, limit, expiry, amount)
        now = time.time()
        if now - self._last_sweep >= self.sweep_every_s:
            self._last_sweep = now
            for stale in [k for k, entries in list(self.events.items())
                          if not entries or entries[0].expiry <= now]:  # newest first
                self.clear(stale)
        return acquired


def make_storage(uri: str = DEFAULT_STORAGE) -> Storage:
    problem = storage_problem(uri)
    if problem:
        raise ValueError(f"rate-limit storage {problem}")
    if uri.partition("://")[0] == "memory":
        return _PrunedMemoryStorage()
    storage = storage_from_string(uri)  # ConfigurationError when its client library is missing
    if not isinstance(storage, Storage):  # an async-only scheme: the limiter here is synchronous
        raise ValueError(f"rate-limit storage {uri.partition('://')[0]}:// is async-only; use its sync form")
    return storage


def _window(limit: int, window_s: float, namespace: str) -> RateLimitItem:
    if limit < 1 or window_s < 1:
        raise ValueError("limit must be >= 1 and window_s >= 1 (limits counts whole seconds)")
    return RateLimitItemPerSecond(limit, math.ceil(window_s), namespace=namespace)


class _Windows:
    def __init__(self, storage: Storage | None) -> None:
        self.storage = storage if storage is not None else make_storage()
        self.limiter = MovingWindowRateLimiter(self.storage)

    def wait(self, item: RateLimitItem, key: str) -> int:
        """Whole seconds until ``key`` may act again under ``item`` (0: now)."""
        stats = self.limiter.get_window_stats(item, key)
        if stats.remaining > 0:
            return 0
        return max(1, math.ceil(stats.reset_time - time.time()))


class LoginLimiter(_Windows):
    """Failed logins, counted per client IP and per email; either over its limit blocks."""

    def __init__(self, per_email: int = 5, per_ip: int = 20, window_s: float = 60.0, *,
                 storage: Storage | None = None) -> None:
        super().__init__(storage)
        self.by_email = _window(per_email, window_s, "clipora-login-email")
        self.by_ip = _window(per_ip, window_s, "clipora-login-ip")

    def retry_after(self, ip: str, email: str) -> int:
        """Whole seconds to wait (0: go ahead)."""
        return max(self.wait(self.by_ip, ip), self.wait(self.by_email, email.lower()))

    def attempt(self, ip: str, email: str) -> int:
        """Count a login attempt *before* its password is checked: 0 to go ahead, else seconds to wait.

        Counting first means parallel guesses are limited as they arrive, not after their
        verifies finish; a success clears the email's count (``succeeded``).
        """
        if not self.limiter.hit(self.by_ip, ip):
            return self.wait(self.by_ip, ip)
        if not self.limiter.hit(self.by_email, email.lower()):
            return self.wait(self.by_email, email.lower())
        return 0

    def succeeded(self, email: str) -> None:
        # the IP count stays: one correct password must not launder guesses at other accounts
        self.limiter.clear(self.by_email, email.lower())


class ConcurrencyCap:
    """At most ``per_key`` operations at once per key (one event loop): ``with cap.slot(ip): ...``.

    Past the cap ``slot`` raises ``Busy`` at once (``hold`` raises the 429 a route answers with);
    keys are forgotten when their count is back to zero, so memory holds only what is running.
    """

    class Busy(Exception):
        pass

    def __init__(self, per_key: int) -> None:
        self.per_key = per_key
        self._running: dict[str, int] = {}

    @contextlib.contextmanager
    def hold(self, key: str, message: str, retry_after: int = 1) -> Iterator[None]:
        """``slot``, or TooManyRequests(``message``) when ``key`` is at its cap; only entering is
        checked, so a Busy from inside the block is not mistaken for this cap's."""
        if self._running.get(key, 0) >= self.per_key:  # one event loop: nothing runs between here and slot
            raise TooManyRequests(message, retry_after)
        with self.slot(key):
            yield

    @contextlib.contextmanager
    def slot(self, key: str) -> Iterator[None]:
        n = self._running.get(key, 0)
        if n >= self.per_key:
            raise ConcurrencyCap.Busy(key)
        self._running[key] = n + 1
        try:
            yield
        finally:
            left = self._running[key] - 1
            if left:
                self._running[key] = left
            else:
                del self._running[key]


class SignupLimiter(_Windows):
    """Sign-up attempts per client IP (each one costs an argon2 hash)."""

    def __init__(self, per_ip: int = 10, window_s: float = 3600.0, *, storage: Storage | None = None) -> None:
        super().__init__(storage)
        self.by_ip = _window(per_ip, window_s, "clipora-signup-ip")

    def attempt(self, ip: str) -> int:
        """Counts an attempt from ``ip``: 0 when allowed, else whole seconds to wait (not counted)."""
        if self.limiter.hit(self.by_ip, ip):
            return 0
        return self.wait(self.by_ip, ip) or 1  # refused on the window's very edge
