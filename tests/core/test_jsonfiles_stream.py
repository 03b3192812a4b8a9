"""core.jsonfiles reads files in blocks: what it finds never depends on where a block ends, and it
never holds a whole (large) file."""
import json

import pytest

from core import jsonfiles
from core.jsonfiles import iter_record_file, read_record_file


def records_of(path, **kwargs):
    read = read_record_file(path, path.name, **kwargs)
    return read.shape, [(r.location, r.value, r.error, r.notes) for r in read.records]


@pytest.fixture
def tiny_blocks(monkeypatch, settings):
    """Blocks of a few bytes and a window of a few characters: every boundary lands somewhere."""
    def use(block_bytes, long_line_bytes=jsonfiles.LONG_LINE_BYTES):
        monkeypatch.setattr(jsonfiles, "BLOCK_BYTES", block_bytes)
        monkeypatch.setattr(jsonfiles, "LONG_LINE_BYTES", long_line_bytes)
        monkeypatch.setattr(jsonfiles._Window, "TRIM_CHARS", 16)
        settings.IMPORT_MAX_RECORD_CHARS = 400
    return use


def team_records(n):
    return [{"id": f"样本-{i}", "image": [f"E:\\图片\\{i}.jpg"], "output": f"观察：第{i}张截图，“引号”,逗号：冒号。\n类别：换货"}
            for i in range(n)]


FILES = {
    "one_line_array.json": lambda: json.dumps(team_records(12), ensure_ascii=False).encode(),
    "pretty_array.json": lambda: json.dumps(team_records(12), ensure_ascii=False, indent=4).encode(),
    "lines.jsonl": lambda: "\n".join(json.dumps(r, ensure_ascii=False) for r in team_records(12)).encode(),
    "comma_lines.json": lambda: ("".join(json.dumps(r, ensure_ascii=False) + ",\n" for r in team_records(12))
                                 + '{"id": "cut", "outp').encode(),
    "broken_in_array.json": lambda: json.dumps(team_records(6), ensure_ascii=False, indent=2).replace(
        '"样本-2",', '"样本-2" oops', 1).encode(),
    "object.json": lambda: json.dumps(team_records(1)[0], ensure_ascii=False, indent=2).encode(),
    "gbk_lines.jsonl": lambda: b"\n".join(
        json.dumps(r, ensure_ascii=False).encode("gbk" if i % 3 == 1 else "utf-8") for i, r in enumerate(team_records(9))),
    "nul.jsonl": lambda: "\n".join([json.dumps({"id": "a", "output": "x\u0000y"}),
                                    json.dumps({"id": "b", "output": "ok"}, ensure_ascii=False)]).encode(),
    "bom.json": lambda: b"\xef\xbb\xbf" + json.dumps(team_records(3), ensure_ascii=False).encode(),
    "utf16.jsonl": lambda: "\n".join(json.dumps(r, ensure_ascii=False) for r in team_records(4)).encode("utf-16"),
}


@pytest.mark.parametrize("name", sorted(FILES))
@pytest.mark.parametrize("encoding", [None, "gbk"])
def test_records_do_not_depend_on_where_blocks_end(tmp_path, tiny_blocks, name, encoding):
    path = tmp_path / name
    path.write_bytes(FILES[name]())
    expected = records_of(path, encoding=encoding, force_lines=name.endswith(".jsonl"))
    for block_bytes in (1, 7, 64):
        tiny_blocks(block_bytes)
        assert records_of(path, encoding=encoding, force_lines=name.endswith(".jsonl")) == expected, block_bytes


@pytest.mark.parametrize("name", ["one_line_array.json", "lines.jsonl", "comma_lines.json", "bom.json"])
def test_a_line_longer_than_a_block_is_read_in_pieces_without_splitting_a_character(tmp_path, tiny_blocks, name):
    path = tmp_path / name
    path.write_bytes(FILES[name]())
    expected = records_of(path, force_lines=name.endswith(".jsonl"))
    for block_bytes in (1, 5, 13):
        tiny_blocks(block_bytes, long_line_bytes=block_bytes)
        assert records_of(path, force_lines=name.endswith(".jsonl")) == expected, block_bytes


