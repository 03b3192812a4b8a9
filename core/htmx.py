"""The house htmx habit in one place: an htmx request gets the swapped partial, except a history restore
(the browser lost its cached page and asks for the whole page again); `render_page` renders by it."""
from __future__ import annotations

from django.shortcuts import render


def htmx_partial(request) -> bool:
    """htmx wants just the swapped region (not for history restores, which need the whole page)."""
    return bool(request.htmx) and not request.htmx.history_restore_request


def render_page(request, template: str, partial: str, context: dict, *, status: int = 200,
                push_url: str | None = None):
    """The page `template`, or for htmx only its `partial` (a `{% partialdef %}` name), with the
    address bar following to `push_url` when given."""
    response = render(request, f"{template}#{partial}" if htmx_partial(request) else template, context, status=status)
    if push_url and htmx_partial(request):
        response["HX-Push-Url"] = push_url
    return response
