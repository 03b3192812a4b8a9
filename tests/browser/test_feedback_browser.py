"""The feedback samples page in a real Chromium: a reviewer works through samples with the keyboard
(j to move, a to accept, e + Ctrl+Enter to edit, r to reject), and model output stays text."""
import pytest
from django.utils import timezone

from pipelines.models import FeedbackSample, ReviewDecision

pytestmark = pytest.mark.browser


def wait_until(check, page, timeout_ms=10_000):
    """Poll `check()` (a database read) until true, with a deadline."""
    waited = 0
    while not check():
        assert waited < timeout_ms, "condition not met in time"
        page.wait_for_timeout(100)
        waited += 100


def test_reviewer_works_through_feedback_with_the_keyboard(browser_page, browser_login, live_server, reviewer):
    now = timezone.now()
    samples = [
        FeedbackSample.objects.create(
            feedback_id=f"fb-{i}", instruction=f"第{i}个问题：介绍一下紫禁城", rating=5, model_name="huanhuan-qwen",
            output=f"第{i}个回答<script>window.pwned=1</script>", rated_at=now - timezone.timedelta(minutes=i))
        for i in range(4)
    ]
    page = browser_login(reviewer)
    page.goto(f"{live_server.url}/feedback/")
    assert "<script>window.pwned=1</script>" in page.locator(f"#feedback-{samples[0].pk} .fb-text").nth(1).inner_text()
    assert page.evaluate("window.pwned === undefined")

    page.keyboard.press("a")  # first card is current
    wait_until(lambda: FeedbackSample.objects.get(pk=samples[0].pk).decision == ReviewDecision.ACCEPTED, page)
    page.wait_for_selector(f"#feedback-{samples[1].pk}.is-current")

    page.keyboard.press("j")  # skip to the third sample
    page.wait_for_selector(f"#feedback-{samples[2].pk}.is-current")
    page.keyboard.press("e")  # opens the editor; feedback.js focuses the textarea, caret at the end
    page.wait_for_selector("[data-fb-edit] textarea:focus")
    page.keyboard.type("（已修改）")
    page.keyboard.press("Control+Enter")
    wait_until(lambda: FeedbackSample.objects.get(pk=samples[2].pk).decision == ReviewDecision.EDITED, page)
    assert FeedbackSample.objects.get(pk=samples[2].pk).edited_output.endswith("（已修改）")

    page.wait_for_selector(f"#feedback-{samples[3].pk}.is-current")
    page.keyboard.press("r")
    wait_until(lambda: FeedbackSample.objects.get(pk=samples[3].pk).decision == ReviewDecision.REJECTED, page)
    assert FeedbackSample.objects.get(pk=samples[1].pk).decision == ReviewDecision.PENDING

    page.keyboard.press("?")
    help_text = page.locator("#shortcut-help").inner_text()
    assert "接受" in help_text and "拒绝" in help_text and "下一条样本" in help_text
    assert page.page_errors == []
