"""A record the format cannot hold takes no part in dedup or near-dup: when it comes first, the valid
record with the same prompt after it is written (not counted as its duplicate), and the invalid one
is reported with its location. Both where rows are made at spool time and where they are made at
write time (the columns grew after the record was spooled), and from a log folder (rows spooled
without their record)."""
import json

import pytest

from pipelines.datasets import formats
from pipelines.datasets.builder import build_dataset
from pipelines.datasets.logs import LogReader
from pipelines.datasets.options import BuildOptions, Source
from tests.pipelines.datasets.source_files import log_line

NEAR_DUP_PROMPT = ("请根据以下章节内容提取三级大纲，要求每个标题不超过二十个字：第一章 春天来了，万物复苏，"
                   "小草从地里探出头来，河水解冻，燕子从南方飞回来。")


def _answer_field(fmt):
    return "chosen" if formats.get_format(fmt).kind == "preference" else "response"


def _good(fmt, i, prompt=None):
    record = {"id": f"g{i}", "prompt": prompt or f"第{i}个问题：介绍长城的第{i}段", "input": ""}
    if formats.get_format(fmt).kind == "preference":
        record.update(chosen=f"好的回答{i}", rejected=f"差的回答{i}")
    else:
        record["response"] = f"回答{i}：长城很长。"
    if fmt == "sharegpt_multimodal":  # its rows need an image
        record.update(prompt=formats.IMAGE_TOKEN + record["prompt"], images=[f"img/{i}.jpg"])
    return record


def _invalid(record, fmt, kind):
    """`record` broken the ways validation drops a record (tests/…/test_odd_records.py)."""
    bad = {**record, "id": "calls.jsonl:1"}
    answer = _answer_field(fmt)
    if kind == "not-text":
        bad[answer] = 5
    elif kind == "missing":
        del bad[answer]
    elif kind == "surrogate":
        bad[answer] += "\udc80"
    elif kind == "images":  # one image more than <image> tokens (or a format that cannot carry images)
        bad["images"] = [*bad.get("images", []), "extra.jpg"]
    return bad


def _grown_columns(fmt, i):
    """A valid record with an optional column the others lack: spooled last, it makes the rows of
    every record before it at write time (the fallback path); None if the format has no column."""
    columns = formats.get_format(fmt).optional_columns
    record = _good(fmt, i, prompt=f"最后一个问题{i}")
    if "system" in columns:
        return {**record, "system": "你是助手。"}
    if "images" in columns:
        return {**record, "prompt": formats.IMAGE_TOKEN + record["prompt"], "images": ["last.jpg"]}
    return None


def _written_prompts(result, fmt):
    rows = [r for path in result.files.values() for r in formats.read_records(path, fmt)]
    return sorted(r["prompt"].replace(formats.IMAGE_TOKEN, "") for r in rows)


def _by_step(result):
    return {s["step"]: s for s in result.report["steps"]}


def _assert_consistent(result):
    """Each step's input is the previous step's output, and dropped = in - kept."""
    steps = result.report["steps"]
    for before, after in zip(steps, steps[1:]):
        assert after["in"] == before["kept"], (before["step"], after["step"])
    for step in steps:
        assert step["dropped"] == step["in"] - step["kept"] == sum(step["reasons"].values()), step["step"]


KINDS = ["not-text", "missing", "surrogate", "images"]
PATHS = ["spool", "write-time"]


def _format_paths(names):
    """(format, path): the write-time path only for formats with an optional column to grow (the
    others' rows are always made at spool time)."""
    return [(fmt, path) for fmt in names for path in PATHS
            if path != "write-time" or _grown_columns(fmt, 9) is not None]


@pytest.mark.parametrize(("fmt", "path"), _format_paths(formats.FORMATS))
@pytest.mark.parametrize("kind", KINDS)
def test_an_invalid_record_first_does_not_make_its_valid_duplicate_a_duplicate(tmp_path, fmt, kind, path):
    good = [_good(fmt, i) for i in range(3)]
    records = [_invalid(good[1], fmt, kind), *good]
    if path == "write-time":
        records.append(_grown_columns(fmt, 9))
    out = tmp_path / f"{fmt}.jsonl"
    result = build_dataset([Source("logs", records)], BuildOptions(format=fmt, shuffle=False), output=out)

    expected = sorted(r["prompt"].replace(formats.IMAGE_TOKEN, "") for r in records[1:])
    assert _written_prompts(result, fmt) == expected
    assert result.total == len(records) - 1
    assert [e["id"] for e in result.report["invalid_examples"]] == ["calls.jsonl:1"]
    steps = _by_step(result)
    assert (steps["dedup"]["dropped"], steps["dedup"]["reasons"]) == (0, {})
    assert steps["validate"]["dropped"] == 1
    _assert_consistent(result)
    # The report file says the same.
    report = json.loads(out.with_name(f"{fmt}_report.json").read_text(encoding="utf-8"))
    assert [e["id"] for e in report["invalid_examples"]] == ["calls.jsonl:1"]


