"""Training formats: every format round-trips through a reader written from its spec, CJK stays
UTF-8, validation catches the errors users hit with LLaMA-Factory, dataset_info entries match."""
import json

import pytest

from pipelines.datasets import formats
from pipelines.datasets.formats.rowfiles import encode_row

SFT_RECORD = {
    "prompt": "请概括下面这段话的主旨。",
    "input": "春眠不觉晓，处处闻啼鸟。",
    "response": "<think>诗人写春天的早晨。</think>描写春晨的景色。",
    "system": "你是语文老师。",
    "history": [["你好", "你好！有什么可以帮你？"]],
}
PREFERENCE_RECORD = {"prompt": "用一句话介绍长城。", "chosen": "长城是中国古代的军事防御工程。", "rejected": "不知道。",
                     "system": "简洁回答。"}
MULTIMODAL_RECORD = {"prompt": "<image>图里有什么？<image>两张有何不同？", "response": "第一张是猫，第二张是狗。",
                     "images": ["images/猫.jpg", "images/dog.png"]}


def expected(fmt, record):
    """What a format can represent of a record: formats without `input` join it to the prompt."""
    out = {k: v for k, v in record.items() if k not in {"id", "source", "meta"}}
    if not fmt.startswith("alpaca") and out.get("input"):
        out["prompt"] = f"{out['prompt']}\n{out.pop('input')}"
    if fmt in {"trl_prompt_completion", "trl_preference"}:
        out.pop("system", None)
        out.pop("history", None)
    return out


ROUND_TRIPS = [
    ("alpaca", SFT_RECORD), ("sharegpt", SFT_RECORD), ("openai", SFT_RECORD),
    ("trl_prompt_completion", {k: v for k, v in SFT_RECORD.items() if k not in {"system", "history"}}),
    ("sharegpt_multimodal", MULTIMODAL_RECORD), ("sharegpt", MULTIMODAL_RECORD), ("alpaca", MULTIMODAL_RECORD),
    ("alpaca_preference", PREFERENCE_RECORD), ("sharegpt_preference", PREFERENCE_RECORD),
    ("trl_preference", {k: v for k, v in PREFERENCE_RECORD.items() if k != "system"}),
    ("trl_preference_conversational", {**PREFERENCE_RECORD, "history": [["上一问", "上一答"]]}),
]


@pytest.mark.parametrize("container", ["json", "jsonl"])
@pytest.mark.parametrize(("fmt", "record"), ROUND_TRIPS, ids=[f"{f}-{i}" for i, (f, _) in enumerate(ROUND_TRIPS)])
def test_round_trip_reads_back_what_was_meant(tmp_path, fmt, record, container):
    path = tmp_path / f"data.{container}"
    second = {**record, "prompt": "第二条：" + record["prompt"]}
    assert formats.write_records(path, fmt, [record, second]) == 2
    assert formats.read_records(path, fmt) == [expected(fmt, record), expected(fmt, second)]
    raw = path.read_text(encoding="utf-8")
    assert "\\u" not in raw and record["prompt"].split("<image>")[-1][:3] in raw  # CJK written as UTF-8
    if container == "json":
        assert isinstance(json.loads(raw), list)
    else:
        assert len(raw.strip().splitlines()) == 2


def test_rows_match_formats_md_exactly():
    assert formats.to_row("alpaca", SFT_RECORD) == {
        "instruction": "请概括下面这段话的主旨。", "input": "春眠不觉晓，处处闻啼鸟。",
        "output": SFT_RECORD["response"], "system": "你是语文老师。", "history": [["你好", "你好！有什么可以帮你？"]],
    }
    assert formats.to_row("sharegpt", {"prompt": "Q", "response": "A", "system": "S"}) == {
        "conversations": [{"from": "human", "value": "Q"}, {"from": "gpt", "value": "A"}], "system": "S"}
    assert formats.to_row("openai", {"prompt": "Q", "response": "A", "system": "S"}) == {"messages": [
        {"role": "system", "content": "S"}, {"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"}]}
    assert formats.to_row("trl_prompt_completion", {"prompt": "Q", "response": "A"}) == {"prompt": "Q", "completion": "A"}
    pair = {"prompt": "Q", "chosen": "good", "rejected": "worse"}
    assert formats.to_row("alpaca_preference", pair) == {"instruction": "Q", "input": "", "chosen": "good", "rejected": "worse"}
    assert formats.to_row("sharegpt_preference", pair) == {
        "conversations": [{"from": "human", "value": "Q"}],
        "chosen": {"from": "gpt", "value": "good"}, "rejected": {"from": "gpt", "value": "worse"}}
    assert formats.to_row("trl_preference", pair) == pair
    assert formats.to_row("trl_preference_conversational", pair) == {
        "prompt": [{"role": "user", "content": "Q"}], "chosen": [{"role": "assistant", "content": "good"}],
        "rejected": [{"role": "assistant", "content": "worse"}]}


