"""A sliding-window rate limiter kept in memory (no I/O; the caller passes the clock).

One limiter counts events per key (a client IP, an address hash) inside a window. It is
per process: ``publisher serve`` runs one process, and a restart forgets the counts,
which only ever makes the limit looser for one window.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable


class RateLimiter:
    """At most ``limit`` events per key within ``window`` seconds; thread-safe."""

    def __init__(
        self,
        limit: int,
        window: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 100_000,
    ) -> None:
        self.limit = limit
        self.window = window
        self.clock = clock
        self.max_keys = max_keys
        self._events: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def hit(self, key: str) -> bool:
        """Count one event for ``key``; return False (and count nothing) when over the limit."""
        now = self.clock()
        with self._lock:
            events = self._events.get(key)
            if events is None:
                if len(self._events) >= self.max_keys:
                    self._prune(now)
                events = self._events[key] = deque()
            while events and events[0] <= now - self.window:
                events.popleft()
            if len(events) >= self.limit:
                return False
            events.append(now)
            return True

    def retry_after(self, key: str) -> float:
        """Seconds until ``key`` may have another event (0 when it may now)."""
        now = self.clock()
        with self._lock:
            events = self._events.get(key)
            if not events or len(events) < self.limit:
                return 0.0
            # The oldest event of the full window leaving it frees one slot.
            return max(0.0, events[-self.limit] + self.window - now)

    def _prune(self, now: float) -> None:
        """Forget keys with no event inside the window (and, if still full, everything)."""
        for key in [k for k, v in self._events.items() if not v or v[-1] <= now - self.window]:
            del self._events[key]
        if len(self._events) >= self.max_keys:
            self._events.clear()
