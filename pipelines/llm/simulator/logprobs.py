"""Per-token log-probs as `logprobs: true` returns them, and ScoredText: an answer whose responder
says how sure the simulated model is of parts of it."""
from __future__ import annotations

import math
from typing import Any

from .seeds import seeded_rng


class ScoredText(str):
    """An answer whose responder knows how sure the simulated model is of parts of it:
    `spans` are (start, end, probability of that part as a whole), e.g. the class name of a
    classification answer (review/sim_responders/classification.py)."""

    spans: tuple[tuple[int, int, float], ...] = ()

    def __new__(cls, text: str, spans=()):
        value = super().__new__(cls, text)
        value.spans = tuple(spans)
        return value


def token_logprobs(text: str, key: str, index: int) -> dict[str, Any]:
    """Deterministic per-token (per-character) log-probs, as `logprobs: true` returns them: most
    tokens near-certain (as a real model's are; mean about −0.05), and a responder's scored parts
    (`ScoredText.spans`) carrying the probability it gave them, spread over their characters."""
    rng = seeded_rng("logprobs", key, index)
    values = [-min(4.0, rng.expovariate(20.0)) for _ in text[:400]]
    for start, end, probability in getattr(text, "spans", ()):
        if 0 <= start < end <= len(values):
            share = math.log(max(probability, 1e-6)) / (end - start)
            values[start:end] = [share] * (end - start)
    return {"content": [{"token": ch, "logprob": round(value, 4), "bytes": None, "top_logprobs": []}
                        for ch, value in zip(text, values)]}
