"""The only place in datafix that talks to a model.

`LLMClient` wraps `openai.AsyncOpenAI` for any OpenAI-compatible server (DashScope, vLLM, OpenAI or
the bundled simulator) and adds what long jobs need:

- a bounded semaphore (`concurrency`) so one job never opens more than N requests at once;
- an adaptive request rate (`AdaptiveRate`): request starts are spaced at the current rate, which
  drops when the server answers 429 and climbs again while answers succeed (additive increase,
  multiplicative decrease), so a job finds the server's real limit by itself;
  `requests_per_minute` is only a ceiling (0 = none);
- explicit timeouts on every request;
- retries of 429 / 5xx / timeouts / connection errors with exponential backoff and jitter. A 429
  is retried until `LLM_RATE_LIMIT_MAX_WAIT` has passed since the call's first 429, never by a
  count, and its stated wait is read from every header real servers send: `retry-after-ms`,
  `Retry-After` (seconds or a date), LiteLLM's relayed `llm_provider-retry-after(-ms)` and OpenAI's
  `x-ratelimit-reset-requests`;
- the answer's `finish_reason` and a thinking model's reasoning (`reasoning_content`, or vLLM's
  newer `reasoning`) beside its content; an answer cut off by the token limit or with no content
  fails as `truncated` / `empty` instead of being used;
- `n` choices even from servers that ignore `n` (the missing ones are asked for one by one,
  counted in `stats.n_fallbacks`), and `stream=True` for models that only answer streamed
  (`LLM_STREAM_MODELS`), assembling content and reasoning from the chunks;
- one exception, `LLMError(kind, message)`, whose `kind` is a short stable reason stored on job items;
  `config_error` marks what no retry can fix (wrong key, model or parameter): the job engine stops a
  job after a few identical ones.

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
import fnmatch
import json
import logging
import mimetypes
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings

from config.lazy import lazy_module

from .errors import RATE_LIMITED, LLMError, RequestsClosed, classify_exception, limit_hint
from .rate import AdaptiveRate
from .responses import ChatResult, check_complete, parse_completion

# Imported on first use: every management command loads this module (through the URLs) and most
# never call a model (config/lazy.py).
httpx2 = lazy_module("httpx2")
openai = lazy_module("openai")

logger = logging.getLogger(__name__)

BACKOFF_BASE_SECONDS = 0.5
BACKOFF_MAX_SECONDS = 30.0
RETRY_AFTER_MAX_SECONDS = 120.0


@dataclass
class LLMStats:
    """What a client did, for job reports (no secrets in here)."""

    requests: int = 0
    succeeded: int = 0
    retries: int = 0
    errors: Counter = field(default_factory=Counter)
    n_fallbacks: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "succeeded": self.succeeded,
            "retries": self.retries,
            "errors": dict(self.errors),
            "n_fallbacks": self.n_fallbacks,
        }


def image_data_url(path: str | Path) -> str:
    """The image at `path` as a `data:` URL (how images are sent to vision models)."""
    path = Path(path)
    mime = mimetypes.guess_type(path.name)[0] or "image/png"
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode('ascii')}"


def stream_model_matches(model: str, patterns: Any) -> bool:
    """Whether `model` is one of the streamed-only models (names or fnmatch patterns like `qvq-*`)."""
    if isinstance(patterns, str):
        patterns = [p.strip() for p in patterns.split(",")]
    return any(p and fnmatch.fnmatchcase(model or "", p) for p in patterns or ())


class LLMClient:
    """An OpenAI-compatible chat client with concurrency, an adaptive rate, timeouts and retries.

    Create one per job (or per CLI command); use it from one event loop. All arguments default to
    the settings OPENAI_BASE_URL, OPENAI_API_KEY, LLM_TEXT_MODEL, LLM_CONCURRENCY,
    LLM_REQUESTS_PER_MINUTE (the rate's ceiling), LLM_TIMEOUT, LLM_MAX_RETRIES,
    LLM_RATE_LIMIT_MAX_WAIT and LLM_STREAM_MODELS. `stream` forces streaming on (True) or off
    (False) for every call; None decides per model. `start_rate` seeds the adaptive rate (a job's
    continuation starts where the previous slice ended).
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
        rate_limit_max_wait: float | None = None,
        stream: bool | None = None,
        start_rate: float | None = None,
        rate_window: float | None = None,
    ):
        self.base_url = base_url or settings.OPENAI_BASE_URL
        self.__api_key = api_key or settings.OPENAI_API_KEY or "sk-none"
        self.model = model or settings.LLM_TEXT_MODEL
        self.concurrency = max(1, int(concurrency or settings.LLM_CONCURRENCY))
        rpm = settings.LLM_REQUESTS_PER_MINUTE if requests_per_minute is None else requests_per_minute
        self.requests_per_minute = int(rpm or 0)
        self.timeout = float(timeout or settings.LLM_TIMEOUT)
        self.max_retries = int(settings.LLM_MAX_RETRIES if max_retries is None else max_retries)
        wait = settings.LLM_RATE_LIMIT_MAX_WAIT if rate_limit_max_wait is None else rate_limit_max_wait
        self.rate_limit_max_wait = float(wait)
        self.stream = stream
        self.stream_models = settings.LLM_STREAM_MODELS
        self._rate_window = float(rate_window or settings.LLM_RATE_WINDOW_SECONDS)
        self._start_rate = start_rate
        self.stats = LLMStats()
        self._client: openai.AsyncOpenAI | None = None
        self._semaphore: asyncio.Semaphore | None = None
        self.rate = AdaptiveRate(self.requests_per_minute or None, window=self._rate_window, start=start_rate)
        self._closed_to_new = False
        self._ignores_n: set[str] = set()
        self._siblings: dict[str, LLMClient] = {}
        self.sent = 0

    def for_endpoint(self, base_url: str, *, api_key: str | None = None, model: str | None = None) -> LLMClient:
        """This client, or one for another endpoint with the same limits, made once and reused.

        A job whose model calls go elsewhere (a DPO job's SFT checkpoint on its own vLLM server)
        gets one client for that server, so its concurrency and adaptive rate hold across items.
        Its stats are this client's; `aclose` closes it too.
        """
        if self.same_endpoint(base_url):
            return self
        key = base_url.rstrip("/")
        client = self._siblings.get(key)
        if client is None:
            client = LLMClient(base_url=base_url, api_key=api_key, model=model, concurrency=self.concurrency,
                               requests_per_minute=self.requests_per_minute, timeout=self.timeout,
                               max_retries=self.max_retries, rate_limit_max_wait=self.rate_limit_max_wait,
                               stream=self.stream, rate_window=self._rate_window)
            client.stats = self.stats
            self._siblings[key] = client
        return client

    def rate_snapshot(self) -> dict[str, Any]:
        """The adaptive rate of the endpoint this client (or a sibling) sent most requests to."""
        busiest = max([self, *self._siblings.values()], key=lambda c: c.sent)
        return busiest.rate.snapshot()

    def close_to_new_requests(self) -> None:
        """From now on, calls waiting for a slot (or to retry) raise RequestsClosed instead of
        starting; calls already sent run to their end. Safe to call from another thread."""
        self._closed_to_new = True
        for sibling in list(self._siblings.values()):
            sibling.close_to_new_requests()

    def __repr__(self) -> str:  # never the key
        return f"<LLMClient {self.base_url} model={self.model} concurrency={self.concurrency}>"

    def same_endpoint(self, base_url: str) -> bool:
        return self.base_url.rstrip("/") == base_url.rstrip("/")

    def _ensure(self) -> openai.AsyncOpenAI:
        if self._client is None:
            self._client = openai.AsyncOpenAI(
                base_url=self.base_url, api_key=self.__api_key, timeout=self.timeout, max_retries=0,
                http_client=openai.DefaultAioHttpClient(timeout=self.timeout),
            )
            self._semaphore = asyncio.Semaphore(self.concurrency)
        return self._client

    async def aclose(self) -> None:
        """Close the HTTP connections (the client can be used again afterwards, on a new loop).

        The adaptive rate is kept: it describes the server, not the connection."""
        client, self._client, self._semaphore = self._client, None, None
        self._closed_to_new = False
        if client is not None:
            await client.close()
        for sibling in self._siblings.values():
            await sibling.aclose()

    def _backoff(self, attempt: int, error: LLMError) -> float:
        if error.retry_after is not None:
            return min(error.retry_after, RETRY_AFTER_MAX_SECONDS)
        delay = min(BACKOFF_BASE_SECONDS * (2**attempt), BACKOFF_MAX_SECONDS)
        return delay * (0.5 + random.random() / 2)  # jitter so retries of a burst spread out

    def _rate_limited_delay(self, attempt: int, error: LLMError) -> float:
        """How long a 429'd call sleeps before it queues for a start slot again.

        A short stated wait is honoured as is. A long one is a whole window (LiteLLM always says
        60 s, even when its counter resets sooner): sleeping it out would leave the retried item
        last, so the call only waits a couple of request intervals and then takes its turn at the
        (now lowered) rate, which keeps the retries within the limit.
        """
        cap = max(1.0, 2 * self.rate.interval)
        if error.retry_after is not None and error.retry_after <= cap:
            return error.retry_after
        delay = min(BACKOFF_BASE_SECONDS * (2**min(attempt, 10)), cap)
        return delay * (0.5 + random.random() / 2)

    def uses_stream(self, model: str) -> bool:
        if self.stream is not None:
            return self.stream
        return stream_model_matches(model, self.stream_models)

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
        extra: dict[str, Any] | None = None,
        allow_truncated: bool = False,
    ) -> ChatResult:
        """One chat completion, retried on transient errors. Raises LLMError.

        Parameters left None are not sent at all (some models refuse e.g. any `temperature`).
        `extra` adds server-specific body fields (vLLM's `use_beam_search`, `logprobs`, …).
        Unless `allow_truncated`, an answer cut off by the token limit (`finish_reason: length`)
        or with no content raises LLMError `truncated` / `empty`: such an answer must never
        replace a stored one.
        """
        model = model or self.model
        kwargs: dict[str, Any] = {"model": model, "messages": messages}
        for name, value in (("temperature", temperature), ("top_p", top_p), ("max_tokens", max_tokens),
                            ("response_format", response_format)):
            if value is not None:
                kwargs[name] = value
        kwargs.update(extra or {})
        wanted = int(n) if n and n > 1 else 1
        if wanted > 1 and model in self._ignores_n:
            # The server is known to ignore n: ask for the choices one by one straight away.
            results = await asyncio.gather(*(self._complete(kwargs) for _ in range(wanted)))
            result = self._merge(results, fallback=True)
        else:
            if wanted > 1:
                kwargs["n"] = wanted
            result = await self._complete(kwargs)
            missing = wanted - len(result.texts)
            if missing > 0:
                # The server answered fewer choices than asked (DashScope models, a proxy's fixed
                # mock): get the rest one request each and remember it for this model.
                logger.warning("model %s ignored n=%d (answered %d choices): asking one by one", model, wanted,
                               len(result.texts))
                self._ignores_n.add(model)
                single = {k: v for k, v in kwargs.items() if k != "n"}
                more = await asyncio.gather(*(self._complete(single) for _ in range(missing)))
                result = self._merge([result, *more], fallback=True)
        if not allow_truncated:
            check_complete(result)
        return result

    def _merge(self, results: list[ChatResult], *, fallback: bool) -> ChatResult:
        self.stats.n_fallbacks += 1 if fallback else 0
        first = results[0]
        return ChatResult(
            text=first.text, texts=[t for r in results for t in r.texts], raw=first.raw, model=first.model,
            attempts=sum(r.attempts for r in results), reasonings=[x for r in results for x in r.reasonings],
            finish_reasons=[x for r in results for x in r.finish_reasons], n_fallback=fallback,
            mean_logprobs=[x for r in results for x in r.mean_logprobs],
        )

    async def _complete(self, kwargs: dict[str, Any]) -> ChatResult:
        """One request (with retries) answering one completion body."""
        client = self._ensure()
        stream = self.uses_stream(kwargs["model"])
        attempt = 0
        first_limited: float | None = None
        while True:
            await self.rate.wait()
            try:
                async with self._semaphore:
                    if self._closed_to_new:
                        raise RequestsClosed()
                    self.stats.requests += 1
                    self.sent += 1
                    if stream:
                        raw = await asyncio.wait_for(self._streamed(client, kwargs), timeout=self.timeout + 5)
                    else:
                        # The raw response: we read the JSON ourselves (choices, finish reasons, usage).
                        response = await asyncio.wait_for(
                            client.post("/chat/completions", body=kwargs, cast_to=httpx2.Response),
                            timeout=self.timeout + 5,
                        )
                        raw = json.loads(response.content)
                        hint = limit_hint(response.headers)
                        if hint and (self.rate.ceiling is None or hint < self.rate.ceiling):
                            self.rate.ceiling = float(hint)
                result = parse_completion(raw, kwargs["model"], attempt + 1)
            except (asyncio.CancelledError, RequestsClosed):
                raise
            except Exception as exc:  # noqa: BLE001 - every failure becomes an LLMError
                error = classify_exception(exc)
                self.stats.errors[error.kind] += 1
                if error.kind == RATE_LIMITED:
                    self.rate.limited_by_server(error)
                    now = time.monotonic()
                    first_limited = now if first_limited is None else first_limited
                    # Never given up before the server's stated window has passed, nor by a count:
                    # only LLM_RATE_LIMIT_MAX_WAIT after the call's first 429 ends it.
                    give_up = now - first_limited >= self.rate_limit_max_wait
                    delay = self._rate_limited_delay(attempt, error)
                else:
                    give_up = not error.retryable or attempt >= self.max_retries
                    delay = self._backoff(attempt, error)
                if give_up:
                    if attempt:
                        error.message = f"{error.message}（已重试 {attempt} 次）"
                    raise error from None
                logger.info("model call %s, retry %d in %.1fs", error.kind, attempt + 1, delay)
                self.stats.retries += 1
                attempt += 1
                await asyncio.sleep(delay)
                continue
            self.stats.succeeded += 1
            self.rate.succeeded()
            return result

    async def _streamed(self, client: openai.AsyncOpenAI, kwargs: dict[str, Any]) -> dict[str, Any]:
        """A streamed completion assembled into the body a non-streamed one would have had."""
        body = {**kwargs, "stream": True, "stream_options": {"include_usage": True}}
        stream = await client.post("/chat/completions", body=body, cast_to=object, stream=True,
                                   stream_cls=openai.AsyncStream[object])
        choices: dict[int, dict[str, Any]] = {}
        raw: dict[str, Any] = {"object": "chat.completion", "model": kwargs["model"]}
        async for chunk in stream:
            if not isinstance(chunk, dict):
                continue
            for key in ("id", "model", "created"):
                if chunk.get(key):
                    raw[key] = chunk[key]
            if chunk.get("usage"):
                raw["usage"] = chunk["usage"]
            for part in chunk.get("choices") or []:
                choice = choices.setdefault(int(part.get("index") or 0), {
                    "content": [], "reasoning": [], "finish_reason": None})
                delta = part.get("delta") or {}
                if delta.get("content"):
                    choice["content"].append(delta["content"])
                thinking = delta.get("reasoning_content") or delta.get("reasoning")
                if thinking:
                    choice["reasoning"].append(thinking)
                if part.get("finish_reason"):
                    choice["finish_reason"] = part["finish_reason"]
        raw["choices"] = [
            {"index": index, "finish_reason": c["finish_reason"],
             "message": {"role": "assistant", "content": "".join(c["content"]),
                         **({"reasoning_content": "".join(c["reasoning"])} if c["reasoning"] else {})}}
            for index, c in sorted(choices.items())
        ]
        return raw

    def chat_sync(self, messages: list[dict[str, Any]], **kwargs: Any) -> ChatResult:
        """`chat` for synchronous callers (CLI previews); not for use inside a running event loop."""

        async def run() -> ChatResult:
            try:
                return await self.chat(messages, **kwargs)
            finally:
                await self.aclose()

        return asyncio.run(run())
