"""Fixtures for the DPO tests: a small prompt source (the simulator is `llm_simulator` in tests/conftest.py)."""
import json

import pytest

from pipelines.models import FeedbackSample, ReviewDecision

FRUIT_PROMPTS = [
    ("列出5种不同的水果。", "苹果、香蕉、橘子、菠萝、草莓"),
    ("解释什么是人工智能。", "人工智能是让计算机模拟人类智能的技术，包括学习、推理和感知。"),
    ("翻译：Hello, how are you?", "你好，你最近怎么样？"),
    ("列出三种常见的编程语言。", "Python、Java、C++"),
    ("写一句关于春天的诗。", "春风又绿江南岸，明月何时照我还。"),
    ("介绍一下长城。", "长城是中国古代的军事防御工程，始建于春秋战国时期，全长两万多公里。"),
    ("怎样保持身体健康？", "1. 均衡饮食\n2. 规律运动\n3. 充足睡眠\n4. 保持好心情"),
    ("水的化学式是什么？", "<think>水由两个氢原子和一个氧原子组成。</think>水的化学式是 H2O。"),
]


@pytest.fixture
def feedback_prompts(db):
    """Accepted feedback samples: the prompts and chosen answers of a DPO job."""
    rows = []
    for number, (prompt, chosen) in enumerate(FRUIT_PROMPTS, start=1):
        rows.append(FeedbackSample.objects.create(
            feedback_id=f"fb-{number:03d}", instruction=prompt, output=chosen, rating=5,
            model_name="qwen-72b-chat", decision=ReviewDecision.ACCEPTED,
        ))
    return rows


def write_prompt_file(media_root, records, name="prompts.jsonl"):
    """A JSONL import under MEDIA_ROOT; returns its path relative to MEDIA_ROOT."""
    folder = media_root / "dpo"
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in records) + "\n",
                    encoding="utf-8")
    return f"dpo/{name}"


SEED_REJECT = "这篇文章主要讨论了人工智能在医疗保健领域的应用，包括疾病诊断和药物研发……"


@pytest.fixture
def dpo_job(db, admin_user):
    """A finished model-strategy DPO job whose rejects were mostly the seed's boilerplate."""
    from pipelines.dpo import job_checks
    from pipelines.models import Job, JobKind, JobStatus, PreferencePair

    job = Job.objects.create(
        kind=JobKind.DPO, created_by=admin_user, status=JobStatus.DONE, items_total=len(FRUIT_PROMPTS),
        items_done=len(FRUIT_PROMPTS),
        params={"source": {"name": "feedback"}, "limit": None, "strategy": {
            "name": "model", "base_url": "http://127.0.0.1:8765/v1", "model": "sft-small", "template": "{prompt}",
            "system": "", "mode": "greedy", "n": 1, "max_tokens": None, "temperature": 0.0, "top_p": None}},
    )
    from pipelines.pair_checks import check_pair

    for number, (prompt, chosen) in enumerate(FRUIT_PROMPTS, start=1):
        rejected = SEED_REJECT if number <= 6 else chosen[: len(chosen) // 2]
        result = check_pair(prompt, chosen, rejected)
        PreferencePair.objects.create(job=job, key=f"feedback:{number}", source="feedback", prompt=prompt, chosen=chosen,
                                      rejected=rejected, strategy="model", issues=result.issues, metrics=result.metrics)
    job.report = job_checks(job)
    job.save(update_fields=["report"])
    return job
