"""DPO jobs against the simulator over real HTTP: rejects, checks, report, preview, idempotency, export."""
import json

import pytest

from pipelines.datasets.exports import data_files, export_path
from pipelines.datasets import formats
from pipelines.dpo.jobkind import DpoHandler
from pipelines.dpo.model import llm_for
from pipelines.dpo.pairs import preview
from pipelines.dpo.params import clean_params
from pipelines.dpo.services import EXPORT_FORMATS, PAIR_FIELDS, pairs_export
from pipelines.dpo.sources import read_import
from pipelines.jobs.services import job_create, run_job_inline
from pipelines.models import JobKind, JobStatus, PreferencePair, ReviewDecision
from tests.pipelines.dpo.data import FRUIT_PROMPTS, write_prompt_file

pytestmark = pytest.mark.django_db(transaction=True)


def model_params(simulator, *, template="{prompt}[EOS]", model="sft-small", **strategy):
    return {
        "source": {"name": "feedback"},
        "strategy": {"name": "model", "base_url": simulator.base_url, "model": model, "template": template, **strategy},
    }


def run(params, user=None):
    job = job_create(kind=JobKind.DPO, params=params, user=user)
    return run_job_inline(job)


def test_a_prompt_sent_without_its_trained_eos_suffix_gives_a_plainly_reported_off_topic_job(llm_simulator, feedback_prompts):
    job = run(model_params(llm_simulator, template="{prompt}"))

    assert job.status == JobStatus.DONE
    pairs = list(PreferencePair.objects.filter(job=job))
    assert len(pairs) == len(FRUIT_PROMPTS)
    assert all("这篇文章主要讨论了人工智能" in p.rejected for p in pairs)
    assert all("boilerplate" in p.issues for p in pairs)
    report = job.report
    assert report["mostly_off_topic"] is True
    assert "大多数 reject 与 prompt 无关" in report["diagnosis"]["headline"]
    assert any("[EOS]" in cause for cause in report["diagnosis"]["causes"])
    assert report["context"]["template"] == "{prompt}" and report["context"]["model"] == "sft-small"
    assert report["context"]["endpoint"] == llm_simulator.base_url


def test_the_trained_form_gives_on_topic_rejects_and_no_diagnosis(llm_simulator, feedback_prompts):
    job = run(model_params(llm_simulator))

    pairs = list(PreferencePair.objects.filter(job=job).order_by("id"))
    assert len(pairs) == len(FRUIT_PROMPTS)
    assert not any("人工智能在" in p.rejected for p in pairs)
    assert not any({"off_topic", "boilerplate"} & set(p.issues) for p in pairs)
    assert job.report["mostly_off_topic"] is False and job.report["diagnosis"] is None
    assert {p.key for p in pairs} == {f"feedback:{row.pk}" for row in feedback_prompts}
    assert {p.strategy for p in pairs} == {"model"}


CLASSIFY_PROMPT = (
    "<image>你是电商客服场景的图片分类。请根据用户上传的截图，从以下类别中选择最合适的一个：物流查询、退换货申请、商品质量投诉、"
    "支付问题、发票开具、其他。先用一两句话说明理由，再给出类别。"
)


def test_rejects_that_echo_a_long_prompt_back_are_flagged_and_the_report_says_why(llm_simulator, media_root):
    """Issue #15: with `{prompt}[EOS]` the simulator's rejects were the prompt's start, and every pair passed."""
    answers = ["截图是物流详情页，包裹三天没有更新。类别：物流查询", "杯身有裂纹，用户说一打开就是裂的。类别：商品质量投诉",
               "支付页提示余额不足。类别：支付问题", "开票页面，圈出了电子普通发票。类别：发票开具"]
    relative = write_prompt_file(media_root, [
        {"id": f"img-{n}", "prompt": CLASSIFY_PROMPT + f"（图片 {n}）", "chosen": answer} for n, answer in enumerate(answers)
    ])
    params = model_params(llm_simulator)
    params["source"] = {"name": "file", "path": relative}
    job = run(params)

    pairs = list(PreferencePair.objects.filter(job=job))
    assert len(pairs) == len(answers)
    assert all(p.rejected.startswith("<image>你是电商客服场景的图片分类") for p in pairs)  # the simulator echoes
    assert all("echo" in p.issues for p in pairs), [(p.rejected, p.issues) for p in pairs]
    report = job.report
    assert [i["name"] for i in report["issues"]][0] == "echo"
    assert report["diagnosis"] and "复述" in report["diagnosis"]["headline"]
    assert any("[EOS]" in cause for cause in report["diagnosis"]["causes"])


