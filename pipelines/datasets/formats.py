"""Training-data formats: writers, readers written from each format's spec, validation and the
matching LLaMA-Factory `dataset_info.json` entries (as documented in LLaMA-Factory's data/README.md and TRL's dataset_formats.md).

The record contract
-------------------
Every producer in datafix (classification, generation, logs, feedback, DPO) hands the builder and the
writers *records*: plain dicts with these keys

    id        str   stable id of the record within its source (reports, dedup, split grouping)
    source    str   which source it came from ("logs", "feedback", "classification", …)
    prompt    str   the user turn (the instruction). Multimodal prompts carry one "<image>" per image.
    input     str   optional; alpaca's "input". Other formats join it to the prompt with "\\n"
                    (as LLaMA-Factory does when it converts alpaca).
    response  str   SFT: the assistant answer (reasoning inside it: "<think>…</think>answer")
    system    str   optional system prompt
    history   list  optional earlier turns, [[q1, a1], [q2, a2]]
    images    list  optional image paths (as the trainer will see them)
    chosen    str   preference: the better answer
    rejected  str   preference: the worse answer (one pair per record)
    meta      dict  optional, for reports and filters; never written to a training file

SFT records have `response`; preference records have `chosen` and `rejected`.

Using it
--------
    rows = [to_row("sharegpt", r) for r in records]          # one record -> one training row
    write_records(path, "alpaca", records)                   # .json array or .jsonl by suffix
    validate_row("alpaca_preference", row)                   # -> list of error strings ([] = ok)
    dataset_info_entry("sharegpt", "data.json", columns={"system", "images"})
    read_records(path, "sharegpt")                           # reader from the spec -> records

Writers stream (a JSON array is written row by row), write UTF-8 with `ensure_ascii=False` so CJK
stays readable, and write the same optional columns on every row (`columns`), because
`datasets`/LLaMA-Factory raise KeyError when a configured column is missing from the file.
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core import files

IMAGE_TOKEN = "<image>"

# Optional columns a format can carry on every row; which ones a file has goes into dataset_info.
OPTIONAL_COLUMNS = ("system", "history", "images")


class FormatError(ValueError):
    """A row or record does not match its format's spec."""


@dataclass(frozen=True)
class Format:
    name: str
    label: str
    kind: str  # "sft" or "preference"
    optional_columns: tuple[str, ...]  # which of OPTIONAL_COLUMNS the format can write


FORMATS: dict[str, Format] = {
    f.name: f
    for f in (
        Format("alpaca", "Alpaca (instruction/input/output)", "sft", ("system", "history", "images")),
        Format("sharegpt", "ShareGPT (conversations)", "sft", ("system", "images")),
        Format("sharegpt_multimodal", "ShareGPT 多模态 (conversations + images)", "sft", ("system", "images")),
        Format("openai", "OpenAI messages", "sft", ()),
        Format("trl_prompt_completion", "TRL prompt-completion", "sft", ()),
        # TRL conversational SFT; with images, TRL's vision layout (content parts + an images column).
        Format("trl_messages", "TRL messages（多模态：content 含 image）", "sft", ("images",)),
        Format("alpaca_preference", "Alpaca 偏好对 (LLaMA-Factory ranking)", "preference", ("system", "history", "images")),
        Format("sharegpt_preference", "ShareGPT 偏好对 (LLaMA-Factory ranking)", "preference", ("system", "images")),
        Format("trl_preference", "TRL 偏好对 (standard)", "preference", ()),
        Format("trl_preference_conversational", "TRL 偏好对 (conversational，多模态：content 含 image)", "preference", ("images",)),
        # The team's own DPO trainer (seed 002) reads `reject`, not TRL's `rejected`.
        Format("prompt_chosen_reject", "prompt / chosen / reject（团队训练脚本）", "preference", ()),
    )
}
SFT_FORMATS = tuple(n for n, f in FORMATS.items() if f.kind == "sft")
PREFERENCE_FORMATS = tuple(n for n, f in FORMATS.items() if f.kind == "preference")


def get_format(name: str) -> Format:
    """The Format called `name`; FormatError listing the known names otherwise."""
    try:
        return FORMATS[name]
    except KeyError:
        raise FormatError(f"未知格式 {name!r}；可选：{', '.join(FORMATS)}") from None


# --------------------------------------------------------------------------- record helpers

