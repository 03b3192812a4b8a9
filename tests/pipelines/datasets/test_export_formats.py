"""Nothing lost on the way to the trainer: TRL's vision formats, the seed's `reject` layout, literal
<image> in text rows, dedup on the whole prompt, empty outputs, and the export_pairs command."""
import json
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError

from pipelines.datasets import formats
from pipelines.datasets.builder import build_dataset
from pipelines.datasets.exports import data_files, export_path
from pipelines.datasets.options import BuildError, BuildOptions, Source
from pipelines.dpo.services import pairs_export
from pipelines.models import Export, PreferencePair
from core.errors import ApplicationError

IMAGE_PAIR = {"id": "p1", "prompt": "<image>截图里是什么场景？", "chosen": "用户在选择商品规格。",
              "rejected": "这篇文章讨论人工智能。", "images": ["shots/1.png"]}


def _rows(export):
    return list(formats.iter_rows(export_path(export, data_files(export)[0])))


# --------------------------------------------------------------------------- TRL vision preference

def test_trl_conversational_preference_keeps_the_image_as_image_content():
    row = formats.to_row("trl_preference_conversational", IMAGE_PAIR)
    assert row["images"] == ["shots/1.png"]
    assert row["prompt"] == [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "截图里是什么场景？"}]}]
    assert row["chosen"] == [{"role": "assistant", "content": [{"type": "text", "text": "用户在选择商品规格。"}]}]
    assert "<image>" not in json.dumps(row, ensure_ascii=False)
    assert formats.validate_row("trl_preference_conversational", row) == []


def test_trl_standard_preference_refuses_image_rows_instead_of_dropping_the_image():
    with pytest.raises(formats.FormatError, match="图片"):
        formats.to_row("trl_preference", IMAGE_PAIR)


@pytest.mark.django_db
def test_dpo_export_of_image_pairs_in_a_text_only_format_is_refused_with_a_message(dpo_job, admin_user):
    PreferencePair.objects.filter(job=dpo_job, key="feedback:1").update(
        prompt="<image>截图里是什么？", images=["shots/1.png"])
    with pytest.raises(ApplicationError, match="图片"):
        pairs_export(job=dpo_job, fmt="trl_preference", user=admin_user, include_flagged=True)
    assert not Export.objects.exists()
    export = pairs_export(job=dpo_job, fmt="trl_preference_conversational", user=admin_user, include_flagged=True)
    rows = _rows(export)
    with_image = [r for r in rows if r.get("images")]
    assert len(rows) == export.row_count and len(with_image) == 1
    assert with_image[0]["prompt"][0]["content"][0] == {"type": "image"}


# --------------------------------------------------------------------------- the seed's layout + CLI

@pytest.mark.django_db
def test_export_pairs_command_writes_the_seeds_reject_layout(dpo_job, tmp_path, capsys):
    out = tmp_path / "dpo" / "pairs.jsonl"
    call_command("export_pairs", job=dpo_job.pk, fmt="prompt_chosen_reject", output=str(out), include_flagged=True)
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert rows and all(set(r) == {"prompt", "chosen", "reject"} for r in rows)
    assert len(rows) == PreferencePair.objects.filter(job=dpo_job).count()
    export = Export.objects.get(kind="dpo")
    assert export.format == "prompt_chosen_reject" and export.row_count == len(rows)
    assert (Path(settings.EXPORT_ROOT) / export.path / out.name).read_bytes() == out.read_bytes()


@pytest.mark.django_db
def test_export_pairs_command_writes_trl_and_llamafactory_formats_with_dataset_info(dpo_job, tmp_path):
    call_command("export_pairs", job=dpo_job.pk, fmt="alpaca_preference", output=str(tmp_path / "d" / "a.json"),
                 include_flagged=True)
    call_command("export_pairs", job=dpo_job.pk, fmt="trl_preference", output=str(tmp_path / "d" / "t.jsonl"),
                 include_flagged=True)
    info = json.loads((tmp_path / "d" / "dataset_info.json").read_text(encoding="utf-8"))
    assert {e["file_name"] for e in info.values()} >= {"a.json"}
    assert [json.loads(x) for x in (tmp_path / "d" / "t.jsonl").read_text().splitlines()][0].keys() == {
        "prompt", "chosen", "rejected"}


@pytest.mark.django_db
def test_export_pairs_command_with_nothing_to_export_exits_non_zero(dpo_job, tmp_path):
    PreferencePair.objects.filter(job=dpo_job).update(issues=["off_topic"])
    with pytest.raises(CommandError, match="没有"):
        call_command("export_pairs", job=dpo_job.pk, fmt="trl_preference", output=str(tmp_path / "t.jsonl"))
    assert not (tmp_path / "t.jsonl").exists() and not (tmp_path / "dataset_info.json").exists()


