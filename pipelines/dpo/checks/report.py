"""Batch results: `check_pairs` runs every check over a batch, `batch_report` ranks the issues and
diagnoses the batch in plain language, `format_report` prints it for the terminal."""
from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from .boilerplate import BoilerplateCluster, apply_boilerplate, find_boilerplate
from .issues import ECHO_CAUSES, ISSUE_LABELS, ISSUE_NAMES, MOSTLY_OFF_TOPIC_SHARE, OFF_TOPIC_CAUSES
from .pair import PairResult, check_pair

def check_pairs(pairs: Sequence[dict[str, Any]]) -> tuple[list[PairResult], list[BoilerplateCluster]]:
    """Check a batch of pairs (dicts with prompt, chosen, rejected, optional finish_reason)."""
    results = [
        check_pair(p.get("prompt", ""), p.get("chosen", ""), p.get("rejected", ""), finish_reason=p.get("finish_reason"))
        for p in pairs
    ]
    clusters = find_boilerplate([p.get("prompt", "") for p in pairs], [p.get("rejected", "") for p in pairs])
    apply_boilerplate(results, clusters)
    return results, clusters


# --------------------------------------------------------------------------- report
def batch_report(
    issue_lists: Sequence[Sequence[str]], clusters: Sequence[BoilerplateCluster | dict] = ()
) -> dict[str, Any]:
    """Rank the issues of a batch and diagnose it in plain language.

    Returns {"total", "clean", "issues": [{"name", "label", "count", "share"}…] (most frequent first),
    "boilerplate_clusters", "off_topic_share", "mostly_off_topic", "echo_share", "mostly_echo",
    "diagnosis": {"headline", "causes"}|None}.
    """
    total = len(issue_lists)
    counts = Counter(name for issues in issue_lists for name in set(issues))
    ranked = [
        {"name": name, "label": ISSUE_LABELS[name], "count": counts[name], "share": round(counts[name] / total, 3)}
        for name in sorted(counts, key=lambda n: (-counts[n], ISSUE_NAMES.index(n) if n in ISSUE_NAMES else 99))
        if name in ISSUE_LABELS
    ]
    # Boilerplate is the off-topic failure seen from the batch: the seed's rejects were both.
    off_topic = sum(1 for issues in issue_lists if "off_topic" in issues or "boilerplate" in issues)
    echo = counts.get("echo", 0)
    off_topic_share = round(off_topic / total, 3) if total else 0.0
    echo_share = round(echo / total, 3) if total else 0.0
    mostly_off_topic = total > 0 and off_topic / total > MOSTLY_OFF_TOPIC_SHARE
    mostly_echo = total > 0 and echo / total > MOSTLY_OFF_TOPIC_SHARE
    cluster_dicts = [c.as_dict() if isinstance(c, BoilerplateCluster) else dict(c) for c in clusters]
    diagnosis = None
    if mostly_off_topic:
        headline = (
            f"大多数 reject 与 prompt 无关：{off_topic} / {total} 条（{off_topic_share:.0%}）跑题或是模板化重复。"
            "这样的数据不能用来训练 DPO——模型学到的只是“别说这段无关的话”。"
        )
        if cluster_dicts:
            top = cluster_dicts[0]
            headline += f" 最常见的一段在 {top['prompts']} 个不同的 prompt 下重复出现：「{top['example'][:80]}」。"
        diagnosis = {"headline": headline, "causes": list(OFF_TOPIC_CAUSES)}
    elif mostly_echo:
        diagnosis = {
            "headline": (
                f"大多数 reject 只是在复述 prompt：{echo} / {total} 条（{echo_share:.0%}）的内容大部分是 prompt 的原文。"
                "模型没有在回答问题，这样的 reject 教不了模型什么是“较差的回答”。"
            ),
            "causes": list(ECHO_CAUSES),
        }
    return {
        "total": total,
        "clean": sum(1 for issues in issue_lists if not issues),
        "issues": ranked,
        "boilerplate_clusters": cluster_dicts[:10],
        "off_topic_share": off_topic_share,
        "mostly_off_topic": mostly_off_topic,
        "echo_share": echo_share,
        "mostly_echo": mostly_echo,
        "diagnosis": diagnosis,
    }


def format_report(report: dict[str, Any], *, malformed: int = 0) -> str:
    """The batch report as plain text for the terminal."""
    lines = [f"{report['total']} pairs checked, {report['clean']} without issues" + (f", {malformed} malformed lines skipped" if malformed else "")]
    for issue in report["issues"]:
        lines.append(f"  {issue['name']:<15} {issue['count']:>6}  {issue['share']:>6.1%}  {issue['label']}")
    for cluster in report["boilerplate_clusters"][:3]:
        lines.append(f"  boilerplate ×{cluster['count']} under {cluster['prompts']} prompts: {cluster['example'][:60]!r}")
    if report["diagnosis"]:
        lines.append("")
        lines.append(report["diagnosis"]["headline"])
        lines.append("可能的原因：")
        lines.extend(f"  {n}. {cause}" for n, cause in enumerate(report["diagnosis"]["causes"], start=1))
    return "\n".join(lines)
