"""Fault injection: the settings (Faults), and which refusal or failure a request gets — the errors
real servers give for a wrong key, model or parameter, content-filter refusals in each provider's
shape, and the transient 429/500/hang/malformed answers with their retry headers."""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from .seeds import seeded_rng


@dataclass
class Faults:
    """Fault injection settings (rates are probabilities per request, 0–1).

    - `content_filter`: a content-filter refusal, decided by the body alone, so the same input is
      always refused (as a real content filter would), in the shape of one provider
      (`content_filter_style`: DashScope's `data_inspection_failed`, OpenAI's `content_policy_violation`
      / `invalid_prompt`, Azure's `content_filter`, or LiteLLM's relayed `ContentPolicyViolationError`);
    - `429` (with Retry-After / retry-after-ms), `500`, `hang` (no answer until past the client's
      timeout) and `malformed` (a 200 with broken JSON) are transient: decided by the body *and* how
      often that body has been seen, so a retry can succeed and a run is still reproducible.

    Behaviours of real servers the bundled responders would otherwise hide:

    - a request limit (`rate_limit` per `rate_window` seconds, sliding or fixed windows) answered with
      429 and the retry headers of a plain server, of a LiteLLM proxy (`llm_provider-retry-after` only)
      or none (`retry_headers`); `advertise_limit` adds OpenAI's `x-ratelimit-*-requests` headers;
    - thinking models (`reasoning_models`): the reasoning in `reasoning_content` (or vLLM's newer
      `reasoning`, `reasoning_field`), only the final answer line in `content`; `rate_truncated` answers
      cut off by the token limit (`finish_reason: "length"`, a thinking model's `content` empty);
    - `ignore_n`: one choice whatever `n` asks (DashScope models, proxies with a fixed mock);
    - configuration errors: an API key (`api_key`, 401), a model list (`known_models`, 404), a refused
      parameter (`refuse_param`, 400 `unsupported_parameter` as OpenAI o-series models answer to
      `temperature`), models that only answer streamed (`stream_only_models`, 400 as DashScope's QVQ).
    """

    latency_ms: float = 0.0
    rate_429: float = 0.0
    rate_500: float = 0.0
    rate_hang: float = 0.0
    rate_content_filter: float = 0.0
    rate_malformed: float = 0.0
    retry_after: float = 0.2  # seconds advertised with a 429
    hang_seconds: float = 30.0
    seed: int = 0
    # A real request limit: at most `rate_limit` answered requests in any `rate_window` seconds
    # (sliding), or per window counted from the epoch (`rate_window_fixed`, as LiteLLM's per-minute
    # counters). Refused requests do not count.
    rate_limit: int = 0
    rate_window: float = 60.0
    rate_window_fixed: bool = False
    # Retry headers sent with every 429: "plain" (Retry-After + retry-after-ms), "litellm" (only the
    # relayed `llm_provider-retry-after`, a whole window, as LiteLLM's proxy sends) or "none".
    retry_headers: str = "plain"
    advertise_limit: bool = False
    content_filter_style: str = "dashscope"
    # Comma-separated model-name prefixes ("" = none).
    reasoning_models: str = ""
    reasoning_field: str = "reasoning_content"
    rate_truncated: float = 0.0
    ignore_n: bool = False
    api_key: str = ""
    known_models: str = ""
    refuse_param: str = ""
    refuse_param_models: str = ""
    stream_only_models: str = ""


def _prefixes(value: str) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


def model_matches(model: str, prefixes: str) -> bool:
    """Whether `model` starts with one of the comma-separated `prefixes`."""
    return any(str(model or "").startswith(prefix) for prefix in _prefixes(prefixes))


# Each provider's content-filter refusal: (status, body). Shapes as the providers document them.
CONTENT_FILTER_ERRORS: dict[str, dict[str, Any]] = {
    "dashscope": {"error": {"code": "data_inspection_failed", "param": None, "type": "data_inspection_failed",
                            "message": "Input data may contain inappropriate content."}},
    "openai": {"error": {"code": "content_policy_violation", "param": None, "type": "invalid_request_error",
                         "message": "Your request was rejected as a result of our safety system."}},
    "openai_prompt": {"error": {"code": "invalid_prompt", "param": None, "type": "invalid_request_error",
                                "message": "Invalid prompt: your prompt was flagged as potentially violating our "
                                           "usage policy. Please try again with a different prompt."}},
    "azure": {"error": {"code": "content_filter", "param": "prompt", "type": None, "status": 400,
                        "message": "The response was filtered due to the prompt triggering Azure OpenAI's content "
                                   "management policy. Please modify your prompt and retry.",
                        "innererror": {"code": "ResponsibleAIPolicyViolation", "content_filter_result": {
                            "hate": {"filtered": True, "severity": "high"}}}}},
    # LiteLLM's proxy relays any provider's refusal as a 400 with code "400" and the exception name.
    "litellm": {"error": {"code": "400", "param": None, "type": "invalid_request_error",
                          "message": "litellm.BadRequestError: litellm.ContentPolicyViolationError: "
                                     "AzureException - The response was filtered due to the prompt triggering "
                                     "Azure OpenAI's content management policy.",
                          "provider_specific_fields": {"innererror": None}}},
}


