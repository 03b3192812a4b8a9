"""The simulator's HTTP side: the request handler (`POST /v1/chat/completions`, `GET /v1/models`),
the threading server, and running it in a background thread (tests, benchmarks) or the foreground.

Real HTTP (stdlib ThreadingHTTPServer, one thread per connection), so the application and the tests
exercise the real openai client path. Every request is counted per body hash; `answered` counts only
200 answers, so tests can assert "one model call per item". `stream: true` is answered as
server-sent events, `logprobs: true` with per-token log-probs.
"""
from __future__ import annotations

import json
import logging
import signal
import socket
import threading
import time
from dataclasses import asdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .completions import MODELS, answer, completion_body, shape, stream_events
from .faults import (Faults, configuration_refusal, content_filter_refusal, latency_seconds, limit_headers,
                     retry_headers, transient_fault)
from .seeds import body_hash
from .state import SimulatorState

logger = logging.getLogger(__name__)


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
        latency = latency_seconds(faults, key, nth)
        if latency and state.stopping.wait(latency):
            return
        refusal = configuration_refusal(request, faults, self.headers.get("Authorization", ""))
        if refusal:
            outcome, status, payload = refusal
            self._count(outcome)
            self._send_json(status, payload)
            return
        refused = content_filter_refusal(faults, key, nth)
        if refused:
            self._count("content_filter")
            self._send_json(400, refused)
            return
        wait = state.admit(faults, time.monotonic())
        if wait is not None:
            self._count("429_limit")
            self._send_json(429, {"error": {"message": "Requests rate limit exceeded, please try again later.",
                                            "type": "rate_limit_error", "code": "rate_limit_exceeded"}},
                            {**retry_headers(faults, wait), **limit_headers(faults, state.remaining(faults))})
            return
        name = transient_fault(faults, key, nth)
        if name == "hang":
            self._count("hang")  # counted now: the client gives up long before the hang ends
            state.stopping.wait(faults.hang_seconds)
            self.close_connection = True
            self._send_json(504, {"error": {"message": "upstream hung", "type": "server_error", "code": None}})
            return
        if name == "429":
            self._count("429")
            headers = retry_headers(faults, faults.retry_after)
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
        choices = shape(request, contents, key, faults)
        # Counted before the answer leaves, so a client that got it always sees it counted.
        self._count("ok", answered=key)
        with state.lock:
            state.answered_at.append(time.monotonic())
        body = completion_body(request, choices, key, faults)
        headers = limit_headers(faults, state.remaining(faults))
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


def serve_forever(host: str, port: int, **faults: Any) -> None:
    """Run in the foreground until Ctrl-C or TERM (the management command); either stops it cleanly.

    The server runs in its thread and this one only waits: the signal handler merely records the
    signal, so it cannot interrupt the server half-way through a request or deadlock on a lock the
    interrupted code holds, and the stop itself (`SimulatorHandle.stop`) is the one the tests use."""
    handle = serve_in_thread(port, host, **faults)
    signals_received: list[int] = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda received, frame: signals_received.append(received))
    try:
        while not signals_received:
            time.sleep(0.1)  # a signal wakes it early; the handler runs between two checks
    finally:
        handle.stop()
