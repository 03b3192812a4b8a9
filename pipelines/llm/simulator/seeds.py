"""How the simulator stays deterministic: requests are keyed by a hash of their body, and every
random choice comes from an RNG seeded by what it depends on (seed, body hash, attempt, purpose)."""
from __future__ import annotations

import hashlib
import random
from typing import Any


def body_hash(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()[:16]


def seeded_rng(*parts: Any) -> random.Random:
    digest = hashlib.sha256("|".join(str(p) for p in parts).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))
