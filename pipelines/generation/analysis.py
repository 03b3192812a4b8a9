"""Failure analysis of a generation run: what the team's analyze_failures.py printed, and more.

`analyze(passed, failed)` works on plain records in the team's file format (the dicts of
`generated_examples.jsonl` / `failed_examples.jsonl`), so the same numbers come out of the
database (`run_records`) and out of a directory of files (`load_run_dir`). Records may carry two
extra keys the files do not have: `attributes` (the source item's attributes) and `decision` (a
human's overrule decision), which add the by-attribute and judge-vs-human sections.
"""
from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from ..models import ReviewDecision

TAGS = ("look", "think", "answer")
HISTOGRAM_BINS = 10  # scores 0–10 in bins of 1; a 10 falls into the last bin
EXAMPLES_PER_REASON = 3
# An attribute is broken down only when it has few distinct values (a category, not an id).
MAX_ATTRIBUTE_VALUES = 12
OVERRULED = {ReviewDecision.ACCEPTED.value, ReviewDecision.EDITED.value}


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 2) if values else None


def _tag_text(response: str, tag: str) -> str:
    match = re.search(rf"<{tag}>(.*?)</{tag}>", response or "", re.S)
    return match.group(1).strip() if match else ""


def _has_all_tags(response: str) -> bool:
    return all(_tag_text(response, t) for t in TAGS)


def _reasons(record: dict) -> list[str]:
    reasons = record.get("failure_reason")
    if reasons is None:
        reasons = (record.get("validation_result") or {}).get("issues") or []
    return list(reasons) if isinstance(reasons, list) else [str(reasons)]


def _question_type(record: dict) -> str:
    return "multiple_choice" if record.get("is_multiple_choice") else "open"


def _features(records: list[dict]) -> dict[str, Any]:
    responses = [r.get("response") or "" for r in records]
    scores = [r["overall_score"] for r in records if isinstance(r.get("overall_score"), (int, float))]
    return {
        "count": len(records),
        "avg_response_length": _mean([len(x) for x in responses]),
        "avg_question_length": _mean([len(r.get("question") or "") for r in records]),
        **{f"avg_{t}_length": _mean([len(_tag_text(x, t)) for x in responses]) for t in TAGS},
        "complete_structure_rate": _rate(sum(_has_all_tags(x) for x in responses), len(responses)),
        "avg_score": _mean(scores),
    }


def _split(records_passed: list[dict], records_failed: list[dict], key) -> list[dict]:
    groups: dict[Any, list[int]] = defaultdict(lambda: [0, 0])
    for record in records_passed:
        groups[key(record)][0] += 1
    for record in records_failed:
        groups[key(record)][1] += 1
    rows = [
        {"value": value, "total": p + f, "passed": p, "failed": f, "pass_rate": _rate(p, p + f)}
        for value, (p, f) in groups.items()
    ]
    return sorted(rows, key=lambda r: (-r["total"], str(r["value"])))


def analyze(passed: list[dict], failed: list[dict], *, generation_errors: int = 0) -> dict[str, Any]:
    """Every number of the failure analysis for one run's passed and failed records."""
    total = len(passed) + len(failed)
    reason_counts = Counter(reason for r in failed for reason in dict.fromkeys(_reasons(r)))
    ranked = [
        {"reason": reason, "count": count, "share_of_failed": _rate(count, len(failed))}
        for reason, count in sorted(reason_counts.items(), key=lambda kv: (-kv[1], kv[0]))
    ]

    histogram = [{"bin": f"{i}–{i + 1}", "passed": 0, "failed": 0} for i in range(HISTOGRAM_BINS)]
    unscored = {"passed": 0, "failed": 0}
    for outcome, records in (("passed", passed), ("failed", failed)):
        for record in records:
            score = record.get("overall_score")
            if not isinstance(score, (int, float)):
                unscored[outcome] += 1
                continue
            index = min(HISTOGRAM_BINS - 1, max(0, int(score)))
            histogram[index][outcome] += 1

    attribute_names = sorted({name for r in passed + failed for name in (r.get("attributes") or {})})
    by_attribute = {}
    for name in attribute_names:
        rows = _split(passed, failed, lambda r, n=name: str((r.get("attributes") or {}).get(n, "—")))
        if 1 < len(rows) <= MAX_ATTRIBUTE_VALUES:
            by_attribute[name] = rows

    examples: dict[str, list[dict]] = {}
    for row in ranked:
        matching = [r for r in failed if row["reason"] in _reasons(r)][:EXAMPLES_PER_REASON]
        examples[row["reason"]] = [
            {
                "id": r.get("id"),
                "question": r.get("question", ""),
                "response": r.get("response", ""),
                "overall_score": r.get("overall_score"),
            }
            for r in matching
        ]

    return {
        "totals": {
            "total": total,
            "passed": len(passed),
            "failed": len(failed),
            "pass_rate": _rate(len(passed), total),
            "generation_errors": generation_errors,
        },
        "failure_reasons": ranked,
        "score_histogram": histogram,
        "unscored": unscored,
        "by_question_type": _split(passed, failed, _question_type),
        "by_attribute": by_attribute,
        "comparison": {"passed": _features(passed), "failed": _features(failed)},
        "examples_by_reason": examples,
        "agreement": agreement(failed),
    }


