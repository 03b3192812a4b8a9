"""Simulated answers to the 修正草稿 prompt (review/jobs/correction_drafts.py): a corrected mode-3 output.

Deterministic (the RNG is seeded from the request), and some drafts fail the correction checks on
purpose so tests and the demo see both paths:

- about 10 % run over the length limit the prompt states;
- about 8 % end with another class's name (a confusable one);
- an image whose marker shows another class than the label (a planted label error) is described as
  what it shows, and named so: the model will not argue for a label its eyes contradict.

The rest follow the examples' shape — what the image shows, why that fits the label's definition —
and end with `类别：<label>` within the limit.
"""
from __future__ import annotations

import random
import re

from review.sim_responders.classification import _by_name, _describe, _seen_category
from pipelines.llm.simulator.messages import request_image_urls, request_text

PRIORITY = 15
OVER_LIMIT_RATE = 0.10
WRONG_CLASS_RATE = 0.08

_LABEL = re.compile(r"类别是“([^”]+)”")
_LIMIT = re.compile(r"不超过\s*(\d+)\s*字")


def matches(request: dict) -> bool:
    return bool(request_image_urls(request)) and "修正草稿" in request_text(request)


def _fit(text: str, limit: int, tail: str) -> str:
    """`text` shortened (at a character) so that text + tail stays within `limit` non-space characters."""
    room = max(8, limit - len("".join(tail.split())) - 1)
    letters = 0
    for i, ch in enumerate(text):
        letters += not ch.isspace()
        if letters > room:
            return text[:i].rstrip("，、；") + "。"
    return text


def respond(request: dict, rng: random.Random) -> str:
    prompt = request_text(request)
    label_match, limit_match = _LABEL.search(prompt), _LIMIT.search(prompt)
    label_name = label_match.group(1) if label_match else "其他类别图片"
    limit = int(limit_match.group(1)) if limit_match else 100
    label = _by_name(label_name)
    seen, _ = _seen_category(request)
    named = label_name
    shown = label
    if seen is not None and label is not None and seen.name != label.name:
        named, shown = seen.name, seen  # it describes and names what it sees
    roll = rng.random()
    if named == label_name and label is not None and roll < WRONG_CLASS_RATE and label.confusable:
        named = rng.choice(label.confusable)
    what = _describe(shown) if shown is not None else "电商客服相关的页面内容"
    tail = f"\n类别：{named}"
    body = _fit(f"图片中可以看到{what}，与“{named}”的定义一致，因此属于该类别。", limit, tail)
    if WRONG_CLASS_RATE <= roll < WRONG_CLASS_RATE + OVER_LIMIT_RATE:
        body += ("页面上的文字、按钮和整体布局都指向这一场景，用户截取此图多半是想就其中的信息咨询客服，"
                 "其余区域没有出现与之冲突的内容，也没有其他类别的典型元素。") * 2
    return body + tail