def full_prompt(record: dict) -> str:
    """The user turn as formats without an `input` field see it: prompt + "\\n" + input."""
    prompt, extra = record.get("prompt") or "", record.get("input") or ""
    return f"{prompt}\n{extra}" if prompt and extra else prompt or extra


def image_token_count(texts: Iterable[str]) -> int:
    return sum((t or "").count(IMAGE_TOKEN) for t in texts)


def with_image_tokens(prompt: str, image_count: int) -> str:
    """Prefix the prompt with the `<image>` tokens it is missing so tokens == images."""
    missing = image_count - prompt.count(IMAGE_TOKEN)
    return IMAGE_TOKEN * missing + prompt if missing > 0 else prompt


def columns_of(records: Iterable[dict]) -> set[str]:
    """Which optional columns (system, history, images) any of the records uses."""
    found: set[str] = set()
    for record in records:
        found.update(c for c in OPTIONAL_COLUMNS if record.get(c))
        if len(found) == len(OPTIONAL_COLUMNS):
            break
    return found


def _history(record: dict) -> list[list[str]]:
    return [[q, a] for q, a in (record.get("history") or [])]


# --------------------------------------------------------------------------- record -> row

def to_row(fmt: str, record: dict, columns: Iterable[str] | None = None) -> dict:
    """One training row of format `fmt` for `record`.

    `columns` are the optional columns written on every row (default: those the record has), so a
    file has the same keys throughout; a column the format cannot carry raises FormatError.
    """
    spec = get_format(fmt)
    cols = set(columns) if columns is not None else {c for c in OPTIONAL_COLUMNS if record.get(c)}
    if fmt == "sharegpt_multimodal":
        cols.add("images")
    carries = _CARRIES[fmt]
    wanted = cols.union(c for c in OPTIONAL_COLUMNS if record.get(c))
    if "images" in wanted and "images" not in carries:
        # Dropping the image but keeping "<image>" in the prompt would train on text alone.
        vision = {"preference": "trl_preference_conversational、alpaca_preference 或 sharegpt_preference",
                  "sft": "trl_messages、sharegpt_multimodal 或 alpaca"}[spec.kind]
        raise FormatError(f"{fmt} 不能携带图片：图片样本请选 {vision}")
    if not wanted <= carries:
        raise FormatError(f"{fmt} 不能表示 {', '.join(sorted(wanted - carries))}")
    if spec.kind == "sft" and record.get("response") is None:
        raise FormatError("SFT 记录缺少 response")
    if spec.kind == "preference" and (record.get("chosen") is None or record.get("rejected") is None):
        raise FormatError("偏好记录缺少 chosen 或 rejected")
    return _WRITERS[fmt](record, cols)


def _carries(spec: Format) -> frozenset[str]:
    """The optional record fields a format can represent (as a column or inside its turns)."""
    carried = set(spec.optional_columns)
    # sharegpt-style and messages formats carry history as earlier turns, not as a column.
    if spec.name in {"sharegpt", "sharegpt_multimodal", "openai", "sharegpt_preference",
                     "trl_preference_conversational", "trl_messages"}:
        carried.add("history")
    # OpenAI messages and TRL conversational carry the system prompt as a system message.
    if spec.name in {"openai", "trl_preference_conversational", "trl_messages"}:
        carried.add("system")
    return frozenset(carried)


_CARRIES = {name: _carries(spec) for name, spec in FORMATS.items()}


def _alpaca_base(record: dict, cols: set[str]) -> dict:
    row: dict[str, Any] = {"instruction": record.get("prompt") or "", "input": record.get("input") or ""}
    return row


def _alpaca_optional(row: dict, record: dict, cols: set[str]) -> dict:
    if "system" in cols:
        row["system"] = record.get("system") or ""
    if "history" in cols:
        row["history"] = _history(record)
    if "images" in cols:
        row["images"] = list(record.get("images") or [])
    return row


def _write_alpaca(record: dict, cols: set[str]) -> dict:
    row = _alpaca_base(record, cols)
    row["output"] = record["response"]
    return _alpaca_optional(row, record, cols)


def _turns_sharegpt(record: dict) -> list[dict]:
    turns = []
    for q, a in _history(record):
        turns += [{"from": "human", "value": q}, {"from": "gpt", "value": a}]
    turns.append({"from": "human", "value": full_prompt(record)})
    return turns


def _sharegpt_optional(row: dict, record: dict, cols: set[str]) -> dict:
    if "system" in cols:
        row["system"] = record.get("system") or ""
    if "images" in cols:
        row["images"] = list(record.get("images") or [])
    return row


