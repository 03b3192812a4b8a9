"""The batch check: rejects with the same content under many unrelated prompts (`boilerplate`)."""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .issues import (
    BOILERPLATE_LSH_THRESHOLD,
    BOILERPLATE_MIN_CONTAINMENT,
    BOILERPLATE_MIN_FILL,
    BOILERPLATE_MIN_PROMPTS,
    BOILERPLATE_MIN_SIMILARITY,
    BOILERPLATE_MIN_TOKENS,
    ISSUE_NAMES,
    SAME_PROMPT_MIN_SIMILARITY,
    TEMPLATE_MIN_SHARE,
)
from .pair import PairResult
from .text import _CJK_RUN, _runs, _stem, content_grams, normalize, similarity, size, strip_reasoning

# --------------------------------------------------------------------------- batch: boilerplate
@dataclass
class BoilerplateCluster:
    """Rejects that are one template: their positions in the batch and how many distinct prompts they answer.

    `members` are the boilerplate rejects; `filled` are rejects of the same template that carry their
    own prompt's specifics (a template reply, not boilerplate) and are not flagged.
    """

    members: list[int]
    prompts: int
    example: str
    filled: list[int] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"count": len(self.members), "prompts": self.prompts, "example": self.example[:300], "filled": len(self.filled)}


def residual(prompt_grams: set[str], text: str) -> list[str | None]:
    """The text's tokens with those its prompt explains replaced by None.

    A CJK character is explained when a bigram it is part of occurs in the prompt; a word when the
    prompt has it. What is left is what the reject says beyond its prompt.
    """
    left: list[str | None] = []
    for run in _runs(text):
        if _CJK_RUN.match(run):
            explained = [False] * len(run)
            for i in range(len(run) - 1):
                if run[i : i + 2] in prompt_grams:
                    explained[i] = explained[i + 1] = True
            left.extend(None if e else ch for ch, e in zip(run, explained))
        else:
            word = _stem(run)
            left.append(None if word in prompt_grams and (len(run) > 1 or run.isdigit()) else word)
    return left


def _shingles(tokens: list[str | None]) -> set[str]:
    """Token trigrams that do not cross a removed (explained) stretch."""
    shingles = set()
    for i in range(len(tokens) - 2):
        window = tokens[i : i + 3]
        if None not in window:
            shingles.add("\x1f".join(window))  # type: ignore[arg-type]
    return shingles


def _jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


def _same_content(a: set[str], b: set[str]) -> bool:
    if _jaccard(a, b) >= BOILERPLATE_MIN_SIMILARITY:
        return True
    smaller = min(len(a), len(b))
    return smaller >= BOILERPLATE_MIN_TOKENS and len(a & b) / smaller >= BOILERPLATE_MIN_CONTAINMENT


def _unrelated_prompts(prompts: Iterable[str]) -> int:
    """How many mutually unrelated prompts there are, counted up to BOILERPLATE_MIN_PROMPTS.

    "第4题" and "第14题" of the same question are one prompt: the same reject for both is normal.
    """
    representatives: list[str] = []
    for prompt in prompts:
        if all(similarity(prompt, rep) < SAME_PROMPT_MIN_SIMILARITY for rep in representatives):
            representatives.append(prompt)
            if len(representatives) >= BOILERPLATE_MIN_PROMPTS:
                break
    return len(representatives)


def _fill_size(units: set[str], prompt_units: set[str], template: set[str]) -> int:
    """How much of its own prompt's specifics a reject carries: prompt content that is not template.

    An order number or other id (≥ 4 letters/digits) counts 2, like a word.
    """
    return size((units & prompt_units) - template)


def _split_filled(members: list[int], prompts: Sequence[str], rejects: Sequence[str]) -> tuple[list[int], list[int]]:
    """(boilerplate members, filled-in template replies) of one cluster of near-same residuals."""
    units = {m: content_grams(strip_reasoning(rejects[m]), keep_stop_words=True) for m in members}
    counts = Counter(u for m in members for u in units[m])
    template = {u for u, n in counts.items() if n >= TEMPLATE_MIN_SHARE * len(members)} if len(members) > 1 else set()
    boilerplate, filled = [], []
    for m in members:
        prompt_units = content_grams(prompts[m], keep_stop_words=True)
        (filled if _fill_size(units[m], prompt_units, template) >= BOILERPLATE_MIN_FILL else boilerplate).append(m)
    return boilerplate, filled


