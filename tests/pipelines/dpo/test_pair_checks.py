"""The DPO pair checks: each fires on a crafted bad pair and stays quiet on a good one (CJK and English)."""
import json

import pytest
from django.core.management import call_command

from pipelines.dpo import checks as pair_checks
from pipelines.dpo.checks import batch_report, check_pair, check_pairs, find_boilerplate

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
    assert result.metrics["relevance"] == 0.0 and result.metrics["prompt_mentions"] == 0
    assert result.metrics["similarity"] < 0.1
    near = check_pair(FRUIT_PROMPT, FRUIT_CHOSEN, "苹果、香蕉、橘子、菠萝、草莓。")
    assert near.metrics["similarity"] >= pair_checks.IDENTICAL_MIN_SIMILARITY


@pytest.mark.parametrize(("prompt", "chosen", "rejected"), [
    # Long, padded and unhelpful, but about the question: a worse answer, not an off-topic one.
    ("怎样才能学好英语？", "每天坚持听说读写：听英文播客、跟读模仿发音、每天背20个单词。",
     "学英语是一件需要耐心的事情，很多人都觉得英语很难学，其实只要有兴趣就会觉得简单一些。英语是世界上使用最广泛的语言之一。"),
    ("水的化学式是什么？", "H₂O。", "水是生命之源，地球表面大约百分之七十都被水覆盖着，人体里也有很多水分，所以我们一定要节约用水。"),
    ("How do I boil an egg?", "Place the egg in boiling water for 9 minutes, then cool it in cold water.",
     "Eggs are a very popular food all over the world and there are many ways to cook them, so it depends on your taste."),
    # Names the prompt's topic in passing: on the topic, however poor (a reviewer judges the rest).
    ("请介绍一下长城的历史和建造长城的原因。", "长城始建于春秋战国时期，建造长城的原因是抵御北方游牧民族的侵扰。",
     "旅游的时候一定要注意安全，带好水和食物，穿舒适的鞋子，出门前查看天气预报，去长城这种历史悠久的地方人很多。"),
    # Short and vague: too little text to call it about something else.
    ("如何缓解工作压力？", "合理安排任务，每工作一小时起身活动几分钟，下班后做运动或培养爱好。", "多休息就好了，别想太多。"),
])
def test_a_reject_that_is_about_the_prompts_topic_is_not_off_topic(prompt, chosen, rejected):
    assert "off_topic" not in check_pair(prompt, chosen, rejected).issues


@pytest.mark.parametrize(("prompt", "chosen", "rejected"), [
    # Another row's answer (misaligned files) and unrelated web text.
    ("孩子不爱吃蔬菜怎么办？", "可以让孩子参与买菜和做饭，把蔬菜做成饺子馅，大人以身作则一起吃。",
     "五年，从三个人的小办公室到两百人的团队。感谢每一位同行者，下一个五年，我们继续出发！"),
    ("What is the largest planet in our solar system?", "Jupiter is the largest planet in our solar system.",
     "Regular exercise strengthens the heart and lungs, helps control weight and improves sleep."),
])
def test_a_reject_about_something_else_is_off_topic(prompt, chosen, rejected):
    assert "off_topic" in check_pair(prompt, chosen, rejected).issues


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


# --------------------------------------------------------------------------- echo (issue #15)
CLASSIFY_PROMPT = (
    "<image>你是电商客服场景的图片分类。请根据用户上传的截图，从以下类别中选择最合适的一个：物流查询、退换货申请、商品质量投诉、"
    "支付问题、其他。先用一两句话说明理由，再给出类别。"
)
CLASSIFY_CHOSEN = "截图是快递物流详情页，包裹在中转站停留三天没有更新，用户想知道货到哪了。类别：物流查询"


def test_echo_is_a_stable_issue_name_with_a_label():
    assert "echo" in pair_checks.ISSUE_NAMES and "复述 prompt" in pair_checks.ISSUE_LABELS["echo"]