def _write_sharegpt(record: dict, cols: set[str]) -> dict:
    turns = _turns_sharegpt(record) + [{"from": "gpt", "value": record["response"]}]
    return _sharegpt_optional({"conversations": turns}, record, cols)


def _messages(record: dict) -> list[dict]:
    messages = []
    if record.get("system"):
        messages.append({"role": "system", "content": record["system"]})
    for q, a in _history(record):
        messages += [{"role": "user", "content": q}, {"role": "assistant", "content": a}]
    messages.append({"role": "user", "content": full_prompt(record)})
    return messages


def _write_openai(record: dict, cols: set[str]) -> dict:
    return {"messages": _messages(record) + [{"role": "assistant", "content": record["response"]}]}


def _write_trl_prompt_completion(record: dict, cols: set[str]) -> dict:
    return {"prompt": full_prompt(record), "completion": record["response"]}


def _write_alpaca_preference(record: dict, cols: set[str]) -> dict:
    row = _alpaca_base(record, cols)
    row["chosen"] = record["chosen"]
    row["rejected"] = record["rejected"]
    return _alpaca_optional(row, record, cols)


def _write_sharegpt_preference(record: dict, cols: set[str]) -> dict:
    row = {
        "conversations": _turns_sharegpt(record),
        "chosen": {"from": "gpt", "value": record["chosen"]},
        "rejected": {"from": "gpt", "value": record["rejected"]},
    }
    return _sharegpt_optional(row, record, cols)


def _write_trl_preference(record: dict, cols: set[str]) -> dict:
    return {"prompt": full_prompt(record), "chosen": record["chosen"], "rejected": record["rejected"]}


def _content_parts(text: str) -> list[dict]:
    """TRL's vision content: each "<image>" becomes an {"type": "image"} part, in place."""
    parts: list[dict] = []
    for i, piece in enumerate(text.split(IMAGE_TOKEN)):
        if i:
            parts.append({"type": "image"})
        if piece:
            parts.append({"type": "text", "text": piece})
    return parts


def _vision_messages(messages: list[dict]) -> list[dict]:
    return [{"role": m["role"], "content": _content_parts(m["content"])} for m in messages]


def _images_row(row: dict, record: dict, cols: set[str]) -> dict:
    """With an images column, messages carry content parts (as TRL's vision processors expect)."""
    if "images" not in cols:
        return row
    for key in ("messages", "prompt", "chosen", "rejected"):
        if isinstance(row.get(key), list):
            row[key] = _vision_messages(row[key])
    row["images"] = list(record.get("images") or [])
    return row


def _write_trl_preference_conversational(record: dict, cols: set[str]) -> dict:
    row = {
        "prompt": _messages(record),
        "chosen": [{"role": "assistant", "content": record["chosen"]}],
        "rejected": [{"role": "assistant", "content": record["rejected"]}],
    }
    return _images_row(row, record, cols)


def _write_trl_messages(record: dict, cols: set[str]) -> dict:
    row = {"messages": _messages(record) + [{"role": "assistant", "content": record["response"]}]}
    return _images_row(row, record, cols)


def _write_prompt_chosen_reject(record: dict, cols: set[str]) -> dict:
    return {"prompt": full_prompt(record), "chosen": record["chosen"], "reject": record["rejected"]}


_WRITERS = {
    "alpaca": _write_alpaca,
    "sharegpt": _write_sharegpt,
    "sharegpt_multimodal": _write_sharegpt,
    "openai": _write_openai,
    "trl_prompt_completion": _write_trl_prompt_completion,
    "alpaca_preference": _write_alpaca_preference,
    "sharegpt_preference": _write_sharegpt_preference,
    "trl_preference": _write_trl_preference,
    "trl_preference_conversational": _write_trl_preference_conversational,
    "trl_messages": _write_trl_messages,
    "prompt_chosen_reject": _write_prompt_chosen_reject,
}


# --------------------------------------------------------------------------- validation
# Exact keys per FORMATS.md: the errors users hit most are wrong column keys, `output` in
# preference rows and image count != <image> token count.