def test_optional_columns_are_written_on_every_row_of_a_file(tmp_path):
    path = tmp_path / "mixed.jsonl"
    formats.write_records(path, "alpaca", [{"prompt": "q1", "response": "a1", "system": "S"},
                                           {"prompt": "q2", "response": "a2"}])
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert [set(r) for r in rows] == [{"instruction", "input", "output", "system"}] * 2
    assert rows[1]["system"] == ""


@pytest.mark.parametrize(("fmt", "row", "message"), [
    ("alpaca_preference", {"instruction": "q", "input": "", "output": "a"}, "多余的键 output"),
    ("alpaca_preference", {"instruction": "q", "input": "", "output": "a"}, "缺少键 chosen, rejected"),
    ("sharegpt", {"messages": [{"role": "user", "content": "q"}]}, "缺少键 conversations"),
    ("openai", {"conversations": []}, "缺少键 messages"),
    ("alpaca", {"prompt": "q", "output": "a"}, "缺少键 input, instruction"),
    ("sharegpt", {"conversations": [{"from": "gpt", "value": "a"}, {"from": "human", "value": "q"}]}, "conversations[0].from 应为 human"),
    ("sharegpt", {"conversations": [{"from": "human", "value": "q"}]}, "必须以 gpt 结尾"),
    ("sharegpt_multimodal", {"conversations": [{"from": "human", "value": "<image>q"}, {"from": "gpt", "value": "a"}],
                             "images": ["a.jpg", "b.jpg"]}, "图片数 2 与 <image> 标记数 1 不一致"),
    ("openai", {"messages": [{"role": "assistant", "content": "a"}, {"role": "user", "content": "q"}]}, "交替"),
    ("trl_preference_conversational", {"prompt": "q", "chosen": "a", "rejected": "b"}, "prompt 必须是非空列表"),
])
def test_validation_names_each_error(fmt, row, message):
    assert any(message in error for error in formats.validate_row(fmt, row))


def test_valid_rows_have_no_errors():
    for fmt, record in ROUND_TRIPS:
        assert formats.validate_row(fmt, formats.to_row(fmt, record)) == [], fmt


def test_a_record_a_format_cannot_carry_is_refused():
    with pytest.raises(formats.FormatError):
        formats.to_row("trl_prompt_completion", SFT_RECORD)  # system + history
    with pytest.raises(formats.FormatError):
        formats.to_row("alpaca_preference", {"prompt": "q", "response": "a"})
    with pytest.raises(formats.FormatError):
        formats.get_format("alpaka")


def test_reader_refuses_rows_that_break_the_spec():
    with pytest.raises(formats.FormatError):
        formats.from_row("alpaca_preference", {"instruction": "q", "input": "", "output": "a"})


def test_with_image_tokens_adds_only_the_missing_ones():
    assert formats.with_image_tokens("图里有什么？", 2) == "<image><image>图里有什么？"
    assert formats.with_image_tokens("<image>图里有什么？", 1) == "<image>图里有什么？"


def test_dataset_info_entries_match_llamafactory():
    assert formats.dataset_info_entry("alpaca", "data.json", {"system", "history"}) == {
        "file_name": "data.json",
        "columns": {"prompt": "instruction", "query": "input", "response": "output", "system": "system", "history": "history"}}
    assert formats.dataset_info_entry("alpaca_preference", "data.json") == {
        "file_name": "data.json", "ranking": True,
        "columns": {"prompt": "instruction", "query": "input", "chosen": "chosen", "rejected": "rejected"}}
    assert formats.dataset_info_entry("sharegpt", "data.json", {"system"}) == {
        "file_name": "data.json", "formatting": "sharegpt", "columns": {"messages": "conversations", "system": "system"}}
    assert formats.dataset_info_entry("sharegpt_multimodal", "data.json") == {
        "file_name": "data.json", "formatting": "sharegpt", "columns": {"messages": "conversations", "images": "images"}}
    assert formats.dataset_info_entry("sharegpt_preference", "data.json") == {
        "file_name": "data.json", "formatting": "sharegpt", "ranking": True,
        "columns": {"messages": "conversations", "chosen": "chosen", "rejected": "rejected"}}
    assert formats.dataset_info_entry("openai", "data.json") == {
        "file_name": "data.json", "formatting": "sharegpt", "columns": {"messages": "messages"},
        "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant",
                 "system_tag": "system"}}


def test_write_dataset_info_merges_entries(tmp_path):
    path = tmp_path / "dataset_info.json"
    formats.write_dataset_info(path, {"a": {"file_name": "a.json"}})
    formats.write_dataset_info(path, {"b": {"file_name": "b.json"}})
    assert json.loads(path.read_text(encoding="utf-8")) == {"a": {"file_name": "a.json"}, "b": {"file_name": "b.json"}}


@pytest.mark.parametrize("suffix", [".json", ".jsonl"])
def test_rows_given_encoded_are_written_as_rows_are(tmp_path, suffix):
    rows = [{"instruction": f"问题{i}", "input": "", "output": "回答\n" * i} for i in range(1200)]
    formats.write_rows(tmp_path / f"plain{suffix}", rows)
    with formats.RowWriter(tmp_path / f"mixed{suffix}") as out:
        for i, row in enumerate(rows):
            if i % 3:
                out.write_encoded(json.dumps(row, ensure_ascii=False).encode("utf-8"))
            else:
                out.write(row)
    assert (tmp_path / f"mixed{suffix}").read_bytes() == (tmp_path / f"plain{suffix}").read_bytes()


