"""Login with rate limiting, wherever a password is checked.

`RateLimitedModelBackend` (settings.AUTHENTICATION_BACKENDS) counts failed logins in the cache per
(username, client IP) and per client IP; past the limit it refuses without checking the password
until the window expires. Being the backend, it covers every path that calls `authenticate()`:
our login page, the Django admin's, and the REST API's token endpoint. `rate_limited_login` wraps
the HTML login views so a locked user sees why (HTTP 429 and a message).

Unknown and known usernames are treated identically: same message, same counters, and Django's
ModelBackend runs the password hasher for unknown users too, so timing does not tell them apart.
"""
import hashlib
from collections.abc import Callable
from functools import wraps

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.views import LoginView
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from config.proxies import client_address

LOCKED_MESSAGE = "登录失败次数过多，请 {minutes} 分钟后再试。"


def client_ip(request: HttpRequest) -> str:
    """The client's address: REMOTE_ADDR, or behind the proxies of FORWARDED_ALLOW_IPS the address
    the nearest untrusted hop of X-Forwarded-For names (config/proxies.py), so a client cannot pick
    its own rate-limit bucket by sending the header itself."""
    return client_address(request.META)


def _key(kind: str, *parts: str) -> str:
    # Hashed: usernames may hold any characters, and cache keys must stay short and safe.
    digest = hashlib.sha256("\x00".join(parts).encode("utf-8")).hexdigest()[:40]
    return f"login-fail:{kind}:{digest}"


def _keys(username: str, ip: str) -> list[tuple[str, int]]:
    username = username.strip().casefold()
    return [
        (_key("user-ip", username, ip), settings.LOGIN_FAILURES_PER_USER_IP),
        (_key("ip", ip), settings.LOGIN_FAILURES_PER_IP),
    ]


def login_is_locked(*, username: str, ip: str) -> bool:
    """Whether this username from this address (or this address at all) has failed too often."""
    values = cache.get_many([key for key, _ in _keys(username, ip)])
    return any(values.get(key, 0) >= limit for key, limit in _keys(username, ip))


def login_failure_record(*, username: str, ip: str) -> None:
    """Count one failed login for the username+address and the address."""
    window = settings.LOGIN_FAILURE_WINDOW_SECONDS
    for key, _ in _keys(username, ip):
        # add() starts the window; incr() keeps its expiry (LocMem, file and Redis caches alike).
        cache.add(key, 0, timeout=window)
        try:
            cache.incr(key)
        except ValueError:  # expired between add() and incr()
            cache.set(key, 1, timeout=window)


def login_failures_clear(*, username: str, ip: str) -> None:
    """Forget the failures of this username from this address after a successful login."""
    cache.delete(_keys(username, ip)[0][0])


class RateLimitedModelBackend(ModelBackend):
    """Django's ModelBackend behind the failure limits (see the module docstring)."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if username is None:
            username = kwargs.get(self._username_field(), "")
        ip = client_ip(request) if request is not None else "no-request"
        if login_is_locked(username=username or "", ip=ip):
            if request is not None:
                request.login_locked = True
            return None
        user = super().authenticate(request, username=username, password=password, **kwargs)
        if user is None:
            login_failure_record(username=username or "", ip=ip)
        else:
            login_failures_clear(username=username or "", ip=ip)
        return user

    @staticmethod
    def _username_field() -> str:
        from django.contrib.auth import get_user_model

        return get_user_model().USERNAME_FIELD


def _locked_response(request: HttpRequest) -> HttpResponse:
    minutes = max(1, settings.LOGIN_FAILURE_WINDOW_SECONDS // 60)
    messages.error(request, LOCKED_MESSAGE.format(minutes=minutes))
    context = {"form": AuthenticationForm(request), "next": request.POST.get("next", "")}
    return render(request, "registration/login.html", context, status=429)


def rate_limited_login(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Wrap an HTML login view (ours, the admin's) so a locked login gets 429 and a message.

    The counting itself happens in RateLimitedModelBackend; this only explains the refusal.
    """

    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if request.method != "POST":
            return view(request, *args, **kwargs)
        if login_is_locked(username=request.POST.get("username", ""), ip=client_ip(request)):
            return _locked_response(request)
        response = view(request, *args, **kwargs)
        if getattr(request, "login_locked", False):
            return _locked_response(request)  # the limit was reached by this very attempt's check
        return response

    return wrapper


login_view = rate_limited_login(LoginView.as_view(redirect_authenticated_user=True))
