"""Which forwarded headers to believe: only those set by a proxy listed in FORWARDED_ALLOW_IPS.

A client that reaches the web process directly can send X-Forwarded-For and X-Forwarded-Proto
itself; believing them would let it pick a fresh login rate-limit bucket per attempt, or make a
plain connection look like HTTPS. `ForwardedHeadersMiddleware` (config/security.py) removes them
from requests that did not come from a trusted proxy, and `client_address` walks X-Forwarded-For
from the right past trusted proxies only.
"""
from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from functools import lru_cache

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

# Headers only a proxy may set (WSGI names). X-Forwarded-Host is never used (USE_X_FORWARDED_HOST
# is off), but it is dropped too so nothing can start relying on an unchecked one.
FORWARDED_HEADERS = (
    "HTTP_X_FORWARDED_FOR",
    "HTTP_X_FORWARDED_PROTO",
    "HTTP_X_FORWARDED_HOST",
    "HTTP_X_FORWARDED_PORT",
    "HTTP_X_REAL_IP",
    "HTTP_FORWARDED",
)
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=8)
def _networks(entries: tuple[str, ...]) -> tuple[Network, ...]:
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            raise ImproperlyConfigured(
                f"FORWARDED_ALLOW_IPS: {entry!r} is not an IP address or network (e.g. 127.0.0.1, 10.0.0.0/24)"
            ) from None
    return tuple(networks)


def trusted_proxies() -> tuple[Network, ...]:
    return _networks(tuple(settings.FORWARDED_ALLOW_IPS or ()))


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    text = text.strip()
    if text.startswith("[") and "]" in text:  # [v6]:port
        text = text[1:text.index("]")]
    elif text.count(":") == 1:  # v4:port
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    return address.ipv4_mapped or address if isinstance(address, ipaddress.IPv6Address) else address


def is_trusted_proxy(address: str, proxies: Iterable[Network] | None = None) -> bool:
    parsed = _address(address or "")
    if parsed is None:
        return False
    return any(parsed in network for network in (trusted_proxies() if proxies is None else proxies))


def client_address(meta: Mapping[str, str]) -> str:
    """The client's address: REMOTE_ADDR, or behind trusted proxies the first untrusted hop of
    X-Forwarded-For counted from the right (entries further left were written by the client)."""
    remote = meta.get("REMOTE_ADDR", "") or ""
    proxies = trusted_proxies()
    if not proxies or not is_trusted_proxy(remote, proxies):
        return remote or "unknown"
    hops = [part.strip() for part in meta.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
    client = remote
    for hop in reversed(hops):
        if _address(hop) is None:
            break  # not an address: stop at the last hop a trusted proxy vouched for
        client = hop
        if not is_trusted_proxy(hop, proxies):
            break
    return client or "unknown"


def strip_untrusted_forwarded_headers(meta: dict) -> None:
    """Remove the forwarded headers from a request that did not come from a trusted proxy."""
    if not is_trusted_proxy(meta.get("REMOTE_ADDR", "")):
        for name in FORWARDED_HEADERS:
            meta.pop(name, None)
