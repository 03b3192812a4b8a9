"""Fixtures for the tests of review's job kinds. `scene_dataset` (a dataset whose images carry the
class marker) is the job engine tests' own fixture, used here too."""
from tests.pipelines.conftest_jobs import scene_dataset  # noqa: F401
