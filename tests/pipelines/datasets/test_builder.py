"""The dataset builder: each step's counts, determinism for a seed, near-duplicates kept inside one
split, mixing sources with caps and weights, validation, and the files it writes."""
import json

import pytest

from pipelines.datasets import formats
from pipelines.datasets.builder import build_dataset
from pipelines.datasets.neardup import near_duplicate_clusters
from pipelines.datasets.options import BuildError, BuildOptions, Source, parse_split_ratio
from pipelines.datasets.logs import LogReader
from tests.pipelines.datasets.source_files import log_line, write_feedback_file, write_log_folder

TOPICS = ["春天的早晨", "数据库索引", "长城的历史", "咖啡的烘焙", "量子计算", "唐诗宋词", "城市交通", "海洋生物",
          "人工智能伦理", "家庭园艺", "古代天文", "足球战术", "围棋定式", "火山喷发", "电影配乐", "中医养生"]


def record(i, prompt=None, response=None, **extra):
    return {"id": f"r{i}", "prompt": prompt if prompt is not None else f"第{i}题：请详细介绍{TOPICS[i % len(TOPICS)]}的第{i}个方面",
            "response": response if response is not None else "回答" * (5 + i % 20), **extra}


def steps(result):
    return {s["step"]: s for s in result.report["steps"]}


def test_each_step_reports_kept_and_dropped():
    records = [record(i) for i in range(40)]
    records += [record(100 + i, prompt=records[i]["prompt"]) for i in range(5)]      # 5 exact duplicates
    records += [record(200, response="短")]                                             # too short
    records += [record(201, response="长" * 500)]                                       # too long
    records += [record(202, prompt="跳过我")]                                            # filtered
    options = BuildOptions(filter=lambda r: "人工跳过" if r["prompt"] == "跳过我" else None,
                           min_length=5, max_length=100, limit=30, shuffle=False)
    result = build_dataset([Source("logs", records)], options)
    by_step = steps(result)
    assert (by_step["filter"]["in"], by_step["filter"]["kept"], by_step["filter"]["reasons"]) == (48, 47, {"人工跳过": 1})
    assert (by_step["dedup"]["kept"], by_step["dedup"]["reasons"]) == (42, {"重复的 prompt": 5})
    assert by_step["near_dup"]["dropped"] == 0  # off by default
    assert by_step["length"]["reasons"] == {"回答过短": 1, "回答过长": 1}
    assert (by_step["limit"]["in"], by_step["limit"]["kept"]) == (40, 30)
    assert by_step["validate"]["kept"] == by_step["write"]["kept"] == result.total == 30
    assert result.report["sources"]["logs"]["read"] == 48
    # limit keeps the first records in input order (the team's --limit)
    assert [json.loads(json.dumps(r))["instruction"] for r in result.preview] == [records[i]["prompt"] for i in range(5)]


def test_dedup_on_another_field_and_off():
    records = [record(1, response="同一个回答" * 3), record(2, response="同一个回答" * 3), record(3)]
    assert build_dataset([Source("a", records)], BuildOptions(dedup_field="response")).total == 2
    assert build_dataset([Source("a", records + records)], BuildOptions(dedup=False)).total == 6


def test_near_dup_removal_reports_clusters():
    base = "请根据以下章节内容提取三级大纲，要求每个标题不超过二十个字：第一章 春天来了，万物复苏，小草从地里探出头来。"
    records = [record(1, prompt=base), record(2, prompt=base.replace("小草", "嫩芽")), record(3, prompt=base + "！"),
               record(4, prompt="完全不同的问题：如何给 PostgreSQL 建立合适的索引并评估选择性？")]
    result = build_dataset([Source("logs", records)], BuildOptions(near_dup=True, near_dup_threshold=0.7))
    near = steps(result)["near_dup"]
    assert (near["in"], near["kept"], near["dropped"]) == (4, 2, 2)
    assert near["clusters"] == 1 and near["largest_clusters"] == [3]
    assert near["cluster_examples"] == [["r1", "r2", "r3"]]