def test_a_row_that_is_not_utf8_fails_the_write_as_before(tmp_path):
    """A lone surrogate among encoded rows: the error names its position in the batch of text, as
    writing the whole batch as text does."""
    rows = [{"a": "好"}, {"a": "坏\ud800"}]
    with pytest.raises(UnicodeEncodeError) as plain:
        formats.write_rows(tmp_path / "plain.jsonl", rows)
    with pytest.raises(UnicodeEncodeError) as mixed:
        with formats.RowWriter(tmp_path / "mixed.jsonl") as out:
            out.write_encoded(json.dumps(rows[0], ensure_ascii=False).encode("utf-8"))
            out.write(rows[1])
    assert str(mixed.value) == str(plain.value) and "position 19" in str(plain.value)
    assert not (tmp_path / "plain.jsonl").exists() and not (tmp_path / "mixed.jsonl").exists()


@pytest.mark.parametrize("row", [
    {"instruction": "订单 \"A-1\" 的\\退款", "input": "", "output": "换货页面\n<answer>退货</answer>\t\x00\x1f\u2028"},
    {"prompt": "\ud800 孤立代理项", "completion": "😀 emoji"},
    {},
    {"instruction": "x", "input": "", "output": "y", "images": ["a.jpg", "图/b.png"]},
    {"instruction": "x", "output": "y", "images": []},
    {"instruction": "x", "images": ["a.jpg", 1, None], "history": [["问", "答"]], "pair": ("a", "b")},
    {"conversations": [{"from": "human", "value": "<image>问"}, {"from": "gpt", "value": "答"}],
     "images": ["a.jpg"]},
    {"id": 5, "score": 0.5, "ok": True, "none": None},
    {1: "integer key", None: "null key", "s": "text"},
    "just text",
    ["a", 1, None],
])
def test_a_row_is_encoded_as_json_dumps_writes_it(row):
    """encode_row joins a row of strings from its escaped strings (faster than the encoder): the
    text must be json.dumps(row, ensure_ascii=False)'s, whatever the row holds."""
    assert encode_row(row) == json.dumps(row, ensure_ascii=False)


# --------------------------------------------------------------------------- plain rows

# Texts chosen to break a template: JSON's escapes, "<image>" (judged by value), a lone surrogate
# (no UTF-8 file holds it), whitespace, and values that are empty or not text.
_PLAIN_TEXTS = ["请概括主旨。", '订单 "A-1" 的\\退款\n\t\x00\u2028', "<image>图里有什么？", "<look>看</look><think>想</think>",
                "\ud800 孤立", " ", "", None, 5, ["列表"], "%s {} {0}"]


class _Incomparable:
    """A value whose == raises (as a NumPy array's truth value does): never plain, never a crash."""

    def __eq__(self, other):
        raise ValueError("ambiguous")

    __hash__ = object.__hash__


_PLAIN_EXTRAS = [{}, {"input": ""}, {"input": None}, {"input": "补充"}, {"input": 0}, {"input": _Incomparable()},
                 {"system": ""}, {"system": "你是客服。"}, {"system": []}, {"history": []}, {"history": [["问", "答"]]},
                 {"images": []}, {"images": ["a.jpg"]}, {"id": 7, "source": "logs", "meta": {"k": "v"}}]


def _general_row(fmt, record):
    """What the builder writes for `record` without plain_row_encoder: the row's JSON, or None."""
    try:
        row = formats.to_row(fmt, record, ())
    except formats.FormatError:
        return None
    return None if formats.validate_row(fmt, row) else encode_row(row)


@pytest.mark.parametrize("fmt", list(formats.FORMATS))
def test_a_plain_row_is_the_row_the_general_path_writes(fmt):
    """plain_row_encoder skips building and checking rows, so for every record it accepts it must
    give exactly the general path's JSON, and it must accept a plain record of ordinary text."""
    from pipelines.datasets.formats.plain import plain_row_encoder

    encode = plain_row_encoder(fmt)
    sft = formats.get_format(fmt).kind == "sft"
    names = ("prompt", "response") if sft else ("prompt", "chosen", "rejected")
    accepted = 0
    for extra in _PLAIN_EXTRAS:
        for text in _PLAIN_TEXTS:
            for position in range(len(names)):
                record = {name: "平常的文字" for name in names} | {names[position]: text} | extra
                plain = encode(record)
                if plain is not None:
                    accepted += 1
                    assert plain == _general_row(fmt, record), (record, plain)
                    assert json.loads(plain) == formats.to_row(fmt, record, ())
    ordinary = encode({name: f"第{i}段：你好" for i, name in enumerate(names)})
    if fmt == "sharegpt_multimodal":  # every row needs images: there is no plain row
        assert accepted == 0 and ordinary is None
    else:
        assert ordinary is not None and accepted > 0
