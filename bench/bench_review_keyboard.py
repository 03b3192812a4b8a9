"""A scripted reviewer clears one class of about 30 samples with the keyboard in a real Chromium,
without and with drafted corrections (`make bench` / `python -m bench review_keyboard`).

Prints, for each run: keys per decision (every key press counts, typed characters included) overall
and per kind of sample, and the wall time per decision that is not human thinking: from the key that
saves until the next sample is in the page (server + swap), and until its image has loaded.
Targets: a correct sample 1 key; a wrong one with an acceptable draft ≤ 3 keys; next sample in the
page < 100 ms after save (p50) with its image loaded < 150 ms (the page preloads it).

The class comes from a data set generated like the demo (`review.demo.generate_dataset`: images,
mode 1/2/3 outputs, planted label errors); its drafts come from the drafting job through the
bundled LLM simulator. The reviewer knows the truth (which labels were planted wrong) and decides
as a person would: keep (y), a cause for a mode-2 error, a label error (2 Enter Enter), a
correction — the draft (a) when it passes the checks and drafts are used, else typed (e … Ctrl+Enter).
Needs Chromium (CHROMIUM_PATH or /usr/bin/chromium); runs in a throwaway database. Figures only.
"""
import os
import statistics
import time

SEED = 2027
LABEL_ERROR_RATE = 0.02
WANTED_CLASS_SIZE = 30
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
PASSWORD = "bench-pass-123"

# Timestamps the page records itself (performance.now(), ms): the last key pressed, the sample
# region swapped in, its image loaded.
TIMING_SCRIPT = """
window.__bench = {key: 0, swap: 0, image: 0};
document.addEventListener("keydown", function () { window.__bench.key = performance.now(); }, true);
document.addEventListener("htmx:afterSwap", function (event) {
  var target = event.detail && event.detail.target;
  if (!target || target.id !== "sample-page") return;
  window.__bench.swap = performance.now();
  var img = document.querySelector("#sample-page .sample-image img");
  if (!img) { window.__bench.image = window.__bench.swap; return; }
  if (img.complete && img.naturalWidth) { window.__bench.image = performance.now(); return; }
  img.addEventListener("load", function () { window.__bench.image = performance.now(); }, {once: true});
});
"""


def _choose_class(dataset, wrong_ids: set[str]):
    """The class closest to WANTED_CLASS_SIZE samples that has a planted label error and mode-3
    outputs to correct (the most varied session)."""
    from django.db.models import Count, Q

    from review import rules

    categories = (dataset.categories.annotate(
        n=Count("samples"),
        to_correct=Count("samples", filter=Q(samples__export_status__in=(rules.WRONG, rules.UNPARSED, rules.TOO_LONG))),
    ))
    with_errors = {c.pk for c in categories if c.samples.filter(external_id__in=wrong_ids).exists()}
    return min(categories, key=lambda c: (c.pk not in with_errors, c.to_correct == 0, abs(c.n - WANTED_CLASS_SIZE)))


def _decision(sample, *, planted: bool, use_drafts: bool) -> tuple[str, list[tuple[str, str]]]:
    """(kind, keys) a reviewer uses for `sample`: ("press", key) or ("type", text)."""
    from review import rules
    from review.drafts import draft_for
    from review.models import Mode

    status = rules.sample_status(sample.pk)
    mode3 = sample.reasonings.filter(mode=Mode.LIMITED).first()
    if planted and status.mode2_error:
        # Cause (2) ticks "label error" and proposes mode 2's class: Enter takes it, Enter saves.
        return "label error", [("press", "2"), ("press", "Enter"), ("press", "Enter")]
    keys = [("press", "3")] if status.mode2_error else []
    if status.model_status == rules.KEPT:
        return ("mode 2 wrong" if keys else "correct"), keys + ([("press", "Enter")] if keys else [("press", "y")])
    draft = draft_for(sample=sample, mode3=mode3, review=None)
    if use_drafts and draft is not None and draft.offerable:
        return "wrong, acceptable draft", keys + [("press", "a"), ("press", "Enter")]
    label = sample.label
    text = draft.draft.text if draft is not None and draft.check.ok else (
        f"图片中显示{label.definition.removeprefix('图片中显示')[:30]}，符合“{label.name}”的定义。\n类别：{label.name}")
    kind = "wrong, draft fails checks" if use_drafts and draft is not None else "wrong, typed"
    return kind, keys + [("press", "e"), ("type", text), ("press", "Control+Enter")]