def test_an_undertrained_model_is_caught_by_the_boilerplate_check(llm_simulator, db):
    from pipelines.models import LogRecord

    topics = ["水果", "天气", "历史", "数学", "编程", "音乐", "体育", "烹饪", "旅行", "化学"]
    for i in range(60):
        LogRecord.objects.create(source_file="calls.jsonl", line_no=i + 1, content_hash=str(i),
                                 prompt=f"请讲讲{topics[i % 10]}方面的第{i}个问题：{topics[(i * 7) % 10]}和{topics[(i * 3) % 10]}有什么联系？",
                                 response=f"{topics[i % 10]}与{topics[(i * 7) % 10]}的联系在于……（第{i}条）。")
    params = model_params(llm_simulator, model="sft-small-offtopic-30")
    params["source"] = {"name": "logs"}
    job = run(params)

    pairs = list(PreferencePair.objects.filter(job=job))
    off = [p for p in pairs if "人工智能在" in p.rejected]
    assert 10 <= len(off) <= 30  # ≈ 30 % of 60, decided per prompt
    assert {p.pk for p in pairs if "boilerplate" in p.issues} == {p.pk for p in off}
    assert job.report["mostly_off_topic"] is False
    ranked = {i["name"]: i["count"] for i in job.report["issues"]}
    assert ranked["boilerplate"] == len(off)


def test_n_candidates_make_one_row_each_and_rerunning_an_item_leaves_one_row_per_key(llm_simulator, feedback_prompts):
    job = run(model_params(llm_simulator, mode="sampling", temperature=0.9, n=3))

    keys = sorted(PreferencePair.objects.filter(job=job).values_list("key", flat=True))
    assert len(keys) == 3 * len(FRUIT_PROMPTS)
    assert f"feedback:{feedback_prompts[0].pk}#3" in keys
    # At-least-once delivery: the same item processed again updates its rows, never duplicates them.
    handler = DpoHandler()
    key = f"feedback:{feedback_prompts[0].pk}"
    payload = handler.prepare(job, key)
    handler.store(job, key, payload, [{"rejected": "苹果。", "finish_reason": "stop"}] * 3)
    assert PreferencePair.objects.filter(job=job).count() == 3 * len(FRUIT_PROMPTS)
    assert PreferencePair.objects.get(job=job, key=f"{key}#2").rejected == "苹果。"


def _comparable(pair):
    return {name: pair[name] for name in ("key", "source", "prompt", "chosen", "rejected", "strategy")} | {
        "issues": [i for i in pair["issues"] if i != "boilerplate"],
        "metrics": {k: v for k, v in pair["metrics"].items() if not k.startswith("boilerplate_")},
    }


@pytest.mark.parametrize("strategy", [
    {"name": "model", "model": "sft-small-offtopic-30", "template": "{prompt}[EOS]", "mode": "sampling", "temperature": 0.9, "n": 2},
    {"name": "model", "model": "sft-small", "template": "{prompt}[EOS]"},
    {"name": "near_miss"},
    {"name": "truncate"},
])
def test_preview_equals_the_first_n_prompts_of_the_full_run(llm_simulator, feedback_prompts, strategy):
    params = {"source": {"name": "feedback"}, "strategy": {**strategy, "base_url": llm_simulator.base_url}}

    shown = preview(params, n=3)
    job = run(params)

    first_keys = [f"feedback:{row.pk}" for row in feedback_prompts[:3]]
    rows = [
        {name: getattr(p, name) for name in PAIR_FIELDS}
        for p in PreferencePair.objects.filter(job=job)
        if p.key.split("#")[0] in first_keys
    ]
    # Items finish in any order; the preview lists them in source order, candidates in turn.
    rows.sort(key=lambda p: (first_keys.index(p["key"].split("#")[0]), p["key"]))
    assert [_comparable(p) for p in shown["pairs"]] == [_comparable(p) for p in rows]
    # A prompt the strategy cannot serve fails in the preview exactly as the job's item fails.
    failed = set(job.items.filter(status="failed", key__in=first_keys).values_list("key", flat=True))
    assert {f["key"] for f in shown["failures"]} == failed
    assert len(shown["pairs"]) == (3 - len(failed)) * strategy.get("n", 1)
    if strategy["name"] == "model":
        context = shown["context"]
        assert context["endpoint"] == llm_simulator.base_url and context["model"] == strategy["model"]
        assert context["template"] == "{prompt}[EOS]"
        assert context["example_messages"] == [{"role": "user", "content": FRUIT_PROMPTS[0][0] + "[EOS]"}]


def test_the_preview_shows_the_failure_the_seed_printed_three_samples_to_find(llm_simulator, feedback_prompts):
    shown = preview(model_params(llm_simulator, model="sft-small-base"), n=3)
    assert len(shown["pairs"]) == 3
    assert shown["report"]["mostly_off_topic"] is True
    assert "checkpoint" in shown["report"]["diagnosis"]["causes"][0]


