"""Reviewer assist in a real Chromium, from the keyboard only: open the 疑似标签错误 list of a class,
read why each sample is suspected, decide each one (label wrong → 2 Enter Enter; label right but
the model weak → 3, accept the drafted correction with a, Enter) until the list is empty; accept a
draft on a too-long output (a Enter); find a failing draft not offered (a does nothing), discard it
(d) and correct by hand. Then the training set is exported and read back: what was decided is there,
and each correction says whether it came from a draft."""
import json

import pytest

from review.exports import trainset_export
from review.models import CorrectionDraft, Mode, Review
from tests.factories import CategoryFactory, ReasoningFactory, SampleFactory

LABEL, OTHER = "商品分类选项", "换货"
GOOD = "图片里是颜色和尺码的选择弹窗。\n类别：商品分类选项"
WRONG = "用户在申请更换商品。\n类别：换货"
LONG = "图片里有很多内容，" * 14 + "\n类别：商品分类选项"
DRAFT = "图片中是颜色和尺码的规格选项弹窗。\n类别：商品分类选项"
SHORT_DRAFT = "规格选项弹窗，可选颜色与尺码。\n类别：商品分类选项"


def make(category, other, external_id, *, modes_other=(), mode3=GOOD, info=None):
    """A sample whose modes in `modes_other` name `other` (the rest the label)."""
    sample = SampleFactory(label=category, external_id=external_id, image_info=info)
    for mode in (Mode.FREE, Mode.WITH_DEFINITIONS, Mode.LIMITED):
        named = other if mode in modes_other else category
        output = mode3 if mode == Mode.LIMITED else f"图片里是……\n类别：{named.name}"
        ReasoningFactory(sample=sample, mode=mode, predicted_category=named, output=output,
                         length=len("".join(output.split())))
    return sample


