"""Generation pages in a real Chromium: charts render from json_script, the review keys work."""
import pytest

from pipelines.models import GeneratedExample, ReviewDecision

pytestmark = pytest.mark.browser


def test_failure_analysis_charts_render(browser_page, live_server, browser_login, reviewer, finished_run):
    browser_login(reviewer)
    browser_page.goto(f"{live_server.url}/generation/runs/{finished_run.pk}/")
    browser_page.wait_for_function("() => document.querySelectorAll('canvas[data-rendered]').length >= 3")
    charts = browser_page.evaluate(
        "() => Array.from(document.querySelectorAll('canvas[data-chart]'))"
        ".map(c => [c.dataset.chart, !!Chart.getChart(c), c.width > 0])"
    )
    assert {name for name, made, sized in charts if made and sized} >= {"reasons", "histogram", "question_type"}
    assert browser_page.page_errors == []


def test_reviewer_decides_with_keyboard_shortcuts(browser_page, live_server, browser_login, reviewer, finished_run):
    browser_login(reviewer)
    browser_page.goto(f"{live_server.url}/generation/runs/{finished_run.pk}/failed/?reason=Missing+%3Cthink%3E+tag")
    card = browser_page.locator("#review-card")
    example = GeneratedExample.objects.get(job=finished_run, source_item__external_id="no-think-1")
    assert example.example_id in card.inner_text()

    # e focuses the editor; Escape leaves it; s submits "accept with edits" through htmx.
    browser_page.keyboard.press("e")
    editor = browser_page.locator("textarea[name=edited_response]")
    editor.fill("<look>星空与村庄</look><think>旋转的笔触是梵高的风格。</think><answer>星月夜</answer>")
    browser_page.keyboard.press("Escape")
    browser_page.keyboard.press("s")
    browser_page.wait_for_selector("text=没有符合条件的未通过样本")
    example.refresh_from_db()
    assert example.decision == ReviewDecision.EDITED and example.decided_by == reviewer

    browser_page.goto(f"{live_server.url}/generation/runs/{finished_run.pk}/failed/?reason=Insufficient+depth+in+reasoning")
    first = browser_page.locator(".gen-card .mono").first.inner_text()
    browser_page.keyboard.press("r")
    browser_page.wait_for_function(
        "(before) => !document.querySelector('.gen-card .mono') || "
        "document.querySelector('.gen-card .mono').innerText !== before", arg=first)
    rejected = GeneratedExample.objects.get(job=finished_run, example_id=first.split(" ")[0])
    assert rejected.decision == ReviewDecision.REJECTED

    # A refused decision (422) shows its message in the card instead of doing nothing.
    browser_page.goto(f"{live_server.url}/generation/runs/{finished_run.pk}/failed/?reason=Missing+%3Canswer%3E+tag")
    browser_page.keyboard.press("a")
    browser_page.wait_for_selector("#review-card .message.error")
    assert "不能原样接受" in browser_page.locator("#review-card .message.error").inner_text()

    browser_page.keyboard.press("?")
    assert browser_page.locator("#shortcut-help").is_visible()
    assert browser_page.page_errors == []
