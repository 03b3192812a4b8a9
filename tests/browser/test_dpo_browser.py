"""The DPO pair review in a real Chromium: one key decides and moves on, edit, conflicts, escaping."""
import pytest

from pipelines.models import PreferencePair, ReviewDecision

pytestmark = pytest.mark.browser


def _poll(check, page, timeout_ms=5000):
    """Wait for a database condition by polling with a deadline (no fixed sleeps)."""
    waited = 0
    while not check():
        if waited >= timeout_ms:
            raise AssertionError("condition not reached in time")
        page.wait_for_timeout(100)
        waited += 100


def _pairs(job):
    return list(PreferencePair.objects.filter(job=job).order_by("id"))


def test_y_s_and_d_each_decide_and_show_the_next_pair_in_one_key(browser_page, live_server, browser_login, reviewer, dpo_job):
    page = browser_page
    first, second, third, fourth = _pairs(dpo_job)[:4]
    PreferencePair.objects.filter(pk=first.pk).update(prompt='列出5种不同的水果。<script>window.pwned=1</script>')
    browser_login(reviewer)
    page.goto(f"{live_server.url}/dpo/jobs/{dpo_job.pk}/pairs/{first.pk}/")
    assert page.locator(".dpo-prompt").inner_text().endswith("<script>window.pwned=1</script>")
    assert page.evaluate("window.pwned === undefined")

    page.keyboard.press("y")
    page.wait_for_selector(f"#pair-{second.pk}")
    assert page.url.endswith(f"/pairs/{second.pk}/")
    assert f"已接受 {first.key}，已进入下一条" in page.locator("[role=status]").inner_text()
    _poll(lambda: PreferencePair.objects.get(pk=first.pk).decision == ReviewDecision.ACCEPTED, page)

    page.keyboard.press("s")
    page.wait_for_selector(f"#pair-{third.pk}")
    _poll(lambda: PreferencePair.objects.get(pk=second.pk).chosen == second.rejected, page)

    page.keyboard.press("d")
    page.wait_for_selector(f"#pair-{fourth.pk}")
    _poll(lambda: PreferencePair.objects.get(pk=third.pk).decision == ReviewDecision.REJECTED, page)
    assert page.title().startswith(f"偏好对 {fourth.key}")

    page.keyboard.press("k")  # back, without saving: the discarded pair says so in Chinese
    page.wait_for_selector(f"#pair-{third.pk}")
    assert page.locator(".dpo-review-status .badge").inner_text() == "已丢弃"
    assert page.page_errors == []


def test_a_passed_check_reads_as_passed_in_the_browser(browser_page, live_server, browser_login, reviewer, dpo_job):
    page = browser_page
    clean = PreferencePair.objects.filter(job=dpo_job, issues=[]).first()
    browser_login(reviewer)
    page.goto(f"{live_server.url}/dpo/jobs/{dpo_job.pk}/pairs/{clean.pk}/")
    results = page.locator(".dpo-checks tbody tr td:nth-child(2)").all_inner_texts()
    assert results and all(text.strip() == "✓ 通过" for text in results)
    assert "全部通过" in page.locator(".dpo-checks h3").inner_text()


def test_edit_saves_with_ctrl_enter_and_a_fast_key_acts_on_the_next_pair(browser_page, live_server, browser_login, reviewer, dpo_job):
    page = browser_page
    first, second, third = _pairs(dpo_job)[:3]
    browser_login(reviewer)
    page.goto(f"{live_server.url}/dpo/jobs/{dpo_job.pk}/pairs/{first.pk}/")
    page.keyboard.press("e")  # edit both sides, save with Ctrl+Enter
    rejected = page.locator("textarea[name=rejected]")
    rejected.fill("苹果、香蕉")
    page.locator("textarea[name=chosen]").fill("苹果、香蕉、橘子、菠萝、草莓")
    # A fast reviewer presses "d" the moment the next pair is swapped in. That key must act through htmx
    # on the new content, not submit its form natively (a full page load) before htmx knows it.
    page.evaluate("""() => {
        window.__noReload = true;
        document.body.addEventListener("htmx:afterSwap", () => setTimeout(() =>
            document.dispatchEvent(new KeyboardEvent("keydown", {key: "d", bubbles: true})), 0), {once: true});
    }""")
    rejected.press("Control+Enter")
    _poll(lambda: PreferencePair.objects.get(pk=second.pk).decision == ReviewDecision.REJECTED, page)
    page.wait_for_selector(f"#pair-{third.pk}")
    assert page.evaluate("window.__noReload") is True, "the key submitted the form natively"
    saved = PreferencePair.objects.get(pk=first.pk)
    assert saved.chosen == "苹果、香蕉、橘子、菠萝、草莓" and saved.rejected == "苹果、香蕉" and saved.issues == []
    assert saved.decision == ReviewDecision.EDITED

    page.keyboard.press("?")
    assert page.locator("#shortcut-help").is_visible()
    assert "交换 chosen / rejected 并下一条" in page.locator("#shortcut-help").inner_text()


def test_a_pair_saved_by_someone_else_meanwhile_is_refused_on_the_page(browser_page, live_server, browser_login, reviewer, dpo_job):
    page = browser_page
    first = _pairs(dpo_job)[0]
    browser_login(reviewer)
    page.goto(f"{live_server.url}/dpo/jobs/{dpo_job.pk}/pairs/{first.pk}/")
    PreferencePair.objects.filter(pk=first.pk).update(decision=ReviewDecision.ACCEPTED, version=2)  # another reviewer
    page.keyboard.press("d")
    page.wait_for_selector("text=已被其他人修改")
    assert page.locator(f"#pair-{first.pk}").is_visible()
    assert PreferencePair.objects.get(pk=first.pk).decision == ReviewDecision.ACCEPTED