@pytest.mark.parametrize("rejected", [
    "<image>你是电商客服场景的图片分类。",  # what the simulator answered with the `{prompt}[EOS]` template
    CLASSIFY_PROMPT + "[EOS]",
    "好的，" + CLASSIFY_PROMPT,
    "问题：" + CLASSIFY_PROMPT + "\n回答：",
])
def test_a_reject_that_copies_the_prompt_back_is_an_echo(rejected):
    result = check_pair(CLASSIFY_PROMPT, CLASSIFY_CHOSEN, rejected)
    assert "echo" in result.issues and result.metrics["prompt_copy"] >= pair_checks.ECHO_MIN_COPY, result.metrics


@pytest.mark.parametrize(("prompt", "chosen", "rejected"), [
    ("Explain why the sky is blue.", "Blue light is scattered more by the air.", "Explain why the sky is blue. Explain why the sky is blue."),
    ("What should I pack for a three-day hiking trip?", "A tent, a sleeping bag, water and food.", "What should I pack for a thr"),
    ("列举三种可再生能源。", "太阳能、风能和水能。", "列举三种可再生能源。"),
])
def test_echoes_in_both_languages(prompt, chosen, rejected):
    assert "echo" in check_pair(prompt, chosen, rejected).issues


@pytest.mark.parametrize(("prompt", "chosen", "rejected"), [
    # The input handed back unchanged: a failed edit, a legitimate worse answer.
    ("请改正下面句子中的错别字：我门明天一起去公园玩吧。", "我们明天一起去公园玩吧。", "我门明天一起去公园玩吧。"),
    ("Paraphrase: The meeting has been postponed until further notice.", "The meeting is delayed until we announce a new date.",
     "The meeting has been postponed."),
    # Restates the question, then answers it (wrongly).
    ("水的化学式是什么？", "水的化学式是 H₂O。", "水的化学式是HO。"),
    # A short answer made of the prompt's words.
    ("这条评论是正面还是负面：快递太慢了。", "负面。", "正面。"),
])
def test_answers_that_reuse_the_prompts_words_are_not_echoes(prompt, chosen, rejected):
    assert "echo" not in check_pair(prompt, chosen, rejected).issues


# --------------------------------------------------------------------------- templated replies (issue #15)
PRODUCTS = ["蓝牙耳机", "电饭煲", "羽绒服", "保温杯", "扫地机器人", "护眼台灯", "空气炸锅", "机械键盘"]


def _service_prompts():
    return [f"客户：订单{202405120331 + 7919 * i}的{product}{'到了是坏的' if i % 2 else '还没发货'}，怎么办？"
            for i, product in enumerate(PRODUCTS)]


def test_one_reply_template_filled_with_each_prompts_order_and_product_is_not_boilerplate():
    prompts = _service_prompts()
    template = "您好，您反馈的订单{order}（{product}）我们已经收到，售后专员会尽快为您核实处理，请您耐心等待，感谢您的理解与支持！"
    rejects = [template.format(order=202405120331 + 7919 * i, product=p) for i, p in enumerate(PRODUCTS)]
    assert find_boilerplate(prompts, rejects) == []


def test_the_same_reply_without_the_prompts_specifics_is_boilerplate():
    prompts = _service_prompts()
    rejects = ["您好，您反馈的问题我们已经收到，售后专员会尽快为您核实处理，请您耐心等待，感谢您的理解与支持！"] * len(prompts)
    [cluster] = find_boilerplate(prompts, rejects)
    assert cluster.members == list(range(len(prompts)))


def test_boilerplate_whose_varying_words_are_not_from_the_prompt_stays_boilerplate():
    # The seed's text varies its field; one prompt even mentions 人工智能 — the template's own word, not a fill.
    prompts = ["解释什么是人工智能。", "列出5种不同的水果。", "翻译：Hello, how are you?", "介绍一下长城。", "水的化学式是什么？"]
    fields = ["医疗保健", "金融", "教育", "交通运输", "零售"]
    rejects = [SEED_BOILERPLATE.replace("医疗保健", field) for field in fields]
    [cluster] = find_boilerplate(prompts, rejects)
    assert cluster.members == [0, 1, 2, 3, 4] and cluster.prompts == 5
