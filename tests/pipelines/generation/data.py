"""Data of the generation tests: source items whose outcome the simulator's markers fix, a PNG writer
and a run starter (plain helpers; the fixtures are in fixtures.py)."""
from pipelines.models import JobKind

# Markers steer the simulator (pipelines/llm/simulator/responders/generation.py and judge.py).
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


def start_run(collection, *, user=None, **params):
    from pipelines.jobs.services import job_create

    base = {"collection": collection, "multiple_choice_ratio": 0.3, "pass_threshold": 7, "concurrency": 4}
    return job_create(kind=JobKind.GENERATION, params={**base, **params}, user=user)
