"""Data of the DPO tests: a small set of prompts with chosen answers, the seed's off-topic reject, and a
JSONL import writer (plain helpers; the fixtures are in fixtures.py)."""
import json

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


def write_prompt_file(media_root, records, name="prompts.jsonl"):
    """A JSONL import under MEDIA_ROOT; returns its path relative to MEDIA_ROOT."""
    folder = media_root / "dpo"
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in records) + "\n",
                    encoding="utf-8")
    return f"dpo/{name}"


SEED_REJECT = "这篇文章主要讨论了人工智能在医疗保健领域的应用，包括疾病诊断和药物研发……"
