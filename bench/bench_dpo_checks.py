"""DPO pair checks: precision and recall per issue on the labelled sets in tests/dpo_eval (prints, asserts nothing).

Targets (issue #15): every issue ≥ 0.95 recall on its kind, ≤ 2 % of good pairs flagged with anything.
`pairs.jsonl` is the set the checks were developed on; `holdout.jsonl` was written afterwards from a second
bank and is the fairer figure; `templated_on_topic.jsonl` is the issue's 200 templated customer-service
pairs. tests/pipelines/dpo/test_pair_checks_eval.py holds a floor under these (recall ≥ 0.9, ≤ 5 %).
"""
import platform
import time

from tests.dpo_eval.evaluate import EVAL_SET, HOLDOUT_SET, TEMPLATED_SET, evaluate, format_scores

RECALL_TARGET = 0.95
GOOD_FLAGGED_TARGET = 0.02


def _machine() -> str:
    import os

    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"


def main() -> None:
    print(f"machine: {_machine()}")
    for path, title in ((EVAL_SET, "development set"), (HOLDOUT_SET, "holdout set"), (TEMPLATED_SET, "templated on-topic set")):
        started = time.perf_counter()
        scores = evaluate(path)
        elapsed = time.perf_counter() - started
        print(format_scores(scores, f"{title} ({path.name}, checked in {elapsed:.2f} s)"))
        short = [s.name for s in scores.issues.values() if s.recall is not None and s.recall < RECALL_TARGET]
        verdict = "meets" if not short and scores.good_flagged_share <= GOOD_FLAGGED_TARGET else "MISSES"
        print(f"  {verdict} the targets (recall ≥ {RECALL_TARGET:.0%} per issue, ≤ {GOOD_FLAGGED_TARGET:.0%} good flagged)"
              + (f"; below target: {', '.join(short)}" if short else ""))
        for row in scores.misses[:5]:
            print(f"    missed {row['id']} ({row['kind']}): found {row['issues']}")
        for row in scores.false_alarms[:5]:
            print(f"    false alarm {row['id']} ({row['kind']}): {row['issues']}")


if __name__ == "__main__":
    main()
