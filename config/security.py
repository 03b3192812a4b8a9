"""Response headers Django 5.2 does not set itself: Content-Security-Policy and friends.

Django's SecurityMiddleware already sends nosniff, Referrer-Policy, Cross-Origin-Opener-Policy and
(in production) HSTS; XFrameOptionsMiddleware sends X-Frame-Options. This adds the rest, from
settings, so every environment (laptop, CI, server) runs under the same policy and a page that
needs an inline script fails in development, not on the server.
"""
from collections.abc import Callable, Mapping

from django.conf import settings
from django.http import HttpRequest, HttpResponse


def build_csp(policy: Mapping[str, list[str] | tuple[str, ...] | str]) -> str:
    """Serialise a {directive: sources} mapping into one Content-Security-Policy header value.

    A directive with no sources (e.g. ``upgrade-insecure-requests``) is written bare.
    """
    parts = []
    for directive, sources in policy.items():
        values = [sources] if isinstance(sources, str) else list(sources)
        parts.append(" ".join([directive, *values]) if values else directive)
    return "; ".join(parts)


class SecurityHeadersMiddleware:
    """Adds CSP, Permissions-Policy and Cross-Origin-Resource-Policy to every response.

    A view that must differ (none does today) can set its own header first; it is then kept.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response
        self.headers: dict[str, str] = {}
        policy = settings.CONTENT_SECURITY_POLICY
        if policy:
            name = (
                "Content-Security-Policy-Report-Only"
                if settings.CONTENT_SECURITY_POLICY_REPORT_ONLY
                else "Content-Security-Policy"
            )
            self.headers[name] = build_csp(policy)
        permissions = settings.PERMISSIONS_POLICY
        if permissions:
            self.headers["Permissions-Policy"] = ", ".join(
                f"{feature}=({' '.join(allow)})" for feature, allow in permissions.items()
            )
        corp = settings.CROSS_ORIGIN_RESOURCE_POLICY
        if corp:
            self.headers["Cross-Origin-Resource-Policy"] = corp

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        for name, value in self.headers.items():
            if name not in response:
                response[name] = value
        return response


class ForwardedHeadersMiddleware:
    """First in MIDDLEWARE: forwarded headers (X-Forwarded-For, X-Forwarded-Proto …) are removed from
    requests that do not come from a proxy in FORWARDED_ALLOW_IPS (config/proxies.py), so neither the
    login rate limits nor SECURE_PROXY_SSL_HEADER can be steered by a client reaching us directly."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        from config.proxies import strip_untrusted_forwarded_headers

        strip_untrusted_forwarded_headers(request.META)
        return self.get_response(request)
