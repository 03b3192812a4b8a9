"""import_classification: manifest and mode folders, malformed records, escapes, corrupt images."""
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from PIL import Image

from review.importing import import_classification
from review.models import Category, Reasoning, Sample

pytestmark = pytest.mark.django_db


def png(path, color="blue"):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (16, 16), color).save(path, format="PNG")


def write_jsonl(path, lines):
    path.write_text("\n".join(line if isinstance(line, str) else json.dumps(line, ensure_ascii=False) for line in lines) + "\n",
                    encoding="utf-8")


def record(i, label="换货", **extra):
    return {"id": f"id-{i}", "image": f"images/{i}.png", "label": label,
            "outputs": {"1": f"自由推理{i}\n类别：换货", "2": f"分析{i}\n类别：{label}", "3": f"简短{i}\n类别：退货退款"},
            "model": "qwen-vl-72b", **extra}


@pytest.fixture
def manifest_root(tmp_path):
    root = tmp_path / "import"
    for i in range(3):
        png(root / "images" / f"{i}.png")
    (root / "categories.json").write_text(json.dumps({"换货": "用户申请换货", "退货退款": "退款页面"}, ensure_ascii=False),
                                          encoding="utf-8")
    return root


def test_manifest_imports_samples_reasoning_and_images(manifest_root, media_root):
    write_jsonl(manifest_root / "manifest.jsonl", [record(i) for i in range(3)])
    report = import_classification(path=manifest_root / "manifest.jsonl", dataset_name="scenes")
    assert report.problems == [] and report.samples_imported == 3
    sample = Sample.objects.get(external_id="id-1")
    assert sample.label.name == "换货" and sample.label.definition == "用户申请换货"
    assert (media_root / sample.image).is_file() and sample.image.startswith(f"datasets/{sample.dataset_id}/")
    mode2, mode3 = sample.reasonings.get(mode=2), sample.reasonings.get(mode=3)
    assert (mode2.predicted_name, mode2.is_correct, mode2.model_name) == ("换货", True, "qwen-vl-72b")
    assert (mode3.predicted_name, mode3.is_correct, mode3.length) == ("退货退款", False, len("简短1类别：退货退款"))


def test_reimport_updates_in_place_and_never_duplicates(manifest_root):
    write_jsonl(manifest_root / "manifest.jsonl", [record(i) for i in range(3)])
    import_classification(path=manifest_root, dataset_name="scenes")
    changed = record(1)
    changed["outputs"]["3"] = "改过的\n类别：换货"
    write_jsonl(manifest_root / "manifest.jsonl", [record(0), changed, record(2)])
    report = import_classification(path=manifest_root, dataset_name="scenes")
    assert (report.saved.samples_created, report.saved.reasonings_created, report.saved.reasonings_updated) == (0, 0, 1)
    assert Sample.objects.count() == 3 and Reasoning.objects.count() == 9
    assert Reasoning.objects.get(sample__external_id="id-1", mode=3).is_correct is True


def test_malformed_lines_are_reported_with_line_numbers_and_the_rest_imported(manifest_root):
    write_jsonl(manifest_root / "manifest.jsonl", [
        record(0),
        "{not json",
        {"label": "换货"},
        {"id": "x", "label": "换货", "outputs": {"2": 5}},
        {"id": "y", "label": "换货", "outputs": {"7": "?"}},
        record(2),
    ])
    report = import_classification(path=manifest_root / "manifest.jsonl", dataset_name="scenes")
    locations = [p.location for p in report.problems]
    assert locations == ["manifest.jsonl:2", "manifest.jsonl:3", "manifest.jsonl:4", "manifest.jsonl:5"]
    assert set(Sample.objects.values_list("external_id", flat=True)) == {"id-0", "id-2"}


def test_image_paths_may_not_escape_the_import_root(manifest_root, tmp_path):
    png(tmp_path / "outside.png")
    write_jsonl(manifest_root / "manifest.jsonl", [
        record(0, image="../outside.png"), record(1, image="/etc/passwd"), record(2, image="%2e%2e/outside.png"),
    ])
    report = import_classification(path=manifest_root / "manifest.jsonl", dataset_name="scenes")
    escapes, absolute = report.problems[:2], report.problems[2]
    assert all("路径超出" in p.message for p in escapes) and "--image-root" in absolute.message
    assert not Sample.objects.exists()
    # With --image-root, an absolute path is looked up inside that folder only.
    report = import_classification(path=manifest_root / "manifest.jsonl", dataset_name="scenes",
                                   image_root=manifest_root / "images")
    assert [p.location for p in report.problems] == ["manifest.jsonl:1", "manifest.jsonl:2", "manifest.jsonl:3"]
    assert not Sample.objects.exists()


