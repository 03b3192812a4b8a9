"""The only place in datafix that talks to a model.

`LLMClient` wraps `openai.AsyncOpenAI` for any OpenAI-compatible server (DashScope, vLLM, OpenAI or
the bundled simulator) and adds what long jobs need:

- a bounded semaphore (`concurrency`) so one job never opens more than N requests at once;
- a requests-per-minute limiter (`requests_per_minute`, 0 = unlimited) that spaces request starts;
- explicit timeouts on every request;
- retries of 429 / 5xx / timeouts / connection errors with exponential backoff and jitter,
  honouring `Retry-After` (and `retry-after-ms`);
- one exception, `LLMError(kind, message)`, whose `kind` is a short stable reason stored on job items.

Retries are ours, not the openai client's (we build it with `max_retries=0`), because: the openai
client caps the Retry-After it honours and would sleep while holding our concurrency slot; we want
every attempt to pass the requests-per-minute limiter; a DashScope content-filter 400 must never be
retried; and we count attempts and errors per kind for the job report.

Why the calls look the way they do (each measured with `make bench`, one core shared by the job's
database work and its model calls):

- the request goes through `client.post("/chat/completions", …)` with a plain dict body and comes
  back as the raw HTTP response, whose JSON we read ourselves: the typed-parameter transform and
  the response models cost about 1.3 ms of CPU per call (3.55 → 2.29 ms) and we use neither;
- the client uses the aiohttp transport (`openai.DefaultAioHttpClient`, the openai package's own
  option): httpx's connection pool cost another 0.6 ms per request at 32 connections (→ 1.67 ms).

The API key is held by the openai client only; it is never part of a repr, log line, error message
or report produced here.
"""
from __future__ import annotations

import asyncio
import base64
import json
import logging
import mimetypes
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import httpx2
import openai
from django.conf import settings

logger = logging.getLogger(__name__)

# Stable error kinds (stored in JobItem.error_kind; the UI translates them).
CONTENT_FILTER = "content_filter"
TIMEOUT = "timeout"
RATE_LIMITED = "rate_limited"
SERVER_ERROR = "server_error"
BAD_REQUEST = "bad_request"
CONNECTION = "connection"
UNPARSEABLE = "unparseable"
ERROR_KINDS = (CONTENT_FILTER, TIMEOUT, RATE_LIMITED, SERVER_ERROR, BAD_REQUEST, CONNECTION, UNPARSEABLE)
RETRYABLE_KINDS = frozenset({TIMEOUT, RATE_LIMITED, SERVER_ERROR, CONNECTION, UNPARSEABLE})

# DashScope's content-inspection refusal (OpenAI-compatible mode), permanent for that input.
CONTENT_FILTER_CODES = frozenset({"data_inspection_failed", "DataInspectionFailed", "content_filter"})

BACKOFF_BASE_SECONDS = 0.5
BACKOFF_MAX_SECONDS = 30.0
RETRY_AFTER_MAX_SECONDS = 120.0


class LLMError(Exception):
    """A model call failed; `kind` is one of ERROR_KINDS."""

    def __init__(self, kind: str, message: str = "", *, status: int | None = None, retry_after: float | None = None):
        super().__init__(f"{kind}: {message}" if message else kind)
        self.kind = kind
        self.message = message or kind
        self.status = status
        self.retry_after = retry_after

    @property
    def retryable(self) -> bool:
        return self.kind in RETRYABLE_KINDS


class RequestsClosed(Exception):
    """The client takes no new requests (the job's time slice is over): the call never started."""


@dataclass
class ChatResult:
    """One chat completion: `text` is the first choice, `texts` all choices (n > 1)."""

    text: str
    texts: list[str]
    raw: dict[str, Any]
    model: str
    attempts: int = 1


@dataclass
class LLMStats:
    """What a client did, for job reports (no secrets in here)."""

    requests: int = 0
    succeeded: int = 0
    retries: int = 0
    errors: Counter = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "succeeded": self.succeeded,
            "retries": self.retries,
            "errors": dict(self.errors),
        }


