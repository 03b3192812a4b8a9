"""Which model endpoints a job may name: only those in the allow-list.

A job can carry its own OpenAI-compatible base URL (the DPO strategy's endpoint: an SFT checkpoint
served by vLLM). The preview calls it from the web process and the job from a worker, so an
arbitrary URL would let a staff account (or a stolen session) probe link-local metadata services or
this machine's database and Redis ports. Only URLs under an entry of LLM_ENDPOINT_ALLOWLIST are
accepted; when that setting is empty, the configured provider (OPENAI_BASE_URL) and the bundled
simulator's default address are.
"""
from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

from core.errors import ApplicationError

SIMULATOR_BASE_URL = "http://127.0.0.1:8765/v1"  # `manage.py llm_simulator` without --port
DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class _Endpoint:
    scheme: str
    host: str
    port: int
    path: str  # without a trailing slash; "" for the server's root

    def covers(self, other: _Endpoint) -> bool:
        """`other` is this endpoint or a path below it on the same server."""
        return (self.scheme, self.host, self.port) == (other.scheme, other.host, other.port) and (
            other.path == self.path or other.path.startswith(self.path + "/")
        )


def _parse(url: str) -> _Endpoint | None:
    """The parts of a plain http(s) URL; None for anything else (user info, query, dot segments …)."""
    try:
        parts = urlsplit(str(url).strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname or parts.username is not None:
        return None
    if parts.query or parts.fragment or "\\" in parts.path or "%" in parts.path:
        return None
    segments = [s for s in parts.path.split("/") if s]
    if any(s in (".", "..") for s in segments):
        return None
    return _Endpoint(parts.scheme, parts.hostname.lower().rstrip("."), port or DEFAULT_PORTS[parts.scheme],
                     "/" + "/".join(segments) if segments else "")


def allowed_endpoints() -> list[str]:
    """The allow-list in force: LLM_ENDPOINT_ALLOWLIST, else the provider and the simulator."""
    configured = list(settings.LLM_ENDPOINT_ALLOWLIST or [])
    return configured or [settings.OPENAI_BASE_URL, SIMULATOR_BASE_URL]


def endpoint_allowed(url: str) -> bool:
    wanted = _parse(url)
    if wanted is None:
        return False
    return any(entry is not None and entry.covers(wanted) for entry in map(_parse, allowed_endpoints()))


def endpoint_check(url: str) -> str:
    """`url` without a trailing slash, or ApplicationError when it is not on the allow-list."""
    if not endpoint_allowed(url):
        listed = "、".join(u.rstrip("/") for u in allowed_endpoints())
        raise ApplicationError(
            f"{url} 不在允许的模型地址中（LLM_ENDPOINT_ALLOWLIST）。可用：{listed}", code="invalid"
        )
    return str(url).strip().rstrip("/")
