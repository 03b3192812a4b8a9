"""An OpenAI-compatible model server for demos and tests (`manage.py llm_simulator`).

Real HTTP (stdlib ThreadingHTTPServer, one thread per connection), so the application and the
tests exercise the real openai client path. Serves `POST /v1/chat/completions` and `GET /v1/models`.

Deterministic: the answer depends only on the request body (the responders in
`pipelines/sim_responders/` get an RNG seeded from it). Faults are injected by rate:

- `content_filter`: DashScope's 400 `data_inspection_failed`, decided by the body alone, so the same
  input is always refused (as a real content filter would);
- `429` (with Retry-After / retry-after-ms), `500`, `hang` (no answer until past the client's
  timeout) and `malformed` (a 200 with broken JSON) are transient: decided by the body *and* how
  often that body has been seen, so a retry can succeed and a run is still reproducible.

Every request is counted per body hash; `answered` counts only 200 answers, so tests can assert
"one model call per item".
"""
from __future__ import annotations

import hashlib
import json
import logging
import random
import signal
import socket
import threading
import time
from collections import Counter
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


def body_hash(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()[:16]


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

    def reset_counts(self) -> None:
        with self.lock:
            self.requests.clear()
            self.answered.clear()
            self.outcomes.clear()
            self.max_in_flight = 0


def _rng(*parts: Any) -> random.Random:
    digest = hashlib.sha256("|".join(str(p) for p in parts).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def completion_body(request: dict[str, Any], contents: list[str], key: str) -> dict[str, Any]:
    prompt_chars = len(json.dumps(request.get("messages", []), ensure_ascii=False))
    completion_chars = sum(len(c) for c in contents)
    return {
        "id": f"chatcmpl-sim-{key}",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": request.get("model") or MODELS[0],
        "choices": [
            {"index": i, "message": {"role": "assistant", "content": c}, "finish_reason": "stop", "logprobs": None}
            for i, c in enumerate(contents)
        ],
        "usage": {
            "prompt_tokens": prompt_chars // 2,
            "completion_tokens": completion_chars,
            "total_tokens": prompt_chars // 2 + completion_chars,
        },
    }


def answer(state: SimulatorState, request: dict[str, Any], key: str) -> list[str]:
    """The assistant contents for a request: `n` choices from the first matching responder."""
    n = max(1, min(int(request.get("n") or 1), 8))
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

    def _serve(self, request: dict[str, Any], key: str, nth: int, faults: Faults) -> None:
        state = self.state
        if faults.latency_ms:
            # Jitter ±10 % around the configured latency, like a real server.
            latency = faults.latency_ms / 1000 * (0.9 + 0.2 * _rng(faults.seed, key, nth, "lat").random())
            if state.stopping.wait(latency):
                return
        if _rng(faults.seed, key, "filter").random() < faults.rate_content_filter:
            self._count("content_filter")
            self._send_json(400, {
                "error": {"code": "data_inspection_failed", "param": None,
                          "message": "Input data may contain inappropriate content.", "type": "data_inspection_failed"},
                "id": f"chatcmpl-sim-{key}", "request_id": f"sim-{key}-{nth}",
            })
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
            self._send_json(429, {"error": {"message": "Requests rate limit exceeded", "type": "rate_limit_error",
                                            "code": "rate_limit_exceeded"}},
                            {"Retry-After": str(max(1, round(faults.retry_after))),
                             "retry-after-ms": str(int(faults.retry_after * 1000))})
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
        # Counted before the answer leaves, so a client that got it always sees it counted.
        self._count("ok", answered=key)
        self._send_json(200, completion_body(request, contents, key))


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
