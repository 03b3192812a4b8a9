"""The corrected mode-3 training set, read back and compared; trainset_error.md; the command."""
import json

import pytest
from django.core.management import call_command

from pipelines.jobs import prompts
from pipelines.datasets import formats
from pipelines.models import PromptTemplate
from pipelines.models import Export
from core.errors import ApplicationError
from review.exports import (
    dataset_analysis_markdown, default_mode3_prompt, trainset_error_markdown, trainset_export,
    trainset_records,
)

EXPECTED_IDS = ["a1", "a2", "a3", "b4"]
EXPECTED_RESPONSES = {
    "a1": "图片显示颜色和规格选项。类别：商品分类选项",
    "a2": "规格选项页面。类别：商品分类选项",
    "a3": "图片是颜色规格选项。类别：商品分类选项",  # the reviewer's correction
    "b4": "用户申请换货。类别：换货",
}


def _prompt(scene):
    return "<image>" + prompts.render_prompt(default_mode3_prompt(), categories=scene.dataset.categories.all())


def test_records_keep_correct_short_outputs_and_corrections(scene):
    records = list(trainset_records(dataset=scene.dataset))
    assert [r["id"] for r in records] == EXPECTED_IDS
    assert {r["id"]: r["response"] for r in records} == EXPECTED_RESPONSES
    assert {r["id"]: r["source"] for r in records} == {"a1": "kept", "a2": "kept", "a3": "corrected", "b4": "kept"}
    assert records[0]["images"] == ["images/a1.png"]
    assert records[0]["prompt"] == _prompt(scene)
    assert "- 商品分类选项：图片中显示商品颜色、规格选项" in records[0]["prompt"]


def test_revised_definition_goes_into_the_prompt(scene):
    scene.a.revised_definition = "只含颜色/尺码选择弹窗"
    scene.a.save()
    record = next(iter(trainset_records(dataset=scene.dataset)))
    assert "- 商品分类选项：只含颜色/尺码选择弹窗" in record["prompt"]


def test_prompt_is_the_mode3_template_the_reasoning_was_made_with(scene):
    old = PromptTemplate.objects.create(kind=PromptTemplate.Kind.CLASSIFICATION_MODE3, version=1, text="旧模板 类别：")
    PromptTemplate.objects.create(kind=PromptTemplate.Kind.CLASSIFICATION_MODE3, version=2, text="新模板 {category_names}")
    scene.samples["a1"].reasonings.filter(mode=3).update(prompt_template=old)
    records = {r["id"]: r for r in trainset_records(dataset=scene.dataset)}
    assert records["a1"]["prompt"] == "<image>旧模板 类别："
    assert records["a2"]["prompt"] == "<image>新模板 - 商品分类选项\n- 换货\n- 退货退款"


def test_alpaca_export_reads_back_and_records_the_export(scene, tmp_path):
    out = tmp_path / "train.json"
    export = trainset_export(dataset=scene.dataset, fmt="alpaca", path=out)
    rows = json.loads(out.read_text(encoding="utf-8"))
    assert [formats.validate_row("alpaca", row) for row in rows] == [[]] * 4
    assert set(rows[0]) == {"instruction", "input", "output", "images"}
    assert [r["output"] for r in rows] == [EXPECTED_RESPONSES[i] for i in EXPECTED_IDS]
    assert rows[0]["instruction"].startswith("<image>") and rows[0]["images"] == ["images/a1.png"]
    assert "商品分类选项" in out.read_text(encoding="utf-8")  # CJK not escaped
    assert export.row_count == 4 and export.format == "alpaca" and export.kind == "classification_trainset"
    assert export.report["kept"] == 3 and export.report["corrected"] == 1
    assert export.report["pending"] == 4
    assert export.report["pending_by_reason"] == {"missing": 1, "too_long": 1, "unparsed": 1, "wrong": 1}
    assert export.report["label_errors"] == {"商品分类选项": [{"id": "a4", "suggested": "换货"}]}
    assert export.report["dataset_info"]["train"]["columns"]["images"] == "images"


