"""What a failed model call was, as one stable kind, and what the server said about waiting.

`LLMError(kind, message)` is the one exception the client raises; its `kind` is stored on job items.
`classify_exception` maps openai/aiohttp/httpx exceptions to it: content-filter refusals (every
provider's code and wording) are never retried, `config_error` marks what no retry can fix (wrong
key, model or parameter), 429 / 5xx / timeouts / connection errors are retried. A 429's stated wait
is read from every header real servers send (`retry_after_seconds`).
"""
from __future__ import annotations

import asyncio
import email.utils
import json
import re
import time
from typing import Any

from config.lazy import lazy_module

# Imported on first use (config/lazy.py): most processes never call a model.
aiohttp = lazy_module("aiohttp")
openai = lazy_module("openai")

# Stable error kinds (stored in JobItem.error_kind; the UI translates them).
CONTENT_FILTER = "content_filter"
TIMEOUT = "timeout"
RATE_LIMITED = "rate_limited"
SERVER_ERROR = "server_error"
BAD_REQUEST = "bad_request"
CONNECTION = "connection"
UNPARSEABLE = "unparseable"
CONFIG_ERROR = "config_error"
TRUNCATED = "truncated"
EMPTY = "empty"
ERROR_KINDS = (CONTENT_FILTER, TIMEOUT, RATE_LIMITED, SERVER_ERROR, BAD_REQUEST, CONNECTION, UNPARSEABLE,
               CONFIG_ERROR, TRUNCATED, EMPTY)
RETRYABLE_KINDS = frozenset({TIMEOUT, RATE_LIMITED, SERVER_ERROR, CONNECTION, UNPARSEABLE})

# Content-filter refusals, permanent for that input: DashScope's `data_inspection_failed`, OpenAI's
# `content_policy_violation` (and `invalid_prompt`, "flagged as potentially violating our usage
# policy"), Azure's `content_filter` (inner code `ResponsibleAIPolicyViolation`).
CONTENT_FILTER_CODES = frozenset({"data_inspection_failed", "DataInspectionFailed", "content_filter",
                                  "content_policy_violation", "invalid_prompt", "ResponsibleAIPolicyViolation"})
# The same refusals as text, for proxies that relay them with a generic code (LiteLLM: code "400",
# "litellm.ContentPolicyViolationError: …") and for providers that put the code only in the message.
CONTENT_FILTER_TEXT = re.compile(
    r"data_inspection_failed|DataInspectionFailed|ContentPolicyViolationError|content_policy_violation|"
    r"content management policy|ResponsibleAIPolicyViolation|inappropriate content|"
    r"flagged as potentially violating|content_filter", re.I)
# Errors that say the configuration is wrong (model name, key, parameter, quota): every item would
# fail the same way, so the job engine stops after a few identical ones.
CONFIG_ERROR_CODES = frozenset({"model_not_found", "invalid_model", "invalid_api_key", "unsupported_parameter",
                                "unsupported_value", "insufficient_quota", "Arrearage", "AccessDenied",
                                "InvalidApiKey", "invalid_parameter_error"})
CONFIG_ERROR_TEXT = re.compile(
    r"does not exist|model not found|Invalid model name|Unsupported parameter|Unsupported value|"
    r"is not supported with this model|only support stream mode|Incorrect API key|Invalid API[- ]key|"
    r"No connected db|Authentication Error|exceeded your current quota", re.I)


class LLMError(Exception):
    """A model call failed; `kind` is one of ERROR_KINDS."""

    def __init__(self, kind: str, message: str = "", *, status: int | None = None, retry_after: float | None = None,
                 limit_hint: int | None = None):
        super().__init__(f"{kind}: {message}" if message else kind)
        self.kind = kind
        self.message = message or kind
        self.status = status
        self.retry_after = retry_after
        self.limit_hint = limit_hint

    @property
    def retryable(self) -> bool:
        return self.kind in RETRYABLE_KINDS


class RequestsClosed(Exception):
    """The client takes no new requests (the job's time slice is over): the call never started."""


_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def _duration_seconds(value: str) -> float | None:
    """OpenAI's reset durations ("1s", "6m0s", "20ms", "1h2m3.5s") in seconds."""
    text = value.strip()
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        return None
    return sum(float(number) * _DURATION_UNITS[unit] for number, unit in parts)


