"""Row checks: every way a row breaks its format's spec (exact keys, roles, types, image tokens)."""
from __future__ import annotations

from typing import Any

from .spec import FORMATS, IMAGE_TOKEN, get_format, image_token_count

# --------------------------------------------------------------------------- validation
# Exact keys per docs/formats.md: the errors users hit most are wrong column keys, `output` in
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
    missing = required.difference(row)
    if missing:
        errors.append(f"缺少键 {', '.join(sorted(missing))}")
    extra = row.keys() - allowed if not allowed.issuperset(row) else ()
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


def _contains_image_token(value: Any) -> bool:
    if type(value) is str:
        return "<" in value and IMAGE_TOKEN in value  # "<" alone is found ~8x faster, and is rare
    if type(value) is dict:
        values = value.values()
    elif type(value) is list:
        values = value
    else:
        return False
    # Strings tested in the loop, not by a call each: a row is mostly strings, checked per row.
    for v in values:
        if ("<" in v and IMAGE_TOKEN in v) if type(v) is str else _contains_image_token(v):
            return True
    return False


def _check_literal_image_tokens(fmt: str, row: dict) -> list[str]:
    """A "<image>" LLaMA-Factory would take for an image that is not there (it then rejects the whole
    dataset under a vision template): in a row without images, or in an answer."""
    if not _contains_image_token(row):  # the common case, without collecting the turns
        return []
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


_ALPACA_STRINGS = {"alpaca": ("instruction", "input", "output"),
                   "alpaca_preference": ("instruction", "input", "chosen", "rejected")}


def _check_alpaca(fmt: str, row: dict) -> list[str]:
    errors = []
    for k in _ALPACA_STRINGS[fmt]:  # a loop, not a comprehension: this runs once per written row
        if not isinstance(row[k], str):
            errors.append(f"{k} 必须是字符串")
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
