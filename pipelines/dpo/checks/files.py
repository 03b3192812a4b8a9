"""Reading pair files: TRL (standard or conversational), alpaca- and sharegpt-style records, as JSON
lines or one JSON array; a malformed line is reported with its number and the rest go on."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

def message_text(value: Any, *, role: str | None = None) -> str:
    """Text of a field that is a string, a {"from"/"role", "value"/"content"} dict, or a list of them."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return str(value.get("content", value.get("value", "")) or "")
    if isinstance(value, list):
        texts = []
        for message in value:
            if not isinstance(message, dict):
                raise ValueError("a message list must hold objects")
            who = message.get("role", message.get("from"))
            if role is None or who in role.split("|"):
                texts.append(message_text(message))
        return "\n".join(texts)
    raise ValueError(f"unexpected value of type {type(value).__name__}")


def pair_from_record(record: Any) -> dict[str, str]:
    """Prompt, chosen and rejected from a TRL (standard or conversational), alpaca- or sharegpt-style record.

    The seed's `reject` key is accepted as `rejected`. Raises ValueError naming what is missing.
    """
    if not isinstance(record, dict):
        raise ValueError("a record must be a JSON object")
    if "rejected" in record:
        rejected = record["rejected"]
    elif "reject" in record:
        rejected = record["reject"]
    else:
        raise ValueError("missing key 'rejected' (or 'reject')")
    if "chosen" not in record:
        raise ValueError("missing key 'chosen'")
    if "prompt" in record:
        prompt = message_text(record["prompt"], role="user|human|system")
    elif "instruction" in record:
        prompt = str(record["instruction"] or "")
        if record.get("input"):
            prompt = f"{prompt}\n{record['input']}"
    elif "conversations" in record:
        prompt = message_text(record["conversations"], role="human|user")
    else:
        raise ValueError("missing key 'prompt' (or 'instruction', or 'conversations')")
    return {
        "prompt": prompt,
        "chosen": message_text(record["chosen"], role="assistant|gpt"),
        "rejected": message_text(rejected, role="assistant|gpt"),
    }


@dataclass
class PairLine:
    """One line of a pair file: its number, its id, and the pair or why it could not be read."""

    line_no: int
    id: Any
    pair: dict[str, str] | None = None
    error: str = ""


def read_pair_file(lines: Iterable[str | bytes]) -> Iterable[PairLine]:
    """Parse JSON lines into pairs; a malformed line yields a PairLine with its error, the rest go on."""
    import json

    for line_no, raw in enumerate(lines, start=1):
        if isinstance(raw, bytes):
            try:
                raw = raw.decode("utf-8-sig" if line_no == 1 else "utf-8")
            except UnicodeDecodeError as exc:
                yield PairLine(line_no, line_no, error=f"not UTF-8 ({exc.reason} at byte {exc.start})")
                continue
        raw = raw.strip()
        if line_no == 1:
            raw = raw.lstrip("\ufeff")
        if not raw:
            continue
        try:
            record = json.loads(raw)
        except json.JSONDecodeError as exc:
            yield PairLine(line_no, line_no, error=f"invalid JSON: {exc.msg} (column {exc.colno})")
            continue
        record_id = record.get("id", line_no) if isinstance(record, dict) else line_no
        try:
            yield PairLine(line_no, record_id, pair=pair_from_record(record))
        except ValueError as exc:
            yield PairLine(line_no, record_id, error=str(exc))


def load_pair_file(path) -> tuple[list[PairLine], list[PairLine]]:
    """Read a pair file (JSON lines, or one JSON array): (readable lines, malformed lines)."""
    import json
    from pathlib import Path

    path = Path(path)
    with path.open("rb") as fh:
        head = fh.read(64).lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith(b"["):
        # A LLaMA-Factory .json file: one array; "line" numbers are the record numbers.
        try:
            records = json.loads(path.read_text(encoding="utf-8-sig"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            return [], [PairLine(1, 1, error=f"invalid JSON array: {exc}")]
        parsed = []
        for number, record in enumerate(records, start=1):
            record_id = record.get("id", number) if isinstance(record, dict) else number
            try:
                parsed.append(PairLine(number, record_id, pair=pair_from_record(record)))
            except ValueError as exc:
                parsed.append(PairLine(number, record_id, error=str(exc)))
    else:
        with path.open("rb") as fh:
            parsed = list(read_pair_file(fh))
    return [p for p in parsed if p.pair is not None], [p for p in parsed if p.pair is None]
