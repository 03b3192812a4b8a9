"""Generation pieces without the job engine: structure check, judge parsing, source import, analysis."""
import json

import pytest

from pipelines.generation.prompts import is_multiple_choice_for
from pipelines.generation.services import source_items_import
from pipelines.generation.sources import resolve_image, sample_records
from pipelines.generation.structure import check_structure
from pipelines.generation.analysis import analyze, format_report
from pipelines.generation.judge import REASON_BELOW_THRESHOLD, VerdictUnparseable, failure_reasons_for, parse_verdict
from pipelines.models import SourceItem
from core.errors import ApplicationError

GOOD = "<look>一座红色的木塔</look><think>塔有五层，飞檐翘角。</think><answer>这是应县木塔。</answer>"


# --------------------------------------------------------------------------- structure
def test_complete_response_has_no_structure_problem():
    assert check_structure(GOOD) == []


@pytest.mark.parametrize("tag", ["look", "think", "answer"])
def test_each_missing_tag_is_its_own_reason(tag):
    broken = GOOD.replace(f"<{tag}>", "").replace(f"</{tag}>", "")
    assert check_structure(broken) == [f"Missing <{tag}> tag"]


def test_unclosed_or_empty_tag_counts_as_missing_and_order_is_checked():
    assert check_structure("<look>x</look><think>y<answer>z</answer>") == ["Missing <think> tag"]
    assert check_structure("<look> </look><think>y</think><answer>z</answer>") == ["Missing <look> tag"]
    assert check_structure("<answer>z</answer><look>x</look><think>y</think>") == ["Tags out of order"]
    assert check_structure("") == ["Missing <look> tag", "Missing <think> tag", "Missing <answer> tag"]


def test_question_type_ratio_is_stable_and_close_to_the_setting():
    draws = [is_multiple_choice_for(f"item-{i}", ratio=0.3, seed=7) for i in range(2000)]
    assert 0.26 < sum(draws) / len(draws) < 0.34
    assert draws == [is_multiple_choice_for(f"item-{i}", ratio=0.3, seed=7) for i in range(2000)]
    assert not any(is_multiple_choice_for(f"item-{i}", ratio=0, seed=7) for i in range(100))
    assert all(is_multiple_choice_for(f"item-{i}", ratio=1, seed=7) for i in range(100))


# --------------------------------------------------------------------------- judge
def test_verdict_is_read_from_plain_json_with_criteria():
    raw = json.dumps({"overall_score": 5.8, "pass": False, "issues": ["Repetitive language", "Insufficient depth"],
                      "scores": {"visual_grounding": 6, "reasoning_depth": "4.5"}, "comment": "meh"})
    verdict = parse_verdict(raw, threshold=7)
    assert verdict.overall_score == 5.8 and verdict.passed is False
    assert verdict.issues == ["Repetitive language", "Insufficient depth"]
    assert verdict.scores == {"visual_grounding": 6.0, "reasoning_depth": 4.5}
    result = verdict.as_validation_result()
    assert result["comment"] == "meh" and result["pass"] is False


def test_verdict_in_code_fence_or_prose_is_accepted():
    fenced = '```json\n{"overall_score": 8, "pass": true, "issues": []}\n```'
    assert parse_verdict(fenced).passed is True
    prose = 'Here is my verdict: {"overall_score": "6/10", "issues": "Missing visual details"} thanks'
    verdict = parse_verdict(prose)
    assert verdict.overall_score == 6.0 and verdict.issues == ["Missing visual details"]


def test_threshold_decides_and_judge_flag_is_kept_when_they_disagree():
    raw = '{"overall_score": 7.5, "pass": false, "issues": []}'
    assert parse_verdict(raw, threshold=7).passed is True
    assert parse_verdict(raw, threshold=7).as_validation_result()["judge_pass"] is False
    low = parse_verdict(raw, threshold=8)
    assert low.passed is False and failure_reasons_for(low) == [REASON_BELOW_THRESHOLD]
    assert parse_verdict('{"pass": true, "issues": []}').passed is True  # no score: the flag decides


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "The response looks fine to me.",
        '{"overall_score": 6.5, "pass": false, "issues": ["Repetitive language in cycles", "Insuff',
        '{"issues": ["x"]}',
        '{"overall_score": 42}',
        "[1, 2, 3]",
    ],
)
def test_unusable_verdicts_raise_their_own_error(raw):
    with pytest.raises(VerdictUnparseable):
        parse_verdict(raw)


