"""An OpenAI-compatible model server for demos and tests (`manage.py llm_simulator`).

Real HTTP (stdlib ThreadingHTTPServer, one thread per connection), so the application and the
tests exercise the real openai client path. Serves `POST /v1/chat/completions` and `GET /v1/models`.

Deterministic: the answer depends only on the request body (the responders of
settings.LLM_SIMULATOR_RESPONDER_PACKAGES get an RNG seeded from it). Faults are injected by rate:

- `content_filter`: a content-filter refusal, decided by the body alone, so the same input is always
  refused (as a real content filter would), in the shape of one provider (`content_filter_style`:
  DashScope's `data_inspection_failed`, OpenAI's `content_policy_violation` / `invalid_prompt`,
  Azure's `content_filter`, or LiteLLM's relayed `ContentPolicyViolationError`);
- `429` (with Retry-After / retry-after-ms), `500`, `hang` (no answer until past the client's
  timeout) and `malformed` (a 200 with broken JSON) are transient: decided by the body *and* how
  often that body has been seen, so a retry can succeed and a run is still reproducible.

Behaviours of real servers the bundled responders would otherwise hide (see `Faults`):

- a request limit (`rate_limit` per `rate_window` seconds, sliding or fixed windows) answered with
  429 and the retry headers of a plain server, of a LiteLLM proxy (`llm_provider-retry-after` only)
  or none (`retry_headers`); `advertise_limit` adds OpenAI's `x-ratelimit-*-requests` headers;
- thinking models (`reasoning_models`): the reasoning in `reasoning_content` (or vLLM's newer
  `reasoning`, `reasoning_field`), only the final answer line in `content`; `rate_truncated` answers
  cut off by the token limit (`finish_reason: "length"`, a thinking model's `content` empty);
- `ignore_n`: one choice whatever `n` asks (DashScope models, proxies with a fixed mock);
- configuration errors: an API key (`api_key`, 401), a model list (`known_models`, 404), a refused
  parameter (`refuse_param`, 400 `unsupported_parameter` as OpenAI o-series models answer to
  `temperature`), models that only answer streamed (`stream_only_models`, 400 as DashScope's QVQ);
- `stream: true` is answered as server-sent events, `logprobs: true` with per-token log-probs
  (most tokens near-certain; a classification answer's class name carries the simulated model's
  confidence: high for what the image shows, low for a confusable class it answered instead).

Every request is counted per body hash; `answered` counts only 200 answers, so tests can assert
"one model call per item".
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
import random
import signal
import socket
import threading
import time
from collections import Counter, deque
from dataclasses import asdict, dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .sim_responders import load_responders

logger = logging.getLogger(__name__)

MODELS = ("qwen-vl-72b-instruct", "qwen-72b-chat", "qwen-72b-judge", "qwen-vl-max")


@dataclass
class Faults:
    """Fault injection settings (rates are probabilities per request, 0–1)."""

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


def body_hash(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()[:16]


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


class SimulatorState:
    """Faults and request counters shared by the server's threads."""

    def __init__(self, faults: Faults):
        self.faults = faults
        self.lock = threading.Lock()
        self.requests: Counter[str] = Counter()
        self.answered: Counter[str] = Counter()
        self.outcomes: Counter[str] = Counter()
        self.in_flight = 0
        self.max_in_flight = 0
        self.stopping = threading.Event()
        self.responders = load_responders()
        # When each request under the rate limit was admitted (monotonic seconds).
        self.admitted: deque[float] = deque()
        self.answered_at: list[float] = []

    def reset_counts(self) -> None:
        with self.lock:
            self.requests.clear()
            self.answered.clear()
            self.outcomes.clear()
            self.max_in_flight = 0
            self.admitted.clear()
            self.answered_at.clear()

    def admit(self, faults: Faults, now: float) -> float | None:
        """Count a request against the rate limit: None when admitted, else seconds until a slot frees."""
        if faults.rate_limit <= 0:
            return None
        window = max(faults.rate_window, 1e-3)
        with self.lock:
            if faults.rate_window_fixed:
                start = math.floor(now / window) * window
                while self.admitted and self.admitted[0] < start:
                    self.admitted.popleft()
                if len(self.admitted) >= faults.rate_limit:
                    return start + window - now
            else:
                while self.admitted and self.admitted[0] <= now - window:
                    self.admitted.popleft()
                if len(self.admitted) >= faults.rate_limit:
                    return self.admitted[0] + window - now
            self.admitted.append(now)
            return None

    def remaining(self, faults: Faults) -> int:
        with self.lock:
            return max(0, faults.rate_limit - len(self.admitted))


