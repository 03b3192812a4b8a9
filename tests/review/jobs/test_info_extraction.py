"""Info extraction jobs (image descriptions into Sample.image_info) and importing info_extra files."""
import json

import pytest
from django.core.management import call_command

from pipelines.jobs.services import job_create, run_job_inline
from pipelines.models import JobStatus
from review.jobs.info_extraction import parse_info
from review.models import Sample

pytestmark = pytest.mark.django_db


def test_info_extraction_stores_a_structured_description(llm_simulator, scene_dataset, admin_user):
    dataset, samples = scene_dataset
    job = run_job_inline(job_create(kind="info_extraction", params={"dataset": dataset.name}, user=admin_user))
    assert job.status == JobStatus.DONE and job.items_done == len(samples)
    info = Sample.objects.get(pk=samples[0].pk).image_info
    assert set(info) >= {"visible_text", "objects", "screen_elements", "scene"}
    assert "颜色" in info["scene"] or "规格" in info["scene"]  # the first demo class
    assert info["_source"]["job_id"] == job.pk


def test_samples_with_info_are_skipped_unless_overwrite(llm_simulator, scene_dataset, admin_user):
    dataset, samples = scene_dataset
    Sample.objects.filter(pk=samples[0].pk).update(image_info={"scene": "人工填写"})
    job = job_create(kind="info_extraction", params={"dataset": dataset.name}, user=admin_user)
    assert job.items_total == len(samples) - 1
    run_job_inline(job)
    assert Sample.objects.get(pk=samples[0].pk).image_info == {"scene": "人工填写"}
    again = job_create(kind="info_extraction", params={"dataset": dataset.name, "overwrite": True}, user=admin_user)
    assert again.items_total == len(samples)


@pytest.mark.parametrize("text, ok", [
    ('{"scene": "购物车"}', True),
    ('```json\n{"scene": "购物车"}\n```', True),
    ('以下是结果：{"scene": "购物车"} 希望有帮助', True),
    ("这是一张购物车截图", False),
    ('["not", "an object"]', False),
])
def test_parse_info(text, ok):
    assert (parse_info(text) == {"scene": "购物车"}) is ok


def test_import_info_extra_files_reports_bad_records_and_imports_the_rest(scene_dataset, tmp_path, capsys):
    dataset, samples = scene_dataset
    folder = tmp_path / "info_ectra"
    folder.mkdir()
    (folder / "part1.json").write_text(json.dumps([
        {"id": samples[0].external_id, "info": '{"visible_text": ["颜色分类"], "scene": "规格选择"}'},
        {"image": f"train/imgs/{samples[1].external_id}.jpg", "response": {"scene": "换货页面"}},
        {"id": "unknown-sample", "info": "x"},
        {"info": "没有 id"},
    ], ensure_ascii=False), encoding="utf-8")
    (folder / "part2.json").write_text(json.dumps({samples[2].external_id: "图片中是物流轨迹"}, ensure_ascii=False),
                                       encoding="utf-8")
    (folder / "broken.json").write_text("{not json", encoding="utf-8")
    call_command("import_info_extra", "--dataset", dataset.name, str(folder))
    captured = capsys.readouterr()
    assert "更新 3 个样本" in captured.out
    assert "broken.json" in captured.err and "part1.json#3" in captured.err and "unknown-sample" in captured.err
    assert Sample.objects.get(pk=samples[0].pk).image_info["visible_text"] == ["颜色分类"]
    assert Sample.objects.get(pk=samples[1].pk).image_info["scene"] == "换货页面"
    assert Sample.objects.get(pk=samples[2].pk).image_info["text"] == "图片中是物流轨迹"
    # Importing the same files again changes nothing.
    call_command("import_info_extra", "--dataset", dataset.name, str(folder))
    assert "更新 0 个样本" in capsys.readouterr().out