def test_same_seed_same_files_other_seed_other_order(tmp_path):
    records = [record(i) for i in range(60)]
    options = BuildOptions(format="sharegpt", split_ratio=(0.8, 0.1, 0.1), seed=7)
    first = build_dataset([Source("logs", records)], options, output=tmp_path / "a" / "data.json")
    second = build_dataset([Source("logs", iter(records))], options, output=tmp_path / "b" / "data.json")
    for split in ("train", "val", "test"):
        assert (tmp_path / "a" / f"data_{split}.json").read_bytes() == (tmp_path / "b" / f"data_{split}.json").read_bytes()
    assert first.report["splits"] == second.report["splits"] == {"train": 48, "val": 6, "test": 6}
    other = build_dataset([Source("logs", records)], BuildOptions(format="sharegpt", split_ratio=(0.8, 0.1, 0.1), seed=8),
                          output=tmp_path / "c" / "data.json")
    assert other.report["splits"] == first.report["splits"]
    assert (tmp_path / "c" / "data_train.json").read_bytes() != (tmp_path / "a" / "data_train.json").read_bytes()


def test_no_shuffle_keeps_input_order(tmp_path):
    records = [record(i) for i in range(10)]
    build_dataset([Source("logs", records)], BuildOptions(shuffle=False), output=tmp_path / "d.jsonl")
    rows = [json.loads(line) for line in (tmp_path / "d.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["instruction"] for r in rows] == [r["prompt"] for r in records]


CJK = "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种面而方后多定行学法所民得经"


def _near_dup_families(n_families=30, per_family=4):
    import random

    rng = random.Random(0)
    records = []
    for f in range(n_families):
        base = "".join(rng.choice(CJK) for _ in range(60))  # unrelated families
        for v in range(per_family):
            records.append(record(len(records), prompt=base + "补充" * v))
    return records


@pytest.mark.parametrize("seed", [1, 2, 3, 42])
def test_near_duplicate_pairs_never_cross_splits(tmp_path, seed):
    records = _near_dup_families()
    result = build_dataset([Source("logs", records)],
                           BuildOptions(split_ratio=(0.6, 0.2, 0.2), seed=seed, near_dup_threshold=0.7),
                           output=tmp_path / "data.jsonl")
    split_of = {}
    for split, path in result.files.items():
        for line in open(path, encoding="utf-8"):
            split_of[json.loads(line)["instruction"]] = split
    assert len(split_of) == len(records)
    assert len(set(split_of.values())) == 3
    clusters = near_duplicate_clusters(((r["prompt"], r["prompt"]) for r in records), threshold=0.7)
    assert len(clusters) == 30  # the families really are near-duplicates
    for cluster in clusters:
        assert len({split_of[p] for p in cluster}) == 1, cluster
    assert steps(result)["split"]["near_dup_groups"] == 30


def test_sources_mix_with_caps_and_weights():
    logs = [record(i) for i in range(100)]
    feedback = [record(1000 + i, prompt=f"反馈问题{i}") for i in range(30)]
    capped = build_dataset([Source("logs", logs, cap=10), Source("feedback", feedback)], BuildOptions())
    assert steps(capped)["limit"]["quotas"] == {"logs": 10, "feedback": 30}
    assert capped.report["sources"]["logs"]["split:all"] == 10
    weighted = build_dataset([Source("logs", logs, weight=3), Source("feedback", feedback, weight=1)], BuildOptions())
    assert steps(weighted)["limit"]["quotas"] == {"logs": 90, "feedback": 30}  # 3:1, as large as feedback allows
    limited = build_dataset([Source("logs", logs, weight=3), Source("feedback", feedback, weight=1)],
                            BuildOptions(limit=40))
    assert steps(limited)["limit"]["quotas"] == {"logs": 30, "feedback": 10}
    assert limited.report["sources"]["feedback"]["read"] == 30


def test_records_keep_their_source_and_callable_sources_are_read():
    result = build_dataset([Source("logs", lambda: iter([record(1)])), Source("feedback", [record(2, prompt="另一个")])],
                           BuildOptions(shuffle=False))
    assert result.report["sources"]["logs"]["split:all"] == 1
    assert result.report["sources"]["feedback"]["split:all"] == 1


def test_validation_drops_records_the_format_cannot_hold():
    records = [record(1), {"id": "no-response", "prompt": "没有回答"},
               record(3, prompt="<image>图里有什么？", images=["a.jpg", "b.jpg"])]
    result = build_dataset([Source("gen", records)], BuildOptions(format="sharegpt"))
    validate = steps(result)["validate"]
    assert (validate["in"], validate["kept"], validate["dropped"]) == (3, 1, 2)
    bad = {e["id"]: e["errors"][0] for e in result.report["invalid_examples"]}
    assert bad["no-response"] == "SFT 记录缺少 response"
    assert "图片数 2 与 <image> 标记数 1 不一致" in bad["r3"]


def test_preference_records_build_with_length_on_chosen(tmp_path):
    pairs = [{"id": f"p{i}", "prompt": f"问题{i}", "chosen": "好的回答" * (i + 1), "rejected": "差"} for i in range(5)]
    result = build_dataset([Source("dpo", pairs)], BuildOptions(format="trl_preference", min_length=8, shuffle=False),
                           output=tmp_path / "dpo.jsonl")
    assert result.total == 4
    assert formats.read_records(tmp_path / "dpo.jsonl", "trl_preference")[0] == {"prompt": "问题1", "chosen": "好的回答" * 2, "rejected": "差"}


def test_written_files_dataset_info_and_report(tmp_path):
    records = [record(i, system="你是助手。") for i in range(20)]
    result = build_dataset([Source("logs", records)],
                           BuildOptions(format="alpaca", split_ratio=(0.5, 0.5), dataset_name="logs_sft"),
                           output=tmp_path / "out" / "logs.json")
    info = json.loads((tmp_path / "out" / "dataset_info.json").read_text(encoding="utf-8"))
    assert set(info) == {"logs_sft_train", "logs_sft_test"}
    assert info["logs_sft_train"] == {"file_name": "logs_train.json", "columns": {
        "prompt": "instruction", "query": "input", "response": "output", "system": "system"}}
    report = json.loads((tmp_path / "out" / "logs_report.json").read_text(encoding="utf-8"))
    assert report["splits"] == {"train": 10, "test": 10}
    assert [s["step"] for s in report["steps"]] == ["filter", "dedup", "near_dup", "length", "limit", "shuffle",
                                                    "split", "validate", "write"]
    assert len(formats.read_records(tmp_path / "out" / "logs_train.json", "alpaca")) == 10
    provenance = [json.loads(line) for line in (tmp_path / "out" / "logs_sources.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(provenance) == 20 and {p["source"] for p in provenance} == {"logs"}
    assert [p["row"] for p in provenance if p["split"] == "test"] == list(range(10))


def test_dry_run_writes_nothing(tmp_path):
    result = build_dataset([Source("logs", [record(i) for i in range(8)])], BuildOptions(preview_rows=3))
    assert result.files == {} and len(result.preview) == 3
    assert steps(result)["write"]["dry_run"] is True
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == ["exports", "media"]


def test_rows_spooled_before_a_column_appears_are_written_with_it(tmp_path):
    """Rows are made when records are spooled; a later record with a system prompt still gives every
    row of the file the system column (LLaMA-Factory needs it on all rows or none)."""
    records = [record(i) for i in range(30)]
    records[25]["system"] = "你是助手。"
    result = build_dataset([Source("logs", records)], BuildOptions(format="alpaca", preview_rows=0),
                           output=tmp_path / "out" / "logs.jsonl")
    rows = list(formats.iter_rows(tmp_path / "out" / "logs.jsonl"))
    assert len(rows) == 30 and all(list(row) == ["instruction", "input", "output", "system"] for row in rows)
    assert [row["system"] for row in rows if row["system"]] == ["你是助手。"]
    assert result.report["columns"] == ["system"]


@pytest.mark.parametrize("fmt, container", [("alpaca", ".jsonl"), ("sharegpt", ".json"), ("openai", ".jsonl"),
                                            ("trl_prompt_completion", ".json")])
def test_a_log_folder_builds_the_files_its_records_would(tmp_path, fmt, container):
    """The log reader declares records without optional columns, so its rows are spooled without
    their records; the files, preview and counts are those of the same records given as a list."""
    logs = write_log_folder(tmp_path / "logs")
    (logs / "more.jsonl").write_text("\n".join(
        log_line(f"第{i}题：{TOPICS[i % len(TOPICS)]}" + ("<image>" if i % 7 == 0 else ""), "回答" * (3 + i % 40))
        for i in range(60)) + "\n", encoding="utf-8")
    options = BuildOptions(format=fmt, split_ratio=(0.8, 0.2), split_keep_near_dups_together=False, seed=3,
                           preview_rows=4)
    results = {}
    for name, records in (("declared", LogReader(logs)), ("listed", list(LogReader(logs)))):
        result = build_dataset([Source("logs", records)], options, output=tmp_path / name / f"data{container}")
        files = {p.name: p.read_bytes() for p in (tmp_path / name).iterdir() if not p.name.endswith("_report.json")}
        results[name] = (files, result.preview, result.report["steps"], result.report["splits"])
    assert results["declared"] == results["listed"]
    assert results["declared"][3]["train"] > 0


# (sharegpt_multimodal has no plain rows, every row needing images: test_formats.py shows it.)
@pytest.mark.parametrize("fmt", [fmt for fmt in formats.FORMATS if fmt != "sharegpt_multimodal"])
def test_plain_rows_are_written_as_the_general_path_writes_them(tmp_path, monkeypatch, fmt):
    """Most rows are made from a template (formats/plain.py), not built and checked: the files,
    preview and counts must be those the general path gives, for a log folder (SFT formats) and for
    a list of records that mixes plain ones with every kind that is not."""
    logs = write_log_folder(tmp_path / "logs")
    prompts = (f"第{i}题：{TOPICS[i % len(TOPICS)]}" + ("<image>" if i % 7 == 0 else "")
               + ("孤立" if i % 11 == 0 else "") for i in range(60))
    lines = (log_line(prompt, "回答\"引号\"\\" * (3 + i % 40)) for i, prompt in enumerate(prompts))
    # "\ud800" as a logger writes it: JSON's escape of a lone surrogate, which no UTF-8 file can hold.
    (logs / "more.jsonl").write_text("\n".join(lines).replace("孤立", "\\ud800") + "\n", encoding="utf-8")
    # No record brings a column (system, history, images): a row spooled before a column appears is
    # made again at write time by the general path, and a plain row would not be compared.
    odd = [{"input": "补充"}, {"input": ""}, {"input": 0}, {"system": ""}, {"prompt": ""}, {"prompt": 5},
           {"response": "含 <image> 的回答"}, {"chosen": "<image>"}, {"history": []}, {"images": []}]
    pairs = [{"chosen": f"好回答{i}", "rejected": f"差回答{i}"} for i in range(80)]
    listed = [record(i, **(pair | (odd[i % len(odd)] if i % 3 else {}))) for i, pair in enumerate(pairs)]
    options = BuildOptions(format=fmt, split_ratio=(0.8, 0.2), seed=5, preview_rows=5)
    sources = {"logs": lambda: LogReader(logs), "listed": lambda: listed}
    if formats.get_format(fmt).kind == "preference":  # a log line has no preference pair
        del sources["logs"]
    general = lambda fmt: lambda record: None  # noqa: E731 - no record is plain
    for name, records in sources.items():
        results = {}
        for path in ("plain", "general"):
            if path == "general":
                monkeypatch.setattr("pipelines.datasets.builder.plain_row_encoder", general)
            folder = tmp_path / name / path
            result = build_dataset([Source("s", records())], options, output=folder / "data.jsonl")
            files = {p.name: p.read_bytes() for p in folder.iterdir() if not p.name.endswith("_report.json")}
            results[path] = (files, result.preview, result.report["steps"], result.total)
        monkeypatch.undo()
        assert results["plain"] == results["general"], name


def test_a_source_that_declares_no_optional_columns_may_not_yield_one():
    class Declared(list):
        optional_columns = ()

    with pytest.raises(BuildError, match="声明"):
        build_dataset([Source("s", Declared([record(1), record(2, system="系统")]))], BuildOptions())


def test_sources_are_streamed_once():
    """A source that can be re-read (a callable) is still read in one pass: a 1 GB log folder is
    not read twice. (A generator could not show a second pass: it would just be empty.)"""
    passes, consumed = [], []

    def read():
        passes.append(1)
        for i in range(1000):
            consumed.append(i)
            yield record(i)

    result = build_dataset([Source("logs", read)], BuildOptions(limit=10))
    assert len(passes) == 1 and len(consumed) == 1000 and result.total == 10


@pytest.mark.parametrize("text", ["0.8,0.1", "0.8,0.1,0.1"])
def test_parse_split_ratio(text):
    assert parse_split_ratio(text) == tuple(float(x) for x in text.split(","))


@pytest.mark.parametrize("text", ["0.8", "a,b", "0.5,-0.5", "1,1,1,1"])
def test_bad_split_ratio_is_refused(text):
    with pytest.raises(BuildError):
        parse_split_ratio(text)


def test_bad_options_are_refused():
    with pytest.raises(BuildError):
        build_dataset([Source("a", [])], BuildOptions(format="alpaka"))
    with pytest.raises(BuildError):
        build_dataset([Source("a", [])], BuildOptions(min_length=10, max_length=5))
    with pytest.raises(BuildError):
        build_dataset([], BuildOptions())


# --------------------------------------------------------------------------- build_dataset command

@pytest.mark.django_db
def test_build_dataset_command_mixes_imported_sources(tmp_path):
    from io import StringIO

    from django.core.management import call_command

    from pipelines.jobs.services import job_create, run_job_inline
    from pipelines.models import Export, JobKind

    folder = write_log_folder(tmp_path / "logs")
    run_job_inline(job_create(kind=JobKind.LOG_EXTRACTION, params={"log_dir": str(folder)}))
    run_job_inline(job_create(kind=JobKind.FEEDBACK_IMPORT, params={"feedback_file": str(write_feedback_file(tmp_path / "f.jsonl"))}))
    out = StringIO()
    call_command("build_dataset", "--logs", "--feedback", "--weight", "logs=2", "--weight", "feedback=1",
                 "--format", "openai", "--output", str(tmp_path / "out" / "mix.jsonl"), stdout=out)
    report = json.loads((tmp_path / "out" / "mix_report.json").read_text(encoding="utf-8"))
    assert report["steps"][4]["quotas"] == {"logs": 4, "feedback": 2}
    assert report["total"] == 6 and Export.objects.get().row_count == 6
    assert formats.read_records(tmp_path / "out" / "mix.jsonl", "openai")[0]["prompt"]
    assert "共写入 6 条" in out.getvalue()


def test_meta_may_hold_any_value_and_is_never_written(tmp_path):
    from datetime import datetime
    from decimal import Decimal

    records = [record(1, meta={"at": datetime(2025, 1, 1), "score": Decimal("0.5")})]
    build_dataset([Source("logs", records)], BuildOptions(), output=tmp_path / "d.json")
    rows = json.loads((tmp_path / "d.json").read_text(encoding="utf-8"))
    assert set(rows[0]) == {"instruction", "input", "output"}
