"""Measure the DPO pair checks on a labelled set (generate.py): precision and recall per issue.

    from tests.dpo_eval.evaluate import evaluate, format_scores
    scores = evaluate(EVAL_SET)          # runs pair_checks.check_pairs on the whole file as one batch

Recall of an issue is measured on the pairs of its kind (those whose `expected` names it); precision
counts a flag as correct when the pair's `expected` or `allowed` names it. `good_flagged` is the share
of good pairs (kinds starting with "good") flagged with anything.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
EVAL_SET = HERE / "pairs.jsonl"
TEMPLATED_SET = HERE / "templated_on_topic.jsonl"
HOLDOUT_SET = HERE / "holdout.jsonl"


def load(path: Path = EVAL_SET) -> list[dict]:
    with Path(path).open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


@dataclass
class IssueScore:
    name: str
    expected: int = 0  # pairs that must be flagged with it
    found: int = 0  # of those, flagged
    flagged: int = 0  # pairs flagged with it
    correct: int = 0  # of those, expected or allowed

    @property
    def recall(self) -> float | None:
        return self.found / self.expected if self.expected else None

    @property
    def precision(self) -> float | None:
        return self.correct / self.flagged if self.flagged else None


@dataclass
class Scores:
    pairs: int
    issues: dict[str, IssueScore]
    good: int
    good_flagged: int
    misses: list[dict] = field(default_factory=list)  # rows missing an expected issue
    false_alarms: list[dict] = field(default_factory=list)  # rows flagged with an issue not expected or allowed

    @property
    def good_flagged_share(self) -> float:
        return self.good_flagged / self.good if self.good else 0.0


def evaluate(path: Path = EVAL_SET) -> Scores:
    from pipelines.dpo import checks as pair_checks

    rows = load(path)
    results, _clusters = pair_checks.check_pairs(rows)
    # Issues the labels name but the checks do not know yet score zero recall rather than fail.
    names = list(pair_checks.ISSUE_NAMES) + sorted({n for row in rows for n in row["expected"]} - set(pair_checks.ISSUE_NAMES))
    issues = {name: IssueScore(name) for name in names}
    good = good_flagged = 0
    misses, false_alarms = [], []
    for row, result in zip(rows, results):
        found = set(result.issues)
        expected, allowed = set(row["expected"]), set(row["expected"]) | set(row["allowed"])
        for name in expected:
            issues[name].expected += 1
            issues[name].found += name in found
        for name in found:
            issues[name].flagged += 1
            issues[name].correct += name in allowed
        if expected - found:
            misses.append({**row, "issues": result.issues, "metrics": result.metrics})
        if found - allowed:
            false_alarms.append({**row, "issues": result.issues, "metrics": result.metrics})
        if row["kind"].startswith("good"):
            good += 1
            good_flagged += bool(found)
    return Scores(len(rows), issues, good, good_flagged, misses, false_alarms)


def format_scores(scores: Scores, title: str) -> str:
    def pct(value):
        return "   —  " if value is None else f"{value:6.1%}"

    lines = [f"{title}: {scores.pairs} pairs",
             f"  {'issue':<15} {'kind':>5} {'recall':>7} {'flagged':>8} {'precision':>9}"]
    for score in scores.issues.values():
        lines.append(f"  {score.name:<15} {score.expected:>5} {pct(score.recall):>7} {score.flagged:>8} {pct(score.precision):>9}")
    lines.append(f"  good pairs flagged with anything: {scores.good_flagged} / {scores.good} ({scores.good_flagged_share:.1%})")
    return "\n".join(lines)
