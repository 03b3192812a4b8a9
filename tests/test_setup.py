"""The project's wiring: settings switch on the environment, migrations are complete."""
from io import StringIO

import pytest
from django.core.management import call_command


@pytest.mark.django_db
def test_migrations_match_models():
    out = StringIO()
    call_command("makemigrations", "--check", "--dry-run", stdout=out)


def test_login_page_renders_chinese(client, db):
    response = client.get("/login/")
    assert response.status_code == 200
    assert "登录" in response.content.decode()


def test_media_files_are_never_served_raw_even_in_debug(settings, client, admin_user, media_root):
    """Only the image view serves media (login, path confinement, image content type)."""
    import importlib

    from django.urls import clear_url_caches

    import config.urls

    (media_root / "page.html").write_text("<script>alert(1)</script>", encoding="utf-8")
    client.force_login(admin_user)
    settings.DEBUG = True
    try:
        importlib.reload(config.urls)
        clear_url_caches()
        assert client.get("/media/page.html").status_code == 404
    finally:
        settings.DEBUG = False
        importlib.reload(config.urls)
        clear_url_caches()
