"""Every upload form has the same limit (UPLOAD_MAX_BYTES) and keeps nothing it refuses."""
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from pipelines.models import Job, SourceItem

pytestmark = pytest.mark.django_db

UPLOADS = [
    ("feedback:import", "feedback_file", {"min_rating": "4"}),
    ("generation:import_sources", "file", {"collection": "web"}),
    ("dpo:new", "file", {"source": "file", "strategy": "truncate"}),
]
LINE = b'{"instruction": "q", "output": "a", "rating": 5, "prompt": "q", "chosen": "a", "image": "x.png", "wiki_title": "t"}\n'


def stored_files(media_root: Path) -> list[Path]:
    return [p for p in media_root.rglob("*") if p.is_file()]


@pytest.mark.parametrize(("url", "field", "data"), UPLOADS)
def test_one_limit_refuses_an_oversized_upload_everywhere_and_keeps_nothing(staff_client, settings, url, field, data):
    settings.UPLOAD_MAX_BYTES = len(LINE) - 1
    response = staff_client.post(reverse(url), {field: SimpleUploadedFile("big.jsonl", LINE), **data}, follow=True)
    assert "文件过大" in response.content.decode() and "UPLOAD_MAX_BYTES" in response.content.decode()
    assert stored_files(Path(settings.MEDIA_ROOT)) == []
    assert not Job.objects.exists() and not SourceItem.objects.exists()


TAKEN = {  # what each form does with a file it takes
    "feedback:import": lambda text: Job.objects.filter(kind="feedback_import").count() == 1 and "已创建导入任务" in text,
    "generation:import_sources": lambda text: SourceItem.objects.filter(collection="web").count() == 1,
    "dpo:new": lambda text: "file:1" in text,  # the preview read the stored file's first line
}


@pytest.mark.parametrize(("url", "field", "data"), UPLOADS)
def test_an_upload_within_the_limit_is_taken(staff_client, settings, url, field, data):
    settings.UPLOAD_MAX_BYTES = len(LINE)
    response = staff_client.post(reverse(url), {field: SimpleUploadedFile("ok.jsonl", LINE), **data}, follow=True)
    assert TAKEN[url](response.content.decode())


@pytest.mark.parametrize(("url", "field", "data"), UPLOADS)
def test_only_json_files_are_taken(staff_client, settings, url, field, data):
    response = staff_client.post(reverse(url), {field: SimpleUploadedFile("run.exe", LINE), **data}, follow=True)
    assert "只接受 .json 或 .jsonl 文件" in response.content.decode()
    assert stored_files(Path(settings.MEDIA_ROOT)) == []
