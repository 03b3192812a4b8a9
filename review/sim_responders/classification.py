"""Simulated Qwen-VL answers to the scene-classification prompts (modes 1/2/3).

The simulated model "sees" an image's true class by reading the marker drawn into demo images
(`review.image_marker`), then reasons in Chinese in the format the prompts require
(`推理：…` / `类别：…`). Realistic, deterministic mistakes:

- each image has a fixed "difficulty" (from its bytes); hard images are answered with a class that
  is easily confused with the true one (`DemoCategory.confusable`) — mode 1 (no definitions) errs
  most, mode 2 least, mode 3 (≤ 100 字) a little more than mode 2;
- a different prompt wording reshuffles part of the mistakes, so re-running wrong samples with an
  edited prompt fixes some of them (as a better definition would);
- mode 3 answers keep within 100 characters most of the time; a few run over;
- the answer line varies its wording a little, and a few answers hedge between two classes
  (unparseable, on purpose);
- asked for `logprobs`, the class name carries the model's confidence: high for what it sees,
  low when a hard image made it name a confusable class.
"""
from __future__ import annotations

import hashlib
import random
import re

from review.image_marker import read_marker
from pipelines.llm.simulator.logprobs import ScoredText
from pipelines.llm.simulator.messages import decode_data_url_image, request_image_urls, request_text
from review.demo_catalog import DEMO_CATEGORIES, DEMO_OTHER_CATEGORY, DemoCategory

PRIORITY = 10

# Share of images answered wrongly per mode (before prompt reshuffling).
ERROR_RATE = {1: 0.30, 2: 0.12, 3: 0.16}
UNPARSEABLE_RATE = 0.03
MODE3_OVERRUN_RATE = 0.08


def matches(request: dict) -> bool:
    text = request_text(request)
    return bool(request_image_urls(request)) and "类别" in text and "信息提取" not in text


def detect_mode(prompt: str) -> int:
    """Which of the three prompt modes a prompt is (by what it contains)."""
    if re.search(r"\d+\s*字(以内|之内|内)", prompt) or "字数" in prompt:
        return 3
    if "定义" in prompt:
        return 2
    return 1


def _unit(*parts: object) -> float:
    digest = hashlib.sha256("|".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _by_name(name: str) -> DemoCategory | None:
    return next((c for c in DEMO_CATEGORIES if c.name == name), None)


def _seen_category(request: dict) -> tuple[DemoCategory | None, str]:
    """The true class the image shows (from its marker) and a stable id of the image."""
    urls = request_image_urls(request)
    if not urls:
        return None, ""
    image_id = hashlib.sha256(urls[0].encode()).hexdigest()[:16]
    image = decode_data_url_image(urls[0])
    if image is None:
        return None, image_id
    index = read_marker(image)
    if index is None or index >= len(DEMO_CATEGORIES):
        return None, image_id
    return DEMO_CATEGORIES[index], image_id


def _describe(category: DemoCategory) -> str:
    """What the image visibly shows, phrased from the class definition."""
    text = category.definition
    for prefix in ("图片中显示", "图片中", "显示"):
        if text.startswith(prefix):
            text = text[len(prefix):]
    return text


def _reasoning(seen: DemoCategory | None, predicted: DemoCategory, mode: int, rng: random.Random, long: bool) -> str:
    if seen is None:
        body = "图片内容较为模糊，没有看到明显的订单、物流或商品信息，也没有客服相关的界面元素"
    elif seen.name == predicted.name:
        openers = ["图片中可以看到", "从截图来看，画面展示的是", "观察图片，主要内容为", "图中呈现的是"]
        body = f"{rng.choice(openers)}{_describe(seen)}"
        if long:
            body += (f"。页面上有相关的文字标题和操作按钮，整体布局符合{predicted.name}场景的特征"
                     f"，与“{predicted.definition}”的描述一致，没有发现其他类别的明显特征")
    else:
        body = (f"图片中出现了{_describe(seen)}等元素，但结合页面上的文字和按钮，"
                f"更像是{_describe(predicted)}")
        if long:
            body += f"。虽然与{seen.name}有相似之处，但整体判断更符合{predicted.name}的定义"
    if mode == 1 and long:
        body += "。综合画面中的主要信息，给出如下判断"
    return f"{body}，因此判断该图片属于{predicted.name}。"


def _answer_line(predicted: DemoCategory, rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.80:
        return f"类别：{predicted.name}"
    if roll < 0.90:
        return f"最终类别：【{predicted.name}】"
    if roll < 0.96:
        return f"类别: {predicted.name}（{predicted.definition[:6]}）"
    return f"分类结果为：{predicted.name}"


def respond(request: dict, rng: random.Random) -> str:
    prompt = request_text(request)
    mode = detect_mode(prompt)
    seen, image_id = _seen_category(request)
    # Difficulty belongs to the image; the prompt wording reshuffles part of the mistakes.
    difficulty = _unit("difficulty", image_id)
    prompt_id = hashlib.sha256(prompt.encode()).hexdigest()[:16]
    predicted = seen or _by_name(DEMO_OTHER_CATEGORY)
    if seen is not None and difficulty < ERROR_RATE[mode] and _unit("reshuffle", image_id, prompt_id) < 0.7:
        pool = [c for c in (_by_name(n) for n in seen.confusable) if c is not None]
        if mode == 1:
            pool += [c for c in DEMO_CATEGORIES if c.name != seen.name]
        predicted = rng.choice(pool) if pool else predicted
    if mode == 3:
        long = rng.random() < MODE3_OVERRUN_RATE
    else:
        long = True
    reasoning = _reasoning(seen, predicted, mode, rng, long)
    if mode == 3 and long:
        reasoning += f"画面中其他区域的信息较少，对判断影响不大，也没有出现与{predicted.name}冲突的内容。"
    if rng.random() < UNPARSEABLE_RATE:
        others = [c for c in DEMO_CATEGORIES if c.name != predicted.name]
        other = rng.choice(others)
        return f"推理：{reasoning}\n类别：无法确定，可能是{predicted.name}或{other.name}"
    text = f"推理：{reasoning}\n{_answer_line(predicted, rng)}"
    # How sure the model is of the class it names (its token log-probabilities when asked):
    # sure of what it sees, unsure when a hard image made it answer a confusable class.
    if seen is None:
        confidence = 0.3 + 0.3 * rng.random()
    elif predicted.name == seen.name:
        confidence = 0.85 + 0.14 * rng.random()
    else:
        confidence = 0.2 + 0.4 * rng.random()
    start = text.rfind(predicted.name)
    return ScoredText(text, [(start, start + len(predicted.name), confidence)]) if start >= 0 else text
