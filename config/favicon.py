"""/favicon.ico: browsers and tools ask every site for it, whatever the page links; without it every
page view logged a 404. Served from static/favicon.ico (found like any static file) with a day's cache."""
from functools import lru_cache

from django.contrib.staticfiles import finders
from django.contrib.staticfiles.storage import staticfiles_storage
from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_GET


@lru_cache(maxsize=1)
def _icon() -> bytes | None:
    path = finders.find("favicon.ico")
    if path:
        with open(path, "rb") as fh:
            return fh.read()
    if staticfiles_storage.exists("favicon.ico"):  # collected (production) without the source tree
        with staticfiles_storage.open("favicon.ico") as fh:
            return fh.read()
    return None


@require_GET
@cache_control(max_age=86400, public=True)
def favicon(request: HttpRequest) -> HttpResponse:
    icon = _icon()
    if icon is None:
        raise Http404("no favicon")
    return HttpResponse(icon, content_type="image/x-icon")
