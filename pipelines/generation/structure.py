"""The response's structure: `<look>…</look><think>…</think><answer>…</answer>`, checked before the judge."""
from __future__ import annotations

import re

TAGS = ("look", "think", "answer")
REASON_OUT_OF_ORDER = "Tags out of order"


def missing_tag_reason(tag: str) -> str:
    """The failure reason for a response without `<tag>…</tag>` (one reason per tag)."""
    return f"Missing <{tag}> tag"



def check_structure(response: str) -> list[str]:
    """Structure problems of a response: each missing or unclosed tag, then tags out of order."""
    problems: list[str] = []
    spans: list[int] = []
    for tag in TAGS:
        match = re.search(rf"<{tag}>(.*?)</{tag}>", response or "", re.S)
        if not match or not match.group(1).strip():
            problems.append(missing_tag_reason(tag))
        else:
            spans.append(match.start())
    if not problems and spans != sorted(spans):
        problems.append(REASON_OUT_OF_ORDER)
    return problems


def response_part(response: str, tag: str) -> str:
    """The text inside `<tag>…</tag>` of a response ('' when absent)."""
    match = re.search(rf"<{tag}>(.*?)</{tag}>", response or "", re.S)
    return match.group(1).strip() if match else ""
