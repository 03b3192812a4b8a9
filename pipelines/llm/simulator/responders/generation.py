"""Simulated question and response generation for the generation job (pipelines/generation/).

Deterministic per request. Most responses are well formed; some drop a tag, repeat themselves or
reason thinly, so the judge has realistic things to complain about. Tests steer single items with
markers in the source's wiki title:

    [missing-look] / [missing-think] / [missing-answer]   the response lacks that tag
    [good]                                                 a long, clean response (judge passes it)
    [repetitive] / [shallow]                               a response with that defect
"""
import random
import re

from pipelines.generation.prompts import QUESTION_SYSTEM_PROMPT, RESPONSE_SYSTEM_PROMPT
from pipelines.llm.simulator.messages import content_text

PRIORITY = 10
_QUESTION_MARK = QUESTION_SYSTEM_PROMPT.splitlines()[0]
_RESPONSE_MARK = RESPONSE_SYSTEM_PROMPT.splitlines()[0]


def _system(request: dict) -> str:
    for message in request.get("messages") or []:
        if message.get("role") == "system":
            return content_text(message.get("content"))
    return ""


def _user(request: dict) -> str:
    texts = [content_text(m.get("content")) for m in request.get("messages") or [] if m.get("role") == "user"]
    return texts[-1] if texts else ""


def matches(request: dict) -> bool:
    system = _system(request)
    return system.startswith(_QUESTION_MARK) or system.startswith(_RESPONSE_MARK)


def _title(user: str) -> str:
    match = re.search(r"Wiki title: (.*)", user)
    return match.group(1).strip() if match else "the subject"


def _facts(user: str) -> list[str]:
    block = re.search(r"Facts:\n(.*?)(?:\n\n|$)", user, re.S)
    if not block:
        return []
    return [line[2:].strip() for line in block.group(1).splitlines() if line.startswith("- ")]


def _cjk(text: str) -> bool:
    return bool(re.search(r"[\u4e00-\u9fff]", text))


def _clean_title(title: str) -> str:
    return re.sub(r"\s*\[[a-z-]+\]\s*", " ", title).strip() or title


def respond(request: dict, rng: random.Random) -> str:
    system, user = _system(request), _user(request)
    if system.startswith(_QUESTION_MARK):
        return _question(user, rng)
    return _response(user, rng)


_OPEN_EN = (
    "What architectural or design features visible in the image identify {t}?",
    "Based on what you can see, what was {t} most likely used for, and why?",
    "Which visual details in the image tell you roughly when {t} was made?",
)
_OPEN_ZH = (
    "从图中可见的哪些特征可以判断这是{t}？",
    "根据图片中的细节，{t}最可能的用途是什么？为什么？",
    "图中哪些视觉线索能说明{t}的年代？",
)


def _question(user: str, rng: random.Random) -> str:
    title = _clean_title(_title(user))
    zh = _cjk(title)
    stem = rng.choice(_OPEN_ZH if zh else _OPEN_EN).format(t=title)
    if "multiple choice" not in user:
        return stem
    options = (
        ["其外形与结构", "图片的拍摄时间", "周围人物的衣着", "图片的分辨率"]
        if zh
        else ["Its shape and structure", "The time the photo was taken", "Clothing of bystanders", "The image resolution"]
    )
    return stem + "\n" + "\n".join(f"{letter}. {text}" for letter, text in zip("ABCD", options))


def _response(user: str, rng: random.Random) -> str:
    title_raw = _title(user)
    title = _clean_title(title_raw)
    zh = _cjk(title)
    facts = _facts(user)
    question = user.split("Question:\n", 1)[-1]
    multiple_choice = "\nA. " in question
    fact = facts[0] if facts else (f"{title}的典型特征" if zh else f"typical traits of {title}")
    if zh:
        look = f"图片中可以看到{title}的整体轮廓、材质与周围环境，细节清晰。"
        steps = [f"首先，图中的外形与{fact}相符。", "其次，材质和颜色进一步印证了这一判断。", "最后，周围环境排除了其他可能。"]
        answer = f"这是{title}，图中的结构特征就是依据。"
    else:
        look = f"The image shows the overall outline of {title}, its materials and its surroundings in clear detail."
        steps = [
            f"First, the visible shape matches {fact}.",
            "Second, the materials and colours support that reading.",
            "Finally, the surroundings rule out the other candidates.",
        ]
        answer = f"It is {title}; the visible structure is the evidence."
    if multiple_choice:
        answer = "A. " + answer
    # Defects: forced by a marker, otherwise drawn (about one in four responses has one).
    roll = rng.random()
    defect = None
    for name in ("missing-look", "missing-think", "missing-answer", "repetitive", "shallow", "good"):
        if f"[{name}]" in title_raw:
            defect = name
    if defect is None:
        defect = (
            "missing-" + rng.choice(("look", "think", "answer")) if roll < 0.08
            else "repetitive" if roll < 0.18
            else "shallow" if roll < 0.28
            else "good"
        )
    if defect == "repetitive":
        steps = steps[:1] * 4
    elif defect == "shallow":
        steps = steps[:1]
        look = f"图中是{title}。" if zh else f"It shows {title}."
    elif rng.random() < 0.5:
        extra = "此外，画面的光线与比例也与该判断一致。" if zh else "The lighting and proportions are consistent with this as well."
        steps.append(extra)
    think = ("" if zh else " ").join(steps)
    parts = {"look": look, "think": think, "answer": answer}
    if defect.startswith("missing-"):
        dropped = defect.split("-", 1)[1]
        return "".join(f"<{t}>{v}</{t}>" if t != dropped else v for t, v in parts.items())
    return "".join(f"<{t}>{v}</{t}>" for t, v in parts.items())