def test_what_the_reader_reports_for_each_shape(tmp_path):
    for name, make in FILES.items():
        (tmp_path / name).write_bytes(make())
    shape, records = records_of(tmp_path / "one_line_array.json")
    assert shape == "array" and [r[0] for r in records][:2] == ["one_line_array.json#0", "one_line_array.json#1"]
    shape, records = records_of(tmp_path / "pretty_array.json")
    assert shape == "array" and records[1][0] == "pretty_array.json:9" and records[11][1]["id"] == "样本-11"
    shape, records = records_of(tmp_path / "comma_lines.json")
    assert shape == "comma_lines" and len(records) == 13 and records[-1][0] == "comma_lines.json:13" and records[-1][2]
    shape, records = records_of(tmp_path / "broken_in_array.json")
    assert [r[1]["id"] for r in records if not r[2]] == ["样本-0", "样本-1", "样本-3", "样本-4", "样本-5"]
    assert [r[0] for r in records if r[2]] == ["broken_in_array.json:16"]
    assert records_of(tmp_path / "object.json")[0] == "object"
    shape, records = records_of(tmp_path / "gbk_lines.jsonl")
    assert [r[0] for r in records if r[2]] == ["gbk_lines.jsonl:2", "gbk_lines.jsonl:5", "gbk_lines.jsonl:8"]
    assert "--encoding gbk" in records[1][2]
    shape, records = records_of(tmp_path / "gbk_lines.jsonl", encoding="gbk")
    assert not any(r[2] for r in records) and records[1][1]["output"].startswith("观察：第1张")
    shape, records = records_of(tmp_path / "nul.jsonl", force_lines=True)
    assert records[0][1] == {"id": "a", "output": "xy"} and records[0][3] and not records[1][3]
    assert records_of(tmp_path / "bom.json")[1][0][0] == "bom.json#0"
    assert [r[1]["id"] for r in records_of(tmp_path / "utf16.jsonl", force_lines=True)[1]] == [f"样本-{i}" for i in range(4)]


def test_a_file_far_larger_than_the_window_is_never_held_whole(tmp_path, monkeypatch, settings):
    # The bounds scaled down 100×: a 4.6 MB file stands for a 460 MB train.json.
    settings.IMPORT_MAX_RECORD_CHARS = 10_000
    monkeypatch.setattr(jsonfiles, "BLOCK_BYTES", 16_000)
    monkeypatch.setattr(jsonfiles, "LONG_LINE_BYTES", 80_000)
    monkeypatch.setattr(jsonfiles._Window, "TRIM_CHARS", 10_000)
    path = tmp_path / "train.json"
    records = [{"id": f"s-{i:06d}", "output": "换货页面", "image": [f"E:\\x\\{i}.jpg"]} for i in range(60_000)]
    path.write_text(json.dumps(records, ensure_ascii=False), encoding="utf-8")  # one line, ~4 MB
    largest = 0
    fill = jsonfiles._Window.fill

    def measured(window, upto):
        nonlocal largest
        fill(window, upto)
        largest = max(largest, len(window.s))

    monkeypatch.setattr(jsonfiles._Window, "fill", measured)
    stream = iter_record_file(path, "train.json")
    seen = sum(1 for record in stream if record.ok)
    assert seen == 60_000 and stream.shape == "array"
    assert largest < 200_000 < path.stat().st_size / 20


def test_a_record_over_the_limit_is_refused_and_reading_goes_on(tmp_path, settings):
    settings.IMPORT_MAX_RECORD_CHARS = 1_000
    path = tmp_path / "m.jsonl"
    path.write_text("\n".join([json.dumps({"id": "a"}), json.dumps({"id": "big", "output": "长" * 5_000}, ensure_ascii=False),
                               json.dumps({"id": "huge", "output": "长" * 50_000}, ensure_ascii=False),
                               json.dumps({"id": "c"})]), encoding="utf-8")
    read = read_record_file(path, "m.jsonl", force_lines=True)
    assert [(r.location, r.value and r.value["id"]) for r in read.records if r.ok] == [("m.jsonl:1", "a"), ("m.jsonl:4", "c")]
    assert [r.location for r in read.records if not r.ok] == ["m.jsonl:2", "m.jsonl:3"]
    assert all("IMPORT_MAX_RECORD_CHARS" in r.error for r in read.records if not r.ok)
