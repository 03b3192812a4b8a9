"""One timezone (TIME_ZONE, default Asia/Shanghai) for times in file names and pages, and the pages
say which it is. An export made at 00:03:57 UTC is 08:03:57 in Shanghai, in its file name and on
the export list alike."""
from datetime import UTC, datetime
from unittest import mock

import pytest
from django.urls import reverse

from config.timestamps import local_timestamp
from pipelines.models import Export

MOMENT = datetime(2026, 3, 1, 0, 3, 57, tzinfo=UTC)  # 08:03:57 in Asia/Shanghai


def test_the_default_timezone_is_shanghai():
    from config.settings import base

    assert base.TIME_ZONE == "Asia/Shanghai" or "TIME_ZONE" in __import__("os").environ


def test_local_timestamp_uses_time_zone(settings):
    settings.TIME_ZONE = "Asia/Shanghai"
    assert local_timestamp(MOMENT) == "20260301-080357"
    settings.TIME_ZONE = "Europe/Berlin"
    assert local_timestamp(MOMENT) == "20260301-010357"


@pytest.mark.django_db
def test_an_export_file_name_and_the_export_list_show_the_same_local_time(client, scene, settings):  # noqa: F811
    settings.TIME_ZONE = "Asia/Shanghai"
    client.force_login(scene.admin)
    with mock.patch("django.utils.timezone.now", return_value=MOMENT):
        client.post(reverse("analysis:export_create", args=[scene.dataset.pk]), {"format": "alpaca"})
    export = Export.objects.get()
    assert "20260301-080357" in str(export.path), export.path  # the export folder or file name
    listing = client.get(reverse("analysis:export_list")).content.decode()
    assert "2026-03-01 08:03:57" in listing


@pytest.mark.django_db
def test_pages_say_which_timezone_their_times_are_in(reviewer_client, settings):
    settings.TIME_ZONE = "Asia/Shanghai"
    html = reviewer_client.get("/").content.decode()
    assert "Asia/Shanghai" in html and "UTC+08:00" in html
