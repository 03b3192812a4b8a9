"""The format registry and the record contract's helpers: which training formats exist, what each
can carry, and the small functions every writer, reader and check shares."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

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
    # Only strings hold tokens; a value of another type is reported by the row's type checks.
    return sum(t.count(IMAGE_TOKEN) for t in texts if isinstance(t, str))


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
