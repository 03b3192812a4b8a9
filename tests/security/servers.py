"""Private servers for the deploy, security and fault-tolerance tests.

Each test that restarts or misconfigures Redis gets its own `redis-server` on a free port, so the
shared one (and other people's test runs) are never touched. Waiting is polling with a deadline.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PYTHON = str(ROOT / ".venv" / "bin" / "python")
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def load_factor() -> float:
    """How much longer than on a quiet machine things may take now: the 1-minute load average per
    core (between 1 and 4), times TEST_TIMEOUT_SCALE (default 1). Deadlines are multiplied by it, so a
    test waiting for a worker holds on a machine busy with other work, and still ends when it hangs."""
    try:
        per_core = os.getloadavg()[0] / (os.cpu_count() or 1)
    except OSError:
        per_core = 1.0
    return min(4.0, max(1.0, per_core)) * float(os.environ.get("TEST_TIMEOUT_SCALE") or 1)


def scaled(seconds: float) -> float:
    """`seconds` stretched by the machine's current load (see load_factor)."""
    return seconds * load_factor()


def wait_until(predicate: Callable[[], object], *, timeout: float, what: str, interval: float = 0.05):
    """Poll `predicate` until it returns something truthy; fail with `what` after `timeout` seconds
    (stretched by the machine's load, see load_factor)."""
    timeout = scaled(timeout)
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


class RedisServer:
    """A redis-server process on a free port, with its data in `directory` (survives restarts)."""

    def __init__(self, directory: Path, *, policy: str = "noeviction", appendonly: bool = True):
        self.directory = directory
        self.port = free_port()
        self.policy = policy
        self.appendonly = appendonly
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [
                REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "yes" if self.appendonly else "no", "--appendfsync", "always",
                "--dir", str(self.directory), "--maxmemory-policy", self.policy,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(lambda: self._ping(), timeout=15, what=f"redis-server on port {self.port}")

    def _ping(self) -> bool:
        import redis

        try:
            return bool(redis.Redis(port=self.port, socket_timeout=0.5).ping())
        except redis.exceptions.RedisError:
            return False

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()


@contextmanager
def private_redis(directory: Path, **options) -> Iterator[RedisServer]:
    server = RedisServer(directory, **options)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def subprocess_env(**overrides: str | None) -> dict[str, str]:
    """The current environment plus overrides; None removes a variable."""
    env = dict(os.environ)
    for name, value in overrides.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def stop_process(process: subprocess.Popen, *, timeout: float = 20) -> None:
    """Stop a process we started (and its process group when it has one)."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)
