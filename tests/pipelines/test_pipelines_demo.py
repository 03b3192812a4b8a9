"""pipelines/demo.py: load_demo's feedback samples, call logs and generation sources; idempotence."""
from django.db.models import Max

from pipelines.demo import DEMO_SOURCE_COLLECTION, DEMO_SOURCES, load_pipelines_demo
from pipelines.generation.sources import resolve_image
from pipelines.models import FeedbackSample, Job, JobKind, JobStatus, LogRecord, SourceItem


def _state():
    return {
        "feedback": (FeedbackSample.objects.count(), FeedbackSample.objects.aggregate(m=Max("id"))["m"]),
        "logs": (LogRecord.objects.count(), LogRecord.objects.aggregate(m=Max("id"))["m"]),
        "sources": list(SourceItem.objects.order_by("id").values_list("id", "external_id", "image", "wiki_title", "facts")),
        "jobs": (Job.objects.count(), Job.objects.aggregate(m=Max("id"))["m"]),
    }


def test_demo_seeds_feedback_logs_and_sources_through_the_import_jobs(db):
    counts = load_pipelines_demo()

    assert counts["feedback_samples"] == counts["feedback_created"] == 60
    assert counts["source_items"] == counts["sources_created"] == 20
    assert counts["log_records"] == 7
    assert counts["jobs_created"] == 2
    # Low ratings are kept (min_rating 1), both models are there, one output carries markup as text.
    ratings = set(FeedbackSample.objects.values_list("rating", flat=True))
    assert {1, 2, 5} <= ratings
    assert set(FeedbackSample.objects.values_list("model_name", flat=True)) == {"huanhuan-qwen", "qwen-chat-7b"}
    assert FeedbackSample.objects.filter(output__contains="<script>alert(1)</script>").count() == 1
    assert FeedbackSample.objects.dates("rated_at", "day").count() > 5
    # The import jobs show up on the job pages, finished.
    assert set(Job.objects.values_list("kind", "status")) == {(JobKind.FEEDBACK_IMPORT, JobStatus.DONE),
                                                               (JobKind.LOG_EXTRACTION, JobStatus.DONE)}
    # Every source has a title, facts and an image inside MEDIA_ROOT.
    for item in SourceItem.objects.filter(collection=DEMO_SOURCE_COLLECTION):
        assert item.wiki_title and item.facts and resolve_image(item.image) is not None


def test_malformed_log_line_and_failed_calls_are_reported_not_fatal(db):
    counts = load_pipelines_demo()

    assert counts["log_dropped"] == {"not_successful": 3, "malformed_json": 1}
    report = Job.objects.get(kind=JobKind.LOG_EXTRACTION).report
    assert report["lines"] == 11 and report["kept"] == 7
    [problem] = report["problems"]
    assert problem["reason"] == "malformed_json" and problem["line"] == 6
    assert problem["file"].endswith("outline_2026-11-20.jsonl")


def test_second_run_changes_nothing(db, settings):
    first = load_pipelines_demo()
    before = _state()
    feedback_file = settings.MEDIA_ROOT / "demo" / "feedback.jsonl"
    mtime = feedback_file.stat().st_mtime_ns

    second = load_pipelines_demo()

    assert _state() == before
    assert feedback_file.stat().st_mtime_ns == mtime
    assert second["jobs_created"] == second["feedback_created"] == second["sources_created"] == 0
    assert {k: v for k, v in second.items() if not k.endswith("created")} == \
        {k: v for k, v in first.items() if not k.endswith("created")}


def test_sources_reuse_the_review_demo_images_when_present(db):
    from review.demo import demo_source_images, load_demo

    load_demo(sample_count=30)
    load_pipelines_demo(source_images=demo_source_images(len(DEMO_SOURCES)))

    images = set(SourceItem.objects.filter(collection=DEMO_SOURCE_COLLECTION).values_list("image", flat=True))
    assert len(images) == 20 and all(path.startswith("datasets/") for path in images)