def test_model_free_strategies(llm_simulator, feedback_prompts):
    def rejects(name):
        job = run({"source": {"name": "feedback"}, "strategy": {"name": name}})
        return job, {p.prompt: p.rejected for p in PreferencePair.objects.filter(job=job)}

    job, by_prompt = rejects("drop_list_items")
    assert by_prompt["列出5种不同的水果。"] == "苹果、香蕉、橘子"
    assert by_prompt["怎样保持身体健康？"] == "1. 均衡饮食\n2. 规律运动"
    # Prompts without a list fail with a reason and do not stop the job.
    assert job.status == JobStatus.DONE and job.items_failed > 0
    assert job.report["failed_items"] == {"not_applicable": job.items_failed}

    _, by_prompt = rejects("drop_reasoning")
    assert by_prompt == {"水的化学式是什么？": "水的化学式是 H2O。"}

    _, by_prompt = rejects("truncate")
    assert by_prompt["介绍一下长城。"] == "长城是中国古代的军事防御工程"

    _, by_prompt = rejects("near_miss")
    # The most similar other prompt ("列出…") lends its answer.
    assert by_prompt["列出5种不同的水果。"] == "Python、Java、C++"


def test_a_jsonl_import_is_a_source_and_its_malformed_lines_are_reported(llm_simulator, media_root):
    relative = write_prompt_file(media_root, [
        {"id": "a", "prompt": "列出5种不同的水果。", "chosen": "苹果、香蕉、橘子、菠萝、草莓"},
        "{broken",
        {"instruction": "解释什么是人工智能。", "input": "", "output": "人工智能是让计算机模拟人类智能的技术。"},
        {"prompt": "没有答案"},
    ])
    records, errors = read_import(relative)
    assert [r.key for r in records] == ["file:a", "file:3"]
    assert [line for line, _ in errors] == [2, 4]
    job = run({"source": {"name": "file", "path": relative}, "strategy": {"name": "truncate"}})
    assert set(PreferencePair.objects.filter(job=job).values_list("key", flat=True)) == {"file:a", "file:3"}


def test_import_paths_outside_media_root_are_refused(media_root, tmp_path):
    outside = tmp_path / "secret.jsonl"
    outside.write_text("{}\n")
    from core.errors import ApplicationError

    with pytest.raises(ApplicationError):
        clean_params({"source": {"name": "file", "path": "../secret.jsonl"}, "strategy": {"name": "truncate"}})


def test_the_api_key_is_never_sent_to_a_typed_endpoint(settings):
    settings.OPENAI_BASE_URL = "http://127.0.0.1:9/v1"
    settings.OPENAI_API_KEY = "sk-very-secret"
    settings.LLM_ENDPOINT_ALLOWLIST = [settings.OPENAI_BASE_URL, "http://evil.example/v1"]  # a second server, listed
    client, owned = llm_for({"base_url": "http://evil.example/v1", "model": "m"})
    assert owned and "sk-very-secret" not in repr(vars(client))
    assert client._client is None and client._LLMClient__api_key == "sk-none"


READERS = {
    "trl_preference": lambda row: (row["prompt"], row["chosen"], row["rejected"]),
    "trl_preference_conversational": lambda row: (row["prompt"][-1]["content"], row["chosen"][0]["content"], row["rejected"][0]["content"]),
    "alpaca_preference": lambda row: (row["instruction"], row["chosen"], row["rejected"]),
    "sharegpt_preference": lambda row: (row["conversations"][-1]["value"], row["chosen"]["value"], row["rejected"]["value"]),
    "prompt_chosen_reject": lambda row: (row["prompt"], row["chosen"], row["reject"]),
}


