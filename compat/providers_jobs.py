"""The jobs of `make compat`'s provider check (compat/check_providers.py starts the LiteLLM proxy).

Runs in the project's virtualenv against OPENAI_BASE_URL (the proxy) with a throwaway SQLite
database under DATAFIX_VAR_DIR and no rate setting, and prints per scenario: items done/failed,
requests sent, effective rate vs the limit. Exits 1 when a scenario does not behave as it must.
"""
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
LIMIT = int(os.environ.get("COMPAT_LIMIT_PER_MINUTE", 30))
CLASSIFICATION_ITEMS = int(os.environ.get("COMPAT_CLASSIFICATION_ITEMS", 100))

problems: list[str] = []


def check(ok: bool, message: str) -> None:
    if not ok:
        problems.append(message)
        print(f"     ✗ {message}")


def figures(name: str, job, elapsed: float, *, limit: int | None = None, share: float = 1.0) -> None:
    """One line per scenario; `share` is the part of the answers that went to the limited deployment."""
    llm = (job.report.get("engine") or {}).get("llm") or {}
    failed = dict(job.items.filter(status="failed").values_list("error_kind").annotate(n=Count("id")))
    answered = llm.get("succeeded", 0)
    line = (f"   {name}: items done {job.items_done}, failed {job.items_failed}{' ' + str(failed) if failed else ''}; "
            f"requests sent {llm.get('requests', 0)} (answered {answered}, 429 {llm.get('errors', {}).get('rate_limited', 0)}"
            f"{', n fallbacks ' + str(llm['n_fallbacks']) if llm.get('n_fallbacks') else ''}); {elapsed:.0f} s")
    if limit:
        effective = answered * share / elapsed * 60 if elapsed else 0.0
        line += f"; effective rate {effective:.1f}/min vs limit {limit}/min = {100 * effective / limit:.0f} %"
        learned = ((job.report.get("engine") or {}).get("rate") or {}).get("current_per_minute")
        line += f" (learned rate {learned}/min)" if learned else " (never limited)"
    print(line, flush=True)


def timed(job):
    from pipelines.jobs.services import run_job_inline

    started = time.perf_counter()
    job = run_job_inline(job)
    return job, time.perf_counter() - started


