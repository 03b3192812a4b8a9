"""LLaMA-Factory's `dataset_info.json`: the entry for a file of each format, merged into the file
beside the data without ever repointing an existing name."""
from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from core import files

from .spec import FormatError, get_format


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