_REQUIRED = {
    "alpaca": {"instruction", "input", "output"},
    "sharegpt": {"conversations"},
    "sharegpt_multimodal": {"conversations", "images"},
    "openai": {"messages"},
    "trl_prompt_completion": {"prompt", "completion"},
    "alpaca_preference": {"instruction", "input", "chosen", "rejected"},
    "sharegpt_preference": {"conversations", "chosen", "rejected"},
    "trl_preference": {"prompt", "chosen", "rejected"},
    "trl_preference_conversational": {"prompt", "chosen", "rejected"},
    "trl_messages": {"messages"},
    "prompt_chosen_reject": {"prompt", "chosen", "reject"},
}


def _is_str(value: Any) -> bool:
    return isinstance(value, str)


def validate_row(fmt: str, row: Any) -> list[str]:
    """Every way `row` breaks format `fmt` (exact keys, roles, types, image tokens); [] if valid."""
    get_format(fmt)
    if not isinstance(row, dict):
        return ["行不是 JSON 对象"]
    errors: list[str] = []
    required = _REQUIRED[fmt]
    allowed = _ALLOWED[fmt]
    missing = required - row.keys()
    if missing:
        errors.append(f"缺少键 {', '.join(sorted(missing))}")
    extra = row.keys() - allowed
    if extra:
        errors.append(f"多余的键 {', '.join(sorted(extra))}")
    if missing:
        return errors
    errors += _CHECKERS[fmt](fmt, row)
    if "system" in row and not _is_str(row["system"]):
        errors.append("system 必须是字符串")
    if fmt in _TRL_VISION:
        errors += _check_image_parts(fmt, row)
    elif "images" in row:
        errors += _check_images(fmt, row)
    if fmt in LLAMAFACTORY_FORMATS and not errors:
        errors += _check_literal_image_tokens(fmt, row)
    return errors


# LLaMA-Factory's own formats, where "<image>" is its image placeholder in every turn. (TRL's string
# formats also get LLaMA-Factory entries, for text models; there "<image>" stays plain text.)
LLAMAFACTORY_FORMATS = frozenset({"alpaca", "sharegpt", "sharegpt_multimodal", "openai", "alpaca_preference",
                                  "sharegpt_preference"})
_TRL_VISION = frozenset({"trl_messages", "trl_preference_conversational"})


def _turn_texts(fmt: str, row: dict) -> tuple[list[str], list[str]]:
    """(prompt-side texts, answer texts) of a LLaMA-Factory row."""
    if fmt.startswith("alpaca"):
        prompts = [row.get("instruction"), row.get("input")] + [q for q, _ in row.get("history") or []]
        answers = [a for _, a in row.get("history") or []]
        answers += [row.get(k) for k in ("output", "chosen", "rejected") if k in row]
    elif fmt == "openai":
        messages = row.get("messages") or []
        prompts = [m.get("content") for m in messages if m.get("role") != "assistant"]
        answers = [m.get("content") for m in messages if m.get("role") == "assistant"]
    else:
        turns = [t.get("value") for t in row.get("conversations") or []]
        prompts, answers = turns[0::2], turns[1::2]
        answers += [row[k].get("value") for k in ("chosen", "rejected") if isinstance(row.get(k), dict)]
    return [t for t in prompts if _is_str(t)], [t for t in answers if _is_str(t)]


def _check_literal_image_tokens(fmt: str, row: dict) -> list[str]:
    """A "<image>" LLaMA-Factory would take for an image that is not there (it then rejects the whole
    dataset under a vision template): in a row without images, or in an answer."""
    prompts, answers = _turn_texts(fmt, row)
    if not row.get("images") and image_token_count(prompts + answers):
        return [f"文本中含有字面 {IMAGE_TOKEN} 但没有图片：LLaMA-Factory 会把它当作图片占位符（多模态模板下整份数据集报错）"]
    if image_token_count(answers):
        return [f"回答中含有字面 {IMAGE_TOKEN}：LLaMA-Factory 会把它当作图片占位符"]
    return []


def _check_image_parts(fmt: str, row: dict) -> list[str]:
    """TRL vision rows: as many {"type": "image"} parts as images, and no "<image>" left in text."""
    images = row.get("images")
    if images is not None and (not isinstance(images, list) or not all(_is_str(p) for p in images)):
        return ["images 必须是路径字符串列表"]
    parts = [part for key in ("messages", "prompt", "chosen", "rejected") if isinstance(row.get(key), list)
             for m in row[key] if isinstance(m, dict) and isinstance(m.get("content"), list) for part in m["content"]]
    count = sum(1 for p in parts if isinstance(p, dict) and p.get("type") == "image")
    if count != len(images or []):
        return [f"图片数 {len(images or [])} 与 image 内容块数 {count} 不一致"]
    return []


