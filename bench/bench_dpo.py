"""DPO pair checks: pairs/s for the per-pair checks and the batch boilerplate check (prints, asserts nothing)."""
import random
import time

from pipelines.dpo import checks

FIELDS = ["医疗保健", "金融", "教育", "交通运输", "零售"]


def _text(rng: random.Random, words: list[str], n: int) -> str:
    return "，".join("".join(rng.choice(words) for _ in range(rng.randint(3, 6))) for _ in range(n)) + "。"


def _pairs(n: int, seed: int = 7) -> list[dict]:
    """Diverse prompts and answers (random words of random CJK characters); 30 % of rejects one template."""
    rng = random.Random(seed)
    words = ["".join(chr(rng.randint(0x4E00, 0x9FA5)) for _ in range(2)) for _ in range(3000)]
    pairs = []
    for i in range(n):
        prompt = _text(rng, words, 2)
        chosen = prompt[:6] + _text(rng, words, 4)
        if i % 10 < 3:  # 30 % boilerplate, as in the seed
            field = rng.choice(FIELDS)
            rejected = f"这篇文章主要讨论了人工智能在{field}领域的应用，包括数据分析、智能决策和流程自动化等方面。"
        else:
            # An ordinary worse answer: the chosen cut at a random point.
            rejected = chosen[: rng.randint(8, len(chosen) - 5)]
        pairs.append({"prompt": prompt, "chosen": chosen, "rejected": rejected})
    return pairs


def main() -> None:
    for n in (2_000, 20_000):
        pairs = _pairs(n)
        started = time.perf_counter()
        results = [checks.check_pair(p["prompt"], p["chosen"], p["rejected"]) for p in pairs]
        per_pair = time.perf_counter() - started
        started = time.perf_counter()
        clusters = checks.find_boilerplate([p["prompt"] for p in pairs], [p["rejected"] for p in pairs])
        batch = time.perf_counter() - started
        flagged = sum(len(c.members) for c in clusters)
        print(f"{n:>7} pairs: per-pair checks {n / per_pair:,.0f} pairs/s ({per_pair:.2f} s); "
              f"boilerplate {n / batch:,.0f} pairs/s ({batch:.2f} s), {flagged} flagged in {len(clusters)} clusters; "
              f"{sum(1 for r in results if r.issues)} with per-pair issues")


if __name__ == "__main__":
    main()