# --------------------------------------------------------------------------- source import
def test_jsonl_import_reports_bad_lines_and_imports_the_rest(db):
    text = "\n".join(
        [
            json.dumps({"id": "a", "image": "img/a.jpg", "wiki_title": "应县木塔", "facts": ["建于1056年"],
                        "category": "建筑"}),
            "{not json",
            json.dumps({"id": "b", "wiki_title": "Eiffel Tower", "attributes": {"era": "modern"}}),
            json.dumps({"id": "c", "facts": ["no title"]}),
            json.dumps(["not", "an", "object"]),
            "",
            json.dumps({"id": "d", "image": "img/d.jpg", "facts": "one fact"}),
        ]
    )
    report = source_items_import(text=text, collection="wiki")
    assert report.created == 3
    assert [(p.line, p.message.split(":")[0].split("（")[0]) for p in report.problems] == [
        (2, "JSON 格式错误"), (4, "缺少 image 和 wiki_title"), (5, "不是 JSON 对象"),
    ]
    a = SourceItem.objects.get(collection="wiki", external_id="a")
    assert a.facts == ["建于1056年"] and a.attributes == {"category": "建筑"}
    assert SourceItem.objects.get(external_id="d").facts == ["one fact"]
    # Importing again updates in place.
    again = source_items_import(text=text, collection="wiki")
    assert (again.created, again.updated) == (0, 3)


def test_json_array_import_reports_line_of_broken_record_and_resumes(db):
    text = (
        "[\n"
        '  {"id": "a", "wiki_title": "A"},\n'
        '  {"id": "b", "wiki_title": "B" "oops": 1},\n'
        '  {"id": "c", "wiki_title": "C"}\n'
        "]\n"
    )
    report = source_items_import(text=text, collection="arr")
    assert report.created == 2
    assert [p.line for p in report.problems] == [3]
    assert set(SourceItem.objects.values_list("external_id", flat=True)) == {"a", "c"}


def test_sample_is_reproducible_and_keeps_order(db):
    text = "\n".join(json.dumps({"id": f"s{i:03d}", "wiki_title": f"T{i}"}) for i in range(50))
    first = source_items_import(text=text, collection="one", sample=10, seed=3)
    second = source_items_import(text=text, collection="two", sample=10, seed=3)
    assert first.external_ids == second.external_ids == sorted(first.external_ids)
    assert len(first.external_ids) == 10
    assert sample_records(list(range(50)), 10, seed=4) != sample_records(list(range(50)), 10, seed=3)
    with pytest.raises(ApplicationError):
        source_items_import(text=text, collection=" ")


def test_image_paths_are_confined_to_media_root(settings, tmp_path):
    (settings.MEDIA_ROOT / "img").mkdir()
    (settings.MEDIA_ROOT / "img" / "a.png").write_bytes(b"x")
    outside = tmp_path / "secret.png"
    outside.write_bytes(b"x")
    assert resolve_image("img/a.png") == (settings.MEDIA_ROOT / "img" / "a.png").resolve()
    assert resolve_image(str(settings.MEDIA_ROOT / "img" / "a.png")) is not None
    assert resolve_image("../secret.png") is None
    assert resolve_image(str(outside)) is None
    assert resolve_image("http://example.com/a.png") is None


# --------------------------------------------------------------------------- analysis
def _record(id_, *, passed, score, mc=False, reasons=(), response=GOOD, question="Q?", attrs=None, decision=None):
    record = {"id": id_, "question": question, "response": response, "is_multiple_choice": mc,
              "overall_score": score, "validation_result": {"overall_score": score, "pass": passed}}
    if not passed:
        record["failure_reason"] = list(reasons)
    if attrs is not None:
        record["attributes"] = attrs
    if decision is not None:
        record["decision"] = decision
    return record


