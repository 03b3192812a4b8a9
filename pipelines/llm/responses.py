"""What a chat completion answered: `ChatResult` (every choice's text, reasoning, finish reason and
mean log-probability) read from the raw JSON body, and the check that refuses a truncated or empty
answer before anyone stores it."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .errors import CONTENT_FILTER, EMPTY, TRUNCATED, UNPARSEABLE, LLMError


@dataclass
class ChatResult:
    """One chat completion: `text` is the first choice, `texts` all choices (n > 1).

    `reasoning(s)` hold a thinking model's reasoning (None when it sent none), `finish_reason(s)`
    why each choice ended; `n_fallback` says the server ignored `n` and the choices were asked for
    one by one.
    """

    text: str
    texts: list[str]
    raw: dict[str, Any]
    model: str
    attempts: int = 1
    reasonings: list[str | None] = field(default_factory=list)
    finish_reasons: list[str | None] = field(default_factory=list)
    n_fallback: bool = False
    # Each choice's mean token log-probability when `logprobs` was asked for and answered.
    mean_logprobs: list[float | None] = field(default_factory=list)

    @property
    def reasoning(self) -> str | None:
        return self.reasonings[0] if self.reasonings else None

    @property
    def finish_reason(self) -> str | None:
        return self.finish_reasons[0] if self.finish_reasons else None


def parse_completion(raw: Any, model: str, attempts: int) -> ChatResult:
    """The ChatResult of a completion body (JSON already decoded); LLMError when it has no usable choices."""
    choices = raw.get("choices") if isinstance(raw, dict) else None
    if not choices or not isinstance(choices, list):
        raise LLMError(UNPARSEABLE, "模型响应中没有 choices")
    texts, reasonings, reasons, logprobs = [], [], [], []
    for choice in choices:
        if not isinstance(choice, dict):
            raise LLMError(UNPARSEABLE, "模型响应的 choices 格式不对")
        if choice.get("finish_reason") == "content_filter":
            raise LLMError(CONTENT_FILTER, "输出被内容审核拦截")
        message = choice.get("message") or {}
        if not isinstance(message, dict):
            message = {}
        content = message.get("content")
        texts.append(content if isinstance(content, str) else "")
        # DashScope, DeepSeek and vLLM's reasoning parser (≤ 0.8) say reasoning_content;
        # newer vLLM and OpenRouter say reasoning.
        thinking = message.get("reasoning_content")
        if not isinstance(thinking, str) or not thinking:
            thinking = message.get("reasoning") if isinstance(message.get("reasoning"), str) else None
        reasonings.append(thinking or None)
        reasons.append(choice.get("finish_reason"))
        tokens = (choice.get("logprobs") or {}).get("content") if isinstance(choice.get("logprobs"), dict) else None
        values = [t.get("logprob") for t in tokens or [] if isinstance(t, dict)
                  and isinstance(t.get("logprob"), (int, float))]
        logprobs.append(sum(values) / len(values) if values else None)
    return ChatResult(text=texts[0], texts=texts, raw=raw, model=raw.get("model") or model, attempts=attempts,
                      reasonings=reasonings, finish_reasons=reasons, mean_logprobs=logprobs)


def check_complete(result: ChatResult) -> None:
    """LLMError `truncated` / `empty` when a choice was cut off by the token limit or has no content."""
    for text, reason in zip(result.texts, result.finish_reasons or [None] * len(result.texts)):
        if reason == "length":
            raise LLMError(TRUNCATED, "回答被 max_tokens 截断（finish_reason=length），未使用")
        if not (text or "").strip():
            raise LLMError(EMPTY, "模型返回了空回答（content 为空），未使用")
