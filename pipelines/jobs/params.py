"""The per-job provider overrides (model, temperature, concurrency …) and the model client built from them."""
from __future__ import annotations

from typing import Any

from core.errors import ApplicationError

from ..llm.client import LLMClient

MAX_CONCURRENCY = 128


def clean_engine_params(params: dict[str, Any]) -> dict[str, Any]:
    """Validate the per-job provider overrides (model, temperature, concurrency …); drop secrets."""
    params = {k: v for k, v in params.items() if "key" not in k.lower() and "secret" not in k.lower()}

    def number(name: str, cast, low, high):
        value = params.get(name)
        if value in (None, ""):
            params.pop(name, None)
            return
        try:
            value = cast(value)
        except (TypeError, ValueError):
            raise ApplicationError(f"参数 {name} 必须是数字") from None
        if not low <= value <= high:
            raise ApplicationError(f"参数 {name} 必须在 {low} 到 {high} 之间")
        params[name] = value

    number("temperature", float, 0.0, 2.0)
    number("top_p", float, 0.0, 1.0)
    number("max_tokens", int, 1, 32768)
    number("concurrency", int, 1, MAX_CONCURRENCY)
    number("requests_per_minute", int, 0, 1_000_000)
    number("timeout", float, 0.1, 3600.0)
    number("max_retries", int, 0, 20)
    if params.get("stream") in (None, ""):
        params.pop("stream", None)
    else:
        params["stream"] = str(params["stream"]).strip().lower() in {"1", "true", "yes", "on"}
    if "model" in params:
        model = str(params["model"] or "").strip()
        if model:
            params["model"] = model[:200]
        else:
            params.pop("model")
    return params


def llm_for_job(params: dict[str, Any], report: dict[str, Any] | None = None) -> LLMClient:
    """The model client for a job: provider settings overridden by the job's parameters.

    A continuation starts at the request rate the previous slice had learned (the job report's
    `engine.rate`), not from scratch.
    """
    learned = (((report or {}).get("engine") or {}).get("rate") or {}).get("current_per_minute")
    return LLMClient(
        model=params.get("model"),
        concurrency=params.get("concurrency"),
        requests_per_minute=params.get("requests_per_minute"),
        timeout=params.get("timeout"),
        max_retries=params.get("max_retries"),
        stream=params.get("stream"),
        start_rate=learned,
    )
