"""The label-error ranking measured (`make bench` / `python -m bench label_errors`).

Prints precision@k and recall@k (k = 10, 20, 50) of `review.suspicion`'s ranking — what
`manage.py rank_label_errors` prints — against the planted label errors of two data sets:

- the demo data (`load_demo`: 700 samples, 9 planted label errors, image information on about half
  of the samples), and
- a second set generated with another seed and label-error rate (`review.demo.generate_dataset`),

each three times: as loaded; after the product's info-extraction job (through the bundled LLM
simulator) has described the images that had no image information — the team's own data has it
for every image (info_ectra); and after modes 1–3 are run again through the simulator asking for
token log-probabilities (the simulated model is sure of what it sees, unsure of the confusable
class it answers on a hard image). Target: precision@10 ≥ 0.8 on both sets. Figures only.

Runs in a throwaway database (a temporary SQLite file, or `test_…` on DATABASE_URL's server).
"""
import time

SECOND_SEED = 4242
SECOND_ERROR_RATE = 0.03


def ranking_figures(dataset, wrong_ids: set[str]) -> list:
    from review.models import Sample
    from review.suspicion import ranked_samples, ranking_quality

    ranked = list(ranked_samples(samples=Sample.objects.filter(dataset=dataset)).values_list("external_id", flat=True))
    return ranking_quality(ranked, wrong_ids)


def fill_image_information(dataset) -> int:
    """Run the info-extraction job on the samples without image information; returns how many items."""
    from pipelines.jobs.services import job_create, run_job_inline
    from pipelines.models import JobKind

    job = job_create(kind=JobKind.INFO_EXTRACTION, params={"dataset": dataset.name, "concurrency": 16,
                                                          "requests_per_minute": 0}, enqueue=False)
    job = run_job_inline(job)
    return job.items_done


def rerun_with_logprobs(dataset) -> int:
    """Run modes 1–3 again through the simulator asking for token log-probabilities; returns how
    many answers were stored (on reviewed samples they wait for the reviewer and do not count)."""
    from pipelines.jobs.services import job_create, run_job_inline
    from pipelines.models import JobKind

    done = 0
    for mode in (1, 2, 3):
        job = job_create(kind=JobKind.CLASSIFICATION, enqueue=False, params={
            "dataset": dataset.name, "mode": mode, "logprobs": True, "concurrency": 16, "requests_per_minute": 0})
        done += run_job_inline(job).items_done
    return done


def _print(name: str, wrong_ids: set[str], figures, total: int) -> None:
    cells = "   ".join(f"P@{q.k} {q.precision:4.2f} R@{q.k} {q.recall:4.2f}" for q in figures)
    ok = "meets" if figures[0].precision >= 0.8 else "BELOW"
    print(f"   {name:<44} {len(wrong_ids):>3} of {total} wrong   {cells}   ({ok} P@10 ≥ 0.8)")


def main() -> None:
    from django.conf import settings

    from bench.common import throwaway_database
    from pipelines.llm.simulator.server import serve_in_thread
    from review.demo import demo_wrong_label_ids, generate_dataset, load_demo

    with throwaway_database("bench-label-errors-") as tmp:
        settings.MEDIA_ROOT = tmp / "media"
        settings.MEDIA_ROOT.mkdir()
        simulator = serve_in_thread(port=0)
        settings.OPENAI_BASE_URL = simulator.base_url
        try:
            started = time.perf_counter()
            demo = load_demo().dataset
            sets = [("demo (load_demo)", demo, demo_wrong_label_ids())]
            second = generate_dataset(name="第二套生成数据", seed=SECOND_SEED, label_error_rate=SECOND_ERROR_RATE)
            sets.append((f"second set (seed {SECOND_SEED}, {SECOND_ERROR_RATE:.0%} wrong)", second.dataset,
                         second.wrong_label_ids))
            print(f"   loaded both sets in {time.perf_counter() - started:.1f} s (scores computed as they were stored)")
            for name, dataset, wrong in sets:
                total = dataset.samples.count()
                _print(f"{name}, as loaded", wrong, ranking_figures(dataset, wrong), total)
                items = fill_image_information(dataset)
                _print(f"{name}, + info extraction ({items} images)", wrong, ranking_figures(dataset, wrong), total)
                answers = rerun_with_logprobs(dataset)
                _print(f"{name}, + modes 1–3 re-run with logprobs ({answers} answers)", wrong,
                       ranking_figures(dataset, wrong), total)
        finally:
            simulator.stop()