def find_boilerplate(prompts: Sequence[str], rejects: Sequence[str]) -> list[BoilerplateCluster]:
    """Groups of rejects with the same content under ≥ BOILERPLATE_MIN_PROMPTS unrelated prompts.

    Recurrence is judged on each reject's residual — what is left after removing what its own prompt
    explains — so "订单 123 的耳机…" and "订单 456 的台灯…" are one template. Within a template, a reject
    that still carries its own prompt's specifics (order number, product) is a filled-in reply to that
    prompt and is not boilerplate; boilerplate is the same content whatever the prompt.

    Exact duplicates are grouped first; distinct residuals are then joined through MinHash-LSH
    candidates verified by exact Jaccard, so the cost stays near-linear in the batch size.
    """
    from datasketch import MinHash, MinHashLSH

    by_residual: dict[tuple, list[int]] = {}
    for index, reject in enumerate(rejects):
        left = residual(content_grams(prompts[index]), strip_reasoning(reject))
        if sum(token is not None for token in left) >= BOILERPLATE_MIN_TOKENS:
            by_residual.setdefault(tuple(left), []).append(index)
    keys = list(by_residual)
    parent = list(range(len(keys)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    if len(keys) > 1:
        shingles = [_shingles(list(k)) for k in keys]
        # Candidates from a lower LSH threshold, then verified exactly: at 0.5 itself LSH misses about one
        # pair in six around Jaccard 0.6 (a template with and without its closing sentence).
        lsh = MinHashLSH(threshold=BOILERPLATE_LSH_THRESHOLD, num_perm=64)
        hashes = []
        # Generating the permutations is most of a MinHash's cost: make them once and share them.
        template = MinHash(num_perm=64, seed=1)
        for i, sh in enumerate(shingles):
            mh = MinHash(num_perm=64, seed=1, permutations=template.permutations, scheme=template.scheme)
            mh.update_batch([s.encode("utf-8") for s in sh])
            hashes.append(mh)
            lsh.insert(str(i), mh)
        for i, mh in enumerate(hashes):
            for other in lsh.query(mh):
                j = int(other)
                # Already joined through another member: no need to verify (keeps big clusters linear).
                if j > i and find(i) != find(j) and _same_content(shingles[i], shingles[j]):
                    parent[find(j)] = find(i)

    groups: dict[int, list[int]] = {}
    for i in range(len(keys)):
        groups.setdefault(find(i), []).append(i)
    clusters = []
    for key_ids in groups.values():
        members = sorted(m for k in key_ids for m in by_residual[keys[k]])
        if _unrelated_prompts(prompts[m] for m in members) < BOILERPLATE_MIN_PROMPTS:
            continue
        boilerplate, filled = _split_filled(members, prompts, rejects)
        if _unrelated_prompts(prompts[m] for m in boilerplate) >= BOILERPLATE_MIN_PROMPTS:
            # The most frequent text is the clearest example of the template.
            example = Counter(normalize(rejects[m]) for m in boilerplate).most_common(1)[0][0]
            first = next(m for m in boilerplate if normalize(rejects[m]) == example)
            distinct_prompts = len({normalize(prompts[m]) for m in boilerplate})
            clusters.append(BoilerplateCluster(boilerplate, distinct_prompts, rejects[first], filled))
    clusters.sort(key=lambda c: (-len(c.members), c.members[0]))
    return clusters


def apply_boilerplate(results: Sequence[PairResult], clusters: Iterable[BoilerplateCluster]) -> None:
    """Mark the members of each cluster with the `boilerplate` issue and their cluster's size."""
    for number, cluster in enumerate(clusters, start=1):
        for index in cluster.members:
            result = results[index]
            if "boilerplate" not in result.issues:
                result.issues.append("boilerplate")
            result.metrics["boilerplate_cluster"] = number
            result.metrics["boilerplate_prompts"] = cluster.prompts
            result.issues.sort(key=ISSUE_NAMES.index)