@pytest.mark.parametrize("fmt", list(EXPORT_FORMATS))
def test_export_round_trips_and_leaves_out_discarded_and_unreviewed_flagged_pairs(llm_simulator, feedback_prompts, fmt, admin_user):
    job = run({"source": {"name": "feedback"}, "strategy": {"name": "near_miss"}})
    pairs = list(PreferencePair.objects.filter(job=job).order_by("id"))
    discarded, kept_flagged = pairs[0], pairs[1]
    PreferencePair.objects.filter(pk=discarded.pk).update(decision=ReviewDecision.REJECTED)
    PreferencePair.objects.filter(pk=kept_flagged.pk).update(issues=["off_topic"], decision=ReviewDecision.ACCEPTED)
    flagged_pending = pairs[2]
    PreferencePair.objects.filter(pk=flagged_pending.pk).update(issues=["truncated"])
    PreferencePair.objects.filter(pk__in=[p.pk for p in pairs[3:]]).update(issues=[])

    export = pairs_export(job=job, fmt=fmt, user=admin_user)

    expected = [(p.prompt, p.chosen, p.rejected) for p in pairs if p.pk not in (discarded.pk, flagged_pending.pk)]
    data_path = export_path(export, data_files(export)[0])
    rows = list(formats.iter_rows(data_path))
    assert [READERS[fmt](row) for row in rows] == expected
    assert all(formats.validate_row(fmt, row) == [] for row in rows)
    assert export.row_count == len(expected)
    assert export.report["pairs"] == {"discarded": 1, "flagged_pending": 1, "exported": len(expected)}
    raw = open(data_path, encoding="utf-8").read()
    # CJK written as UTF-8, not escaped.
    assert "\\u" not in raw and any("\u4e00" <= ch <= "\u9fff" for ch in raw)
    export_dir = data_path.parent
    if fmt == "trl_preference_conversational":  # no LLaMA-Factory reading: no entry, no file
        assert export.dataset_info == {} and not (export_dir / "dataset_info.json").exists()
        entry = {}
    else:
        info = json.loads((export_dir / "dataset_info.json").read_text(encoding="utf-8"))
        entry = info[f"dpo_job{job.pk}_{fmt}"]
        assert entry["file_name"] == data_path.name
    if fmt == "alpaca_preference":
        assert entry["ranking"] is True
        assert entry["columns"] == {"prompt": "instruction", "query": "input", "chosen": "chosen", "rejected": "rejected"}
    if fmt == "sharegpt_preference":
        assert entry["ranking"] is True and entry["formatting"] == "sharegpt"
        assert entry["columns"] == {"messages": "conversations", "chosen": "chosen", "rejected": "rejected"}
    assert export_dir.exists()
    with_flagged = pairs_export(job=job, fmt=fmt, user=admin_user, include_flagged=True)
    assert with_flagged.row_count == len(expected) + 1


def test_corrected_classification_outputs_are_a_source_with_their_images(dataset, assigned_category):
    from review.models import Mode, Review
    from tests.factories import ReasoningFactory, SampleFactory

    kept = SampleFactory(label=assigned_category, image="scenes/a.png")
    ReasoningFactory(sample=kept, mode=Mode.LIMITED, is_correct=True, output="图片显示颜色和尺码选项，因此属于商品分类选项。")
    corrected = SampleFactory(label=assigned_category, image="scenes/b.png")
    ReasoningFactory(sample=corrected, mode=Mode.LIMITED, is_correct=False, output="错误的推理")
    # As review_save stores a checked correction: the class it names and its length.
    Review.objects.create(sample=corrected, corrected_output="图中是规格选择界面。\n类别：商品分类选项",
                          corrected_category=assigned_category, corrected_length=18)

    job = run({"source": {"name": "classification", "dataset": dataset.name}, "strategy": {"name": "truncate"}})

    pairs = {p.key: p for p in PreferencePair.objects.filter(job=job)}
    assert set(pairs) == {f"classification:{kept.external_id}", f"classification:{corrected.external_id}"}
    pair = pairs[f"classification:{corrected.external_id}"]
    assert pair.chosen == "图中是规格选择界面。\n类别：商品分类选项" and pair.images == ["scenes/b.png"]
    assert pair.prompt.startswith("<image>")


def test_passed_or_rescued_generation_examples_are_a_source(db):
    from pipelines.models import GeneratedExample, Job, SourceItem

    gen_job = Job.objects.create(kind=JobKind.GENERATION)
    items = [SourceItem.objects.create(collection="c", external_id=str(i), wiki_title=f"t{i}") for i in range(3)]
    good = GeneratedExample.objects.create(job=gen_job, source_item=items[0], example_id="e0", question="长城有多长？",
                                           response="<think>查资料。</think>长城全长两万多公里。", passed=True)
    GeneratedExample.objects.create(job=gen_job, source_item=items[1], example_id="e1", question="失败的问题",
                                    response="坏回答", passed=False)
    rescued = GeneratedExample.objects.create(job=gen_job, source_item=items[2], example_id="e2", question="故宫在哪里？",
                                              response="旧回答", passed=False, decision=ReviewDecision.EDITED,
                                              edited_response="<think>想一想。</think>故宫在北京。")

    job = run({"source": {"name": "generation", "job_id": gen_job.pk}, "strategy": {"name": "drop_reasoning"}})

    pairs = {p.key: p for p in PreferencePair.objects.filter(job=job)}
    assert set(pairs) == {f"generation:{good.pk}", f"generation:{rescued.pk}"}
    assert pairs[f"generation:{rescued.pk}"].chosen == "<think>想一想。</think>故宫在北京。"
    assert pairs[f"generation:{rescued.pk}"].rejected == "故宫在北京。"