def _check_images(fmt: str, row: dict) -> list[str]:
    images = row["images"]
    if not isinstance(images, list) or not all(_is_str(p) for p in images):
        return ["images 必须是路径字符串列表"]
    if fmt.startswith("alpaca"):
        texts = [row.get("instruction"), row.get("input")] + [q for q, _ in row.get("history") or []]
    else:
        texts = [t.get("value") for t in row.get("conversations") or [] if isinstance(t, dict)]
    tokens = image_token_count(texts)
    if tokens != len(images):
        return [f"图片数 {len(images)} 与 <image> 标记数 {tokens} 不一致"]
    if fmt == "sharegpt_multimodal" and not images:
        return ["多模态记录没有图片"]
    return []


def _check_alpaca(fmt: str, row: dict) -> list[str]:
    answer_keys = ("output",) if fmt == "alpaca" else ("chosen", "rejected")
    errors = [f"{k} 必须是字符串" for k in ("instruction", "input", *answer_keys) if not _is_str(row[k])]
    if not (row["instruction"] or row["input"]):
        errors.append("instruction 为空")
    if "history" in row:
        history = row["history"]
        if not isinstance(history, list) or not all(
            isinstance(t, list) and len(t) == 2 and all(_is_str(x) for x in t) for t in history
        ):
            errors.append("history 必须是 [问, 答] 对的列表")
    return errors


def _check_sharegpt(fmt: str, row: dict) -> list[str]:
    turns = row["conversations"]
    if not isinstance(turns, list) or not turns:
        return ["conversations 必须是非空列表"]
    errors = []
    for i, turn in enumerate(turns):
        if not isinstance(turn, dict) or set(turn) != {"from", "value"} or not _is_str(turn.get("value")):
            errors.append(f"conversations[{i}] 必须是 {{from, value}}")
            continue
        # Human at odd positions (1st, 3rd, …), gpt at even ones.
        expected = "human" if i % 2 == 0 else "gpt"
        if turn["from"] != expected:
            errors.append(f"conversations[{i}].from 应为 {expected}，实为 {turn['from']}")
    if fmt == "sharegpt_preference":
        if len(turns) % 2 != 1:
            errors.append("偏好对的 conversations 必须以 human 结尾")
        for key in ("chosen", "rejected"):
            value = row[key]
            if not isinstance(value, dict) or value.get("from") != "gpt" or not _is_str(value.get("value")):
                errors.append(f"{key} 必须是 {{\"from\": \"gpt\", \"value\": …}}")
    elif len(turns) % 2 != 0:
        errors.append("conversations 必须以 gpt 结尾")
    return errors


def _check_messages(messages: Any, where: str, final_role: str | None) -> list[str]:
    if not isinstance(messages, list) or not messages:
        return [f"{where} 必须是非空列表"]
    errors = []
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or set(m) != {"role", "content"} or not _valid_content(m.get("content")):
            errors.append(f"{where}[{i}] 必须是 {{role, content}}")
        elif m["role"] not in {"system", "user", "assistant"}:
            errors.append(f"{where}[{i}].role 未知：{m['role']}")
        elif m["role"] == "system" and i != 0:
            errors.append(f"{where}[{i}] system 只能在第一条")
    roles = [m.get("role") for m in messages if isinstance(m, dict) and m.get("role") != "system"]
    for i, role in enumerate(roles):
        if role != ("user" if i % 2 == 0 else "assistant"):
            errors.append(f"{where} 的 user/assistant 必须交替")
            break
    if final_role and roles and roles[-1] != final_role:
        errors.append(f"{where} 必须以 {final_role} 结尾")
    return errors


def _valid_content(content: Any) -> bool:
    """A string, or TRL's content parts: [{"type": "text", "text": …} | {"type": "image"}]."""
    if _is_str(content):
        return True
    return isinstance(content, list) and bool(content) and all(
        isinstance(p, dict) and ((p.get("type") == "text" and set(p) == {"type", "text"} and _is_str(p["text"]))
                                 or p == {"type": "image"})
        for p in content)


def _check_openai(fmt: str, row: dict) -> list[str]:
    if any(isinstance(m, dict) and not _is_str(m.get("content")) for m in row["messages"] or []):
        return ["messages 的 content 必须是字符串"]
    return _check_messages(row["messages"], "messages", "assistant")


