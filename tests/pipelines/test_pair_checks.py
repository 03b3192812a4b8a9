"""The DPO pair checks: each fires on a crafted bad pair and stays quiet on a good one (CJK and English)."""
import json

import pytest
from django.core.management import call_command

from pipelines import pair_checks
from pipelines.pair_checks import batch_report, check_pair, check_pairs, find_boilerplate

FRUIT_PROMPT = "列出5种不同的水果。"
FRUIT_CHOSEN = "苹果、香蕉、橘子、菠萝、草莓"
SEED_BOILERPLATE = "这篇文章主要讨论了人工智能在医疗保健领域的应用，包括疾病诊断、药物研发和健康管理等方面。"

EN_PROMPT = "List five different fruits."
EN_CHOSEN = "Apple, banana, orange, pineapple, strawberry."

GOOD_PAIRS = [
    # The seed's "期望效果": related but incomplete, or related but vaguer.
    (FRUIT_PROMPT, FRUIT_CHOSEN, "苹果、香蕉、橘子"),
    (FRUIT_PROMPT, FRUIT_CHOSEN, "水果有很多种，比如苹果、香蕉等等。"),
    ("解释什么是机器学习。", "机器学习是人工智能的一个分支，它让计算机从数据中学习规律，并用学到的规律对新数据做出预测。",
     "机器学习就是让计算机学习。"),
    (EN_PROMPT, EN_CHOSEN, "Apple and banana."),
    # Longer than the chosen but vaguer: worse, not swapped.
    (FRUIT_PROMPT, FRUIT_CHOSEN, "关于5种不同的水果，这个问题比较复杂，简单来说就是要看具体情况。"),
    ("Explain why the sky is blue.", "Sunlight is scattered by air molecules; blue light scatters more than red, so the sky looks blue.",
     "The sky is blue because of light."),
]


@pytest.mark.parametrize(("prompt", "chosen", "rejected"), GOOD_PAIRS)
def test_a_good_pair_has_no_issue(prompt, chosen, rejected):
    result = check_pair(prompt, chosen, rejected)
    assert result.issues == [], result.metrics


@pytest.mark.parametrize(
    ("prompt", "chosen", "rejected", "issue"),
    [
        (FRUIT_PROMPT, FRUIT_CHOSEN, "苹果、香蕉、橘子、菠萝、草莓。", "identical"),
        (FRUIT_PROMPT, FRUIT_CHOSEN, "苹果，香蕉，橘子，菠萝，草莓", "identical"),
        (EN_PROMPT, EN_CHOSEN, "apple, banana, orange, pineapple, strawberry", "identical"),
        (FRUIT_PROMPT, FRUIT_CHOSEN, SEED_BOILERPLATE, "off_topic"),
        (EN_PROMPT, EN_CHOSEN, "This article mainly discusses the application of artificial intelligence in healthcare.", "off_topic"),
        (FRUIT_PROMPT, FRUIT_CHOSEN, "   ", "empty"),
        (FRUIT_PROMPT, FRUIT_CHOSEN, "<think>想一想</think>", "empty"),
        (EN_PROMPT, EN_CHOSEN, "", "empty"),
        ("解释什么是机器学习。", "机器学习是人工智能的一个分支，它让计算机从数据中学习规律。", "机器学习是人工智能的一个分支，它让", "truncated"),
        (FRUIT_PROMPT, FRUIT_CHOSEN, "苹果、香蕉、", "truncated"),
        ("Explain why the sky is blue.", "Blue light is scattered more by the air, so the sky looks blue.",
         "The sky looks blue because sunlight is scattered by the molecules of", "truncated"),
        (FRUIT_PROMPT, "苹果",
         "苹果、香蕉、橘子、菠萝和草莓都是常见的水果。苹果富含膳食纤维，香蕉含有丰富的钾，橘子维生素C含量高。", "likely_swapped"),
        (EN_PROMPT, "Apple.",
         "Apple, banana, orange, pineapple and strawberry are five common fruits; bananas are rich in potassium and oranges in vitamin C.",
         "likely_swapped"),
    ],
)
def test_each_check_fires_on_a_crafted_pair(prompt, chosen, rejected, issue):
    result = check_pair(prompt, chosen, rejected)
    assert issue in result.issues, result.metrics


