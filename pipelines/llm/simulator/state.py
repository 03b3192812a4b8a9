"""What the server's threads share: the fault settings, the request counters tests assert on
("one model call per item"), and the request limit's admissions."""
from __future__ import annotations

import math
import threading
from collections import Counter, deque

from .faults import Faults
from .responders import load_responders


class SimulatorState:
    """Faults and request counters shared by the server's threads."""

    def __init__(self, faults: Faults):
        self.faults = faults
        self.lock = threading.Lock()
        self.requests: Counter[str] = Counter()
        self.answered: Counter[str] = Counter()
        self.outcomes: Counter[str] = Counter()
        self.in_flight = 0
        self.max_in_flight = 0
        self.stopping = threading.Event()
        self.responders = load_responders()
        # When each request under the rate limit was admitted (monotonic seconds).
        self.admitted: deque[float] = deque()
        self.answered_at: list[float] = []

    def reset_counts(self) -> None:
        with self.lock:
            self.requests.clear()
            self.answered.clear()
            self.outcomes.clear()
            self.max_in_flight = 0
            self.admitted.clear()
            self.answered_at.clear()

    def admit(self, faults: Faults, now: float) -> float | None:
        """Count a request against the rate limit: None when admitted, else seconds until a slot frees."""
        if faults.rate_limit <= 0:
            return None
        window = max(faults.rate_window, 1e-3)
        with self.lock:
            if faults.rate_window_fixed:
                start = math.floor(now / window) * window
                while self.admitted and self.admitted[0] < start:
                    self.admitted.popleft()
                if len(self.admitted) >= faults.rate_limit:
                    return start + window - now
            else:
                while self.admitted and self.admitted[0] <= now - window:
                    self.admitted.popleft()
                if len(self.admitted) >= faults.rate_limit:
                    return self.admitted[0] + window - now
            self.admitted.append(now)
            return None

    def remaining(self, faults: Faults) -> int:
        with self.lock:
            return max(0, faults.rate_limit - len(self.admitted))
