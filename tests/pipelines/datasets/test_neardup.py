"""Near-duplicate detection over character n-grams: finds CJK near-duplicates, leaves different
texts apart, and gives the same answer in every process."""
import subprocess
import sys

from pipelines.datasets.neardup import MinHasher, NearDupRemover, jaccard_estimate, near_duplicate_clusters

BASE = "请根据以下章节内容提取三级大纲，要求每个标题不超过二十个字：第一章 春天来了，万物复苏，小草从地里探出头来，燕子从南方飞回来。"


def test_cjk_near_duplicates_are_found_and_different_texts_are_not():
    texts = [
        BASE,
        BASE.replace("燕子", "大雁"),                           # one word changed
        BASE + "  ",                                           # whitespace only
        "请把下面的英文邮件翻译成中文，保持礼貌的语气，并保留原有的段落结构和所有的人名地名。",
        "完全不同的一句话：数据库索引应当建立在选择性高的列上。",
    ]
    assert near_duplicate_clusters(enumerate(texts), threshold=0.7) == [[0, 1, 2]]


def test_clusters_are_transitive_and_ordered_by_first_member():
    a = "甲乙丙丁戊己庚辛壬癸子丑寅卯辰巳午未申酉戌亥" * 3
    b = a[:-3] + "一二三"
    c = "天地玄黄宇宙洪荒日月盈昃辰宿列张寒来暑往秋收冬藏" * 3
    d = c[:-2] + "闰余"
    clusters = near_duplicate_clusters([("x", c), ("y", a), ("z", d), ("w", b)], threshold=0.7)
    assert clusters == [["x", "z"], ["y", "w"]]


def test_remover_keeps_the_first_and_reports_the_cluster():
    remover = NearDupRemover(threshold=0.7)
    assert remover.check("r1", BASE) is None
    assert remover.check("r2", BASE.replace("燕子", "大雁")) == "r1"
    assert remover.check("r3", "另一段完全无关的文字，讲的是如何配置 PostgreSQL 的连接池。") is None
    assert remover.clusters == {"r1": ["r2"]}


def test_jaccard_estimate_tracks_similarity():
    hasher = MinHasher()
    same = jaccard_estimate(hasher.signature(BASE), hasher.signature(BASE))
    near = jaccard_estimate(hasher.signature(BASE), hasher.signature(BASE.replace("燕子", "大雁")))
    far = jaccard_estimate(hasher.signature(BASE), hasher.signature("数据库索引应当建立在选择性高的列上。"))
    assert same == 1.0 and 0.6 < near < 1.0 and far < 0.2


def test_signatures_are_the_same_in_every_process():
    # Python's str hash is salted per process; signatures must not depend on it (splits would change).
    code = ("from pipelines.datasets.neardup import MinHasher;"
            f"print(MinHasher().signature({BASE!r})[:8].tolist())")
    outputs = {
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                       env={"PYTHONHASHSEED": seed, "PATH": ""}, cwd=str(__import__("pathlib").Path(__file__).parents[3])).stdout
        for seed in ("1", "2")
    }
    assert len(outputs) == 1
    assert outputs.pop().strip() == str(MinHasher().signature(BASE)[:8].tolist())


def test_empty_and_short_texts_do_not_crash():
    hasher = MinHasher()
    assert len(hasher.signature("")) == hasher.num_perm
    assert near_duplicate_clusters([(1, "好"), (2, "好"), (3, "")], threshold=0.9) == [[1, 2]]


def test_batch_signatures_equal_one_by_one_even_across_blocks(monkeypatch):
    import numpy as np

    from pipelines.datasets import neardup

    monkeypatch.setattr(neardup, "BLOCK", 50)  # force texts to straddle permutation blocks
    hasher = MinHasher()
    texts = ["", "好", "春眠不觉晓" * 30, "Hello  World", BASE, "处处闻啼鸟" * 7]
    batch = hasher.signatures(texts)
    for text, signature in zip(texts, batch):
        assert np.array_equal(signature, hasher.signatures([text])[0])