def test_measured_numbers_are_kept_with_the_issue():
    result = check_pair(FRUIT_PROMPT, FRUIT_CHOSEN, SEED_BOILERPLATE)
    assert result.metrics["relevance"] == 0.0
    assert result.metrics["off_topic_threshold"] == pair_checks.OFF_TOPIC_MAX_RELEVANCE
    assert result.metrics["similarity"] < 0.1
    near = check_pair(FRUIT_PROMPT, FRUIT_CHOSEN, "苹果、香蕉、橘子、菠萝、草莓。")
    assert near.metrics["similarity"] >= pair_checks.IDENTICAL_MIN_SIMILARITY


def test_off_topic_is_relative_to_how_much_the_chosen_echoes_the_prompt():
    prompt = "请介绍一下长城的历史和建造长城的原因。"
    chosen = "长城始建于春秋战国时期，秦朝统一后连接各国长城，建造长城的原因是抵御北方游牧民族的侵扰。长城的历史跨越两千多年。"
    # Mentions one word of the topic in passing: clears the absolute floor, far below the chosen's relevance.
    rejected = "旅游的时候一定要注意安全，带好水和食物，穿舒适的鞋子，出门前查看天气预报，去长城这种历史悠久的地方人很多。"
    result = check_pair(prompt, chosen, rejected)
    assert result.metrics["relevance"] > pair_checks.OFF_TOPIC_MAX_RELEVANCE
    assert "off_topic" in result.issues


def test_a_token_limit_stop_is_truncated_even_if_the_text_looks_finished():
    assert "truncated" in check_pair(FRUIT_PROMPT, FRUIT_CHOSEN, "苹果、香蕉。", finish_reason="length").issues
    assert "truncated" not in check_pair(FRUIT_PROMPT, FRUIT_CHOSEN, "苹果、香蕉。", finish_reason="stop").issues


TOPICS = [
    ("列出三种常见的水果。", "苹果、香蕉和橘子。", "水果嘛，比如苹果。"),
    ("明天北京会下雨吗？", "根据预报，明天北京多云转小雨。", "可能会下雨吧，带把伞。"),
    ("秦始皇统一六国是哪一年？", "公元前221年。", "大概是公元前两百多年。"),
    ("计算12乘以13。", "12×13=156。", "结果是146。"),
    ("Python 里怎么反转一个列表？", "用 lst[::-1] 或 lst.reverse()。", "可以写个循环倒着放进新列表。"),
    ("贝多芬最著名的交响曲是哪一首？", "第九交响曲《合唱》。", "应该是第五交响曲。"),
    ("足球比赛一队上场几个人？", "每队11人上场。", "十个人左右。"),
    ("怎么煮出不粘锅的米饭？", "米洗净后按1:1.2加水，煮好焖十分钟。", "多放点水煮就行。"),
    ("去云南旅行推荐哪些地方？", "大理、丽江和西双版纳。", "云南的昆明还不错。"),
    ("水的化学式是什么？", "H2O。", "水的化学式是HO。"),
]


def _prompts(n):
    return [f"{TOPICS[i % 10][0]}（第{i}题）" for i in range(n)]


def test_the_boilerplate_detector_catches_a_batch_where_30_percent_share_one_template():
    fields = ["医疗保健", "金融", "教育", "交通运输", "零售"]
    prompts = _prompts(50)
    rejects = []
    for i, prompt in enumerate(prompts):
        if i % 10 < 3:
            field = fields[i % 5]
            rejects.append(
                f"这篇文章主要讨论了人工智能在{field}领域的应用，包括数据分析、智能决策和自动化流程等方面，"
                f"并指出人工智能技术正在深刻改变{field}行业的发展模式。"
            )
        else:
            rejects.append(TOPICS[i % 10][2])
    pairs = [{"prompt": p, "chosen": TOPICS[i % 10][1], "rejected": r} for i, (p, r) in enumerate(zip(prompts, rejects))]
    results, clusters = check_pairs(pairs)
    flagged = {i for i, r in enumerate(results) if "boilerplate" in r.issues}
    assert flagged == {i for i in range(50) if i % 10 < 3}
    assert len(clusters) == 1 and clusters[0].prompts == 15
    assert results[0].metrics["boilerplate_prompts"] == 15


def test_repeated_short_answers_and_several_rejects_for_one_prompt_are_not_boilerplate():
    prompts = _prompts(6)
    assert find_boilerplate(prompts, ["是的"] * 6) == []
    same_prompt = ["请列出三种水果。"] * 4
    repeated = ["苹果、香蕉，还有很多别的水果可以选择。"] * 4
    assert find_boilerplate(same_prompt, repeated) == []


