"""Imported text and model output with <script>, onerror= and javascript: in a real browser.

Every page that shows such text is opened in headless Chromium: no script of the payload runs
(a window flag stays unset, no dialog opens), the payload is visible as text, and the page causes
no Content-Security-Policy violation of its own.
"""
import pytest

from pipelines.models import (
    FeedbackSample,
    GeneratedExample,
    Job,
    JobItem,
    JobKind,
    JobStatus,
    LogRecord,
    PreferencePair,
    SourceItem,
)
from review.models import Cause, Mode, Reasoning, Review
from tests.factories import AssignmentFactory, CategoryFactory, DatasetFactory, SampleFactory, UserFactory

pytestmark = pytest.mark.browser

PAYLOAD = (
    '<script>window.__xss = "script"; alert(1)</script>'
    '<img src=x onerror="window.__xss=\'img\'; alert(2)">'
    '<a href="javascript:window.__xss=\'link\'">点我</a>'
    '<svg onload="window.__xss=\'svg\'"></svg>'
    '"><script>window.__xss="attr"</script>'
)


def payload(label: str) -> str:
    return f"{label} {PAYLOAD}"


@pytest.fixture
def hostile_world(transactional_db, media_root):
    from PIL import Image

    staff = UserFactory(username="boss", is_staff=True, is_superuser=True)
    dataset = DatasetFactory(name="xss-" + "<script>window.__xss='dataset'</script>")
    category = CategoryFactory(dataset=dataset, name="换货<img src=x onerror=alert(3)>", definition=payload("定义"))
    AssignmentFactory(reviewer=staff, category=category)
    Image.new("RGB", (8, 8)).save(media_root / "x.png")
    sample = SampleFactory(label=category, external_id="s-<b onmouseover=alert(4)>1</b>", image="x.png",
                           image_info={"visible_text": payload("图中文字")})
    for mode in Mode.values:
        Reasoning.objects.create(sample=sample, mode=mode, output=payload(f"模式{mode}输出"),
                                 predicted_name=category.name, predicted_category=category, is_correct=False, length=20)
    Review.objects.create(sample=sample, reviewer=staff, cause=Cause.MODEL_WEAK, corrected_output=payload("修正"),
                          note=payload("备注"), version=1)

    def job(kind, **params):
        created = Job.objects.create(kind=kind, params=params, status=JobStatus.DONE, items_total=1, items_failed=1,
                                     error_summary=payload("错误"))
        JobItem.objects.create(job=created, key="k<script>1</script>", status="failed", error_kind="error",
                               error=payload("条目错误"))
        return created

    classification = job(JobKind.CLASSIFICATION, dataset_id=dataset.pk, mode=2)
    generation = job(JobKind.GENERATION)
    source = SourceItem.objects.create(collection="c", external_id="s1", image="x.png", wiki_title=payload("维基"))
    example = GeneratedExample.objects.create(
        job=generation, source_item=source, example_id="e1", question=payload("问题"),
        response=payload("<look>回答</look>"), passed=False, failure_reasons=[payload("原因")], judge_raw=payload("评判"))
    dpo = job(JobKind.DPO, strategy={"name": "truncate"}, source={"name": "feedback"})
    pair = PreferencePair.objects.create(job=dpo, key="k1", source="feedback", prompt=payload("提示"),
                                         chosen=payload("好回答"), rejected=payload("差回答"), strategy="truncate")
    logs = job(JobKind.LOG_EXTRACTION)
    LogRecord.objects.create(job=logs, source_file="a<script>.log", line_no=1, prompt=payload("日志提示"),
                             response=payload("日志回答"), content_hash="h")
    FeedbackSample.objects.create(feedback_id="f<script>1", instruction=payload("指令"), input=payload("输入"),
                                  output=payload("输出"), rating=2)
    pages = {
        "home": "/",
        "queue": f"/categories/{category.pk}/",
        "sample": f"/samples/{sample.pk}/",
        "analysis": f"/analysis/{dataset.pk}/",
        "analysis class": f"/analysis/{dataset.pk}/classes/{category.pk}/",
        "confusion": f"/analysis/{dataset.pk}/confusion/",
        "jobs": "/jobs/",
        "job": f"/jobs/{classification.pk}/",
        "job items": f"/jobs/{classification.pk}/items/",
        "generation runs": "/generation/",
        "generation failed": f"/generation/runs/{generation.pk}/failed/",
        "generation analysis": f"/generation/runs/{generation.pk}/",
        "feedback": "/feedback/",
        "log records": f"/feedback/logs/{logs.pk}/",
        "dpo jobs": "/dpo/",
        "dpo pairs": f"/dpo/jobs/{dpo.pk}/pairs/",
        "dpo pair": f"/dpo/jobs/{dpo.pk}/pairs/{pair.pk}/",
        "assignments": f"/datasets/{dataset.pk}/assignments/",
    }
    return staff, pages, example


def test_hostile_text_is_shown_as_text_and_never_runs(browser_page, browser_login, live_server, hostile_world):
    staff, pages, _example = hostile_world
    browser_page.set_default_timeout(30_000)  # a shared 2-core machine: the first render is slow
    browser_page.set_default_navigation_timeout(30_000)
    dialogs = []
    browser_page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    browser_login(staff)
    problems = []
    shown_as_text = 0
    for name, path in pages.items():
        browser_page.console_errors.clear()
        response = browser_page.goto(live_server.url + path)
        browser_page.wait_for_load_state("load")
        status = response.status if response else None
        if status != 200:
            problems.append(f"{name} {path}: HTTP {status}")
            continue
        flag = browser_page.evaluate("() => window.__xss")
        if flag is not None:
            problems.append(f"{name} {path}: the payload ran ({flag})")
        hostile = browser_page.evaluate("""() => ({
            handlers: [...document.querySelectorAll('*')].filter(e => [...e.attributes].some(
                a => a.name.startsWith('on'))).map(e => e.outerHTML.slice(0, 80)),
            jsLinks: [...document.querySelectorAll('a[href^="javascript:" i]')].map(a => a.outerHTML.slice(0, 80)),
        })""")
        if hostile["handlers"] or hostile["jsLinks"]:
            problems.append(f"{name} {path}: live markup from the data: {hostile}")
        if "<script>window.__xss" in browser_page.inner_text("body"):
            shown_as_text += 1
        csp = [line for line in browser_page.console_errors if "Content Security Policy" in line]
        if csp:
            problems.append(f"{name} {path}: CSP violation: {csp[0][:200]}")
    # A click on anything that looks like the payload's link must not run it either.
    browser_page.goto(live_server.url + pages["sample"])
    for link in browser_page.get_by_text("点我").all()[:3]:
        link.click(force=True, no_wait_after=True)
    if browser_page.evaluate("() => window.__xss") is not None:
        problems.append("clicking the payload's link ran it")
    assert not dialogs, f"dialogs opened: {dialogs}"
    assert not problems, "\n".join(problems)
    assert shown_as_text >= 5, "the payload should be visible as text on the pages that show it"
