"""Model-free rejects: a degradation of the chosen answer (truncated, list items dropped, the
`<think>` reasoning dropped) or a near-miss (the answer of the most similar other prompt)."""
from __future__ import annotations

import json
import math
import re
from collections import Counter
from functools import lru_cache
from typing import Any

from ..jobs.kinds import ItemFailed
from . import checks
from .params import TRUNCATE_KEEP
from .sources import PromptRecord, iter_source_records

_BOUNDARY = re.compile(r"[。！？!?；;，,、\n ]")
_THINK_BLOCK = re.compile(r"\s*<think>.*?</think>\s*", re.DOTALL)
_LIST_LINE = re.compile(r"^\s*(?:[-*•·]|\d+[.、)）]|[（(]\d+[)）]|[一二三四五六七八九十]+、)\s*\S")
_INLINE_LIST = re.compile(r"[^、，,。；;！？!?\n：:]+(?:、[^、，,。；;！？!?\n：:]+)+")


def truncate_answer(chosen: str, keep: float = TRUNCATE_KEEP) -> str:
    """The first `keep` share of the answer, cut at a punctuation or space boundary when one is near."""
    text = chosen.strip()
    cut = max(1, math.ceil(len(text) * keep))
    if cut >= len(text):
        raise ItemFailed("not_applicable", "chosen 太短，无法截断")
    # Prefer ending just before a boundary in the last 30 % of the kept part.
    window = text[int(cut * 0.7) : cut]
    boundaries = [m.start() for m in _BOUNDARY.finditer(window)]
    if boundaries:
        cut = int(cut * 0.7) + boundaries[-1]
    result = text[:cut].rstrip()
    if not result:
        raise ItemFailed("not_applicable", "chosen 太短，无法截断")
    return result


def drop_list_items(chosen: str) -> str:
    """The answer with the second half of its list dropped (line items, else a 、-separated list)."""
    lines = chosen.split("\n")
    item_lines = [i for i, line in enumerate(lines) if _LIST_LINE.match(line)]
    if len(item_lines) >= 2:
        keep = math.ceil(len(item_lines) / 2)
        first_dropped = item_lines[keep]
        dropped = set()
        in_dropped_item = False
        for i in range(first_dropped, len(lines)):
            if i in item_lines:
                in_dropped_item = item_lines.index(i) >= keep
            elif not lines[i].strip():
                in_dropped_item = False
            if in_dropped_item:
                dropped.add(i)
        return "\n".join(line for i, line in enumerate(lines) if i not in dropped).strip()
    matches = list(_INLINE_LIST.finditer(chosen))
    if matches:
        match = max(matches, key=lambda m: m.group(0).count("、"))
        parts = match.group(0).split("、")
        kept = "、".join(parts[: math.ceil(len(parts) / 2)])
        return (chosen[: match.start()] + kept + chosen[match.end() :]).strip()
    raise ItemFailed("not_applicable", "chosen 中没有可删的列表项")


def drop_reasoning(chosen: str) -> str:
    """The answer without its `<think>…</think>` reasoning."""
    if "<think>" not in chosen or "</think>" not in chosen:
        raise ItemFailed("not_applicable", "chosen 中没有 <think> 推理部分")
    answer = _THINK_BLOCK.sub("\n", chosen).strip()
    if not answer:
        raise ItemFailed("not_applicable", "去掉推理后没有答案")
    return answer


class NearMissIndex:
    """Finds, for a prompt, the most similar *other* prompt of the source (IDF-weighted shared n-grams)."""

    def __init__(self, records: list[PromptRecord]):
        self.records = records
        self.grams = [checks.content_grams(r.prompt, keep_stop_words=True) for r in records]
        self.postings: dict[str, list[int]] = {}
        for i, grams in enumerate(self.grams):
            for gram in grams:
                self.postings.setdefault(gram, []).append(i)
        total = max(len(records), 1)
        self.idf = {g: math.log(1 + total / len(ids)) for g, ids in self.postings.items()}
        self.position = {r.key: i for i, r in enumerate(records)}

    def near_miss(self, record: PromptRecord) -> PromptRecord:
        """The record whose prompt is most like `record`'s, with a different answer; ItemFailed if none."""
        own = self.position.get(record.key)
        grams = self.grams[own] if own is not None else checks.content_grams(record.prompt, keep_stop_words=True)
        scores: Counter = Counter()
        for gram in grams:
            ids = self.postings.get(gram, ())
            # A gram in most prompts says nothing about similarity; skip it (and keep this linear).
            if len(ids) > max(50, len(self.records) // 5):
                continue
            for i in ids:
                scores[i] += self.idf[gram]
        own_prompt, own_chosen = checks.normalize(record.prompt), checks.normalize(record.chosen)
        for i, _score in sorted(scores.items(), key=lambda item: (-item[1], item[0])):
            other = self.records[i]
            if i == own or checks.normalize(other.prompt) == own_prompt:
                continue
            if checks.normalize(other.chosen) == own_chosen:
                continue
            return other
        raise ItemFailed("not_applicable", "来源中没有相似的其他 prompt")


@lru_cache(maxsize=2)
def _near_miss_index(source_json: str, cache_token: Any) -> NearMissIndex:
    return NearMissIndex(list(iter_source_records(json.loads(source_json))))


def near_miss_index(source: dict, cache_token: Any = None) -> NearMissIndex:
    """The near-miss index of a whole source (cached per job: `cache_token` = job id)."""
    if cache_token is None:
        return NearMissIndex(list(iter_source_records(source)))
    return _near_miss_index(json.dumps(source, sort_keys=True), cache_token)
