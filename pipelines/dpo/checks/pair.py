"""The per-pair checks (`check_pair`): every issue but `boilerplate`, which needs the whole batch."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from .issues import (
    ECHO_MIN_COPY,
    ECHO_MIN_INSTRUCTION_COPY,
    ECHO_MIN_MARGIN,
    ECHO_MIN_PIECE,
    ECHO_MIN_SIZE,
    IDENTICAL_MIN_SIMILARITY,
    OFF_TOPIC_MAX_CHAR_RELEVANCE,
    OFF_TOPIC_MAX_PROMPT_MENTIONS,
    OFF_TOPIC_MAX_RELEVANCE,
    OFF_TOPIC_MIN_SIZE,
    SWAPPED_CONTAINED_MIN_EXTRA,
    SWAPPED_CONTAINED_MIN_LENGTH_RATIO,
    SWAPPED_MIN_CHOSEN_COVERAGE,
    SWAPPED_MIN_EXTRA_GRAMS,
    SWAPPED_MIN_LENGTH_RATIO,
    SWAPPED_MIN_RICHNESS_RATIO,
    TRUNCATED_MIN_CHARS,
    TRUNCATED_MIN_FRAGMENT,
)
from .text import (
    _CJK_RUN,
    _ELLIPSIS,
    _FILLER_PATTERN,
    _MID_SENTENCE,
    _RUN,
    _SENTENCE_END,
    _STOP_CHARS,
    _STOP_WORDS,
    _TERMINAL,
    _round,
    _runs,
    _skeleton,
    _stem,
    _tokens,
    containment,
    content_chars,
    content_grams,
    list_item_count,
    normalize,
    prompt_mentions,
    similarity,
    size,
    split_instruction,
    strip_markup,
    strip_reasoning,
)

# --------------------------------------------------------------------------- per pair
@dataclass
class PairResult:
    """The issues found on one pair and the numbers they were decided on."""

    issues: list[str] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"issues": list(self.issues), "metrics": dict(self.metrics)}


def _is_word_char(ch: str) -> bool:
    return bool(ch) and (ch.isalnum() or bool(_CJK_RUN.match(ch)))


def _truncation_signal(chosen: str, rejected: str, finish_reason: str | None) -> str | None:
    """Why the reject looks cut off, or None."""
    if finish_reason == "length":
        return "token_limit"
    text = strip_markup(rejected).rstrip()
    chosen_text = strip_markup(chosen).rstrip()
    if text.count("<think>") > text.count("</think>"):
        return "unclosed_think"
    if text.count("```") % 2:
        return "unclosed_code_block"
    if text.endswith(_ELLIPSIS) and not chosen_text.endswith(_ELLIPSIS):
        return "ellipsis"
    last = text[-1:]
    if last in _MID_SENTENCE:
        return "mid_sentence_punctuation"
    if not _is_word_char(last):
        return None
    # The chosen answer cut inside a word: everything up to the cut is the chosen's, which goes on.
    norm_reject, norm_chosen = normalize(text), normalize(chosen_text)
    if len(norm_reject) < len(norm_chosen) and norm_chosen.startswith(norm_reject) and _is_word_char(norm_chosen[len(norm_reject)]):
        return "cut_inside_chosen_text"
    fragment = _SENTENCE_END.split(text)[-1]
    if (
        len(text) >= TRUNCATED_MIN_CHARS
        and chosen_text[-1:] in _TERMINAL
        and size(content_grams(fragment, keep_stop_words=True)) >= TRUNCATED_MIN_FRAGMENT
        # "类别：物流查询" is a label, not an unfinished sentence.
        and not re.search(r"[：:]", fragment)
    ):
        return "no_sentence_end"
    return None


def _strip_fillers(text: str) -> str:
    return _FILLER_PATTERN.sub(" ", text)


def echo_share(prompt: str, text: str) -> tuple[float | None, int]:
    """How much of a text is copied from the prompt: (share of its content, content size), by length.

    Content is CJK characters other than function characters, and words other than function words
    (a word weighs 2); fillers ("好的", "Sure!") and chat-template labels ("问题：", "Q:") are left out.
    A character is copied when a bigram it is part of occurs in the prompt, a word when the prompt has
    it. Counted by length, so a prompt echoed twice weighs twice.
    """
    prompt_grams = content_grams(_strip_fillers(prompt), keep_stop_words=True)
    copied = total = 0
    for run in _runs(_strip_fillers(text)):
        if _CJK_RUN.match(run):
            for i, ch in enumerate(run):
                if ch in _STOP_CHARS:
                    continue
                total += 1
                copied += run[max(i - 1, 0) : i + 1] in prompt_grams or run[i : i + 2] in prompt_grams
        elif run not in _STOP_WORDS and (len(run) > 1 or run.isdigit()):
            total += 2
            copied += 2 * (_stem(run) in prompt_grams)
    return (copied / total if total else None), total


def _compact(text: str) -> str:
    return "".join(_runs(_strip_fillers(text)))


def _is_echo(prompt: str, chosen: str, rejected: str, metrics: dict[str, Any]) -> bool:
    copy, rejected_size = echo_share(prompt, rejected)
    piece = _compact(rejected)
    # A contiguous piece of the prompt, even one cut mid-word ("What should I pack for a thr"), is all copy.
    contiguous = bool(piece) and piece in _compact(prompt)
    if contiguous:
        copy = 1.0
    metrics["prompt_copy"] = _round(copy)
    if copy is None or copy < ECHO_MIN_COPY:
        return False
    # Short rejects made of the prompt's words are often answers ("15% of 80 is 15", "情绪：负面", an option
    # the prompt lists); at that size only the prompt's own beginning copied back is an echo.
    if rejected_size < ECHO_MIN_SIZE and not (
        _compact(prompt).startswith(piece) and len(_tokens(_strip_fillers(rejected))) >= ECHO_MIN_PIECE
    ):
        return False
    # The chosen answer's beginning (which may restate the prompt) cut off is a truncated answer.
    if piece and _compact(chosen).startswith(piece):
        return False
    instruction, task_input = split_instruction(prompt)
    if instruction:
        only_instruction = content_grams(instruction, keep_stop_words=True) - content_grams(task_input, keep_stop_words=True)
        copied = size(content_grams(rejected, keep_stop_words=True) & only_instruction)
        metrics["instruction_copy"] = copied
        return copied >= ECHO_MIN_INSTRUCTION_COPY
    chosen_copy, _ = echo_share(prompt, chosen)
    metrics["chosen_prompt_copy"] = _round(chosen_copy)
    return chosen_copy is None or copy - chosen_copy >= ECHO_MIN_MARGIN


def check_pair(prompt: str, chosen: str, rejected: str, *, finish_reason: str | None = None) -> PairResult:
    """Run the per-pair checks (all but `boilerplate`, which needs the batch).

    `finish_reason` is the model's, when the reject was generated ("length" = cut at max_tokens).
    """
    result = PairResult()
    issues, metrics = result.issues, result.metrics
    chosen_answer, rejected_answer = strip_reasoning(chosen), strip_reasoning(rejected)
    metrics["chosen_chars"] = len(chosen.strip())
    metrics["rejected_chars"] = len(rejected.strip())

    signal = _truncation_signal(chosen, rejected, finish_reason)
    empty_sides = [
        side for side, text in (("rejected", rejected_answer), ("chosen", chosen_answer)) if not _RUN.search(strip_markup(text))
    ]
    if empty_sides:
        # Nothing else can be judged on an empty side. A reject that is all unfinished reasoning was
        # cut off before it reached its answer: that is the finding, not emptiness.
        if empty_sides == ["rejected"] and signal == "unclosed_think":
            metrics["truncation"] = signal
            issues.append("truncated")
        else:
            metrics["empty_side"] = empty_sides
            issues.append("empty")
        return result

    metrics["similarity"] = _round(similarity(chosen_answer, rejected_answer))
    identical = _skeleton(chosen_answer) == _skeleton(rejected_answer) or metrics["similarity"] >= IDENTICAL_MIN_SIMILARITY
    if identical:
        issues.append("identical")

    prompt_grams, chosen_grams, rejected_grams = (
        content_grams(prompt),
        content_grams(chosen_answer),
        content_grams(rejected_answer),
    )
    rejected_size = size(rejected_grams)
    relevance = containment(rejected_grams, prompt_grams | chosen_grams)
    char_relevance = containment(content_chars(rejected_answer), content_chars(prompt) | content_chars(chosen_answer))
    metrics.update(
        relevance=_round(relevance),
        char_relevance=_round(char_relevance),
        rejected_size=rejected_size,
        rejected_prompt_overlap=_round(containment(rejected_grams, prompt_grams)),
        rejected_chosen_overlap=_round(containment(rejected_grams, chosen_grams)),
        chosen_relevance=_round(containment(chosen_grams, prompt_grams)),
    )

    echo = not identical and _is_echo(prompt, chosen_answer, rejected_answer, metrics)
    if echo:
        issues.append("echo")

    mentions = prompt_mentions(prompt, rejected_answer)
    metrics["prompt_mentions"] = len(mentions)
    off_topic = (
        not identical
        and not echo
        and rejected_size >= OFF_TOPIC_MIN_SIZE
        and len(mentions) <= OFF_TOPIC_MAX_PROMPT_MENTIONS
        and relevance is not None
        and relevance < OFF_TOPIC_MAX_RELEVANCE
        and (char_relevance or 0) < OFF_TOPIC_MAX_CHAR_RELEVANCE
    )
    if off_topic:
        issues.append("off_topic")

    # A near-copy of the chosen answer that only lost its final full stop is not cut off.
    if signal and not (identical and signal == "no_sentence_end"):
        metrics["truncation"] = signal
        issues.append("truncated")

    length_ratio = len(rejected_answer) / max(len(chosen_answer), 1)
    richness_ratio = len(rejected_grams) / max(len(chosen_grams), 1)
    chosen_coverage = len(chosen_grams & rejected_grams) / len(chosen_grams) if chosen_grams else 0.0
    contained = bool(_skeleton(chosen_answer)) and _skeleton(chosen_answer) in _skeleton(rejected_answer)
    metrics.update(
        length_ratio=_round(length_ratio),
        richness_ratio=_round(richness_ratio),
        chosen_coverage=_round(chosen_coverage),
        chosen_list_items=list_item_count(chosen_answer),
        rejected_list_items=list_item_count(rejected_answer),
    )
    extra = size(rejected_grams - chosen_grams)
    swapped_contained = (
        contained and length_ratio >= SWAPPED_CONTAINED_MIN_LENGTH_RATIO and extra >= SWAPPED_CONTAINED_MIN_EXTRA
    )
    swapped_richer = (
        length_ratio >= SWAPPED_MIN_LENGTH_RATIO
        and richness_ratio >= SWAPPED_MIN_RICHNESS_RATIO
        and len(rejected_grams) - len(chosen_grams) >= SWAPPED_MIN_EXTRA_GRAMS
        and chosen_coverage >= SWAPPED_MIN_CHOSEN_COVERAGE
    )
    if not (off_topic or identical or echo) and (swapped_contained or swapped_richer):
        issues.append("likely_swapped")
    return result
