"""Plain-text fallback: a short, deterministic Chinese answer to any other request."""
from __future__ import annotations

import random

from pipelines.llm.simulator.messages import request_text

PRIORITY = -100

_OPENERS = ["好的，", "根据您的描述，", "明白了。", "这个问题可以这样理解："]


def matches(request: dict) -> bool:
    return True


def respond(request: dict, rng: random.Random) -> str:
    question = request_text(request, roles=("user",)).strip().splitlines()
    topic = (question[-1] if question else "")[:40]
    if not topic:
        return "您好，请问有什么可以帮您？"
    return f"{rng.choice(_OPENERS)}关于“{topic}”，建议先确认相关信息，再按页面提示操作。如仍有疑问，可以联系人工客服。"
