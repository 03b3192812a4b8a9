"""Fixtures of the generation tests, registered for the whole suite in tests/conftest.py
(pytest_plugins): the marked source collection, and a run generated and judged to the end."""
import json

import pytest

from pipelines.generation.services import source_items_import
from tests.pipelines.generation.data import MARKED_SOURCES, start_run, write_png


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


@pytest.fixture
def finished_run(marked_sources, llm_simulator, admin_user):
    """The marked collection generated and judged to the end, inline."""
    from pipelines.jobs.services import run_job_inline

    return run_job_inline(start_run(marked_sources, user=admin_user))
