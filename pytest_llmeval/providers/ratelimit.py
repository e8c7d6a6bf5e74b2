"""A requests-per-second limit shared by every client of one provider endpoint.

Slots are reserved under a lock and waited for outside it, so threads and coroutines
queue fairly and the limit holds across a whole suite's concurrent calls.
"""

from __future__ import annotations

import threading
import time

__all__ = ["RateLimiter", "shared_limiter"]


class RateLimiter:
    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate
        self._next = 0.0
        self._lock = threading.Lock()

    def reserve(self) -> float:
        """Take the next slot: seconds (>= 0) the caller must wait before sending. The
        caller sleeps (``time.sleep`` or ``asyncio.sleep``), so threads and coroutines share
        one queue."""
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next)
            self._next = slot + self.interval
            return slot - now


_SHARED: dict[tuple[str, float], RateLimiter] = {}
_SHARED_LOCK = threading.Lock()


def shared_limiter(base_url: str, rate: float | None) -> RateLimiter | None:
    """The process-wide limiter for ``base_url`` at ``rate`` requests/second (None: no limit)."""
    if rate is None:
        return None
    with _SHARED_LOCK:
        return _SHARED.setdefault((base_url, rate), RateLimiter(rate))