def _check_trl_strings(fmt: str, row: dict) -> list[str]:
    return [f"{k} 必须是字符串" for k in _REQUIRED[fmt] if not _is_str(row[k])]


def _check_trl_conversational(fmt: str, row: dict) -> list[str]:
    errors = _check_messages(row["prompt"], "prompt", "user")
    for key in ("chosen", "rejected"):
        value = row[key]
        if not (isinstance(value, list) and len(value) == 1 and isinstance(value[0], dict)
                and value[0].get("role") == "assistant" and _valid_content(value[0].get("content"))
                and set(value[0]) == {"role", "content"}):
            errors.append(f"{key} 必须是一条 assistant 消息的列表")
    return errors


def _check_trl_messages(fmt: str, row: dict) -> list[str]:
    return _check_messages(row["messages"], "messages", "assistant")


_ALLOWED = {name: _REQUIRED[name] | set(spec.optional_columns) for name, spec in FORMATS.items()}
_CHECKERS = {
    "alpaca": _check_alpaca, "alpaca_preference": _check_alpaca,
    "sharegpt": _check_sharegpt, "sharegpt_multimodal": _check_sharegpt,
    "sharegpt_preference": _check_sharegpt, "openai": _check_openai,
    "trl_prompt_completion": _check_trl_strings, "trl_preference": _check_trl_strings,
    "trl_preference_conversational": _check_trl_conversational,
    "trl_messages": _check_trl_messages, "prompt_chosen_reject": _check_trl_strings,
}


def validate_record(fmt: str, record: dict, columns: Iterable[str] | None = None) -> list[str]:
    """Errors of the row `record` would become (conversion errors included)."""
    try:
        row = to_row(fmt, record, columns)
    except FormatError as exc:
        return [str(exc)]
    return validate_row(fmt, row)


# --------------------------------------------------------------------------- readers (from the spec)

def from_row(fmt: str, row: dict) -> dict:
    """Read one training row back into the record contract (without id/source/meta).

    Written from the format's spec, independently of the writers, so round-trip tests compare two
    readings of the spec. Raises FormatError on a row that breaks the spec.
    """
    errors = validate_row(fmt, row)
    if errors:
        raise FormatError("; ".join(errors))
    return _READERS[fmt](row)


def _optional_into(record: dict, row: dict) -> dict:
    if row.get("system"):
        record["system"] = row["system"]
    if row.get("history"):
        record["history"] = [list(t) for t in row["history"]]
    if row.get("images"):
        record["images"] = list(row["images"])
    return record


def _read_alpaca(row: dict) -> dict:
    record = {"prompt": row["instruction"], "response": row["output"]}
    if row["input"]:
        record["input"] = row["input"]
    return _optional_into(record, row)


def _read_alpaca_preference(row: dict) -> dict:
    record = {"prompt": row["instruction"], "chosen": row["chosen"], "rejected": row["rejected"]}
    if row["input"]:
        record["input"] = row["input"]
    return _optional_into(record, row)


def _pairs(values: list[str]) -> list[list[str]]:
    return [[values[i], values[i + 1]] for i in range(0, len(values) - 1, 2)]


def _read_sharegpt(row: dict) -> dict:
    values = [t["value"] for t in row["conversations"]]
    record = {"prompt": values[-2], "response": values[-1]}
    return _optional_into(record, {**row, "history": _pairs(values[:-2])})


def _read_sharegpt_preference(row: dict) -> dict:
    values = [t["value"] for t in row["conversations"]]
    record = {"prompt": values[-1], "chosen": row["chosen"]["value"], "rejected": row["rejected"]["value"]}
    return _optional_into(record, {**row, "history": _pairs(values[:-1])})


def _text_of(content: Any) -> str:
    """A message's text; TRL's image parts read back as "<image>" (the record contract's token)."""
    if _is_str(content):
        return content
    return "".join(IMAGE_TOKEN if p.get("type") == "image" else p.get("text", "") for p in content)


def _split_messages(messages: list[dict]) -> dict:
    system = _text_of(messages[0]["content"]) if messages and messages[0]["role"] == "system" else ""
    contents = [_text_of(m["content"]) for m in messages if m["role"] != "system"]
    return {"system": system, "contents": contents}


def _read_openai(row: dict) -> dict:
    parts = _split_messages(row["messages"])
    contents = parts["contents"]
    record = {"prompt": contents[-2], "response": contents[-1]}
    return _optional_into(record, {"system": parts["system"], "history": _pairs(contents[:-2])})


