"""Row -> record: readers written from each format's spec, independently of the writers."""
from __future__ import annotations

from typing import Any

from .spec import IMAGE_TOKEN, FormatError
from .validation import validate_row


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
    if isinstance(content, str):
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
