"""The DPO pair review in a real Chromium: keyboard shortcuts, swap over htmx, edit, escaping."""
import pytest

from pipelines.models import PreferencePair, ReviewDecision
from tests.pipelines.conftest_dpo import SEED_REJECT, dpo_job  # noqa: F401

pytestmark = pytest.mark.browser


def _poll(check, page, timeout_ms=5000):
    """Wait for a database condition by polling with a deadline (no fixed sleeps)."""
    waited = 0
    while not check():
        if waited >= timeout_ms:
            raise AssertionError("condition not reached in time")
        page.wait_for_timeout(100)
        waited += 100


def test_reviewer_swaps_edits_and_discards_with_the_keyboard(browser_page, live_server, browser_login, reviewer, dpo_job):
    page = browser_page
    pair = PreferencePair.objects.get(job=dpo_job, key="feedback:1")
    PreferencePair.objects.filter(pk=pair.pk).update(prompt='列出5种不同的水果。<script>window.pwned=1</script>')
    browser_login(reviewer)
    page.goto(f"{live_server.url}/dpo/jobs/{dpo_job.pk}/pairs/{pair.pk}/")
    assert page.locator(".dpo-prompt").inner_text().endswith("<script>window.pwned=1</script>")
    assert page.evaluate("window.pwned === undefined")

    page.keyboard.press("s")  # swap: the boilerplate becomes the chosen side
    page.wait_for_selector("text=已保存：交换 chosen / rejected")
    _poll(lambda: PreferencePair.objects.get(pk=pair.pk).chosen == SEED_REJECT, page)

    page.keyboard.press("e")  # edit both sides, save with Ctrl+Enter
    rejected = page.locator("textarea[name=rejected]")
    rejected.fill("苹果、香蕉")
    page.locator("textarea[name=chosen]").fill("苹果、香蕉、橘子、菠萝、草莓")
    # A fast reviewer presses "d" the moment the saved pair is swapped in. That key must act through
    # htmx on the new content, not submit its form natively (a full page load) before htmx knows it.
    page.evaluate("""() => {
        window.__noReload = true;
        document.body.addEventListener("htmx:afterSwap", () => setTimeout(() =>
            document.dispatchEvent(new KeyboardEvent("keydown", {key: "d", bubbles: true})), 0), {once: true});
    }""")
    rejected.press("Control+Enter")
    _poll(lambda: PreferencePair.objects.get(pk=pair.pk).decision == ReviewDecision.REJECTED, page)
    page.wait_for_selector("text=已保存：丢弃")
    assert page.evaluate("window.__noReload") is True, "the key submitted the form natively"
    saved = PreferencePair.objects.get(pk=pair.pk)
    assert saved.chosen == "苹果、香蕉、橘子、菠萝、草莓" and saved.rejected == "苹果、香蕉" and saved.issues == []

    page.keyboard.press("?")
    assert page.locator("#shortcut-help").is_visible()
    assert "交换 chosen / rejected" in page.locator("#shortcut-help").inner_text()
