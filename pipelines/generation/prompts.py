"""What the vision model is asked: the question type of an item (a stable draw) and the messages
asking for a question and for its response."""
from __future__ import annotations

import hashlib

from ..models import SourceItem

def is_multiple_choice_for(external_id: str, *, ratio: float, seed: int) -> bool:
    """Whether the item gets a multiple-choice question: a stable draw, so a resume agrees."""
    digest = hashlib.sha256(f"{seed}:{external_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < ratio


# --------------------------------------------------------------------------- prompts
# First lines double as markers the LLM simulator's responders recognise.
QUESTION_SYSTEM_PROMPT = """You write questions for visual question answering training data.
Look at the image and its wiki title and write ONE question that can only be answered by looking
carefully at the image and reasoning about it. Output the question only."""
QUESTION_KIND_OPEN = "Question type: open. Write an open question (no options)."
QUESTION_KIND_CHOICE = (
    "Question type: multiple choice. Write the question, then four options on their own lines "
    "as 'A. …', 'B. …', 'C. …', 'D. …' with exactly one correct option."
)
RESPONSE_SYSTEM_PROMPT = """You answer visual questions for training data, showing your work.
Write the response exactly as <look>what you see in the image that matters</look><think>step-by-step
reasoning from what you see and the facts</think><answer>the final answer</answer>. For a multiple
choice question the answer starts with the option letter."""


def source_context(item: SourceItem | dict) -> str:
    """The source item's title and facts as prompt text."""
    title = item["wiki_title"] if isinstance(item, dict) else item.wiki_title
    facts = item["facts"] if isinstance(item, dict) else item.facts
    fact_lines = "\n".join(f"- {f}" for f in facts) or "(none)"
    return f"Wiki title: {title}\nFacts:\n{fact_lines}"


def question_messages(payload: dict, params: dict) -> list[dict]:
    """Messages asking for a question about the payload's image."""
    kind = QUESTION_KIND_CHOICE if payload["is_multiple_choice"] else QUESTION_KIND_OPEN
    return [
        {"role": "system", "content": QUESTION_SYSTEM_PROMPT},
        {"role": "user", "content": f"{source_context(payload)}\n\n{kind}"},
    ]


def response_messages(payload: dict, question: str, params: dict) -> list[dict]:
    """Messages asking for the <look>/<think>/<answer> response to `question`."""
    return [
        {"role": "system", "content": RESPONSE_SYSTEM_PROMPT},
        {"role": "user", "content": f"{source_context(payload)}\n\nQuestion:\n{question}"},
    ]