def _session(page, base_url: str, samples: list, planted: set[str], *, use_drafts: bool) -> list[dict]:
    """One reviewer pass over `samples` (in queue order); one record per decision."""
    records = []
    page.goto(f"{base_url}/samples/{samples[0].pk}/?f=all&s=id")
    page.wait_for_selector(f'#sample-page[data-sample-id="{samples[0].pk}"]')
    page.wait_for_timeout(300)  # the first page's own image and the next one's preload
    for index, sample in enumerate(samples):
        kind, keys = _decision(sample, planted=sample.external_id in planted, use_drafts=use_drafts)
        count = 0
        page.evaluate("window.__bench = {key: 0, swap: 0, image: 0}")
        for action, value in keys:
            if action == "press":
                page.keyboard.press(value)
                count += 1
            else:
                page.keyboard.type(value)
                count += len(value)
        record = {"kind": kind, "keys": count}
        if index + 1 < len(samples):
            page.wait_for_selector(f'#sample-page[data-sample-id="{samples[index + 1].pk}"]')
            page.wait_for_function("window.__bench.image > 0 && !document.body.hasAttribute('data-busy')",
                                   timeout=15_000)
            timing = page.evaluate("window.__bench")
            record["swap_ms"] = timing["swap"] - timing["key"]
            record["image_ms"] = timing["image"] - timing["key"]
            page.wait_for_timeout(150)  # a moment on the page (the next image preloads meanwhile)
        else:
            page.wait_for_selector("#notice:has-text('这是队列的最后一条')")
        records.append(record)
    return records


def _percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[max(0, int(round(q * len(values))) - 1)]


def _report(name: str, records: list[dict]) -> None:
    keys = [r["keys"] for r in records]
    print(f"   {name}: {len(records)} decisions, {sum(keys)} keys, {sum(keys) / len(records):.1f} keys per decision")
    by_kind: dict[str, list[int]] = {}
    for r in records:
        by_kind.setdefault(r["kind"], []).append(r["keys"])
    for kind, counts in sorted(by_kind.items()):
        print(f"      {kind:<28} {len(counts):>3} samples   {statistics.mean(counts):5.1f} keys (max {max(counts)})")
    swaps = [r["swap_ms"] for r in records if "swap_ms" in r]
    images = [r["image_ms"] for r in records if "image_ms" in r]
    print(f"      next sample in the page after save  p50 {statistics.median(swaps):6.1f} ms   "
          f"p95 {_percentile(swaps, 0.95):6.1f} ms   (target p50 < 100 ms)")
    print(f"      … with its image loaded             p50 {statistics.median(images):6.1f} ms   "
          f"p95 {_percentile(images, 0.95):6.1f} ms   (target p50 < 150 ms)")


def main() -> None:
    if not os.path.exists(CHROMIUM):
        print(f"   skipped: no Chromium at {CHROMIUM} (set CHROMIUM_PATH)")
        return
    from django.conf import settings
    from django.contrib.auth import get_user_model

    from bench.common import throwaway_database
    from pipelines.jobs.services import job_create, run_job_inline
    from pipelines.models import JobKind
    from pipelines.llm.simulator.server import serve_in_thread
    from review.demo import generate_dataset
    from review.models import Assignment, CorrectionDraft, Review, Sample

    with throwaway_database("bench-review-keyboard-") as tmp:
        settings.MEDIA_ROOT = tmp / "media"
        settings.MEDIA_ROOT.mkdir()
        started = time.perf_counter()
        generated = generate_dataset(name="键盘基准", seed=SEED, label_error_rate=LABEL_ERROR_RATE)
        category = _choose_class(generated.dataset, generated.wrong_label_ids)
        reviewer = get_user_model().objects.create_user("bench-keyboard", password=PASSWORD)
        Assignment.objects.create(reviewer=reviewer, category=category)
        simulator = serve_in_thread(port=0)
        settings.OPENAI_BASE_URL = simulator.base_url
        try:
            job = run_job_inline(job_create(kind=JobKind.CORRECTION_DRAFT, enqueue=False, params={
                "dataset": generated.dataset.name, "categories": [category.name], "concurrency": 8,
                "requests_per_minute": 0}))
        finally:
            simulator.stop()
        samples = list(Sample.objects.filter(label=category).order_by("external_id"))
        planted = generated.wrong_label_ids
        print(f"   class {category.name}: {len(samples)} samples, {sum(s.external_id in planted for s in samples)} "
              f"planted label errors, {job.report.get('drafts', 0)} drafts ({job.report.get('passed_checks', 0)} pass "
              f"the checks); set up in {time.perf_counter() - started:.0f} s")
        _browser_runs(category, samples, planted, reviewer, Review, CorrectionDraft)


def _browser_runs(category, samples, planted, reviewer, Review, CorrectionDraft) -> None:
    from pytest_django.live_server_helper import LiveServer

    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # ORM reads between key presses (Playwright's loop)
    server = LiveServer("127.0.0.1:0")
    server._live_server_modified_settings.enable()
    try:
        from playwright.sync_api import sync_playwright

        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
            context.add_init_script(TIMING_SCRIPT)
            page = context.new_page()
            page.set_default_timeout(15_000)
            page.goto(f"{server.url}/login/")
            page.fill("#id_username", reviewer.get_username())
            page.fill("#id_password", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url(lambda url: "/login/" not in url)
            for use_drafts in (False, True):
                Review.objects.filter(sample__label=category).delete()
                CorrectionDraft.objects.filter(sample__label=category, status=CorrectionDraft.Status.ACCEPTED).update(
                    status=CorrectionDraft.Status.OFFERED, review=None, edited=None)
                page.evaluate("window.localStorage.clear()")
                records = _session(page, server.url, samples, planted, use_drafts=use_drafts)
                _report("with drafts" if use_drafts else "without drafts", records)
            browser.close()
    finally:
        server._live_server_modified_settings.disable()
        server.stop()
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous
