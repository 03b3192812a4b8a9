"""One export path: every kind of export is a folder of its own under EXPORT_ROOT, recorded with
its files, dataset_info.json, counts and who made it, downloaded through one view with one rule."""
import json
import os
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.urls import reverse

from pipelines.datasets import formats
from pipelines.dpo.services import pairs_export
from pipelines.models import Export, PreferencePair, ReviewDecision

pytestmark = pytest.mark.django_db


def _download(client, export, name):
    return client.get(reverse("exports:file", args=[export.pk, name]))


def _data_name(export):
    return next(entry["file_name"] for entry in export.dataset_info.values())


def test_a_second_dpo_export_never_replaces_the_first_ones_file(staff_client, dpo_job, admin_user):
    first = pairs_export(job=dpo_job, fmt="trl_preference", user=admin_user, include_flagged=True)
    first_rows = list(formats.iter_rows(Path(settings.EXPORT_ROOT) / first.path / _data_name(first)))
    PreferencePair.objects.filter(job=dpo_job, key="feedback:1").update(decision=ReviewDecision.REJECTED)
    second = pairs_export(job=dpo_job, fmt="trl_preference", user=admin_user, include_flagged=True)
    assert second.row_count == first.row_count - 1
    assert first.path != second.path
    body = b"".join(_download(staff_client, first, _data_name(first)).streaming_content)
    assert [json.loads(line) for line in body.decode().splitlines()] == first_rows
    assert len(first_rows) == first.row_count


def test_every_export_kind_records_a_folder_relative_to_export_root(scene, dpo_job, admin_user, tmp_path):
    from review.exports import trainset_export

    exports = [
        trainset_export(dataset=scene.dataset, fmt="alpaca", user=scene.admin),
        pairs_export(job=dpo_job, fmt="alpaca_preference", user=admin_user, include_flagged=True),
    ]
    root = Path(settings.EXPORT_ROOT)
    for export in exports:
        assert not Path(export.path).is_absolute(), export.kind
        folder = root / export.path
        assert folder.is_dir(), export.kind
        assert set(export.files) == {p.name for p in folder.iterdir()}, export.kind
        on_disk = json.loads((folder / "dataset_info.json").read_text(encoding="utf-8"))
        assert on_disk == export.dataset_info and export.dataset_info, export.kind
        assert export.created_by is not None and export.row_count > 0


def test_one_permission_rule_for_every_download(client, staff_client, scene, dpo_job, admin_user, reviewer):
    """A reviewer gets the same answer for every kind of export made by staff (it used to be 200 for
    builder and generation files, 403 for training-set and DPO files)."""
    from review.exports import trainset_export

    made = [
        trainset_export(dataset=scene.dataset, fmt="sharegpt", user=scene.admin),
        pairs_export(job=dpo_job, fmt="sharegpt_preference", user=admin_user, include_flagged=True),
    ]
    for export in made:
        assert _download(staff_client, export, "dataset_info.json").status_code == 200
    client.force_login(reviewer)
    for export in made:
        for name in export.files:
            assert _download(client, export, name).status_code == 404, (export.kind, name)


def test_the_download_view_serves_only_the_exports_own_files(staff_client, scene):
    from review.exports import trainset_export

    export = trainset_export(dataset=scene.dataset, fmt="alpaca", user=scene.admin)
    secret = Path(settings.EXPORT_ROOT) / "secret.json"
    secret.write_text("{}")
    for name in ["..%2Fsecret.json", "secret.json", "nope.json", ""]:
        if name:
            assert _download(staff_client, export, name).status_code == 404, name
    response = _download(staff_client, export, _data_name(export))
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith("attachment")


def test_exports_follow_the_umask(scene):
    from review.exports import trainset_export

    old = os.umask(0o022)
    try:
        export = trainset_export(dataset=scene.dataset, fmt="alpaca", user=scene.admin)
    finally:
        os.umask(old)
    folder = Path(settings.EXPORT_ROOT) / export.path
    assert folder.stat().st_mode & 0o777 == 0o755
    assert {(folder / n).stat().st_mode & 0o777 for n in export.files} == {0o644}


def test_export_trainset_writes_dataset_info_with_a_name_per_format(scene, tmp_path):
    out = tmp_path / "data"
    call_command("export_trainset", dataset="scenes", fmt="alpaca", output=str(out / "train_alpaca.json"))
    call_command("export_trainset", dataset="scenes", fmt="sharegpt", output=str(out / "train_sharegpt.json"))
    info = json.loads((out / "dataset_info.json").read_text(encoding="utf-8"))
    by_file = {entry["file_name"]: name for name, entry in info.items()}
    assert set(by_file) == {"train_alpaca.json", "train_sharegpt.json"}
    assert len(set(by_file.values())) == 2
    assert info[by_file["train_sharegpt.json"]]["formatting"] == "sharegpt"
    assert Export.objects.count() == 2


def test_a_trainset_with_no_eligible_rows_is_an_error_with_no_file_or_entry(scene, tmp_path):
    from django.core.management.base import CommandError

    from review.models import Review, Sample

    Sample.objects.filter(dataset=scene.dataset).update(image="")
    for sample in Sample.objects.filter(dataset=scene.dataset):
        Review.objects.update_or_create(sample=sample, defaults={"label_error": True})
    out = tmp_path / "data"
    with pytest.raises(CommandError, match="没有"):
        call_command("export_trainset", dataset="scenes", fmt="alpaca", output=str(out / "train.json"))
    assert not (out / "train.json").exists() and not (out / "dataset_info.json").exists()
    assert not Export.objects.exists()
