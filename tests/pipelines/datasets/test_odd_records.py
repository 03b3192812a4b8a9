"""One odd record never stops a build: a prompt or answer that is not a string, a dedup value that
is not JSON, a lone surrogate — each record is left out and reported (id = its location, with the
reason), and every other record is built and written."""
import datetime
import json

import pytest

from pipelines.datasets import formats
from pipelines.datasets.builder import build_dataset
from pipelines.datasets.logs import LogReader
from pipelines.datasets.options import BuildOptions, Source
from tests.pipelines.datasets.source_files import log_line


def _good(fmt, i):
    """A valid record for `fmt`; with an image where the format can carry one (the image checks
    are where non-strings used to crash)."""
    record = {"id": f"g{i}", "prompt": f"第{i}个问题：介绍长城的第{i}段", "input": ""}
    if formats.get_format(fmt).kind == "preference":
        record.update(chosen=f"好的回答{i}", rejected=f"差的回答{i}")
    else:
        record["response"] = f"回答{i}：长城很长。"
    if "images" in formats.get_format(fmt).optional_columns:
        record.update(prompt=formats.IMAGE_TOKEN + record["prompt"], images=[f"img/{i}.jpg"])
    return record


def _answer_field(fmt):
    return "chosen" if formats.get_format(fmt).kind == "preference" else "response"


def _written(path, fmt):
    return {r["prompt"].replace(formats.IMAGE_TOKEN, "") for r in formats.read_records(path, fmt)}


@pytest.mark.parametrize("fmt", list(formats.FORMATS))
@pytest.mark.parametrize("field", ["prompt", "input", "answer"])
@pytest.mark.parametrize("value", [5, 0, 1.5, [1, 2], {"a": 1}], ids=["int", "zero", "float", "list", "dict"])
def test_a_field_that_is_not_text_drops_only_that_record(tmp_path, fmt, field, value):
    """Every format alike (as alpaca always did): a number is not taken as text."""
    field = _answer_field(fmt) if field == "answer" else field
    good = [_good(fmt, i) for i in range(3)]
    bad = {**_good(fmt, 9), "id": "calls.jsonl:7", field: value}
    out = tmp_path / f"{fmt}.jsonl"
    result = build_dataset([Source("logs", [good[0], bad, *good[1:]])], BuildOptions(format=fmt, shuffle=False),
                           output=out)
    assert result.total == 3
    assert _written(out, fmt) == {r["prompt"].replace(formats.IMAGE_TOKEN, "") for r in good}
    reported = {e["id"]: e["errors"] for e in result.report["invalid_examples"]}
    assert list(reported) == ["calls.jsonl:7"]
    assert reported["calls.jsonl:7"] == [f"{field} 必须是字符串（实为 {type(value).__name__}）"]
    validate = {s["step"]: s for s in result.report["steps"]}["validate"]
    assert (validate["dropped"], validate["reasons"]) == (1, {f"{field} 必须是字符串（实为 {type(value).__name__}）": 1})


ODD_VALUES = [datetime.date(2025, 3, 1), datetime.datetime(2025, 3, 1, 10, 0), 42, {1: "a", "b": 2}]
ODD_IDS = ["date", "datetime", "int", "mixed-keys"]


@pytest.mark.parametrize("value", ODD_VALUES, ids=ODD_IDS)
def test_dedup_on_a_value_that_is_not_text(tmp_path, value):
    records = [_good("alpaca", i) for i in range(3)]
    records += [{**_good("alpaca", 9), "id": "odd", "response": value},
                {**_good("alpaca", 10), "id": "odd-again", "response": value},   # a duplicate of "odd"
                {**_good("alpaca", 11), "id": "text", "response": json.dumps(value, default=str)}]
    out = tmp_path / "out.json"
    result = build_dataset([Source("logs", records)], BuildOptions(dedup_field="response", shuffle=False),
                           output=out)
    by_step = {s["step"]: s for s in result.report["steps"]}
    # A record that cannot be written takes no part in dedup: "odd-again" is no duplicate of "odd",
    # both are reported (tests/…/test_invalid_before_dedup.py).
    assert by_step["dedup"]["reasons"] == {}
    # A string that reads like the value is not its duplicate: it is written.
    assert [e["id"] for e in result.report["invalid_examples"]] == ["odd", "odd-again"]
    assert result.total == 4
    assert len(formats.read_records(out, "alpaca")) == 4


@pytest.mark.parametrize("value", ODD_VALUES, ids=ODD_IDS)
def test_near_dup_on_a_value_that_is_not_text(tmp_path, value):
    answers = ["长城是中国古代的军事防御工程，绵延万里。", "故宫是明清两代的皇家宫殿，位于北京中轴线。",
               "黄山以奇松、怪石、云海、温泉闻名天下。"]
    records = [{**_good("alpaca", i), "response": a} for i, a in enumerate(answers)]
    records.insert(1, {**_good("alpaca", 9), "id": "odd", "response": value})
    out = tmp_path / "out.json"
    result = build_dataset([Source("logs", records)], BuildOptions(dedup_field="response", near_dup=True,
                                                                   split_ratio=(0.5, 0.5), shuffle=False),
                           output=out)
    assert [e["id"] for e in result.report["invalid_examples"]] == ["odd"]
    written = [r for p in result.files.values() for r in formats.read_records(p, "alpaca")]
    assert sorted(r["response"] for r in written) == sorted(answers)


