"""A reviewer's keyboard session of 20+ decisions in a real Chromium, each key pressed the moment the
previous swap lands; then the training set is exported and compared row by row with what was decided.

It pins down what went wrong before: after a Ctrl+Enter save the next sample opened with the focus in
its mode-3 box, so the next `y` was typed into training text; `y` recorded "keep" where nothing was
keepable; and unsaved input was lost on navigation.
"""
import json

import pytest

from review.exports import trainset_export
from review.models import Cause, Mode, Review
from tests.factories import CategoryFactory, ReasoningFactory, SampleFactory

LABEL = "商品分类选项"
GOOD = "图片里是颜色和尺码的选择弹窗。\n类别：商品分类选项"
WRONG = "用户在申请更换商品。\n类别：换货"
LONG = "图片里有很多内容，" * 14 + "\n类别：商品分类选项"

# Each sample's state: (mode 2 right?, mode-3 output, is mode 3 right?)
STATES = {
    "keep": (True, GOOD, True),
    "m2_wrong": (False, GOOD, True),
    "m3_wrong": (True, WRONG, False),
    "m3_long": (True, LONG, True),
}
PLAN = ["keep", "keep", "m2_wrong", "m3_wrong", "keep", "m3_long", "keep", "m2_wrong", "keep", "keep",
        "m3_wrong", "keep", "keep", "m2_wrong", "keep", "m3_long", "keep", "keep", "keep", "keep", "keep", "keep",
        "keep", "keep"]


def build(category, other):
    samples = []
    for i, state in enumerate(PLAN):
        mode2_right, mode3, mode3_right = STATES[state]
        sample = SampleFactory(label=category, external_id=f"k-{i:02d}")
        ReasoningFactory(sample=sample, mode=Mode.WITH_DEFINITIONS, predicted_category=category if mode2_right else other,
                         is_correct=mode2_right)
        ReasoningFactory(sample=sample, mode=Mode.LIMITED, output=mode3, is_correct=mode3_right,
                         predicted_category=category if mode3_right else other, length=len("".join(mode3.split())))
        samples.append(sample)
    return samples