def _rng(*parts: Any) -> random.Random:
    digest = hashlib.sha256("|".join(str(p) for p in parts).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


@dataclass
class SimChoice:
    """One answer: the visible content, a thinking model's reasoning, and why it ended."""

    content: str
    reasoning: str | None = None
    finish_reason: str = "stop"


class ScoredText(str):
    """An answer whose responder knows how sure the simulated model is of parts of it:
    `spans` are (start, end, probability of that part as a whole), e.g. the class name of a
    classification answer (review/sim_responders/classification.py)."""

    spans: tuple[tuple[int, int, float], ...] = ()

    def __new__(cls, text: str, spans=()):
        value = super().__new__(cls, text)
        value.spans = tuple(spans)
        return value


def _token_logprobs(text: str, key: str, index: int) -> dict[str, Any]:
    """Deterministic per-token (per-character) log-probs, as `logprobs: true` returns them: most
    tokens near-certain (as a real model's are; mean about −0.05), and a responder's scored parts
    (`ScoredText.spans`) carrying the probability it gave them, spread over their characters."""
    rng = _rng("logprobs", key, index)
    values = [-min(4.0, rng.expovariate(20.0)) for _ in text[:400]]
    for start, end, probability in getattr(text, "spans", ()):
        if 0 <= start < end <= len(values):
            share = math.log(max(probability, 1e-6)) / (end - start)
            values[start:end] = [share] * (end - start)
    return {"content": [{"token": ch, "logprob": round(value, 4), "bytes": None, "top_logprobs": []}
                        for ch, value in zip(text, values)]}


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
        logprobs = _token_logprobs(choice.content, key, i) if request.get("logprobs") else None
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


def thinking_split(content: str) -> tuple[str, str]:
    """A thinking model's answer: everything but the last line as reasoning, the last line as content."""
    lines = content.rstrip().split("\n")
    if len(lines) < 2:
        return f"先弄清问题在问什么，再组织回答：{content[:40]}", content
    reasoning = "\n".join(lines[:-1])
    return reasoning.removeprefix("推理：").strip(), lines[-1]


def answer(state: SimulatorState, request: dict[str, Any], key: str) -> list[str]:
    """The assistant contents for a request: `n` choices from the first matching responder."""
    n = 1 if state.faults.ignore_n else max(1, min(int(request.get("n") or 1), 8))
    contents = []
    for i in range(n):
        rng = _rng(state.faults.seed, key, i)
        for responder in state.responders:
            if responder.matches(request):
                contents.append(responder.respond(request, rng))
                break
        else:
            contents.append("好的。")
    return contents


class _Handler(BaseHTTPRequestHandler):
    server_version = "datafix-llm-simulator/1.0"
    protocol_version = "HTTP/1.1"

    @property
    def state(self) -> SimulatorState:
        return self.server.state  # type: ignore[attr-defined]

    def setup(self):
        super().setup()
        # Headers and body go out in two writes; without TCP_NODELAY, Nagle + delayed ACK add ~40 ms.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format, *args):  # noqa: A002 - quiet by default; requests are counted instead
        logger.debug("simulator: " + format, *args)

    def _send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload, ensure_ascii=False).encode()
        self._send_raw(status, data, headers)

    def _send_raw(self, status: int, data: bytes, headers: dict[str, str] | None = None) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (e.g. timed out on a hang)

    def do_GET(self):  # noqa: N802
        if self.path.rstrip("/") in ("/v1/models", "/models"):
            self._send_json(200, {"object": "list", "data": [
                {"id": m, "object": "model", "created": 1_700_000_000, "owned_by": "datafix-simulator"} for m in MODELS
            ]})
        elif self.path.rstrip("/") in ("", "/health"):
            self._send_json(200, {"status": "ok"})
        else:
            self._send_json(404, {"error": {"message": "not found", "type": "invalid_request_error", "code": None}})

    def do_POST(self):  # noqa: N802
        if self.path.rstrip("/") not in ("/v1/chat/completions", "/chat/completions"):
            self._send_json(404, {"error": {"message": "not found", "type": "invalid_request_error", "code": None}})
            return
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        try:
            request = json.loads(body or b"{}")
            if not isinstance(request.get("messages"), list):
                raise ValueError("messages must be a list")
        except ValueError as exc:
            self._send_json(400, {"error": {"message": f"invalid request: {exc}", "type": "invalid_request_error",
                                            "code": "invalid_request"}})
            return
        state = self.state
        key = body_hash(body)
        with state.lock:
            state.requests[key] += 1
            nth = state.requests[key]
            state.in_flight += 1
            state.max_in_flight = max(state.max_in_flight, state.in_flight)
            faults = Faults(**asdict(state.faults))
        try:
            self._serve(request, key, nth, faults)
        finally:
            with state.lock:
                state.in_flight -= 1

    def _count(self, outcome: str, *, answered: str | None = None) -> None:
        with self.state.lock:
            self.state.outcomes[outcome] += 1
            if answered:
                self.state.answered[answered] += 1

    def _retry_headers(self, faults: Faults, seconds: float) -> dict[str, str]:
        if faults.retry_headers == "litellm":
            # LiteLLM relays the provider's headers prefixed, and its own limiter states a whole window.
            return {"llm_provider-retry-after": str(max(1, math.ceil(max(seconds, faults.rate_window
                                                                      if faults.rate_limit else seconds))))}
        if faults.retry_headers == "none":
            return {}
        return {"Retry-After": str(max(1, math.ceil(seconds))), "retry-after-ms": str(int(seconds * 1000))}

    def _limit_headers(self, faults: Faults) -> dict[str, str]:
        if not (faults.advertise_limit and faults.rate_limit):
            return {}
        return {"x-ratelimit-limit-requests": str(faults.rate_limit),
                "x-ratelimit-remaining-requests": str(self.state.remaining(faults))}

    def _refused_by_configuration(self, request: dict[str, Any], faults: Faults) -> bool:
        """Answer the configuration errors real servers give (key, model, parameter, stream-only)."""
        model = str(request.get("model") or "")
        if faults.api_key and self.headers.get("Authorization", "") != f"Bearer {faults.api_key}":
            self._count("401")
            self._send_json(401, {"error": {"message": "Incorrect API key provided.", "type": "invalid_request_error",
                                            "param": None, "code": "invalid_api_key"}})
            return True
        if faults.known_models and model not in _prefixes(faults.known_models):
            self._count("404")
            self._send_json(404, {"error": {"message": f"The model `{model}` does not exist or you do not have "
                                                       "access to it.", "type": "invalid_request_error",
                                            "param": None, "code": "model_not_found"}})
            return True
        refused = faults.refuse_param
        if refused and refused in request and (not faults.refuse_param_models
                                               or model_matches(model, faults.refuse_param_models)):
            self._count("400_param")
            self._send_json(400, {"error": {"message": f"Unsupported parameter: '{refused}' is not supported "
                                                       "with this model.", "type": "invalid_request_error",
                                            "param": refused, "code": "unsupported_parameter"}})
            return True
        if model_matches(model, faults.stream_only_models) and not request.get("stream"):
            self._count("400_stream")
            self._send_json(400, {"error": {"message": "This model only support stream mode, please enable the "
                                                       "stream parameter to access the model.",
                                            "type": "invalid_request_error", "param": None,
                                            "code": "invalid_parameter_error"}})
            return True
        return False

    def _serve(self, request: dict[str, Any], key: str, nth: int, faults: Faults) -> None:
        state = self.state
        if faults.latency_ms:
            # Jitter ±10 % around the configured latency, like a real server.
            latency = faults.latency_ms / 1000 * (0.9 + 0.2 * _rng(faults.seed, key, nth, "lat").random())
            if state.stopping.wait(latency):
                return
        if self._refused_by_configuration(request, faults):
            return
        if _rng(faults.seed, key, "filter").random() < faults.rate_content_filter:
            self._count("content_filter")
            body = json.loads(json.dumps(CONTENT_FILTER_ERRORS.get(faults.content_filter_style,
                                                                   CONTENT_FILTER_ERRORS["dashscope"])))
            body.update({"id": f"chatcmpl-sim-{key}", "request_id": f"sim-{key}-{nth}"})
            self._send_json(400, body)
            return
        wait = state.admit(faults, time.monotonic())
        if wait is not None:
            self._count("429_limit")
            self._send_json(429, {"error": {"message": "Requests rate limit exceeded, please try again later.",
                                            "type": "rate_limit_error", "code": "rate_limit_exceeded"}},
                            {**self._retry_headers(faults, wait), **self._limit_headers(faults)})
            return
        roll = _rng(faults.seed, key, nth, "fault").random()
        edge = 0.0
        for name, rate in (("hang", faults.rate_hang), ("429", faults.rate_429), ("500", faults.rate_500),
                           ("malformed", faults.rate_malformed)):
            edge += rate
            if roll < edge:
                break
        else:
            name = "ok"
        if name == "hang":
            self._count("hang")  # counted now: the client gives up long before the hang ends
            state.stopping.wait(faults.hang_seconds)
            self.close_connection = True
            self._send_json(504, {"error": {"message": "upstream hung", "type": "server_error", "code": None}})
            return
        if name == "429":
            self._count("429")
            headers = self._retry_headers(faults, faults.retry_after)
            if faults.retry_headers == "plain":  # the configured value, not rounded up (tests use fractions)
                headers["Retry-After"] = str(max(1, round(faults.retry_after)))
            self._send_json(429, {"error": {"message": "Requests rate limit exceeded", "type": "rate_limit_error",
                                            "code": "rate_limit_exceeded"}}, headers)
            return
        if name == "500":
            self._count("500")
            self._send_json(500, {"error": {"message": "Internal server error", "type": "server_error", "code": None}})
            return
        if name == "malformed":
            self._count("malformed")
            self._send_raw(200, b'{"id": "chatcmpl-sim-broken", "choices": [{"index": 0, "message": {"con')
            return
        try:
            contents = answer(state, request, key)
        except Exception as exc:  # a responder bug must surface as a 500, not a dropped connection
            logger.exception("simulator responder failed")
            self._count("responder_error")
            self._send_json(500, {"error": {"message": f"responder error: {exc}", "type": "server_error", "code": None}})
            return
        choices = self._shape(request, contents, key, faults)
        # Counted before the answer leaves, so a client that got it always sees it counted.
        self._count("ok", answered=key)
        with state.lock:
            state.answered_at.append(time.monotonic())
        body = completion_body(request, choices, key, faults)
        headers = self._limit_headers(faults)
        if request.get("stream"):
            include_usage = bool((request.get("stream_options") or {}).get("include_usage"))
            data = stream_events(body, include_usage=include_usage, field_name=faults.reasoning_field)
            try:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                for name_, value in headers.items():
                    self.send_header(name_, value)
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass
            return
        self._send_json(200, body, headers)

    @staticmethod
    def _shape(request: dict[str, Any], contents: list[str], key: str, faults: Faults) -> list[SimChoice]:
        """Thinking models split reasoning from the answer; some answers are cut off by the token limit."""
        thinking = model_matches(str(request.get("model") or ""), faults.reasoning_models)
        choices = []
        for i, content in enumerate(contents):
            choice = SimChoice(content)
            if thinking:
                reasoning, final = thinking_split(content)
                choice = SimChoice(final, reasoning)
            if _rng(faults.seed, key, i, "truncated").random() < faults.rate_truncated:
                if thinking:  # the thinking used up max_tokens: no answer at all
                    choice = SimChoice("", (choice.reasoning or "")[: max(1, len(choice.reasoning or "") // 2)],
                                       "length")
                else:
                    choice = SimChoice(content[: max(1, len(content) // 3)], None, "length")
            choices.append(choice)
        return choices


class SimulatorServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def __init__(self, address: tuple[str, int], state: SimulatorState):
        super().__init__(address, _Handler)
        self.state = state


class SimulatorHandle:
    """A simulator running in a background thread (tests, benchmarks)."""

    def __init__(self, server: SimulatorServer, thread: threading.Thread):
        self.server = server
        self.thread = thread
        host, port = server.server_address[:2]
        self.port = port
        self.base_url = f"http://{host}:{port}/v1"

    @property
    def state(self) -> SimulatorState:
        return self.server.state

    def set_faults(self, **changes: Any) -> None:
        """Change fault settings, e.g. `set_faults(rate_429=0.3, latency_ms=50)`."""
        with self.state.lock:
            for name, value in changes.items():
                if not hasattr(self.state.faults, name):
                    raise TypeError(f"unknown fault setting {name!r}")
                setattr(self.state.faults, name, type(getattr(self.state.faults, name))(value))

    def request_count(self, key: str | None = None) -> int:
        """Requests received in total, or for one body hash."""
        with self.state.lock:
            return self.state.requests[key] if key else sum(self.state.requests.values())

    def answered_counts(self) -> dict[str, int]:
        """How many 200 answers each distinct request body got."""
        with self.state.lock:
            return dict(self.state.answered)

    def answered_times(self) -> list[float]:
        """When each 200 answer was sent (monotonic seconds), for rate measurements."""
        with self.state.lock:
            return list(self.state.answered_at)

    def outcome_counts(self) -> dict[str, int]:
        with self.state.lock:
            return dict(self.state.outcomes)

    @property
    def max_in_flight(self) -> int:
        return self.state.max_in_flight

    def reset_counts(self) -> None:
        self.state.reset_counts()

    def stop(self) -> None:
        self.state.stopping.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def make_server(host: str = "127.0.0.1", port: int = 0, **faults: Any) -> SimulatorServer:
    return SimulatorServer((host, port), SimulatorState(Faults(**faults)))


def serve_in_thread(port: int = 0, host: str = "127.0.0.1", **faults: Any) -> SimulatorHandle:
    """Start a simulator on `port` (0 = a free one) in a daemon thread and return its handle."""
    server = make_server(host, port, **faults)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2},
                              name="llm-simulator", daemon=True)
    thread.start()
    return SimulatorHandle(server, thread)


def _stop_on_term(signum, frame):
    raise KeyboardInterrupt  # one way out of serve_forever for Ctrl-C and for process managers


def serve_forever(host: str, port: int, **faults: Any) -> None:
    """Run in the foreground until interrupted (the management command); TERM stops it cleanly too."""
    server = make_server(host, port, **faults)
    signal.signal(signal.SIGTERM, _stop_on_term)
    try:
        server.serve_forever(poll_interval=0.5)
    except KeyboardInterrupt:
        pass
    finally:
        server.state.stopping.set()
        server.server_close()


# --------------------------------------------------------------------------- helpers for responders
def request_text(request: dict[str, Any], roles: tuple[str, ...] = ("system", "user")) -> str:
    """All text of the request's messages with the given roles, joined by newlines."""
    parts: list[str] = []
    for message in request.get("messages") or []:
        if not isinstance(message, dict) or message.get("role") not in roles:
            continue
        content = message.get("content")
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):
            parts.extend(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return "\n".join(parts)


def request_image_urls(request: dict[str, Any]) -> list[str]:
    """The image URLs (usually `data:` URLs) sent in the request."""
    urls = []
    for message in request.get("messages") or []:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list):
            for part in content:
                if isinstance(part, dict) and part.get("type") == "image_url":
                    image_url = part.get("image_url")
                    url = image_url.get("url") if isinstance(image_url, dict) else image_url
                    if isinstance(url, str):
                        urls.append(url)
    return urls


def decode_data_url_image(url: str):
    """A PIL image from a `data:image/...;base64,` URL, or None if it is not one or is not an image."""
    import base64
    import io

    from PIL import Image, UnidentifiedImageError

    if not url.startswith("data:") or ";base64," not in url:
        return None
    try:
        data = base64.b64decode(url.split(";base64,", 1)[1], validate=False)
        image = Image.open(io.BytesIO(data))
        image.load()
        return image
    except (ValueError, UnidentifiedImageError, OSError, Image.DecompressionBombError):
        return None
