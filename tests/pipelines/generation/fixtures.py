"""Fixtures for the generation tests: source items with simulator markers, and a finished run."""
import json

import pytest

from pipelines.generation import source_items_import
from pipelines.models import JobKind

# Markers steer the simulator (pipelines/sim_responders/generation.py and judge.py).
MARKED_SOURCES = [
    {"id": "pass-1", "image": "img/pass-1.png", "wiki_title": "应县木塔 [good] [judge-pass]", "facts": ["建于1056年"],
     "category": "建筑"},
    {"id": "pass-2", "image": "img/pass-2.png", "wiki_title": "Eiffel Tower [good] [judge-pass]", "facts": ["1889"],
     "category": "建筑"},
    {"id": "pass-3", "image": "img/pass-3.png", "wiki_title": "Mona Lisa [good] [judge-pass]", "category": "艺术"},
    {"id": "fail-1", "image": "img/fail-1.png", "wiki_title": "Big Ben [judge-fail]", "category": "建筑"},
    {"id": "fail-2", "image": "img/fail-2.png", "wiki_title": "The Scream [judge-fail]", "category": "艺术"},
    {"id": "malformed-1", "image": "img/malformed-1.png", "wiki_title": "Taj Mahal [good] [judge-malformed]",
     "category": "建筑"},
    {"id": "no-think-1", "image": "img/no-think-1.png", "wiki_title": "Starry Night [missing-think]",
     "category": "艺术"},
    {"id": "no-answer-1", "image": "img/no-answer-1.png", "wiki_title": "Great Wall [missing-answer]",
     "category": "建筑"},
]


def write_png(path, color=(200, 120, 40)):
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (64, 48), color).save(path)


@pytest.fixture
def marked_sources(db, media_root):
    """8 source items whose outcome is fixed by markers: 3 pass, 2 judge-fail, 1 malformed verdict,
    2 missing a tag; each with a small PNG inside MEDIA_ROOT."""
    for record in MARKED_SOURCES:
        write_png(media_root / record["image"])
    text = "\n".join(json.dumps(r, ensure_ascii=False) for r in MARKED_SOURCES)
    report = source_items_import(text=text, collection="marked")
    assert report.created == len(MARKED_SOURCES) and not report.problems
    return "marked"


def start_run(collection, *, user=None, **params):
    from pipelines.jobs.services import job_create

    base = {"collection": collection, "multiple_choice_ratio": 0.3, "pass_threshold": 7, "concurrency": 4}
    return job_create(kind=JobKind.GENERATION, params={**base, **params}, user=user)


@pytest.fixture
def finished_run(marked_sources, llm_simulator, admin_user):
    """The marked collection generated and judged to the end, inline."""
    from pipelines.jobs.services import run_job_inline

    return run_job_inline(start_run(marked_sources, user=admin_user))