def main() -> int:
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from PIL import Image

    global Count
    from django.db.models import Count

    from pipelines.generation.services import source_items_import
    from review.image_marker import draw_marker
    from pipelines.jobs.services import job_create
    from pipelines.models import FeedbackSample, GeneratedExample, JobKind, JobStatus, PreferencePair, ReviewDecision
    from review.demo_catalog import DEMO_CATEGORIES
    from review.models import Category, Dataset, Reasoning, Sample

    call_command("migrate", verbosity=0)
    media = Path(settings.MEDIA_ROOT)
    (media / "compat").mkdir(parents=True, exist_ok=True)
    print(f"   proxy {settings.OPENAI_BASE_URL}; LLM_REQUESTS_PER_MINUTE={settings.LLM_REQUESTS_PER_MINUTE or 'unset'}",
          flush=True)

    dataset = Dataset.objects.create(name="compat")
    categories = [Category.objects.create(dataset=dataset, name=c.name, definition=c.definition, position=i)
                  for i, c in enumerate(DEMO_CATEGORIES)]
    samples = []
    for n in range(CLASSIFICATION_ITEMS):
        image = Image.new("RGB", (160, 96), (200, 180 + n % 60, 220))
        draw_marker(image, n % len(categories))
        image.save(media / f"compat/{n:04d}.png", "PNG")
        samples.append(Sample(dataset=dataset, external_id=f"c{n:04d}", image=f"compat/{n:04d}.png",
                              label=categories[n % len(categories)]))
    Sample.objects.bulk_create(samples)
    ids = list(Sample.objects.filter(dataset=dataset).order_by("external_id").values_list("pk", flat=True))

    def classification(model, mode, sample_ids):
        return job_create(kind=JobKind.CLASSIFICATION, enqueue=False, params={
            "dataset": dataset.name, "mode": mode, "model": model, "sample_ids": sample_ids})

    # 1. A 30-requests/minute deployment, no rate setting: nothing fails, the rate is found.
    job, elapsed = timed(classification("vl-30rpm", 2, ids))
    figures(f"classification ({CLASSIFICATION_ITEMS} items, 30/min deployment)", job, elapsed, limit=LIMIT)
    check(job.items_failed == 0, "classification through the limited deployment failed items")
    effective = job.report["engine"]["llm"]["succeeded"] / elapsed * 60
    if effective < 0.9 * LIMIT:
        print(f"     ! effective rate below 90 % of the limit ({effective:.1f}/min)")

    # 2. Generation + judge, both deployments limited.
    sources = 20  # 40 calls to gen-vl (question + response), 20 to the judge
    for n in range(sources):
        Image.new("RGB", (64, 48), (120, 90 + n, 40)).save(media / f"compat/src-{n}.png")
    records = [{"id": f"s{n}", "image": f"compat/src-{n}.png", "wiki_title": f"木塔 {n}", "facts": ["建于1056年"]}
               for n in range(sources)]
    import json

    source_items_import(text="\n".join(json.dumps(r, ensure_ascii=False) for r in records), collection="compat")
    job, elapsed = timed(job_create(kind=JobKind.GENERATION, enqueue=False, params={
        "collection": "compat", "model": "gen-vl", "judge_model": "judge", "multiple_choice_ratio": 0}))
    figures(f"generation + judge ({sources} items; gen-vl 30/min takes 2 of each item's 3 calls)", job, elapsed,
            limit=LIMIT, share=2 / 3)
    passed = GeneratedExample.objects.filter(job=job, passed=True).count()
    check(job.items_failed == 0 and passed == sources, f"generation: {passed}/{sources} passed the judge")

    # 3. DPO with n=3 from a server that answers one choice.
    for n in range(10):
        FeedbackSample.objects.create(feedback_id=f"f{n}", instruction=f"列出{n + 3}种水果。", output="苹果、香蕉、橘子",
                                      rating=5, decision=ReviewDecision.ACCEPTED)
    job, elapsed = timed(job_create(kind=JobKind.DPO, enqueue=False, params={
        "source": {"name": "feedback"},
        "strategy": {"name": "model", "base_url": settings.OPENAI_BASE_URL, "model": "sft-mock",
                     "template": "{prompt}[EOS]", "mode": "sampling", "temperature": 0.9, "n": 3}}))
    figures("DPO (10 prompts, n=3, the proxy ignores n)", job, elapsed)
    pairs = PreferencePair.objects.filter(job=job).count()
    check(pairs == 30 and job.report.get("n_ignored"), f"DPO: {pairs} pairs for 10 prompts × n=3, n fallback reported")

    # 4. A thinking model: reasoning_content kept, stored and used as the asked-for reasoning.
    job, elapsed = timed(classification("thinker", 3, ids[:5]))
    figures("classification, thinking model (5 items, mode 3)", job, elapsed)
    rows = list(Reasoning.objects.filter(sample_id__in=ids[:5], mode=3))
    check(len(rows) == 5 and all(r.thinking and r.output.startswith("推理：") and r.finish_reason for r in rows),
          "thinking model: reasoning_content not kept in the stored answers")

    # 5. A content filter relayed by the proxy.
    job, elapsed = timed(classification("filtered", 1, ids[:3]))
    figures("classification, Azure content filter via LiteLLM (3 items)", job, elapsed)
    kinds = set(job.items.values_list("error_kind", flat=True))
    check(kinds == {"content_filter"}, f"content filter recorded as {kinds}")

    # 6. A wrong model name: stopped after a few identical errors, with one message.
    job, elapsed = timed(classification("no-such-model", 1, ids[:40]))
    figures("classification, wrong model name (40 items)", job, elapsed)
    check(job.status == JobStatus.FAILED and job.items.filter(status="pending").count() > 25,
          "a wrong model name did not stop the job early")
    print(f"     message: {job.error_summary[:160]}")

    print(f"\n   providers: {'all scenarios behaved' if not problems else 'PROBLEMS: ' + '; '.join(problems)}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
