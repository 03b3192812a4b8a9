"""The adaptive request rate of one client (AIMD): request starts are spaced at the current rate,
which drops when the server answers 429 and climbs again while answers succeed, so a job finds the
server's real limit by itself; the configured requests per minute is only a ceiling."""
from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from typing import Any

from .errors import LLMError

logger = logging.getLogger(__name__)

# The rate controller's constants: its measuring window (limits are per minute), how far a 429
# lowers the rate below what the server just let through, how fast the rate climbs back (per
# window, in requests or this share of the rate, whichever is larger; faster after a quiet
# window), and the lowest rate it goes to.
RATE_WINDOW_SECONDS = 60.0
RATE_DECREASE = 0.95
RATE_INCREASE = 0.05
RATE_INCREASE_QUIET = 0.25
RATE_FLOOR_PER_MINUTE = 1.0


class AdaptiveRate:
    """The request rate of one client, found from the server's answers (AIMD).

    Request starts are spaced at the current rate. A 429 lowers it to RATE_DECREASE × what the
    server actually answered in the last window (not × the rate we asked for, so a burst of 429s
    cannot drive it to nothing); success raises it by RATE_INCREASE of itself per window (at least
    one request per window), RATE_INCREASE_QUIET after a window without any 429. `ceiling`
    (requests per minute; None = none) is the configured LLM_REQUESTS_PER_MINUTE, lowered to the
    limit a server advertises in `x-ratelimit-limit-requests`. Before the first 429 the rate is the
    ceiling (None: starts are not spaced; the concurrency bounds them). Single event loop only.
    """

    def __init__(self, ceiling: float | None = None, *, window: float = RATE_WINDOW_SECONDS,
                 start: float | None = None):
        self.window = float(window)
        self.ceiling = float(ceiling) if ceiling else None
        self.rate = float(start) if start else self.ceiling  # requests per minute; None = unspaced
        if self.rate and self.ceiling:
            self.rate = min(self.rate, self.ceiling)
        self._answered: deque[float] = deque()
        self._next = 0.0
        self._last_limited = -1e18
        self.limited = 0      # 429s seen
        self.decreases = 0

    @property
    def interval(self) -> float:
        return 60.0 / self.rate if self.rate else 0.0

    def _measured(self, now: float) -> float:
        """Answers in the last window, as requests per minute."""
        while self._answered and self._answered[0] <= now - self.window:
            self._answered.popleft()
        return len(self._answered) * 60.0 / self.window

    async def wait(self) -> None:
        """Wait for the next start slot at the current rate."""
        while True:
            interval = self.interval
            now = time.monotonic()
            if not interval or now >= self._next:
                self._next = max(now, self._next) + interval if interval else now
                return
            await asyncio.sleep(self._next - now)

    def succeeded(self) -> None:
        now = time.monotonic()
        self._answered.append(now)
        if self.rate is None:
            return
        growth = RATE_INCREASE if now - self._last_limited < self.window else RATE_INCREASE_QUIET
        per_window = self.rate * self.window / 60.0
        step = max(1.0, growth * per_window) / max(per_window, 1.0)  # per answer, in requests per window
        self.rate += step * 60.0 / self.window
        if self.ceiling:
            self.rate = min(self.rate, self.ceiling)

    def limited_by_server(self, error: LLMError) -> None:
        now = time.monotonic()
        self.limited += 1
        if error.limit_hint and error.limit_hint > 0:
            self.ceiling = min(self.ceiling or float(error.limit_hint), float(error.limit_hint))
        # One decrease per burst of 429s: those answering requests sent before the last decrease
        # say nothing new.
        epoch = max(min(error.retry_after or 0.0, self.window), 2 * self.interval, 0.5)
        if now - self._last_limited < epoch:
            return
        measured = self._measured(now)
        basis = measured if measured > 0 else (self.rate or 60.0)
        self.rate = max(RATE_FLOOR_PER_MINUTE, RATE_DECREASE * min(self.rate or basis, basis))
        if self.ceiling:
            self.rate = min(self.rate, self.ceiling)
        self._last_limited = now
        self.decreases += 1
        logger.info("rate limited: request rate now %.1f/min (server answered %.1f/min)", self.rate, measured)

    def snapshot(self) -> dict[str, Any]:
        """For job pages and reports: the current rate and what the server answered lately."""
        now = time.monotonic()
        return {
            "current_per_minute": round(self.rate, 1) if self.rate else None,
            "ceiling_per_minute": round(self.ceiling, 1) if self.ceiling else None,
            "answered_per_minute": round(self._measured(now), 1),
            "limited": self.limited,
            "decreases": self.decreases,
        }