@pytest.fixture
def hand_fixture():
    """4 passed, 4 failed; numbers below computed by hand."""
    no_think = "<look>abcd</look><answer>xy</answer>"
    passed = [
        _record("p1", passed=True, score=8.0, attrs={"category": "建筑"}),
        _record("p2", passed=True, score=9.5, attrs={"category": "建筑"}),
        _record("p3", passed=True, score=7.0, mc=True, attrs={"category": "人物"}),
        _record("p4", passed=True, score=10.0, attrs={"category": "人物"}),
    ]
    failed = [
        _record("f1", passed=False, score=5.8, reasons=["Repetitive language", "Insufficient depth"],
                attrs={"category": "建筑"}, decision="accepted"),
        _record("f2", passed=False, score=4.2, mc=True, reasons=["Insufficient depth"], attrs={"category": "人物"},
                decision="rejected"),
        _record("f3", passed=False, score=None, reasons=["Missing <think> tag"], response=no_think, mc=True,
                attrs={"category": "人物"}),
        _record("f4", passed=False, score=6.9, reasons=["Insufficient depth"], attrs={"category": "人物"},
                decision="edited"),
    ]
    return passed, failed


def test_analysis_numbers_on_a_hand_computed_fixture(hand_fixture):
    passed, failed = hand_fixture
    result = analyze(passed, failed, generation_errors=2)
    assert result["totals"] == {"total": 8, "passed": 4, "failed": 4, "pass_rate": 0.5, "generation_errors": 2}
    assert result["failure_reasons"] == [
        {"reason": "Insufficient depth", "count": 3, "share_of_failed": 0.75},
        {"reason": "Missing <think> tag", "count": 1, "share_of_failed": 0.25},
        {"reason": "Repetitive language", "count": 1, "share_of_failed": 0.25},
    ]
    hist = {row["bin"]: (row["passed"], row["failed"]) for row in result["score_histogram"]}
    assert hist["4–5"] == (0, 1) and hist["5–6"] == (0, 1) and hist["6–7"] == (0, 1)
    assert hist["7–8"] == (1, 0) and hist["8–9"] == (1, 0) and hist["9–10"] == (2, 0)  # 9.5 and 10.0
    assert sum(p + f for p, f in hist.values()) == 7 and result["unscored"] == {"passed": 0, "failed": 1}
    by_type = {row["value"]: row for row in result["by_question_type"]}
    assert (by_type["open"]["total"], by_type["open"]["passed"], by_type["open"]["pass_rate"]) == (5, 3, 0.6)
    assert (by_type["multiple_choice"]["total"], by_type["multiple_choice"]["passed"]) == (3, 1)
    by_cat = {row["value"]: row for row in result["by_attribute"]["category"]}
    assert (by_cat["建筑"]["passed"], by_cat["建筑"]["total"]) == (2, 3)
    assert (by_cat["人物"]["passed"], by_cat["人物"]["total"]) == (2, 5)
    comparison = result["comparison"]
    assert comparison["passed"]["avg_response_length"] == len(GOOD)
    assert comparison["failed"]["avg_response_length"] == round((3 * len(GOOD) + len("<look>abcd</look><answer>xy</answer>")) / 4, 2)
    assert comparison["passed"]["complete_structure_rate"] == 1.0
    assert comparison["failed"]["complete_structure_rate"] == 0.75
    assert comparison["passed"]["avg_score"] == round((8 + 9.5 + 7 + 10) / 4, 2)
    assert comparison["failed"]["avg_score"] == round((5.8 + 4.2 + 6.9) / 3, 2)
    assert [e["id"] for e in result["examples_by_reason"]["Insufficient depth"]] == ["f1", "f2", "f4"]
    agreement = result["agreement"]
    assert (agreement["decided"], agreement["overruled"], agreement["rejected"]) == (3, 2, 1)
    assert agreement["overrule_rate"] == round(2 / 3, 4)
    per_reason = {row["reason"]: row for row in agreement["per_reason"]}
    assert (per_reason["Insufficient depth"]["decided"], per_reason["Insufficient depth"]["overruled"]) == (3, 2)
    assert per_reason["Missing <think> tag"]["overrule_rate"] is None


def test_cli_report_text_matches_the_seed_layout(hand_fixture):
    text = format_report(analyze(*hand_fixture))
    assert "OVERALL STATISTICS" in text
    assert "Total examples generated: 8" in text
    assert "Successful: 4 (50.0%)" in text and "Failed: 4 (50.0%)" in text
    assert "Most common validation issues:\n  - Insufficient depth: 3\n" in text


def test_empty_run_analysis_has_no_division_errors():
    result = analyze([], [])
    assert result["totals"]["pass_rate"] is None
    assert "Total examples generated: 0" in format_report(result)