def image_data_url(path: str | Path) -> str:
    """The image at `path` as a `data:` URL (how images are sent to vision models)."""
    path = Path(path)
    mime = mimetypes.guess_type(path.name)[0] or "image/png"
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode('ascii')}"


def _retry_after_seconds(headers: Any) -> float | None:
    if headers is None:
        return None
    for name, divisor in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            return max(0.0, float(value) / divisor)
        except ValueError:
            continue
    return None


def _error_code(exc: openai.APIStatusError) -> str:
    if exc.code:
        return str(exc.code)
    body = exc.body
    if isinstance(body, dict):
        inner = body.get("error")
        if isinstance(inner, dict) and inner.get("code"):
            return str(inner["code"])
        if body.get("code"):
            return str(body["code"])
    return ""


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
        code = _error_code(exc)
        message = (getattr(exc, "message", "") or "")[:300]
        if code in CONTENT_FILTER_CODES or "data_inspection_failed" in str(exc.body):
            return LLMError(CONTENT_FILTER, f"内容审核拒绝 ({code or status})", status=status)
        if status == 429:
            return LLMError(RATE_LIMITED, "请求过于频繁 (429)", status=status,
                            retry_after=_retry_after_seconds(exc.response.headers))
        if status in (408, 409) or status >= 500:
            return LLMError(SERVER_ERROR, f"模型服务错误 ({status})", status=status,
                            retry_after=_retry_after_seconds(exc.response.headers))
        return LLMError(BAD_REQUEST, f"请求被拒绝 ({status} {code}) {message}".strip(), status=status)
    if isinstance(exc, (ValueError, KeyError, TypeError)):
        return LLMError(UNPARSEABLE, f"模型服务返回了无法解析的响应: {type(exc).__name__}")
    return LLMError(CONNECTION, f"{type(exc).__name__}")


class _RateLimiter:
    """Spaces request starts evenly: at most `per_minute` starts in any minute (0 = unlimited)."""

    def __init__(self, per_minute: int):
        self.interval = 60.0 / per_minute if per_minute and per_minute > 0 else 0.0
        self._next = 0.0
        self._lock: asyncio.Lock | None = None

    async def wait(self) -> None:
        if not self.interval:
            return
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + self.interval
        if start > now:
            await asyncio.sleep(start - now)