def test_a_mostly_off_topic_batch_is_reported_plainly_with_the_seeds_causes():
    prompts = _prompts(10)
    pairs = [
        {"prompt": p, "chosen": TOPICS[i][1], "rejected": SEED_BOILERPLATE if i < 8 else TOPICS[i][2]}
        for i, p in enumerate(prompts)
    ]
    results, clusters = check_pairs(pairs)
    report = batch_report([r.issues for r in results], clusters)
    assert report["mostly_off_topic"] is True
    assert report["issues"][0]["name"] in {"off_topic", "boilerplate"}
    assert report["issues"][0]["count"] == 8
    assert "大多数 reject 与 prompt 无关" in report["diagnosis"]["headline"]
    causes = " ".join(report["diagnosis"]["causes"])
    assert "checkpoint" in causes and "[EOS]" in causes and "temperature" in causes
    clean = batch_report([[] for _ in range(10)])
    assert clean["mostly_off_topic"] is False and clean["diagnosis"] is None


def test_the_report_ranks_issues_by_count():
    report = batch_report([["truncated"], ["truncated", "identical"], ["truncated"], []])
    assert [i["name"] for i in report["issues"]] == ["truncated", "identical"]
    assert report["clean"] == 1 and report["issues"][0]["share"] == 0.75


def test_pair_records_in_every_preference_format_are_read():
    read = pair_checks.pair_from_record
    expected = {"prompt": "Q", "chosen": "good", "rejected": "worse"}
    assert read({"prompt": "Q", "chosen": "good", "rejected": "worse"}) == expected
    assert read({"instruction": "Q", "input": "", "chosen": "good", "reject": "worse"}) == expected
    assert read({"instruction": "Q", "input": "I", "chosen": "good", "rejected": "worse"})["prompt"] == "Q\nI"
    assert read({
        "prompt": [{"role": "user", "content": "Q"}],
        "chosen": [{"role": "assistant", "content": "good"}],
        "rejected": [{"role": "assistant", "content": "worse"}],
    }) == expected
    assert read({
        "conversations": [{"from": "human", "value": "Q"}],
        "chosen": {"from": "gpt", "value": "good"},
        "rejected": {"from": "gpt", "value": "worse"},
    }) == expected
    with pytest.raises(ValueError, match="rejected"):
        read({"prompt": "Q", "chosen": "good"})


def test_check_pairs_command_writes_one_line_per_pair_and_reports_malformed_lines(tmp_path, capsys):
    source = tmp_path / "dpo.jsonl"
    records = [
        {"prompt": FRUIT_PROMPT, "chosen": FRUIT_CHOSEN, "reject": SEED_BOILERPLATE},
        {"id": "p-2", "instruction": "解释什么是人工智能。", "input": "", "chosen": "人工智能是让计算机模拟人类智能的技术。",
         "rejected": SEED_BOILERPLATE.replace("医疗保健", "金融")},
        "BROKEN",
        {"prompt": "翻译：Hello, how are you?", "chosen": "你好，你好吗？", "rejected": SEED_BOILERPLATE.replace("医疗保健", "教育")},
        {"prompt": FRUIT_PROMPT, "chosen": FRUIT_CHOSEN, "rejected": "苹果、香蕉、橘子"},
        {"prompt": "缺 chosen"},
    ]
    lines = [json.dumps(r, ensure_ascii=False) if r != "BROKEN" else "{not json" for r in records]
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    output = tmp_path / "out" / "report.jsonl"

    call_command("check_pairs", str(source), "--output", str(output))

    rows = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in rows] == [1, "p-2", 4, 5]
    assert all(set(r) == {"id", "issues"} for r in rows)
    by_id = {r["id"]: r["issues"] for r in rows}
    assert "off_topic" in by_id[1] and "boilerplate" in by_id[1]
    assert "boilerplate" in by_id["p-2"]
    assert by_id[5] == []
    captured = capsys.readouterr()
    assert f"{source}:3:" in captured.err and f"{source}:6:" in captured.err
    assert "4 pairs checked" in captured.out and "大多数 reject 与 prompt 无关" in captured.out


def test_check_pairs_command_reads_a_llama_factory_json_array(tmp_path):
    source = tmp_path / "dpo.json"
    source.write_text(json.dumps([
        {"instruction": FRUIT_PROMPT, "input": "", "chosen": FRUIT_CHOSEN, "rejected": FRUIT_CHOSEN},
    ], ensure_ascii=False), encoding="utf-8")
    output = tmp_path / "report.jsonl"
    call_command("check_pairs", str(source), "--output", str(output), "--metrics")
    row = json.loads(output.read_text(encoding="utf-8"))
    assert row["issues"] == ["identical"] and row["metrics"]["similarity"] >= 0.95