def agreement(failed: list[dict]) -> dict[str, Any]:
    """Judge vs human on failed examples: how often a human overruled the judge, overall and per reason."""
    decided = [r for r in failed if (r.get("decision") or ReviewDecision.PENDING.value) != ReviewDecision.PENDING.value]
    overruled = [r for r in decided if r.get("decision") in OVERRULED]
    per_reason: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])  # failed, decided, overruled
    for record in failed:
        decision = record.get("decision") or ReviewDecision.PENDING.value
        for reason in dict.fromkeys(_reasons(record)):
            per_reason[reason][0] += 1
            per_reason[reason][1] += decision != ReviewDecision.PENDING.value
            per_reason[reason][2] += decision in OVERRULED
    rows = [
        {"reason": reason, "failed": f, "decided": d, "overruled": o, "overrule_rate": _rate(o, d)}
        for reason, (f, d, o) in per_reason.items()
    ]
    rows.sort(key=lambda r: (-r["failed"], r["reason"]))
    return {
        "failed": len(failed),
        "decided": len(decided),
        "overruled": len(overruled),
        "rejected": len(decided) - len(overruled),
        "overrule_rate": _rate(len(overruled), len(decided)),
        "agreement_rate": _rate(len(decided) - len(overruled), len(decided)),
        "per_reason": rows,
    }


# --------------------------------------------------------------------------- files
def _read_jsonl(path: Path) -> list[dict]:
    if not path.exists():
        return []
    records = []
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path.name} 第 {number} 行不是合法 JSON: {exc.msg}") from None
    return records


def load_run_dir(directory: str | Path) -> tuple[list[dict], list[dict], dict]:
    """(passed, failed, pipeline report) read from a run's output directory."""
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"目录不存在: {directory}")
    passed = _read_jsonl(directory / "generated_examples.jsonl")
    failed = _read_jsonl(directory / "failed_examples.jsonl")
    report_path = directory / "pipeline_report.json"
    report = json.loads(report_path.read_text(encoding="utf-8")) if report_path.exists() else {}
    return passed, failed, report


def _pct(rate: float | None) -> str:
    return "—" if rate is None else f"{rate * 100:.1f}%"


def format_report(analysis: dict[str, Any]) -> str:
    """The analysis as the text analyze_failures.py printed (section banners, counts, percentages)."""
    rule = "=" * 80
    t = analysis["totals"]
    lines = [rule, "OVERALL STATISTICS", rule]
    lines.append(f"Total examples generated: {t['total']}")
    lines.append(f"Successful: {t['passed']} ({_pct(t['pass_rate'])})")
    fail_rate = None if t["pass_rate"] is None else 1 - t["pass_rate"]
    lines.append(f"Failed: {t['failed']} ({_pct(fail_rate)})")
    if t.get("generation_errors"):
        lines.append(f"Generation errors: {t['generation_errors']}")
    lines += ["", rule, "VALIDATION FAILURE ANALYSIS", rule, "Most common validation issues:"]
    for row in analysis["failure_reasons"]:
        lines.append(f"  - {row['reason']}: {row['count']}")
    if not analysis["failure_reasons"]:
        lines.append("  (no failed examples)")
    lines += ["", rule, "SCORE DISTRIBUTION", rule]
    for row in analysis["score_histogram"]:
        lines.append(f"  {row['bin']:>6}: passed {row['passed']:>4}  failed {row['failed']:>4}")
    unscored = analysis["unscored"]
    if unscored["passed"] or unscored["failed"]:
        lines.append(f"  no score: {unscored['passed'] + unscored['failed']}")
    lines += ["", rule, "QUESTION TYPE ANALYSIS", rule]
    for row in analysis["by_question_type"]:
        name = "Multiple choice" if row["value"] == "multiple_choice" else "Open"
        lines.append(f"  {name}: {row['passed']}/{row['total']} passed ({_pct(row['pass_rate'])})")
    for name, rows in analysis["by_attribute"].items():
        lines += ["", f"By source attribute '{name}':"]
        for row in rows:
            lines.append(f"  {row['value']}: {row['passed']}/{row['total']} passed ({_pct(row['pass_rate'])})")
    lines += ["", rule, "SUCCESSFUL vs FAILED COMPARISON", rule]
    passed_f, failed_f = analysis["comparison"]["passed"], analysis["comparison"]["failed"]
    labels = [
        ("avg_response_length", "Avg response length (chars)"),
        ("avg_question_length", "Avg question length (chars)"),
        ("avg_look_length", "Avg <look> length"),
        ("avg_think_length", "Avg <think> length"),
        ("avg_answer_length", "Avg <answer> length"),
        ("complete_structure_rate", "Complete <look>/<think>/<answer>"),
        ("avg_score", "Avg overall score"),
    ]
    lines.append(f"  {'':<34}{'Successful':>12}{'Failed':>12}")
    for key, label in labels:
        a, b = passed_f[key], failed_f[key]
        if key.endswith("_rate"):
            a, b = _pct(a), _pct(b)
        lines.append(f"  {label:<34}{'—' if a is None else a:>12}{'—' if b is None else b:>12}")
    lines += ["", rule, "SAMPLE COMPARISON", rule]
    for reason, examples in analysis["examples_by_reason"].items():
        lines.append(f"[{reason}]")
        for ex in examples[:1]:
            lines.append(f"  id: {ex['id']}  score: {ex['overall_score']}")
            lines.append(f"  Q: {_clip(ex['question'])}")
            lines.append(f"  R: {_clip(ex['response'])}")
    agreement_ = analysis["agreement"]
    if agreement_["decided"]:
        lines += ["", rule, "JUDGE vs HUMAN", rule]
        lines.append(
            f"Human decisions: {agreement_['decided']}, overruled the judge: {agreement_['overruled']} "
            f"({_pct(agreement_['overrule_rate'])})"
        )
    return "\n".join(lines)


def _clip(text: str, width: int = 160) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= width else text[: width - 1] + "…"