@pytest.mark.browser
def test_a_keyboard_session_exports_exactly_what_was_decided(browser_page, browser_login, live_server, reviewer,
                                                             assigned_category, tmp_path):
    other = CategoryFactory(dataset=assigned_category.dataset, name="换货", definition="用户申请更换商品")
    CategoryFactory(dataset=assigned_category.dataset, name="退货退款", definition="退货或退款")
    samples = build(assigned_category, other)
    page = browser_login(reviewer)
    page.goto(f"{live_server.url}/samples/{samples[0].pk}/?f=all&s=id")
    page.evaluate("window.__noReload = true")
    expected: dict[str, str] = {}   # sample id → exported response
    label_errors: dict[str, str] = {}
    decisions = 0
    current = 0

    def landed(index):
        """Wait for sample `index`'s swap; the focus must then be on the page, never in a field."""
        try:
            page.wait_for_selector(f'#sample-page[data-sample-id="{samples[index].pk}"]')
        except Exception:
            page.screenshot(path="/tmp/kb-fail.png", full_page=True)
            raise
        page.wait_for_function("!document.body.hasAttribute('data-busy')")
        active = page.evaluate("document.activeElement && document.activeElement.tagName")
        assert active not in ("TEXTAREA", "INPUT", "SELECT"), f"focus in a {active} after landing on {index}"

    def press(*keys):
        for key in keys:
            page.keyboard.press(key)

    def correct_with_keyboard(text):
        press("e")                                 # opens the box with its text selected …
        page.keyboard.type(text)                   # … so typing replaces it
        press("Control+Enter")

    landed(0)
    for index, state in enumerate(PLAN):
        sample_id = samples[index].external_id
        if index in (4, 9):
            # Navigate away and back without saving: j then k lands on the same sample again.
            press("j")
            landed(index + 1)
            press("k")
            landed(index)
            decisions += 2
        if index == 12:
            # A draft survives navigation: type a note, leave with j, come back with k.
            press("n")
            page.keyboard.type("草稿里的备注")
            press("Escape", "j")
            landed(index + 1)
            press("k")
            landed(index)
            assert page.locator("#id_note").input_value() == "草稿里的备注"
            assert page.locator(".draft-restored").is_visible()
            decisions += 1
        if state == "keep" and index in (8, 18):
            # Flag a label error with a suggestion typed into the filter field, then save.
            press("f")
            page.keyboard.type("换货")
            press("Enter")                         # accepts the suggestion (does not submit)
            assert page.locator("#sample-page").get_attribute("data-sample-id") == str(samples[index].pk)
            press("Enter")                         # saves
            label_errors[sample_id] = "换货"
        elif state == "keep":
            press("y")
            expected[sample_id] = GOOD
        elif state == "m2_wrong":
            # `y` is refused with the reason; a cause then Enter saves, the model output is kept.
            press("y")
            assert "模式2推理错误" in page.locator(".keep-blocked").inner_text()
            press("1" if index % 2 else "3", "Enter")
            expected[sample_id] = GOOD
            decisions += 1
        else:
            # Mode 3 wrong or too long: `y` is refused; correct it with e … Ctrl+Enter.
            press("y")
            assert "请修正模式3输出" in page.locator(".keep-blocked").inner_text()
            text = f"第{index}号：页面显示颜色与尺码选项。\n类别：{LABEL}"
            correct_with_keyboard(text)
            expected[sample_id] = text
            decisions += 1
        decisions += 1
        current = index + 1
        if current < len(samples):
            landed(current)
        else:
            page.wait_for_selector("#notice:has-text('这是队列的最后一条')")

    assert decisions >= 20
    assert page.evaluate("window.__noReload") is True, "a save reloaded the whole page"
    assert page.page_errors == []

    out = tmp_path / "train.jsonl"
    export = trainset_export(dataset=assigned_category.dataset, fmt="jsonl", path=out)
    rows = {row["id"]: row["response"] for row in map(json.loads, out.read_text(encoding="utf-8").splitlines())}
    assert rows == expected, "the exported rows differ from the decisions made"
    assert {item["id"]: item["suggested"] for item in export.report["label_errors"][LABEL]} == label_errors
    assert export.report["pending"] == 0
    reviews = Review.objects.filter(sample__in=samples)
    assert reviews.count() == len(samples)
    assert not reviews.filter(cause=Cause.NONE, sample__reasonings__mode=Mode.WITH_DEFINITIONS,
                              sample__reasonings__is_correct=False).exists()
    assert all(r.version == 1 for r in reviews), "a sample was saved twice"


@pytest.mark.browser
def test_unsaved_input_survives_closing_the_tab_and_going_back_to_the_queue(browser_page, browser_login, live_server,
                                                                           reviewer, assigned_category, tmp_path):
    other = CategoryFactory(dataset=assigned_category.dataset, name="换货", definition="用户申请更换商品")
    sample = build(assigned_category, other)[PLAN.index("m3_wrong")]
    page = browser_login(reviewer)
    url = f"{live_server.url}/samples/{sample.pk}/?f=all&s=id"
    page.goto(url)
    page.wait_for_selector(f'#sample-page[data-sample-id="{sample.pk}"]')
    page.keyboard.press("e")
    page.keyboard.type(f"草稿：页面显示颜色与尺码。\n类别：{LABEL}")
    page.keyboard.press("Escape")
    page.keyboard.press("1")

    # Close the tab; a new tab on the same sample gives the input back and says so.
    second = page.context.new_page()
    page.close()
    second.goto(url)
    second.wait_for_selector(".draft-restored:visible")
    assert second.locator("#id_corrected_output").input_value() == f"草稿：页面显示颜色与尺码。\n类别：{LABEL}"
    assert second.locator('input[name="cause"][value="definitions_overlap"]').is_checked()
    # u (back to the queue) and back again: still there; a save clears it.
    second.keyboard.press("u")
    second.wait_for_selector("#queue")
    second.goto(url)
    second.wait_for_selector(".draft-restored:visible")
    second.keyboard.press("Enter")
    second.wait_for_selector("#notice:has-text('已保存')")
    assert Review.objects.get(sample=sample).corrected_output.startswith("草稿：")
    second.goto(url)
    second.wait_for_selector(f'#sample-page[data-sample-id="{sample.pk}"]')
    assert second.locator(".draft-restored").is_hidden()