def _read_trl_prompt_completion(row: dict) -> dict:
    return {"prompt": row["prompt"], "response": row["completion"]}


def _read_trl_preference(row: dict) -> dict:
    return {"prompt": row["prompt"], "chosen": row["chosen"], "rejected": row["rejected"]}


def _read_trl_preference_conversational(row: dict) -> dict:
    parts = _split_messages(row["prompt"])
    contents = parts["contents"]
    record = {"prompt": contents[-1], "chosen": _text_of(row["chosen"][0]["content"]),
              "rejected": _text_of(row["rejected"][0]["content"])}
    return _optional_into(record, {"system": parts["system"], "history": _pairs(contents[:-1]),
                                   "images": row.get("images")})


def _read_trl_messages(row: dict) -> dict:
    parts = _split_messages(row["messages"])
    contents = parts["contents"]
    record = {"prompt": contents[-2], "response": contents[-1]}
    return _optional_into(record, {"system": parts["system"], "history": _pairs(contents[:-2]),
                                   "images": row.get("images")})


def _read_prompt_chosen_reject(row: dict) -> dict:
    return {"prompt": row["prompt"], "chosen": row["chosen"], "rejected": row["reject"]}


_READERS = {
    "alpaca": _read_alpaca,
    "sharegpt": _read_sharegpt,
    "sharegpt_multimodal": _read_sharegpt,
    "openai": _read_openai,
    "trl_prompt_completion": _read_trl_prompt_completion,
    "alpaca_preference": _read_alpaca_preference,
    "sharegpt_preference": _read_sharegpt_preference,
    "trl_preference": _read_trl_preference,
    "trl_preference_conversational": _read_trl_preference_conversational,
    "trl_messages": _read_trl_messages,
    "prompt_chosen_reject": _read_prompt_chosen_reject,
}


# --------------------------------------------------------------------------- files

def container_for(path: str | Path) -> str:
    """"jsonl" for a .jsonl file, "json" (one array) otherwise."""
    return "jsonl" if str(path).endswith(".jsonl") else "json"


class RowWriter:
    """Streams rows into a .json array or a .jsonl file (UTF-8, CJK not escaped).

        with RowWriter(path) as out:
            out.write({"instruction": "…", …})

    The rows go to a temporary file beside `path` (`core.files`), renamed to `path` when the
    block ends normally and removed when it raises: a killed or failed write never leaves a half
    file under the final name. `overwrite=False` refuses to replace an existing `path`.
    """

    def __init__(self, path: str | Path, container: str | None = None, *, overwrite: bool = True):
        self.path = Path(path)
        self.container = container or container_for(self.path)
        self.overwrite = overwrite
        self.count = 0
        self._fh = None
        self._context = None

    def __enter__(self) -> RowWriter:
        self._context = files.atomic_open(self.path, "w", overwrite=self.overwrite)
        self._fh = self._context.__enter__()
        if self.container == "json":
            self._fh.write("[")
        return self

    def write(self, row: dict) -> None:
        if self.container == "json":
            self._fh.write(("\n  " if self.count == 0 else ",\n  ") + json.dumps(row, ensure_ascii=False))
        else:
            self._fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        self.count += 1

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is None and self.container == "json":
            self._fh.write("\n]\n" if self.count else "]\n")
        return bool(self._context.__exit__(exc_type, exc, tb))


def write_rows(path: str | Path, rows: Iterable[dict], container: str | None = None, *,
               overwrite: bool = True) -> int:
    """Write already-formatted rows (temporary file, then rename); returns how many."""
    with RowWriter(path, container, overwrite=overwrite) as out:
        for row in rows:
            out.write(row)
    return out.count


def write_records(path: str | Path, fmt: str, records: Iterable[dict], *,
                  columns: Iterable[str] | None = None, container: str | None = None) -> int:
    """Write records in format `fmt` to `path`; returns the row count.

    `columns`: optional columns written on every row. Left as None with a list of records, it is
    computed from the records (a generator is then materialised once — pass `columns` to stream).
    """
    if columns is None:
        records = list(records)
        columns = columns_of(records)
    columns = set(columns)
    return write_rows(path, (to_row(fmt, r, columns) for r in records), container)


def iter_rows(path: str | Path) -> Iterator[dict]:
    """Rows of a .json array or .jsonl file (format detected from the first character)."""
    with open(path, encoding="utf-8") as fh:
        head = fh.read(1)
        while head and head.isspace():
            head = fh.read(1)
        if head == "[":
            fh.seek(0)
            yield from json.load(fh)
            return
        fh.seek(0)
        for line in fh:
            if line.strip():
                yield json.loads(line)


