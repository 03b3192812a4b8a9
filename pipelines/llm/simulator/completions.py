"""What an answer looks like: the responders' contents for a request, shaped like a thinking model's
or cut off by the token limit, as a chat-completion body or its server-sent events."""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .faults import Faults, model_matches
from .logprobs import token_logprobs
from .seeds import seeded_rng

if TYPE_CHECKING:
    from .state import SimulatorState

MODELS = ("qwen-vl-72b-instruct", "qwen-72b-chat", "qwen-72b-judge", "qwen-vl-max")


@dataclass
class SimChoice:
    """One answer: the visible content, a thinking model's reasoning, and why it ended."""

    content: str
    reasoning: str | None = None
    finish_reason: str = "stop"


def answer(state: SimulatorState, request: dict[str, Any], key: str) -> list[str]:
    """The assistant contents for a request: `n` choices from the first matching responder."""
    n = 1 if state.faults.ignore_n else max(1, min(int(request.get("n") or 1), 8))
    contents = []
    for i in range(n):
        rng = seeded_rng(state.faults.seed, key, i)
        for responder in state.responders:
            if responder.matches(request):
                contents.append(responder.respond(request, rng))
                break
        else:
            contents.append("好的。")
    return contents


def thinking_split(content: str) -> tuple[str, str]:
    """A thinking model's answer: everything but the last line as reasoning, the last line as content."""
    lines = content.rstrip().split("\n")
    if len(lines) < 2:
        return f"先弄清问题在问什么，再组织回答：{content[:40]}", content
    reasoning = "\n".join(lines[:-1])
    return reasoning.removeprefix("推理：").strip(), lines[-1]


def shape(request: dict[str, Any], contents: list[str], key: str, faults: Faults) -> list[SimChoice]:
    """Thinking models split reasoning from the answer; some answers are cut off by the token limit."""
    thinking = model_matches(str(request.get("model") or ""), faults.reasoning_models)
    choices = []
    for i, content in enumerate(contents):
        choice = SimChoice(content)
        if thinking:
            reasoning, final = thinking_split(content)
            choice = SimChoice(final, reasoning)
        if seeded_rng(faults.seed, key, i, "truncated").random() < faults.rate_truncated:
            if thinking:  # the thinking used up max_tokens: no answer at all
                choice = SimChoice("", (choice.reasoning or "")[: max(1, len(choice.reasoning or "") // 2)],
                                   "length")
            else:
                choice = SimChoice(content[: max(1, len(content) // 3)], None, "length")
        choices.append(choice)
    return choices


def completion_body(request: dict[str, Any], contents: list[str | SimChoice], key: str,
                    faults: Faults | None = None) -> dict[str, Any]:
    choices = [c if isinstance(c, SimChoice) else SimChoice(c) for c in contents]
    field_name = faults.reasoning_field if faults else "reasoning_content"
    prompt_chars = len(json.dumps(request.get("messages", []), ensure_ascii=False))
    completion_chars = sum(len(c.content) + len(c.reasoning or "") for c in choices)
    body_choices = []
    for i, choice in enumerate(choices):
        message: dict[str, Any] = {"role": "assistant", "content": choice.content}
        if choice.reasoning is not None:
            message[field_name] = choice.reasoning
        logprobs = token_logprobs(choice.content, key, i) if request.get("logprobs") else None
        body_choices.append({"index": i, "message": message, "finish_reason": choice.finish_reason,
                             "logprobs": logprobs})
    return {
        "id": f"chatcmpl-sim-{key}",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": request.get("model") or MODELS[0],
        "choices": body_choices,
        "usage": {
            "prompt_tokens": prompt_chars // 2,
            "completion_tokens": completion_chars,
            "total_tokens": prompt_chars // 2 + completion_chars,
        },
    }


def stream_events(body: dict[str, Any], *, include_usage: bool, field_name: str) -> bytes:
    """A completion body as the server-sent events of `stream: true` (reasoning first, then content)."""
    def event(choices: list[dict[str, Any]], **extra: Any) -> str:
        chunk = {"id": body["id"], "object": "chat.completion.chunk", "created": body["created"],
                 "model": body["model"], "choices": choices, **extra}
        return "data: " + json.dumps(chunk, ensure_ascii=False) + "\n\n"

    parts = []
    for choice in body["choices"]:
        index, message = choice["index"], choice["message"]
        parts.append(event([{"index": index, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]))
        reasoning = message.get(field_name)
        for piece in _pieces(reasoning or ""):
            parts.append(event([{"index": index, "delta": {field_name: piece}, "finish_reason": None}]))
        for piece in _pieces(message.get("content") or ""):
            parts.append(event([{"index": index, "delta": {"content": piece}, "finish_reason": None}]))
        parts.append(event([{"index": index, "delta": {}, "finish_reason": choice["finish_reason"]}]))
    if include_usage:
        parts.append(event([], usage=body["usage"]))
    parts.append("data: [DONE]\n\n")
    return "".join(parts).encode()


def _pieces(text: str, size: int = 16) -> list[str]:
    return [text[i:i + size] for i in range(0, len(text), size)]