@pytest.mark.parametrize(("fmt", "path"), _format_paths(["alpaca", "sharegpt", "trl_preference"]))
@pytest.mark.parametrize("kind", KINDS)
def test_an_invalid_record_first_does_not_make_its_valid_near_duplicate_one(tmp_path, fmt, kind, path):
    near = _good(fmt, 1, prompt=NEAR_DUP_PROMPT.replace("小草", "嫩芽"))
    records = [_invalid(_good(fmt, 0, prompt=NEAR_DUP_PROMPT), fmt, kind), near,
               _good(fmt, 2, prompt="完全不同的问题：如何给 PostgreSQL 建立合适的索引并评估选择性？")]
    if path == "write-time":
        records.append(_grown_columns(fmt, 9))
    out = tmp_path / f"{fmt}.jsonl"
    result = build_dataset([Source("logs", records)],
                           BuildOptions(format=fmt, dedup=False, near_dup=True, near_dup_threshold=0.7,
                                        shuffle=False), output=out)

    assert _written_prompts(result, fmt) == sorted(r["prompt"] for r in records[1:])
    assert [e["id"] for e in result.report["invalid_examples"]] == ["calls.jsonl:1"]
    steps = _by_step(result)
    assert (steps["near_dup"]["dropped"], steps["near_dup"]["clusters"]) == (0, 0)
    assert steps["validate"]["dropped"] == 1
    _assert_consistent(result)


def test_a_near_duplicate_of_a_valid_record_is_still_removed(tmp_path):
    """The same inputs without the invalid record: the near-duplicate goes, as before."""
    records = [_good("alpaca", 0, prompt=NEAR_DUP_PROMPT), _good("alpaca", 1, prompt=NEAR_DUP_PROMPT.replace("小草", "嫩芽"))]
    result = build_dataset([Source("logs", records)],
                           BuildOptions(dedup=False, near_dup=True, near_dup_threshold=0.7, shuffle=False))
    assert (_by_step(result)["near_dup"]["dropped"], result.total) == (1, 1)


def test_two_invalid_duplicates_are_both_reported_and_a_valid_one_after_them_kept(tmp_path):
    good = _good("alpaca", 1)
    records = [{**_invalid(good, "alpaca", "not-text"), "id": "a.jsonl:1"},
               {**_invalid(good, "alpaca", "missing"), "id": "a.jsonl:2"}, good, {**good, "id": "dup"}]
    result = build_dataset([Source("logs", records)], BuildOptions(shuffle=False))
    assert result.total == 1
    assert [e["id"] for e in result.report["invalid_examples"]] == ["a.jsonl:1", "a.jsonl:2"]
    steps = _by_step(result)
    assert steps["dedup"]["reasons"] == {"重复的 prompt": 1}  # only the valid "dup"
    _assert_consistent(result)


@pytest.mark.parametrize("dedup", [{}, {"dedup": False, "near_dup": True}], ids=["exact", "near-dup"])
def test_a_log_line_that_cannot_be_written_does_not_take_the_next_ones_place(tmp_path, dedup):
    """From a log folder, valid rows are spooled without their record: the same holds there."""
    folder = tmp_path / "logs"
    folder.mkdir()
    prompt = "问题一：介绍长城，它是中国古代的军事防御工程，请分段说明它的历史、结构与意义。"
    lines = [json.dumps({"success": True, "prompt": prompt, "response": {"answer": "长城很长。\udc80" * 3}}),
             log_line(prompt, "长城是中国古代的军事防御工程。" * 3),
             log_line("问题三：介绍黄山", "黄山以奇松怪石云海温泉闻名。" * 3)]
    (folder / "calls.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "out" / "logs.jsonl"
    result = build_dataset([Source("logs", LogReader(folder))], BuildOptions(shuffle=False, **dedup), output=out)
    rows = formats.read_records(out, "alpaca")
    assert [r["prompt"] for r in rows] == [prompt, "问题三：介绍黄山"]
    assert [e["id"] for e in result.report["invalid_examples"]] == ["calls.jsonl:1"]
    steps = _by_step(result)
    assert steps["dedup"]["dropped"] == steps["near_dup"]["dropped"] == 0
    _assert_consistent(result)
