"""The "classification_import" job: the team's folder imported from the browser, with its progress on
the job page; uploads and paths confined to MEDIA_ROOT and size-checked."""
import io
import json
import shutil
import zipfile

import pytest
from django.urls import reverse

from pipelines.jobs.services import job_create, job_retry_failed, run_job_inline
from pipelines.models import ItemStatus, Job, JobKind, JobStatus
from review.jobs import classification_import
from review.models import Dataset, Reasoning, Sample
from tests.review.team_folder import REFUSED_ID, build_team_train
from tests.review.test_counters import assert_counters_match

pytestmark = pytest.mark.django_db
START = reverse("jobs:start", args=[JobKind.CLASSIFICATION_IMPORT])


def zipped(folder, *, top="train") -> io.BytesIO:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, f"{top}/{path.relative_to(folder).as_posix()}")
    buffer.seek(0)
    return buffer


def upload(name: str, content: bytes | io.BytesIO):
    data = content.getvalue() if isinstance(content, io.BytesIO) else content
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, data, content_type="application/octet-stream")


def manifest(ids, label="换货页面") -> bytes:
    return "\n".join(json.dumps({"id": i, "label": label, "outputs": {"2": f"分析 {i}\n类别：{label}",
                                                                    "3": f"简短 {i}\n类别：{label}"}}, ensure_ascii=False)
                     for i in ids).encode("utf-8")


def test_staff_import_the_teams_zipped_folder_and_watch_it_on_the_job_page(staff_client, tmp_path, settings):
    settings.IMPORT_BATCH_SAMPLES = 3
    team = build_team_train(tmp_path, gbk_class=None)
    shutil.copytree(team.image_root / "train" / "images", team.root / "images")  # the images go in the zip
    response = staff_client.post(START, {"dataset": "团队", "create_classes": "on",
                                         "upload": upload("train.zip", zipped(team.root))})
    job = Job.objects.get(kind=JobKind.CLASSIFICATION_IMPORT)
    assert response.status_code == 302 and response.url == reverse("jobs:detail", args=[job.pk])
    assert job.params["path"].startswith("imports/") and job.params["concurrency"] == 1
    # One item per file, then the plan; the batches are added when the plan has run.
    keys = list(job.items.order_by("id").values_list("key", flat=True))
    assert keys[-1] == "plan" and all(k.startswith("read:") for k in keys[:-1])

    job = run_job_inline(job)
    assert job.status == JobStatus.DONE and job.items_failed == 0
    batches = job.items.filter(key__startswith="batch:").count()
    assert batches == 4 and job.items_total == len(keys) + batches  # 10 ids (one of another task), 3 per batch
    dataset = Dataset.objects.get(name="团队")
    samples = {s.external_id: s for s in Sample.objects.filter(dataset=dataset)}
    assert set(samples) == {s.id for s in team.samples} | {REFUSED_ID}
    assert all(s.image.startswith(f"datasets/{dataset.pk}/") for s in samples.values())
    assert Reasoning.objects.filter(sample__dataset=dataset).count() == 3 * len(team.samples)
    assert_counters_match(dataset)
    assert job.report["samples_imported"] == 9 and job.report["problems_total"] == 0
    assert not classification_import.staging_path(job).exists()

    page = staff_client.get(reverse("jobs:detail", args=[job.pk])).content.decode()
    assert "导入样本 9 个" in page and 'id="import-report"' in page
    sample = samples["图片1"]
    page = staff_client.get(reverse("review:sample", args=[sample.pk])).content.decode()
    assert "观察：样本 图片1 的截图（模式3）" in page


def test_a_path_under_media_root_imports_and_one_outside_is_refused(staff_client, media_root, tmp_path):
    (media_root / "incoming").mkdir()
    (media_root / "incoming" / "m.jsonl").write_bytes(manifest(["a", "b"]))
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "m.jsonl").write_bytes(manifest(["x"]))
    for path in ("../outside/m.jsonl", str(outside / "m.jsonl"), "incoming/%2e%2e/%2e%2e/outside/m.jsonl"):
        response = staff_client.post(START, {"dataset": "scenes", "path": path, "create_classes": "on"})
        assert response.status_code == 200 and "超出允许的目录" in response.content.decode(), path
    assert not Job.objects.exists()
    response = staff_client.post(START, {"dataset": "scenes", "path": "incoming/m.jsonl", "create_classes": "on"})
    job = run_job_inline(Job.objects.get())
    assert response.status_code == 302 and job.status == JobStatus.DONE
    assert set(Sample.objects.values_list("external_id", flat=True)) == {"a", "b"}