# --------------------------------------------------------------------------- literal <image> in text rows

def test_a_text_row_with_a_literal_image_tag_is_reported_not_written():
    record = {"id": "html", "prompt": "HTML 里 <image> 标签和 <img> 有什么区别？", "response": "没有 <image> 标签。"}
    for fmt in ("alpaca", "sharegpt", "openai"):
        errors = formats.validate_row(fmt, formats.to_row(fmt, record))
        assert any("<image>" in e for e in errors), fmt
    result = build_dataset([Source("s", [record, {"id": "ok", "prompt": "q", "response": "a"}])],
                           BuildOptions(format="alpaca", shuffle=False))
    assert result.total == 1
    assert result.report["invalid_examples"][0]["id"] == "html"


def test_trl_formats_keep_a_literal_image_tag_in_text():
    record = {"id": "html", "prompt": "HTML 里 <image> 标签？", "response": "没有。"}
    assert formats.validate_row("trl_prompt_completion", formats.to_row("trl_prompt_completion", record)) == []
    assert formats.validate_row("trl_messages", formats.to_row("trl_messages", record)) == []


# --------------------------------------------------------------------------- dedup on the whole prompt

def test_exact_dedup_keeps_records_that_differ_only_in_input():
    records = [{"id": "1", "prompt": "翻译成英文", "input": "你好", "response": "Hello"},
               {"id": "2", "prompt": "翻译成英文", "input": "谢谢", "response": "Thanks"},
               {"id": "3", "prompt": "翻译成英文", "input": "你好", "response": "Hi"}]
    result = build_dataset([Source("s", records)], BuildOptions(shuffle=False))
    assert result.total == 2
    only_instruction = build_dataset([Source("s", records)], BuildOptions(shuffle=False, dedup_field="instruction"))
    assert only_instruction.total == 1
    # No input and an empty one are the same prompt; a prompt alone is no duplicate of one with input.
    alone = [{"id": "4", "prompt": "翻译成英文", "response": "Translate"},
             {"id": "5", "prompt": "翻译成英文", "input": "", "response": "Translate it"},
             {"id": "6", "prompt": "翻译成英文", "input": None, "response": "Translate this"}]
    result = build_dataset([Source("s", records + alone)], BuildOptions(shuffle=False))
    assert [row["output"] for row in result.preview] == ["Hello", "Thanks", "Translate"]


# --------------------------------------------------------------------------- empty outputs

def test_a_split_with_no_rows_is_an_error_and_writes_no_dataset_info(tmp_path):
    records = [{"id": "1", "prompt": "q", "response": "a"}]
    with pytest.raises(BuildError, match="没有"):
        build_dataset([Source("s", records)], BuildOptions(split_ratio=(0.8, 0.1, 0.1)), output=tmp_path / "o" / "d.json")
    assert not (tmp_path / "o").exists() or list((tmp_path / "o").iterdir()) == []


@pytest.mark.django_db
def test_extract_from_logs_with_nothing_left_exits_non_zero_without_dataset_info(tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "a.jsonl").write_text(json.dumps({"success": False, "prompt": "p", "response": {"answer": "a"}}) + "\n")
    with pytest.raises(CommandError, match="没有"):
        call_command("extract_from_logs", log_dir=str(logs), output=str(tmp_path / "out" / "d.json"))
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []
    assert not Export.objects.exists()


# --------------------------------------------------------------------------- training set for TRL

@pytest.mark.django_db
def test_trainset_trl_messages_carries_image_content_and_an_images_column(scene, tmp_path):
    from review.exports import trainset_export

    export = trainset_export(dataset=scene.dataset, fmt="trl_messages", user=scene.admin)
    rows = _rows(export)
    assert len(rows) == export.row_count == 4
    first = rows[0]
    assert set(first) == {"messages", "images"} and first["images"] == ["images/a1.png"]
    user, assistant = first["messages"]
    assert user["role"] == "user" and user["content"][0] == {"type": "image"}
    assert user["content"][1]["type"] == "text" and "<image>" not in user["content"][1]["text"]
    assert assistant == {"role": "assistant", "content": [{"type": "text", "text": "图片显示颜色和规格选项。类别：商品分类选项"}]}


@pytest.mark.django_db
def test_trainset_trl_prompt_completion_is_text_for_text_models(scene):
    from review.exports import trainset_export

    export = trainset_export(dataset=scene.dataset, fmt="trl_prompt_completion", user=scene.admin)
    rows = _rows(export)
    assert len(rows) == 4 and set(rows[0]) == {"prompt", "completion"}
    assert "<image>" not in rows[0]["prompt"]
    assert export.report["images_left_out"] == 4
