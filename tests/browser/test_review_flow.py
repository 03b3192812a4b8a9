"""A reviewer reviews three samples with the keyboard only, in a real headless Chromium."""
import pytest

from review.models import Cause, Mode, Review
from tests.factories import ReasoningFactory, SampleFactory


@pytest.mark.browser
def test_reviewer_reviews_three_samples_with_the_keyboard(browser_page, browser_login, live_server, reviewer,
                                                          assigned_category, unassigned_category):
    samples = [SampleFactory(label=assigned_category, external_id=f"s-{i}") for i in range(4)]
    for sample in samples:
        ReasoningFactory(sample=sample, mode=Mode.WITH_DEFINITIONS, is_correct=True)
        ReasoningFactory(sample=sample, mode=Mode.LIMITED, is_correct=True,
                         output="图片显示颜色和规格选项。\n类别：商品分类选项")
    # The second sample's mode 2 picked another class, as the reviewer will find.
    wrong = samples[1].reasonings.get(mode=Mode.WITH_DEFINITIONS)
    wrong.predicted_category, wrong.predicted_name, wrong.is_correct = unassigned_category, "换货", False
    wrong.save()

    page = browser_login(reviewer)
    page.goto(f"{live_server.url}/samples/{samples[0].pk}/?f=all&s=id")
    page.wait_for_selector(f'#sample-page[data-sample-id="{samples[0].pk}"]')
    page.evaluate("window.__noReload = true")

    # 1: "correct, keep" → next sample.
    page.keyboard.press("y")
    page.wait_for_selector(f'#sample-page[data-sample-id="{samples[1].pk}"]')
    # 2: cause (1) definitions overlap, edit mode 3 via the keyboard, save with Enter.
    page.keyboard.press("1")
    page.keyboard.press("e")
    page.keyboard.press("Control+End")
    page.keyboard.type("（已核对）")
    page.keyboard.press("Escape")
    page.keyboard.press("Enter")
    page.wait_for_selector(f'#sample-page[data-sample-id="{samples[2].pk}"]')
    # 3: the label is wrong: cause (2) ticks and locks the label-error flag ("f" can't untick it)
    # and moves to the suggested-class field, where typing filters the classes.
    page.keyboard.press("2")
    flag = page.locator('input[name="label_error"]')
    assert flag.is_checked() and flag.is_disabled()
    assert page.evaluate("document.activeElement.id") == "id_suggested_label"
    page.keyboard.type("换货")
    page.keyboard.press("Enter")  # accepts the suggestion, leaves the field
    page.keyboard.press("f")
    assert flag.is_checked()
    page.keyboard.press("3")  # another cause gives the reviewer's own setting back
    assert not flag.is_checked() and flag.is_enabled()
    page.keyboard.press("2")
    page.keyboard.press("Escape")
    page.keyboard.press("Enter")
    page.wait_for_selector(f'#sample-page[data-sample-id="{samples[3].pk}"]')

    assert page.evaluate("window.__noReload") is True, "saving reloaded the whole page"
    assert page.url.endswith(f"/samples/{samples[3].pk}/?f=all&s=id")
    reviews = {r.sample_id: r for r in Review.objects.filter(sample__in=samples)}
    assert set(reviews) == {samples[0].pk, samples[1].pk, samples[2].pk}
    assert reviews[samples[0].pk].cause == Cause.NONE and reviews[samples[0].pk].corrected_output == ""
    assert reviews[samples[1].pk].cause == Cause.DEFINITIONS_OVERLAP
    assert reviews[samples[1].pk].corrected_output.endswith("（已核对）")
    assert reviews[samples[2].pk].cause == Cause.LABEL_WRONG and reviews[samples[2].pk].label_error is True
    assert reviews[samples[2].pk].suggested_label == unassigned_category
    assert all(r.reviewer_id == reviewer.pk and r.version == 1 for r in reviews.values())

    # "?" shows the help overlay built from the same bindings.
    page.keyboard.press("?")
    assert page.locator("#shortcut-help").is_visible()
    assert "正确，保留" in page.locator("#shortcut-help").inner_text()
    assert page.title().startswith("s-3 · ")
    assert page.page_errors == []
