"""Security headers on every response, and templates that the Content-Security-Policy allows."""
import json
import re
from pathlib import Path

import pytest
from django.conf import settings

from config.security import build_csp

TEMPLATES = Path(settings.BASE_DIR) / "templates"
pytestmark = pytest.mark.django_db


def test_csp_forbids_inline_script_and_framing(client):
    response = client.get("/login/")
    csp = response["Content-Security-Policy"]
    directives = dict(part.strip().split(" ", 1) for part in csp.split(";") if " " in part.strip())
    assert directives["default-src"] == "'self'"
    assert directives["script-src"] == "'self'"  # no 'unsafe-inline', no 'unsafe-eval'
    assert directives["object-src"] == "'none'"
    assert directives["frame-ancestors"] == "'none'"
    assert directives["base-uri"] == "'self'"
    assert directives["form-action"] == "'self'"


def test_other_security_headers(client):
    response = client.get("/login/")
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"
    assert response["Cross-Origin-Resource-Policy"] == "same-origin"
    assert "camera=()" in response["Permissions-Policy"]


def test_headers_are_on_error_pages_too(client):
    response = client.get("/no-such-page-anywhere/")
    assert response.status_code in (302, 404)
    assert "script-src 'self'" in response["Content-Security-Policy"]


def test_report_only_mode_for_trying_a_policy(settings, client):
    settings.CONTENT_SECURITY_POLICY_REPORT_ONLY = True
    response = client.get("/login/")
    assert "Content-Security-Policy" not in response
    assert "script-src 'self'" in response["Content-Security-Policy-Report-Only"]


def test_build_csp_writes_bare_directives():
    assert build_csp({"default-src": ["'self'"], "upgrade-insecure-requests": []}) == (
        "default-src 'self'; upgrade-insecure-requests"
    )


def test_htmx_does_not_inject_its_indicator_style(client):
    """htmx 2 adds a <style> element unless told not to; the CSP would block it (console error)."""
    html = client.get("/login/").content.decode()
    config = re.search(r"<meta name=\"htmx-config\" content='([^']*)'>", html)
    assert config and json.loads(config.group(1))["includeIndicatorStyles"] is False


# --------------------------------------------------------------------------- every template, statically

INLINE_SCRIPT = re.compile(r"<script\b(?![^>]*\bsrc=)(?![^>]*type=\"application/(?:ld\+)?json\")[^>]*>", re.I)
INLINE_HANDLER = re.compile(r"<[a-z][^>]*\s(on[a-z]+)\s*=", re.I)
NEEDS_EVAL = re.compile(r"\s(hx-on(?::|-)[\w:-]*|hx-vars|data-hx-on[\w:-]*)\s*=|hx-trigger=\"[^\"]*\[[^\"]*\]", re.I)
JS_URL = re.compile(r"""(?:href|src|action|formaction)\s*=\s*["']\s*javascript:""", re.I)
STYLE_ELEMENT = re.compile(r"<style\b", re.I)


def template_files():
    return sorted(p for p in TEMPLATES.rglob("*.html"))


def test_there_are_templates_to_check():
    assert len(template_files()) >= 2


@pytest.mark.parametrize("path", template_files(), ids=lambda p: str(p.relative_to(TEMPLATES)))
def test_template_needs_nothing_the_csp_forbids(path):
    # Template comments are never sent; blank them out but keep line numbers.
    text = re.sub(r"\{#.*?#\}|\{% comment %\}.*?\{% endcomment %\}",
                  lambda m: re.sub(r"[^\n]", " ", m.group(0)), path.read_text(encoding="utf-8"), flags=re.S)
    problems = []
    for pattern, what in [
        (INLINE_SCRIPT, "inline <script> (move it to static/js/)"),
        (INLINE_HANDLER, "inline event handler attribute"),
        (NEEDS_EVAL, "htmx feature that needs eval (hx-on, hx-vars, event filters [..])"),
        (JS_URL, "javascript: URL"),
        (STYLE_ELEMENT, "<style> element (move it to static/css/)"),
    ]:
        for match in pattern.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            problems.append(f"{path.relative_to(TEMPLATES)}:{line}: {what}: {match.group(0)[:80]!r}")
    assert not problems, "\n".join(problems)