def read_records(path: str | Path, fmt: str) -> list[dict]:
    """Read a training file of format `fmt` back into records (spec readers)."""
    return [from_row(fmt, row) for row in iter_rows(path)]


# --------------------------------------------------------------------------- dataset_info.json

def dataset_info_entry(fmt: str, file_name: str, columns: Iterable[str] = ()) -> dict | None:
    """The LLaMA-Factory `dataset_info.json` entry for a file of format `fmt`.

    `columns`: the optional columns the file carries on every row (system, history, images); only
    those are listed, since LLaMA-Factory raises KeyError for a listed column that is absent.
    TRL's string formats are described with LLaMA-Factory column mappings (it reads them as alpaca);
    TRL's conversational formats (content parts, one-message lists) have no LLaMA-Factory reading:
    None, and no entry is written for them.
    """
    spec = get_format(fmt)
    present = set(columns) & set(spec.optional_columns)
    if fmt == "sharegpt_multimodal":
        present.add("images")
    entry: dict[str, Any] = {"file_name": file_name}
    if fmt in {"alpaca", "alpaca_preference"}:
        if fmt == "alpaca_preference":
            entry["ranking"] = True
        cols = {"prompt": "instruction", "query": "input"}
        if fmt == "alpaca":
            cols["response"] = "output"
        else:
            cols.update(chosen="chosen", rejected="rejected")
        cols.update({c: c for c in ("system", "history", "images") if c in present})
        entry["columns"] = cols
    elif fmt in {"sharegpt", "sharegpt_multimodal", "sharegpt_preference"}:
        entry["formatting"] = "sharegpt"
        if fmt == "sharegpt_preference":
            entry["ranking"] = True
        cols = {"messages": "conversations"}
        cols.update({c: c for c in ("system", "images") if c in present})
        if fmt == "sharegpt_preference":
            cols.update(chosen="chosen", rejected="rejected")
        entry["columns"] = cols
    elif fmt == "openai":
        entry["formatting"] = "sharegpt"
        entry["columns"] = {"messages": "messages"}
        entry["tags"] = {"role_tag": "role", "content_tag": "content", "user_tag": "user",
                         "assistant_tag": "assistant", "system_tag": "system"}
    elif fmt == "trl_prompt_completion":
        entry["columns"] = {"prompt": "prompt", "response": "completion"}
    elif fmt in {"trl_preference", "prompt_chosen_reject"}:
        entry["ranking"] = True
        entry["columns"] = {"prompt": "prompt", "chosen": "chosen",
                            "rejected": "reject" if fmt == "prompt_chosen_reject" else "rejected"}
    else:
        return None
    return entry


def write_dataset_info(path: str | Path, entries: dict[str, dict]) -> None:
    """Add `entries` ({dataset name: entry}) to the dataset_info.json at `path` (written atomically).

    An existing entry of the same name is replaced only when it is identical; one that names another
    file is a DatasetInfoConflict (never silently repointed). An unreadable existing file is an error too.
    """
    path = Path(path)
    existing = _merged_dataset_info(path, entries)
    files.atomic_write_text(path, json.dumps(existing, ensure_ascii=False, indent=2) + "\n")


def check_dataset_info(path: str | Path, entries: dict[str, dict]) -> None:
    """Raise DatasetInfoConflict now if `write_dataset_info(path, entries)` would (before any data is written)."""
    _merged_dataset_info(Path(path), entries)


def _merged_dataset_info(path: Path, entries: dict[str, dict]) -> dict:
    existing: dict = {}
    if path.exists():
        try:
            existing = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise DatasetInfoConflict(f"{path} 不是有效的 JSON，未修改：{exc}") from None
        if not isinstance(existing, dict):
            raise DatasetInfoConflict(f"{path} 不是 JSON 对象，未修改")
    clashes = [name for name, entry in entries.items() if name in existing and existing[name] != entry]
    if clashes:
        raise DatasetInfoConflict(
            f"{path} 中已有同名数据集 {', '.join(clashes)}，指向其他文件；请换一个数据集名称或输出目录")
    existing.update(entries)
    return existing


class DatasetInfoConflict(FormatError):
    """dataset_info.json already names that dataset differently (or cannot be read)."""
