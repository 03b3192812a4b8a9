"""Error pages are the product's own: Chinese, with the menu, for 403, 404, 500 and a CSRF failure;
and a favicon exists (browsers ask every page for /favicon.ico)."""
import pytest
from django.http import HttpResponse
from django.test import Client
from django.urls import path

import config.urls
from config.errors import server_error

pytestmark = pytest.mark.django_db


def boom(request):
    raise RuntimeError("a bug in a view")


def ok(request):
    return HttpResponse("ok")


# A URLconf for these tests: the product's URLs plus a view that crashes (handlers come along).
urlpatterns = [path("boom/", boom), *config.urls.urlpatterns]
handler400, handler403, handler404, handler500 = (
    getattr(config.urls, f"handler{code}", f"django.views.defaults.{name}")
    for code, name in ((400, "bad_request"), (403, "permission_denied"), (404, "page_not_found"), (500, "server_error")))


def assert_product_page(html: str, *, title: str, menu: bool = True):
    assert '<html lang="zh-Hans">' in html, html[:300]
    assert title in html
    assert "/static/css/app" in html  # the product's stylesheet, not Django's bare page
    assert ('class="mainnav"' in html) is menu
    for english in ("Not Found", "Forbidden", "Server Error", "CSRF verification failed"):
        assert english not in html


def test_404_for_a_signed_in_user(reviewer_client):
    response = reviewer_client.get("/no-such-page/")
    assert response.status_code == 404
    assert_product_page(response.content.decode(), title="页面不存在")


def test_404_for_an_object_that_does_not_exist(reviewer_client):
    response = reviewer_client.get("/jobs/999999/")
    assert response.status_code == 404
    assert_product_page(response.content.decode(), title="页面不存在")


def test_403_says_what_is_not_allowed(reviewer_client):
    response = reviewer_client.get("/jobs/monitor/")
    assert response.status_code == 403
    html = response.content.decode()
    assert_product_page(html, title="没有权限")


def test_500_is_our_page_with_the_menu(settings, admin_user):
    settings.ROOT_URLCONF = __name__
    client = Client(raise_request_exception=False)
    client.force_login(admin_user)
    response = client.get("/boom/")
    assert response.status_code == 500
    html = response.content.decode()
    assert_product_page(html, title="服务器出错")
    assert "a bug in a view" not in html and "RuntimeError" not in html  # nothing internal leaks


def test_500_still_renders_when_the_menu_cannot_be_built(rf):
    """A 500 caused by the database being away must not fail again while rendering the menu."""
    from unittest import mock

    request = rf.get("/")

    class BrokenUser:
        @property
        def is_authenticated(self):
            raise RuntimeError("database away")

    request.user = BrokenUser()
    with mock.patch("django.template.context_processors.csrf", side_effect=RuntimeError("no")):
        response = server_error(request)
    assert response.status_code == 500
    assert "服务器出错" in response.content.decode()


def test_csrf_failure_explains_and_keeps_the_menu(admin_user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    response = client.post("/jobs/new/classification/", {"dataset": "x"})
    assert response.status_code == 403
    html = response.content.decode()
    assert_product_page(html, title="页面已过期")
    assert "刷新" in html


def test_error_pages_for_anonymous_visitors_have_no_menu(settings):
    settings.ROOT_URLCONF = __name__
    response = Client(raise_request_exception=False).get("/boom/")
    assert response.status_code == 500
    assert_product_page(response.content.decode(), title="服务器出错", menu=False)


def test_favicon(client):
    response = client.get("/favicon.ico", follow=True)
    assert response.status_code == 200
    assert response["Content-Type"] in ("image/x-icon", "image/vnd.microsoft.icon")
    body = b"".join(response.streaming_content) if response.streaming else response.content
    assert body[:4] == b"\x00\x00\x01\x00"  # an ICO file
    login = client.get("/login/").content.decode()
    assert 'rel="icon"' in login