def test_sharegpt_export_is_multimodal_with_one_image_token_per_image(scene, tmp_path):
    out = tmp_path / "train.json"
    trainset_export(dataset=scene.dataset, fmt="sharegpt", path=out)
    rows = json.loads(out.read_text(encoding="utf-8"))
    assert [formats.validate_row("sharegpt", row) for row in rows] == [[]] * 4
    assert rows[2]["conversations"] == [
        {"from": "human", "value": _prompt(scene)},
        {"from": "gpt", "value": EXPECTED_RESPONSES["a3"]},
    ]
    assert rows[2]["images"] == ["images/a3.png"]
    assert [r["prompt"] for r in formats.read_records(out, "sharegpt")] == [_prompt(scene)] * 4


def test_jsonl_export_is_one_record_per_line(scene, tmp_path):
    out = tmp_path / "train.jsonl"
    trainset_export(dataset=scene.dataset, fmt="jsonl", path=out)
    lines = out.read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["id"] for r in records] == EXPECTED_IDS
    assert list(records[0]) == ["id", "source", "prompt", "response", "system", "images"]


@pytest.mark.parametrize("fmt", ["alpaca", "sharegpt", "jsonl"])
def test_exporting_unchanged_data_twice_is_byte_identical(scene, tmp_path, fmt):
    first, second = tmp_path / f"1.{fmt}", tmp_path / f"2.{fmt}"
    trainset_export(dataset=scene.dataset, fmt=fmt, path=first)
    trainset_export(dataset=scene.dataset, fmt=fmt, path=second)
    assert first.read_bytes() == second.read_bytes()


def test_unknown_format_and_non_staff_are_refused(scene, tmp_path):
    with pytest.raises(ApplicationError):
        trainset_export(dataset=scene.dataset, fmt="csv", path=tmp_path / "x")
    with pytest.raises(ApplicationError) as exc:
        trainset_export(dataset=scene.dataset, fmt="alpaca", user=scene.reviewer)
    assert exc.value.code == "forbidden"
    assert not Export.objects.exists()


def test_trainset_error_markdown_groups_label_errors_by_class(scene):
    text = "".join(trainset_error_markdown(dataset=scene.dataset))
    assert "## 商品分类选项\n\n- a4（建议类别：换货）\n" in text
    assert "## 换货" not in text


def test_analysis_markdown_matches_the_team_layout(scene):
    text = "".join(dataset_analysis_markdown(dataset=scene.dataset))
    assert "## 换货\n\n定义：用户申请更换商品\n\n训练集中共有4个样本" in text
    assert 'id: b3，推理结果："商品分类选项"，出错原因：（未填写）（属于(1)）' in text
    assert 'id: b2，推理结果："无法解析"，出错原因：（未填写）（属于(3)）' in text
    assert "模式2正确→模式3错误（1）：a3" in text
    assert "| 模式2 给出类别定义 | 4 | 2 | 2 | 0 | 50.0% |" in text


def test_export_trainset_command_writes_file_report_and_errors(scene, tmp_path, capsys):
    out, errors = tmp_path / "t.json", tmp_path / "trainset_error.md"
    call_command("export_trainset", dataset="scenes", fmt="sharegpt", output=str(out), errors_output=str(errors),
                 user="admin")
    assert len(json.loads(out.read_text(encoding="utf-8"))) == 4
    assert "- a4（建议类别：换货）" in errors.read_text(encoding="utf-8")
    export = Export.objects.get()
    assert export.created_by == scene.admin and export.row_count == 4
    assert "待修正（未导出）：4" in capsys.readouterr().out


def test_export_trainset_command_rejects_unknown_dataset(scene, tmp_path):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="不存在"):
        call_command("export_trainset", dataset="nope", fmt="alpaca", output=str(tmp_path / "x.json"))
