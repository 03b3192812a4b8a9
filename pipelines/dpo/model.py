"""Rejects from a model: the prompt rendered through the job's template, the exact messages sent,
the client for the strategy's endpoint, and the candidates (greedy, sampled, best-of-n, beam)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings

from ..llm.endpoints import endpoint_check
from ..jobs.kinds import ItemFailed
from .params import SELECTING_MODES
from .sources import PromptRecord

def render_prompt(template: str, record: PromptRecord) -> str:
    """The prompt as the model was trained on it: placeholders replaced literally (other braces kept)."""
    return template.replace("{prompt}", record.prompt).replace("{system}", record.system)


def model_messages(strategy: dict, record: PromptRecord) -> list[dict[str, Any]]:
    """The exact chat messages sent for one prompt (shown in the preview)."""
    text = render_prompt(strategy["template"], record)
    messages: list[dict[str, Any]] = []
    if strategy.get("system"):
        messages.append({"role": "system", "content": strategy["system"]})
    if record.images:
        from ..llm.client import image_data_url

        root = Path(settings.MEDIA_ROOT).resolve()
        parts: list[dict[str, Any]] = [{"type": "text", "text": text}]
        for image in record.images:
            path = (root / image).resolve()
            if path.is_relative_to(root) and path.is_file():
                parts.append({"type": "image_url", "image_url": {"url": image_data_url(path)}})
        messages.append({"role": "user", "content": parts})
    else:
        messages.append({"role": "user", "content": text})
    return messages


def display_messages(messages: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Messages for pages: image data URLs shortened to a marker."""
    shown = []
    for message in messages:
        content = message["content"]
        if isinstance(content, list):
            content = "".join(p["text"] if p.get("type") == "text" else "[图片]" for p in content)
        shown.append({"role": message["role"], "content": content})
    return shown


def llm_for(strategy: dict, llm=None):
    """The client for the strategy's endpoint and whether the caller must close it.

    Inside a job: the job's own client, or its one client for another endpoint (reused for every
    item, so the job's concurrency and adaptive rate hold there too). The configured API key is
    only ever sent to the configured endpoint; any other endpoint (a vLLM server, a local
    checkpoint) gets no key, so a typed URL can never collect it.
    """
    from ..llm.client import LLMClient

    if llm is not None and llm.same_endpoint(strategy["base_url"]):
        return llm, False
    endpoint_check(strategy["base_url"])  # again here: the list may have changed since the job was made
    own = strategy["base_url"] == settings.OPENAI_BASE_URL.rstrip("/")
    if llm is not None:
        return llm.for_endpoint(strategy["base_url"], api_key=None if own else "sk-none", model=strategy["model"]), False
    client = LLMClient(base_url=strategy["base_url"], api_key=None if own else "sk-none", model=strategy["model"])
    return client, True


async def model_candidates(llm, strategy: dict, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Ask the model for `n` rejects, each with its finish_reason (one, selected, for best_of/beam).

    A server that ignores `n` is asked once per candidate by the client (counted in the job's
    report). Raises ItemFailed on a model error.
    """
    from ..llm.errors import LLMError

    mode = strategy.get("mode")
    extra = {"logprobs": True} if mode == "best_of" else {"use_beam_search": True} if mode == "beam" else None
    try:
        result = await llm.chat(
            messages,
            model=strategy["model"],
            temperature=strategy.get("temperature"),
            top_p=strategy.get("top_p"),
            n=strategy["n"] if strategy.get("n", 1) > 1 else None,
            max_tokens=strategy.get("max_tokens"),
            extra=extra,
            allow_truncated=True,  # a cut-off reject is kept and flagged `truncated` by the checks
        )
    except LLMError as exc:
        raise ItemFailed(exc.kind, exc.message) from None
    reasons = list(result.finish_reasons) + [None] * len(result.texts)
    candidates = [{"rejected": text, "finish_reason": reasons[i]} for i, text in enumerate(result.texts)]
    if mode not in SELECTING_MODES:
        return candidates
    if mode == "beam":  # vLLM returns the beams best first
        chosen, selection = 0, "beam"
    else:
        scored = [(lp, i) for i, lp in enumerate(result.mean_logprobs) if lp is not None]
        chosen, selection = (max(scored)[1], "best_of") if scored else (0, "no_logprobs")
    candidate = {**candidates[chosen], "selection": selection, "selected_from": len(candidates)}
    if chosen < len(result.mean_logprobs) and result.mean_logprobs[chosen] is not None:
        candidate["mean_logprob"] = round(result.mean_logprobs[chosen], 4)
    return [candidate]