@pytest.mark.parametrize("dedup_field", ["prompt", "instruction", "meta"])
def test_dedup_on_a_datetime_inside_the_value_is_deterministic(dedup_field):
    """A field that is never written (meta) may hold anything: records are kept, duplicates found."""
    when = datetime.datetime(2025, 3, 1, 10, 0)
    records = [{"id": f"r{i}", "prompt": f"问题{i}", "response": "回答", "meta": {"at": when}} for i in range(3)]
    result = build_dataset([Source("db", records)], BuildOptions(dedup_field=dedup_field, shuffle=False))
    assert result.total == (1 if dedup_field == "meta" else 3)


def _log_folder_with_a_lone_surrogate(root, where):
    root.mkdir(parents=True, exist_ok=True)
    prompt, answer = "问题二：介绍故宫", "故宫是明清两代的皇家宫殿。" * 3
    if where == "prompt":
        prompt += "\ud800"
    else:
        answer += "\udc80"
    lines = [log_line("问题一：介绍长城", "长城是中国古代的军事防御工程。" * 3),
             # The logger's JSON escapes a lone surrogate as "\ud800": it parses, but is no UTF-8.
             json.dumps({"success": True, "prompt": prompt, "response": {"answer": answer}}),
             log_line("问题三：介绍黄山", "黄山以奇松怪石云海温泉闻名。" * 3)]
    (root / "calls.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


@pytest.mark.parametrize("where", ["prompt", "response"])
@pytest.mark.parametrize("options", [{}, {"dedup": False}, {"near_dup": True}, {"split_ratio": (0.5, 0.5)},
                                     {"format": "sharegpt"}],
                         ids=["default", "no-dedup", "near-dup", "split", "sharegpt"])
@pytest.mark.parametrize("dry_run", [True, False], ids=["dry-run", "write"])
def test_a_lone_surrogate_is_reported_with_its_line_and_the_rest_built(tmp_path, where, options, dry_run):
    folder = _log_folder_with_a_lone_surrogate(tmp_path / "logs", where)
    options = BuildOptions(shuffle=False, **options)
    out = None if dry_run else tmp_path / "out" / "logs.jsonl"
    result = build_dataset([Source("logs", LogReader(folder))], options, output=out)
    assert result.total == 2
    reported = result.report["invalid_examples"]
    assert [e["id"] for e in reported] == ["calls.jsonl:2"]
    error = reported[0]["errors"][0]
    assert "代理项" in error and ("\\ud800" in error or "\\udc80" in error)
    if out is not None:
        written = [p for p in result.files.values()]
        rows = [r for p in written for r in formats.read_records(p, options.format)]
        assert sorted(r["prompt"] for r in rows) == ["问题一：介绍长城", "问题三：介绍黄山"]
        report = json.loads(out.with_name("logs_report.json").read_text(encoding="utf-8"))
        assert [e["id"] for e in report["invalid_examples"]] == ["calls.jsonl:2"]


@pytest.mark.parametrize("where", ["id", "source"])
def test_a_lone_surrogate_in_an_id_or_a_source_name_is_written_escaped(tmp_path, where):
    """An id from a logger's JSON ("\\ud800" parses but is no UTF-8) or a file name that is not UTF-8
    (Python spells its bytes as lone surrogates): the record is still built, the provenance file
    holds the name as a JSON escape (read back: the same string) and the report spells it."""
    records = [{"id": f"g{i}", "prompt": f"第{i}个问题：介绍长城", "input": "", "response": f"回答{i}：长城很长。"}
               for i in range(3)]
    name = "logs"
    if where == "id":
        records[1]["id"] = "calls\ud800.jsonl:2"
    else:
        name = "calls-\udcb3.jsonl"
    out = tmp_path / "out.jsonl"
    result = build_dataset([Source(name, records)], BuildOptions(shuffle=False), output=out)
    assert result.total == 3 and len(formats.read_records(out, "alpaca")) == 3
    lines = [json.loads(line) for line in open(result.report["sources_file"], encoding="utf-8")]
    assert [(line["id"], line["source"]) for line in lines] == [(r["id"], name) for r in records]
    # The report (a file, stored, shown) spells it visibly: "calls-\\udcb3.jsonl".
    report = json.loads(open(result.report["report_file"], encoding="utf-8").read())
    assert list(report["sources"]) == list(result.report["sources"]) == [name.encode("utf-8", "backslashreplace").decode()]


@pytest.mark.django_db
def test_a_log_file_whose_name_is_not_utf8_is_extracted_and_its_export_recorded(tmp_path):
    """A GBK-named log file on a Linux machine: its records are extracted, the export (its report
    stored in the database) recorded, and the provenance file names the file as it is."""
    import os

    from django.core.management import call_command

    from pipelines.models import Export

    logs = tmp_path / "logs"
    logs.mkdir()
    gbk_name = "日志.jsonl".encode("gbk")
    with open(os.path.join(os.fsencode(logs), gbk_name), "w", encoding="utf-8") as fh:
        fh.write(log_line("问题一：介绍长城", "长城是中国古代的军事防御工程。" * 3) + "\n")
        fh.write(log_line("问题二：介绍故宫", "故宫是明清两代的皇家宫殿。" * 3) + "\n")
    out = tmp_path / "out" / "d.jsonl"
    call_command("extract_from_logs", log_dir=str(logs), output=str(out))
    assert len(formats.read_records(out, "alpaca")) == 2
    export = Export.objects.get()
    assert export.row_count == 2 and export.report["total"] == 2
    sources = [json.loads(line) for line in open(out.with_name("d_sources.jsonl"), encoding="utf-8")]
    assert {os.fsencode(s["id"].rsplit(":", 1)[0]) for s in sources} == {gbk_name}
