"""The way back: `export_trainset --layout team` writes the team's folders, which read back through
the importer to the same samples and corrected outputs."""
import json
import shutil
import zipfile

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from pipelines.models import Export
from core.errors import ApplicationError
from review.exports import export_file_path, trainset_export
from review.importing import import_classification
from review.models import Cause, Dataset, Reasoning, Sample
from review.services import review_save
from review.team_layout import EXPORT_MARKER, write_team_layout
from tests.factories import CategoryFactory, DatasetFactory, ReasoningFactory, SampleFactory

from .team_folder import EXCHANGE, ORDER_FAILED, REFUND, REFUSED_ID, build_team_train, team_file_name

pytestmark = pytest.mark.django_db

TEAM_PROMPT = "你是电商客服场景识别专家。请判断图片属于哪个类别，推理不超过100字。\n类别：{category_names}"


def mode3_files(team):
    folders = {EXCHANGE: "换货", REFUND: "退款页面", ORDER_FAILED: "下单过程中出现异常"}
    return {name: f"reasonbyQwen72b_model3/{folder}/{team_file_name(name)}" for name, folder in folders.items()}


@pytest.fixture
def imported(tmp_path, admin_user):
    """The team's folder imported, then reviewed: one correction, one label error."""
    team = build_team_train(tmp_path / "in")
    prompt = tmp_path / "prompt_mode3.txt"
    prompt.write_text(TEAM_PROMPT, encoding="utf-8")
    report = import_classification(path=team.root, dataset_name="team", image_root=team.image_root, encoding="gbk",
                                   create_classes=True, prompt_file=prompt)
    assert report.problems == [] and report.prompt_recorded
    corrected = "图片为申请换货页面，有换货原因和提交申请按钮。\n类别：换货页面"
    review_save(sample=Sample.objects.get(external_id="图片1"), user=admin_user, cause=Cause.MODEL_WEAK,
                corrected_output=corrected, label_error=False, suggested_label=None, note="", version=0)
    review_save(sample=Sample.objects.get(external_id="a_b"), user=admin_user, cause=Cause.LABEL_WRONG,
                corrected_output="", label_error=True, suggested_label=None, note="其实是退货", version=0,
                suggestion_uncertain=True)
    return team, corrected


def read_array(path):
    with path.open(encoding="utf-8") as fh:  # as the team's scripts read it
        return json.load(fh)


def test_team_layout_writes_each_record_back_where_it_came_from(imported, tmp_path):
    team, corrected = imported
    out = tmp_path / "out"
    call_command("export_trainset", "--dataset", "team", "--layout", "team", "--output", str(out))
    files = mode3_files(team)
    for name, rel in files.items():
        source = read_array(team.root / rel)
        exported = read_array(out / rel)
        expected_ids = [r["id"] for r in source if r["id"] != "a_b"]  # the label error is left out
        assert [r["id"] for r in exported] == expected_ids, name
        for record in exported:
            original = next(r for r in source if r["id"] == record["id"])
            assert list(record) == list(original)  # the same keys, in the same order
            assert record["image"] == original["image"] == [team.image_paths[record["id"]]]
            assert record["output"] == (corrected if record["id"] == "图片1" else original["output"])
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == sorted(
        [*files.values(), "trainset_error.md", EXPORT_MARKER])
    errors = (out / "trainset_error.md").read_text(encoding="utf-8")
    assert "## 退款页面" in errors and "- a_b" in errors
    export = Export.objects.get(format="team")
    assert export.row_count == 7 and export.report["label_error_count"] == 1
    # The exports page offers the folder as a zip.
    with zipfile.ZipFile(export_file_path(export)) as archive:
        assert sorted(archive.namelist()) == sorted([*files.values(), "trainset_error.md"])
        assert json.loads(archive.read(files[EXCHANGE])) == read_array(out / files[EXCHANGE])