def retry_after_seconds(headers: Any) -> float | None:
    """The wait a 429/503 states, from whichever header the server (or a proxy in front) sent.

    `retry-after-ms` and `Retry-After` (seconds or an HTTP date) as OpenAI-compatible servers send
    them; the same prefixed `llm_provider-` as LiteLLM's proxy relays a provider's headers (it
    sends no plain Retry-After); OpenAI's `x-ratelimit-reset-requests` ("6m0s") when nothing else.
    """
    if headers is None:
        return None
    for prefix in ("", "llm_provider-"):
        for name, divisor in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
            value = headers.get(prefix + name)
            if value is None:
                continue
            try:
                return max(0.0, float(value) / divisor)
            except ValueError:
                moment = email.utils.parsedate_to_datetime(value) if divisor == 1.0 else None
                if moment is not None and moment.tzinfo is not None:
                    return max(0.0, moment.timestamp() - time.time())
    for prefix in ("", "llm_provider-"):
        value = headers.get(prefix + "x-ratelimit-reset-requests")
        if value:
            seconds = _duration_seconds(str(value))
            if seconds is not None:
                return seconds
    return None




def limit_hint(headers: Any) -> int | None:
    """The per-minute request limit a server advertises (`x-ratelimit-limit-requests`), if any."""
    if headers is None:
        return None
    for name in ("x-ratelimit-limit-requests", "llm_provider-x-ratelimit-limit-requests"):
        value = headers.get(name)
        if value:
            try:
                return int(float(value))
            except ValueError:
                continue
    return None


def _error_parts(exc: openai.APIStatusError) -> tuple[str, str]:
    """The error's code and everything the body says (message, type, inner codes) as one text."""
    body = exc.body
    code = str(exc.code) if exc.code else ""
    inner = body.get("error") if isinstance(body, dict) else None
    if not code and isinstance(inner, dict) and inner.get("code"):
        code = str(inner["code"])
    if not code and isinstance(body, dict) and body.get("code"):
        code = str(body["code"])
    return code, json.dumps(body, ensure_ascii=False, default=str) if body is not None else str(exc)


def _connection_failure_underneath(exc: BaseException) -> bool:
    """Whether a "timeout" is really a refused or dropped connection.

    The openai client's aiohttp transport maps every aiohttp connection error (refused, reset,
    server disconnected) to a connect *timeout*; the original error is still on the cause chain.
    """
    seen = exc.__cause__ or exc.__context__
    for _ in range(10):
        if seen is None:
            return False
        if isinstance(seen, aiohttp.ClientConnectionError) and not isinstance(seen, asyncio.TimeoutError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def classify_exception(exc: BaseException) -> LLMError:
    """Map an openai/httpx exception to an LLMError with a stable kind."""
    if isinstance(exc, LLMError):
        return exc
    if isinstance(exc, (openai.APITimeoutError, asyncio.TimeoutError, TimeoutError)):
        if _connection_failure_underneath(exc):
            return LLMError(CONNECTION, "无法连接模型服务")
        return LLMError(TIMEOUT, "模型请求超时")
    if isinstance(exc, openai.APIConnectionError):
        return LLMError(CONNECTION, "无法连接模型服务")
    if isinstance(exc, openai.APIResponseValidationError):
        return LLMError(UNPARSEABLE, "模型服务返回了无法解析的响应", status=exc.status_code)
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        code, text = _error_parts(exc)
        message = (getattr(exc, "message", "") or "")[:300]
        headers = exc.response.headers if exc.response is not None else None
        if status in (400, 403, 422) or status >= 500:
            if code in CONTENT_FILTER_CODES or CONTENT_FILTER_TEXT.search(text):
                return LLMError(CONTENT_FILTER, f"内容审核拒绝 ({code or status})", status=status)
        if code in CONFIG_ERROR_CODES or status in (401, 403, 404) or (
                status in (400, 422) and CONFIG_ERROR_TEXT.search(text)):
            return LLMError(CONFIG_ERROR, f"模型服务拒绝了配置 ({status} {code}) {message}".strip(), status=status)
        if status == 429:
            return LLMError(RATE_LIMITED, "请求过于频繁 (429)", status=status,
                            retry_after=retry_after_seconds(headers), limit_hint=limit_hint(headers))
        if status in (408, 409) or status >= 500:
            return LLMError(SERVER_ERROR, f"模型服务错误 ({status})", status=status,
                            retry_after=retry_after_seconds(headers))
        return LLMError(BAD_REQUEST, f"请求被拒绝 ({status} {code}) {message}".strip(), status=status)
    if isinstance(exc, (ValueError, KeyError, TypeError)):
        return LLMError(UNPARSEABLE, f"模型服务返回了无法解析的响应: {type(exc).__name__}")
    return LLMError(CONNECTION, f"{type(exc).__name__}")