def test_corrupt_missing_and_oversized_images_are_reported_not_crashed_on(manifest_root, settings):
    (manifest_root / "images" / "1.png").write_bytes(b"\x89PNG broken")
    write_jsonl(manifest_root / "manifest.jsonl", [record(0), record(1), record(2, image="images/none.png")])
    report = import_classification(path=manifest_root / "manifest.jsonl", dataset_name="scenes")
    assert [p.location for p in report.problems] == ["manifest.jsonl:2", "manifest.jsonl:3"]
    assert list(Sample.objects.values_list("external_id", flat=True)) == ["id-0"]
    settings.IMAGE_MAX_BYTES = 10
    report = import_classification(path=manifest_root / "manifest.jsonl", dataset_name="scenes")
    assert any("过大" in p.message for p in report.problems)


def test_team_mode_folders_with_class_dirs_and_class_files(tmp_path):
    root = tmp_path / "train"
    png(root / "imgs" / "a.png")
    png(root / "imgs" / "b.png")
    (root / "categories.json").write_text(json.dumps(
        [{"name": "商品分类选项（颜色规格）", "definition": "图片中显示商品颜色、规格选项"}, {"name": "换货", "definition": ""}],
        ensure_ascii=False), encoding="utf-8")
    for mode in (1, 2, 3):
        folder = root / f"reasonbyQwen72b_model{mode}"
        # Per-record files in a class folder whose name dropped the parenthesised part …
        (folder / "商品分类选项").mkdir(parents=True)
        (folder / "商品分类选项" / "a.json").write_text(json.dumps(
            {"id": "a", "image": "imgs/a.png", "output": f"模式{mode}\n类别：商品分类选项"}, ensure_ascii=False), encoding="utf-8")
        # … and one JSON file per class holding a list of records.
        (folder / "换货.json").write_text(json.dumps(
            [{"id": "b", "image": "imgs/b.png", "label": "换货", "output": f"模式{mode}\n类别：换货"}, {"oops": True}],
            ensure_ascii=False), encoding="utf-8")
    report = import_classification(path=root, dataset_name="team")
    assert [p.location for p in report.problems] == [
        "reasonbyQwen72b_model1/换货.json#1", "reasonbyQwen72b_model2/换货.json#1", "reasonbyQwen72b_model3/换货.json#1"]
    assert Category.objects.filter(dataset__name="team").count() == 2
    a = Sample.objects.get(external_id="a")
    assert a.label.name == "商品分类选项（颜色规格）"
    assert sorted(a.reasonings.values_list("mode", "is_correct")) == [(1, True), (2, True), (3, True)]


def test_command_prints_a_summary_and_fails_clearly_on_an_empty_folder(manifest_root, tmp_path, capsys):
    write_jsonl(manifest_root / "manifest.jsonl", [record(0), "[1,2]"])
    call_command("import_classification", str(manifest_root / "manifest.jsonl"), "--dataset", "scenes")
    out = capsys.readouterr().out
    assert "导入样本 1 个" in out and "manifest.jsonl:2" in out
    (tmp_path / "empty").mkdir()
    with pytest.raises(CommandError):
        call_command("import_classification", str(tmp_path / "empty"), "--dataset", "scenes")


def test_large_imports_are_saved_in_chunks_without_losing_records(manifest_root, monkeypatch):
    from review.services import records

    monkeypatch.setattr(records, "IMPORT_CHUNK", 2)
    write_jsonl(manifest_root / "manifest.jsonl", [record(i) | {"image": "images/0.png"} for i in range(5)])
    report = import_classification(path=manifest_root, dataset_name="scenes")
    assert (report.saved.samples_created, report.saved.reasonings_created) == (5, 15)
    report = import_classification(path=manifest_root, dataset_name="scenes")
    assert (report.saved.samples_created, report.saved.samples_updated, report.saved.reasonings_updated) == (0, 0, 0)
