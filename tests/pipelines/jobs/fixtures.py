"""Fixtures of the job-engine tests, registered for the whole suite in tests/conftest.py
(pytest_plugins): the engine's, review's job kinds' and the security tests use them."""
import pytest

from tests.pipelines.jobs.scenes import make_scene_dataset


@pytest.fixture
def scene_dataset(db):
    """A dataset of the first five demo classes, two samples each, whose images carry the class marker."""
    return make_scene_dataset()
