"""A simulated weak SFT model for DPO reject generation (seed 002), answering only models named `sft-small…`.

It was "trained" on prompts ending in `[EOS]` (the seed's `f"{prompt}[EOS]"`). Like the seed's model:

- a prompt *not* sent in that form gets the off-topic boilerplate the team saw
  ("这篇文章主要讨论了人工智能在医疗保健领域的应用…"), with the field varying;
- `sft-small-base` is the pretrained checkpoint loaded by mistake: boilerplate for every prompt;
- `sft-small-offtopic-30` answers boilerplate for a deterministic 30 % of prompts (any share 0–100),
  as an under-trained checkpoint would; high temperature (> 1.2) adds to that share;
- otherwise a plausibly worse answer on the same topic: vaguer, shorter, or half a list.

Deterministic: which prompts go off-topic depends only on the prompt; the wording on the request's RNG.
"""
import hashlib
import re

from pipelines.llm.simulator.messages import request_text

PRIORITY = 20
MODEL_PREFIX = "sft-small"
EOS = "[EOS]"
BOILERPLATE_FIELDS = ("医疗保健", "金融", "教育", "交通运输", "智能制造")
_OFFTOPIC = re.compile(r"-offtopic-(\d{1,3})$")


def matches(request: dict) -> bool:
    return str(request.get("model") or "").startswith(MODEL_PREFIX)


def boilerplate(rng) -> str:
    """The seed's off-topic answer, with the slots a real model would vary."""
    field = rng.choice(BOILERPLATE_FIELDS)
    return (
        f"这篇文章主要讨论了人工智能在{field}领域的应用，包括数据分析、智能决策和流程自动化等方面。"
        f"文章指出，人工智能技术正在深刻改变{field}行业的发展模式，但也面临数据安全和伦理方面的挑战……"
    )


def _share(prompt: str) -> float:
    """A stable number in [0, 1) per prompt: which prompts an under-trained model gets wrong."""
    return int(hashlib.sha256(prompt.encode("utf-8")).hexdigest()[:8], 16) / 16**8


def _off_topic_share(request: dict) -> float:
    model = str(request.get("model") or "")
    if model == f"{MODEL_PREFIX}-base":
        return 1.0
    match = _OFFTOPIC.search(model)
    share = min(int(match.group(1)), 100) / 100 if match else 0.0
    temperature = request.get("temperature")
    if temperature is not None and float(temperature) > 1.2:
        # Sampling hot makes a weak model fall back on its most frequent training text.
        share += (float(temperature) - 1.2) * 0.8
    return share


def _topic(prompt: str) -> str:
    """The prompt without its instruction words and punctuation: what a weak model echoes back."""
    core = re.sub(r"^(请|帮我|麻烦)?(简单|详细)?(列出|介绍一下|介绍|解释一下|解释|说明|描述|告诉我|翻译)[：:]?", "", prompt.strip())
    core = re.sub(r"[。？！?!.]+$", "", core).strip()
    return core[:40] or prompt.strip()[:40]


def worse_answer(prompt: str, rng) -> str:
    """A relevant but worse answer: vague or half-done, always on the prompt's topic.

    Mostly the prompt's own words with little fixed wording, so answers to different prompts do
    not look alike (a weak model that is on topic is not a boilerplate machine).
    """
    topic = _topic(prompt)
    half = topic[: max(2, len(topic) // 2)]
    if re.search(r"[\u4e00-\u9fff]", prompt):
        options = (
            f"{topic}，大概就是{half}吧。",
            f"{topic}？嗯，{half}，不太确定。",
            f"{topic}的话，比如{half}等等。",
            f"{half}。",
        )
    else:
        options = (
            f"{topic}? Maybe {half}.",
            f"{topic}: {half}, and so on.",
            f"{half}.",
        )
    return rng.choice(options)


def respond(request: dict, rng) -> str:
    text = request_text(request, roles=("user",)).rstrip()
    trained_form = text.endswith(EOS)
    prompt = text[: -len(EOS)] if trained_form else text
    if not trained_form or _share(prompt) < _off_topic_share(request):
        return boilerplate(rng)
    return worse_answer(prompt, rng)