def test_the_team_layout_reads_back_to_the_same_samples_and_corrected_outputs(imported, tmp_path):
    team, corrected = imported
    out = tmp_path / "out"
    write_team_layout(dataset=Dataset.objects.get(name="team"), directory=out)
    shutil.copy(team.root / "train.json", out / "train.json")  # their train/ keeps its labels beside it
    report = import_classification(path=out, dataset_name="back", image_root=team.image_root, create_classes=True)
    assert report.problems == []
    original = Dataset.objects.get(name="team")
    expected = {
        s.external_id: (s.label.name, corrected if s.external_id == "图片1" else s.reasonings.get(mode=3).output)
        for s in original.samples.select_related("label") if s.external_id not in ("a_b", REFUSED_ID)
    }
    back = {
        r.sample.external_id: (r.sample.label.name, r.output)
        for r in Reasoning.objects.filter(sample__dataset__name="back", mode=3).select_related("sample__label")
    }
    assert len(expected) == 7 and back == expected
    # The images came back to the same bytes.
    for external_id in expected:
        a = Sample.objects.get(dataset=original, external_id=external_id)
        b = Sample.objects.get(dataset__name="back", external_id=external_id)
        assert a.image == b.image.replace(f"datasets/{b.dataset_id}/", f"datasets/{a.dataset_id}/")


def test_a_second_export_replaces_its_own_folder_but_never_a_foreign_one(imported, tmp_path, admin_user):
    team, _ = imported
    dataset = Dataset.objects.get(name="team")
    out = tmp_path / "out"
    write_team_layout(dataset=dataset, directory=out)
    # Every sample of 下单… becomes a label error: its file stays, empty (the scripts loop over classes).
    for sample in Sample.objects.filter(label__name=ORDER_FAILED):
        review_save(sample=sample, user=admin_user, cause=Cause.LABEL_WRONG, corrected_output="", label_error=True,
                    suggested_label=None, note="", version=0, suggestion_uncertain=True)
    write_team_layout(dataset=dataset, directory=out)
    assert read_array(out / mode3_files(team)[ORDER_FAILED]) == []
    assert not list(tmp_path.glob(".partial*"))  # no staging or old folder left behind
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me", encoding="utf-8")
    with pytest.raises(ApplicationError):
        write_team_layout(dataset=dataset, directory=foreign)
    assert [p.name for p in foreign.iterdir()] == ["notes.txt"]
    with pytest.raises(CommandError):
        call_command("export_trainset", "--dataset", "team", "--layout", "team", "--output", str(foreign))


def test_a_mode3_folder_imported_on_its_own_exports_back_under_the_mode3_folder(tmp_path):
    team = build_team_train(tmp_path / "in", gbk_class=None)
    import_classification(path=team.root / "reasonbyQwen72b_model3", dataset_name="m3", image_root=team.image_root,
                          create_classes=True)
    _, written = write_team_layout(dataset=Dataset.objects.get(name="m3"), directory=tmp_path / "out")
    assert sorted(written) == sorted([*mode3_files(team).values(), "trainset_error.md"])


def test_samples_made_in_datafix_go_to_their_class_file_in_the_batch_script_naming(tmp_path):
    dataset = DatasetFactory(name="made-here")
    category = CategoryFactory(dataset=dataset, name="物流异常页面 (丢件)")
    sample = SampleFactory(dataset=dataset, label=category, external_id="m-1", image="datasets/9/m-1.png")
    ReasoningFactory(sample=sample, mode=3, output="物流显示丢件。\n类别：物流异常页面 (丢件)",
                     predicted_category=category, is_correct=True, length=10)
    _, written = write_team_layout(dataset=dataset, directory=tmp_path / "out")
    rel = "reasonbyQwen72b_model3/物流异常页面 (丢件)/save_train_物流异常页面__丢件_.json"
    assert rel in written
    assert read_array(tmp_path / "out" / rel) == [
        {"id": "m-1", "image": ["datasets/9/m-1.png"], "output": "物流显示丢件。\n类别：物流异常页面 (丢件)"}]


def test_the_teams_mode3_prompt_is_the_exported_instruction(imported, tmp_path):
    dataset = Dataset.objects.get(name="team")
    assert dataset.mode3_prompt == TEAM_PROMPT
    trainset_export(dataset=dataset, fmt="alpaca", path=tmp_path / "train.json")
    rows = read_array(tmp_path / "train.json")
    names = "\n".join(f"- {c.name}" for c in dataset.categories.all())
    assert {row["instruction"] for row in rows} == {"<image>" + TEAM_PROMPT.replace("{category_names}", names)}


def test_export_trainset_needs_a_format_for_a_file(imported, tmp_path):
    with pytest.raises(CommandError):
        call_command("export_trainset", "--dataset", "team", "--output", str(tmp_path / "x.json"))
