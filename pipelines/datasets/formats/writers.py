"""Record -> row: one writer per training format (`to_row`), each following its format's spec."""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .spec import FORMATS, IMAGE_TOKEN, OPTIONAL_COLUMNS, Format, FormatError, full_prompt, get_format


def _history(record: dict) -> list[list[str]]:
    return [[q, a] for q, a in (record.get("history") or [])]


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
    own = [c for c in OPTIONAL_COLUMNS if record.get(c)]
    wanted = cols.union(own) if own else cols
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
    for value in map(record.get, _TEXT_FIELDS[spec.kind]):  # the common case, without a call: once per row
        if type(value) is not str and value is not None:
            break
    else:
        if not own:
            return _WRITERS[fmt](record, cols)
    error = record_value_error(record, _TEXT_FIELDS[spec.kind])
    if error:
        raise FormatError(error)
    return _WRITERS[fmt](record, cols)


# The record's text fields per kind. A number, list or dict there is no text: alpaca's checks always
# refused one, and every other format now refuses it alike (sharegpt would have joined a number
# input into the prompt; the image checks crashed on it), before any row is made.
_TEXT_FIELDS = {"sft": ("prompt", "input", "system", "response"),
                "preference": ("prompt", "input", "system", "chosen", "rejected")}


def record_value_error(record: dict, text_fields: Iterable[str]) -> str | None:
    """Why `record` cannot become a row of any format (a text field that is not a string, history
    that is not [q, a] text pairs, images that are not path strings), or None."""
    for key in text_fields:
        value = record.get(key)
        if value is not None and not isinstance(value, str):
            return f"{key} 必须是字符串（实为 {type(value).__name__}）"
    history, images = record.get("history"), record.get("images")
    if history and not (isinstance(history, (list, tuple)) and all(
            isinstance(t, (list, tuple)) and len(t) == 2 and all(isinstance(x, str) for x in t) for t in history)):
        return "history 必须是 [问, 答] 对的列表"
    if images and not (isinstance(images, (list, tuple)) and all(isinstance(p, str) for p in images)):
        return "images 必须是路径字符串列表"
    return None


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
    # _alpaca_base spelled out, and no optional columns without any: this runs once per written row.
    row = {"instruction": record.get("prompt") or "", "input": record.get("input") or "",
           "output": record["response"]}
    return _alpaca_optional(row, record, cols) if cols else row


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