def latency_seconds(faults: Faults, key: str, nth: int) -> float:
    """The configured latency with ±10 % jitter, like a real server's (0 when none is configured)."""
    if not faults.latency_ms:
        return 0.0
    return faults.latency_ms / 1000 * (0.9 + 0.2 * seeded_rng(faults.seed, key, nth, "lat").random())


def configuration_refusal(request: dict[str, Any], faults: Faults,
                          authorization: str) -> tuple[str, int, dict[str, Any]] | None:
    """The configuration error a real server gives this request (key, model, parameter, stream-only)
    as (outcome, status, body), or None."""
    model = str(request.get("model") or "")
    if faults.api_key and authorization != f"Bearer {faults.api_key}":
        return "401", 401, {"error": {"message": "Incorrect API key provided.", "type": "invalid_request_error",
                                      "param": None, "code": "invalid_api_key"}}
    if faults.known_models and model not in _prefixes(faults.known_models):
        return "404", 404, {"error": {"message": f"The model `{model}` does not exist or you do not have "
                                                 "access to it.", "type": "invalid_request_error",
                                      "param": None, "code": "model_not_found"}}
    refused = faults.refuse_param
    if refused and refused in request and (not faults.refuse_param_models
                                           or model_matches(model, faults.refuse_param_models)):
        return "400_param", 400, {"error": {"message": f"Unsupported parameter: '{refused}' is not supported "
                                                       "with this model.", "type": "invalid_request_error",
                                            "param": refused, "code": "unsupported_parameter"}}
    if model_matches(model, faults.stream_only_models) and not request.get("stream"):
        return "400_stream", 400, {"error": {"message": "This model only support stream mode, please enable the "
                                                        "stream parameter to access the model.",
                                             "type": "invalid_request_error", "param": None,
                                             "code": "invalid_parameter_error"}}
    return None


def content_filter_refusal(faults: Faults, key: str, nth: int) -> dict[str, Any] | None:
    """The body of a content-filter refusal (decided by the body alone), or None."""
    if seeded_rng(faults.seed, key, "filter").random() >= faults.rate_content_filter:
        return None
    body = json.loads(json.dumps(CONTENT_FILTER_ERRORS.get(faults.content_filter_style,
                                                           CONTENT_FILTER_ERRORS["dashscope"])))
    body.update({"id": f"chatcmpl-sim-{key}", "request_id": f"sim-{key}-{nth}"})
    return body


def transient_fault(faults: Faults, key: str, nth: int) -> str:
    """"hang", "429", "500", "malformed" or "ok": decided by the body and how often it has been seen."""
    roll = seeded_rng(faults.seed, key, nth, "fault").random()
    edge = 0.0
    for name, rate in (("hang", faults.rate_hang), ("429", faults.rate_429), ("500", faults.rate_500),
                       ("malformed", faults.rate_malformed)):
        edge += rate
        if roll < edge:
            return name
    return "ok"


def retry_headers(faults: Faults, seconds: float) -> dict[str, str]:
    """The headers of a 429 asking to wait `seconds`, in the configured style."""
    if faults.retry_headers == "litellm":
        # LiteLLM relays the provider's headers prefixed, and its own limiter states a whole window.
        return {"llm_provider-retry-after": str(max(1, math.ceil(max(seconds, faults.rate_window
                                                                  if faults.rate_limit else seconds))))}
    if faults.retry_headers == "none":
        return {}
    return {"Retry-After": str(max(1, math.ceil(seconds))), "retry-after-ms": str(int(seconds * 1000))}


def limit_headers(faults: Faults, remaining: int) -> dict[str, str]:
    """OpenAI's `x-ratelimit-*-requests` headers when the limit is advertised."""
    if not (faults.advertise_limit and faults.rate_limit):
        return {}
    return {"x-ratelimit-limit-requests": str(faults.rate_limit),
            "x-ratelimit-remaining-requests": str(remaining)}