class LLMClient:
    """An OpenAI-compatible chat client with concurrency, rate limit, timeouts and retries.

    Create one per job (or per CLI command); use it from one event loop. All arguments default to
    the settings OPENAI_BASE_URL, OPENAI_API_KEY, LLM_TEXT_MODEL, LLM_CONCURRENCY,
    LLM_REQUESTS_PER_MINUTE, LLM_TIMEOUT and LLM_MAX_RETRIES.
    """

    def __init__(
        self,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        model: str | None = None,
        concurrency: int | None = None,
        requests_per_minute: int | None = None,
        timeout: float | None = None,
        max_retries: int | None = None,
    ):
        self.base_url = base_url or settings.OPENAI_BASE_URL
        self.__api_key = api_key or settings.OPENAI_API_KEY or "sk-none"
        self.model = model or settings.LLM_TEXT_MODEL
        self.concurrency = max(1, int(concurrency or settings.LLM_CONCURRENCY))
        rpm = settings.LLM_REQUESTS_PER_MINUTE if requests_per_minute is None else requests_per_minute
        self.requests_per_minute = int(rpm or 0)
        self.timeout = float(timeout or settings.LLM_TIMEOUT)
        self.max_retries = int(settings.LLM_MAX_RETRIES if max_retries is None else max_retries)
        self.stats = LLMStats()
        self._client: openai.AsyncOpenAI | None = None
        self._semaphore: asyncio.Semaphore | None = None
        self._limiter = _RateLimiter(self.requests_per_minute)
        self._closed_to_new = False

    def close_to_new_requests(self) -> None:
        """From now on, calls waiting for a slot (or to retry) raise RequestsClosed instead of
        starting; calls already sent run to their end. Safe to call from another thread."""
        self._closed_to_new = True

    def __repr__(self) -> str:  # never the key
        return f"<LLMClient {self.base_url} model={self.model} concurrency={self.concurrency}>"

    def _ensure(self) -> openai.AsyncOpenAI:
        if self._client is None:
            self._client = openai.AsyncOpenAI(
                base_url=self.base_url, api_key=self.__api_key, timeout=self.timeout, max_retries=0,
                http_client=openai.DefaultAioHttpClient(timeout=self.timeout),
            )
            self._semaphore = asyncio.Semaphore(self.concurrency)
        return self._client

    async def aclose(self) -> None:
        """Close the HTTP connections (the client can be used again afterwards, on a new loop)."""
        client, self._client, self._semaphore = self._client, None, None
        self._closed_to_new = False
        self._limiter = _RateLimiter(self.requests_per_minute)
        if client is not None:
            await client.close()

    def _backoff(self, attempt: int, error: LLMError) -> float:
        if error.retry_after is not None:
            return min(error.retry_after, RETRY_AFTER_MAX_SECONDS)
        delay = min(BACKOFF_MAX_SECONDS, BACKOFF_BASE_SECONDS * (2**attempt))
        return delay * (0.5 + random.random() / 2)  # jitter so retries of a burst spread out

    async def chat(
        self,
        messages: list[dict[str, Any]],
        *,
        model: str | None = None,
        temperature: float | None = None,
        top_p: float | None = None,
        max_tokens: int | None = None,
        n: int | None = None,
        response_format: dict[str, Any] | None = None,
    ) -> ChatResult:
        """One chat completion, retried on transient errors. Raises LLMError."""
        client = self._ensure()
        kwargs: dict[str, Any] = {"model": model or self.model, "messages": messages}
        for name, value in (("temperature", temperature), ("top_p", top_p), ("max_tokens", max_tokens),
                            ("n", n), ("response_format", response_format)):
            if value is not None:
                kwargs[name] = value
        attempt = 0
        while True:
            await self._limiter.wait()
            try:
                async with self._semaphore:
                    if self._closed_to_new:
                        raise RequestsClosed()
                    self.stats.requests += 1
                    # The raw response: we read the JSON ourselves (choices, finish reasons, usage).
                    response = await asyncio.wait_for(
                        client.post("/chat/completions", body=kwargs, cast_to=httpx2.Response), timeout=self.timeout + 5
                    )
                result = self._result(json.loads(response.content), kwargs["model"], attempt + 1)
            except (asyncio.CancelledError, RequestsClosed):
                raise
            except Exception as exc:  # noqa: BLE001 - every failure becomes an LLMError
                error = classify_exception(exc)
                self.stats.errors[error.kind] += 1
                if not error.retryable or attempt >= self.max_retries:
                    if attempt:
                        error.message = f"{error.message}（已重试 {attempt} 次）"
                    raise error from None
                delay = self._backoff(attempt, error)
                logger.info("model call %s, retry %d in %.1fs", error.kind, attempt + 1, delay)
                self.stats.retries += 1
                attempt += 1
                await asyncio.sleep(delay)
                continue
            self.stats.succeeded += 1
            return result

    @staticmethod
    def _result(raw: Any, model: str, attempts: int) -> ChatResult:
        choices = raw.get("choices") if isinstance(raw, dict) else None
        if not choices or not isinstance(choices, list):
            raise LLMError(UNPARSEABLE, "模型响应中没有 choices")
        texts = []
        for choice in choices:
            if not isinstance(choice, dict):
                raise LLMError(UNPARSEABLE, "模型响应的 choices 格式不对")
            if choice.get("finish_reason") == "content_filter":
                raise LLMError(CONTENT_FILTER, "输出被内容审核拦截")
            message = choice.get("message") or {}
            content = message.get("content") if isinstance(message, dict) else None
            texts.append(content if isinstance(content, str) else "")
        return ChatResult(text=texts[0], texts=texts, raw=raw, model=raw.get("model") or model, attempts=attempts)

    def chat_sync(self, messages: list[dict[str, Any]], **kwargs: Any) -> ChatResult:
        """`chat` for synchronous callers (CLI previews); not for use inside a running event loop."""

        async def run() -> ChatResult:
            try:
                return await self.chat(messages, **kwargs)
            finally:
                await self.aclose()

        return asyncio.run(run())