def test_uploads_are_size_checked_and_zips_may_not_escape(staff_client, media_root, settings):
    settings.IMPORT_UPLOAD_MAX_BYTES = 2_000
    response = staff_client.post(START, {"dataset": "scenes", "upload": upload("m.jsonl", manifest(range(100)))})
    assert "文件过大" in response.content.decode()

    def archive(members):
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for name, data in members:
                zf.writestr(name, data)
        buffer.seek(0)
        return buffer

    escaping = archive([("train/m.jsonl", manifest(["a"])), ("../../evil.jsonl", b"{}")])
    response = staff_client.post(START, {"dataset": "scenes", "upload": upload("t.zip", escaping)})
    assert "超出目录" in response.content.decode() and not (media_root.parent / "evil.jsonl").exists()
    bomb = archive([("train/m.jsonl", manifest(["a"])), ("train/zeros.bin", b"\0" * 50_000)])  # 50 KB from ~100 bytes
    response = staff_client.post(START, {"dataset": "scenes", "upload": upload("t.zip", bomb)})
    assert "解压后过大" in response.content.decode()
    response = staff_client.post(START, {"dataset": "scenes", "upload": upload("notes.txt", b"hello")})
    assert "只接受" in response.content.decode()
    assert not Job.objects.exists()
    assert not any((media_root / "imports").iterdir()) if (media_root / "imports").exists() else True


def test_only_staff_start_an_import(reviewer_client, media_root):
    (media_root / "m.jsonl").write_bytes(manifest(["a"]))
    response = reviewer_client.post(START, {"dataset": "scenes", "path": "m.jsonl"})
    assert response.status_code == 403 and not Job.objects.exists()


def test_unknown_classes_fail_the_plan_with_the_list_and_write_nothing(admin_user, media_root):
    (media_root / "in").mkdir()
    (media_root / "in" / "m.jsonl").write_bytes(manifest(["a"], label="物流跟综页面"))
    Dataset.objects.create(name="scenes").categories.create(name="物流跟踪页面")
    job = run_job_inline(job_create(kind=JobKind.CLASSIFICATION_IMPORT, enqueue=False, user=admin_user,
                                    params={"dataset": "scenes", "path": "in/m.jsonl"}))
    plan = job.items.get(key="plan")
    assert plan.status == ItemStatus.FAILED and plan.error_kind == "unknown_classes"
    assert "类别对应不到已有类别" in job.error_summary
    assert "物流跟综页面" in plan.error and "物流跟踪页面" in plan.error
    assert "物流跟综页面" in job.report["failed_items"][0]["error"]
    assert not Sample.objects.exists() and not job.items.filter(key__startswith="batch:").exists()


def test_a_failed_batch_is_retried_from_the_same_staging(admin_user, media_root, settings, monkeypatch):
    settings.IMPORT_BATCH_SAMPLES = 2
    (media_root / "in").mkdir()
    (media_root / "in" / "m.jsonl").write_bytes(manifest([f"s-{i}" for i in range(6)]))
    original, broken = classification_import.ClassificationImport.save_batch, {"batch": 1}

    def flaky(self, k, outcome):
        if k == broken["batch"]:
            raise RuntimeError("disk full")
        return original(self, k, outcome)

    monkeypatch.setattr(classification_import.ClassificationImport, "save_batch", flaky)
    job = run_job_inline(job_create(kind=JobKind.CLASSIFICATION_IMPORT, enqueue=False, user=admin_user,
                                    params={"dataset": "scenes", "path": "in/m.jsonl", "create_classes": True}))
    assert job.status == JobStatus.DONE and job.items_failed == 1
    assert Sample.objects.count() == 4 and classification_import.staging_path(job).exists()

    broken["batch"] = None
    retry = job_retry_failed(job=job, user=admin_user)
    retry = run_job_inline(retry)
    assert retry.status == JobStatus.DONE and retry.items_failed == 0
    assert list(retry.items.values_list("key", flat=True)) == ["batch:000001"]
    assert Sample.objects.count() == 6 and Reasoning.objects.count() == 12
    assert retry.report["samples_imported"] == 6
    assert not classification_import.staging_path(retry).exists()
    assert_counters_match(Dataset.objects.get(name="scenes"))


def test_an_item_run_twice_changes_nothing(admin_user, media_root, settings):
    settings.IMPORT_BATCH_SAMPLES = 5
    (media_root / "m.jsonl").write_bytes(manifest([f"s-{i}" for i in range(5)]))
    job = run_job_inline(job_create(kind=JobKind.CLASSIFICATION_IMPORT, enqueue=False, user=admin_user,
                                    params={"dataset": "scenes", "path": "m.jsonl", "create_classes": True}))
    handler = classification_import.ClassificationImportHandler()
    job.params["staging"] = "again"  # a fresh staging file: read and plan again, then the batch
    for key in [*job.items.filter(key__startswith="read:").values_list("key", flat=True), "plan", "batch:000000"]:
        result = handler.prepare(job, key)
    assert result["saved"]["samples_created"] == 0 and result["saved"]["reasonings_created"] == 0
    assert Sample.objects.count() == 5 and Reasoning.objects.count() == 10
    classification_import.staging_path(job).unlink()