@pytest.mark.browser
def test_a_reviewer_clears_the_suspected_list_and_uses_drafts_from_the_keyboard(
        browser_page, browser_login, live_server, reviewer, assigned_category, tmp_path):
    label = assigned_category
    other = CategoryFactory(dataset=label.dataset, name=OTHER, definition="用户申请更换商品")
    everything = (Mode.FREE, Mode.WITH_DEFINITIONS, Mode.LIMITED)
    clean = make(label, other, "k-0")
    wrong_label = make(label, other, "k-1", modes_other=everything, mode3=WRONG,
                       info={"可见文字": ["申请更换商品", "换货原因"]})
    model_weak = make(label, other, "k-2", modes_other=everything, mode3=WRONG)
    too_long = make(label, other, "k-3", mode3=LONG)
    failing = make(label, other, "k-4", modes_other=(Mode.LIMITED,), mode3=WRONG)
    drafts = {s.external_id: CorrectionDraft.objects.create(sample=s, text=text, mode3_version=1, model_name="sim")
              for s, text in ((model_weak, DRAFT), (too_long, SHORT_DRAFT), (failing, WRONG))}
    page = browser_login(reviewer)

    def landed(sample):
        page.wait_for_selector(f'#sample-page[data-sample-id="{sample.pk}"]')
        page.wait_for_function("!document.body.hasAttribute('data-busy')")
        assert_focus_not_in_a_field()

    def assert_focus_not_in_a_field():
        active = page.evaluate("document.activeElement && document.activeElement.tagName")
        assert active not in ("TEXTAREA", "INPUT", "SELECT"), f"focus in a {active}"

    # The class queue: l shows the suspected samples, most suspect first; o opens the first.
    page.goto(f"{live_server.url}/categories/{label.pk}/?f=all&s=id")
    page.keyboard.press("l")
    page.wait_for_selector('.queue-filters a.active:has-text("疑似标签错误")')
    rows = page.locator(".queue-table tbody tr td.mono").all_inner_texts()
    assert rows == ["k-1", "k-2"]
    page.keyboard.press("o")
    landed(wrong_label)
    page.evaluate("window.__noReload = true")

    # Why it is suspected, on the page.
    card = page.locator("#label-suspicion")
    assert card.is_visible()
    text = card.inner_text()
    assert "疑似度 1.00" in text and "证据指向“换货”" in text and "图片信息最接近“换货”的定义" in text
    assert "第 1 / 2 条" in page.locator(".queue-pos").inner_text()
    # The label is wrong: cause (2) ticks "label error" and proposes mode 2's class; Enter, Enter.
    page.keyboard.press("2")
    assert page.locator("#id_suggested_label").input_value() == OTHER
    page.keyboard.press("Enter")
    page.keyboard.press("Enter")
    landed(model_weak)

    # The label is right, the model weak: cause (3); mode 3 is wrong, its draft is accepted with a.
    assert "疑似度 0.60" in page.locator("#label-suspicion").inner_text()
    page.keyboard.press("3")
    page.keyboard.press("a")
    assert page.locator("#id_corrected_output").input_value() == DRAFT
    assert_focus_not_in_a_field()
    page.wait_for_selector("#correction-check .ok")
    page.keyboard.press("Enter")
    page.wait_for_selector("#notice:has-text('这是队列的最后一条')")
    assert page.evaluate("window.__noReload") is True, "a key reloaded the whole page"

    # Back to the queue: the suspected list is empty.
    page.keyboard.press("u")
    page.wait_for_selector(".queue-filters a.active:has-text('疑似标签错误')")
    assert page.locator(".queue-filters a.active .count").inner_text() == "0"
    assert page.locator("p.empty").is_visible()

    # A too-long output with a passing draft: a, Enter.
    page.goto(f"{live_server.url}/samples/{too_long.pk}/?f=all&s=id")
    landed(too_long)
    page.evaluate("window.__noReload = true")
    assert "<del>" in page.locator("[data-draft-diff]").inner_html()
    page.keyboard.press("a")
    page.wait_for_selector("#correction-check .ok")
    page.keyboard.press("Enter")
    landed(failing)

    # A failing draft is shown as failed and not offered: a does nothing; d discards it.
    assert "草稿未通过检查" in page.locator("#correction-draft").inner_text()
    page.keyboard.press("a")
    assert page.locator("#id_corrected_output").input_value() == WRONG
    page.keyboard.press("d")
    page.wait_for_selector("#correction-draft:has-text('已丢弃这份修正草稿')")
    assert_focus_not_in_a_field()
    page.keyboard.press("e")
    typed = "人工改写：颜色尺码弹窗。\n类别：商品分类选项"
    page.keyboard.type(typed)
    page.keyboard.press("Control+Enter")
    page.wait_for_selector("#notice:has-text('这是队列的最后一条')")
    assert page.evaluate("window.__noReload") is True, "a key reloaded the whole page"
    assert page.page_errors == []

    # Read back what was decided.
    out = tmp_path / "train.jsonl"
    export = trainset_export(dataset=label.dataset, fmt="jsonl", path=out)
    rows = {row["id"]: row["response"] for row in map(json.loads, out.read_text(encoding="utf-8").splitlines())}
    assert rows == {clean.external_id: GOOD, "k-2": DRAFT, "k-3": SHORT_DRAFT, "k-4": typed}
    assert {item["id"]: item["suggested"] for item in export.report["label_errors"][LABEL]} == {"k-1": OTHER}
    assert export.report["pending"] == 0
    for draft in drafts.values():
        draft.refresh_from_db()
    assert (drafts["k-2"].status, drafts["k-2"].edited) == ("accepted", False)
    assert (drafts["k-3"].status, drafts["k-3"].edited) == ("accepted", False)
    assert drafts["k-4"].status == "discarded"
    assert Review.objects.get(sample=model_weak).edits.get().after["correction_draft"]["edited"] is False
    assert Review.objects.get(sample=failing).edits.get().after["correction_draft"] is None
