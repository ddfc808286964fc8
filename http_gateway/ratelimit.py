"""In-memory sliding-window limits (login failures per IP and per email).

One process, one event loop: no locks are needed, and the state is deliberately lost on
restart (a limit on guessing, not an audit log). A cluster deployment behind several gateway
processes divides the effective limit by nothing worse than the process count.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable


class SlidingWindow:
    """At most ``limit`` events per key within any ``window_s`` seconds."""

    def __init__(self, limit: int, window_s: float, *, clock: Callable[[], float] = time.monotonic,
                 max_keys: int = 100_000) -> None:
        if limit < 1 or window_s <= 0:
            raise ValueError("limit must be >= 1 and window_s > 0")
        self.limit = limit
        self.window_s = window_s
        self.clock = clock
        self.max_keys = max_keys
        self._events: dict[str, deque[float]] = {}

    def _live(self, key: str, now: float) -> deque[float] | None:
        events = self._events.get(key)
        if events is None:
            return None
        while events and events[0] <= now - self.window_s:
            events.popleft()
        if not events:
            del self._events[key]
            return None
        return events

    def retry_after(self, key: str) -> float:
        """Seconds until ``key`` may act again; 0 when it is under its limit now."""
        now = self.clock()
        events = self._live(key, now)
        if events is None or len(events) < self.limit:
            return 0.0
        return max(0.0, events[len(events) - self.limit] + self.window_s - now)

    def hit(self, key: str) -> None:
        now = self.clock()
        events = self._live(key, now)
        if events is None:
            if len(self._events) >= self.max_keys:
                self._sweep(now)
            events = self._events.setdefault(key, deque())
        events.append(now)
        while len(events) > self.limit:  # older events no longer decide anything
            events.popleft()

    def reset(self, key: str) -> None:
        self._events.pop(key, None)

    def _sweep(self, now: float) -> None:
        """Drops idle keys; if a flood of distinct keys keeps the map full, the oldest go."""
        for key in list(self._events):
            self._live(key, now)
        while len(self._events) >= self.max_keys:
            del self._events[next(iter(self._events))]

    def __len__(self) -> int:
        return len(self._events)


class LoginLimiter:
    """Failed logins, counted per client IP and per email; either over its limit blocks."""

    def __init__(self, per_email: int = 5, per_ip: int = 20, window_s: float = 60.0, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.by_email = SlidingWindow(per_email, window_s, clock=clock)
        self.by_ip = SlidingWindow(per_ip, window_s, clock=clock)

    def retry_after(self, ip: str, email: str) -> int:
        """Whole seconds to wait (0: go ahead)."""
        wait = max(self.by_ip.retry_after(ip), self.by_email.retry_after(email.lower()))
        return math.ceil(wait) if wait > 0 else 0

    def failed(self, ip: str, email: str) -> None:
        self.by_ip.hit(ip)
        self.by_email.hit(email.lower())

    def succeeded(self, email: str) -> None:
        # the IP count stays: one correct password must not launder guesses at other accounts
        self.by_email.reset(email.lower())
