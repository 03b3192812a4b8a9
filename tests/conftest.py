"""Fixtures shared by the whole suite."""
import pytest

from tests.factories import AssignmentFactory, CategoryFactory, DatasetFactory, UserFactory


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    """Every test writes images and exports into its own temporary media root."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.EXPORT_ROOT = tmp_path / "exports"
    settings.MEDIA_ROOT.mkdir()
    settings.EXPORT_ROOT.mkdir()
    return settings.MEDIA_ROOT


@pytest.fixture
def admin_user(db):
    return UserFactory(username="admin", is_staff=True, is_superuser=True)


@pytest.fixture
def reviewer(db):
    return UserFactory(username="reviewer1")


@pytest.fixture
def other_reviewer(db):
    return UserFactory(username="reviewer2")


@pytest.fixture
def dataset(db):
    return DatasetFactory(name="scenes")


@pytest.fixture
def assigned_category(dataset, reviewer):
    """A category of `dataset` assigned to `reviewer`."""
    category = CategoryFactory(dataset=dataset, name="商品分类选项", definition="图片中显示商品颜色、规格选项")
    AssignmentFactory(reviewer=reviewer, category=category)
    return category


@pytest.fixture
def unassigned_category(dataset, other_reviewer):
    category = CategoryFactory(dataset=dataset, name="换货", definition="用户申请更换商品")
    AssignmentFactory(reviewer=other_reviewer, category=category)
    return category


# --------------------------------------------------------------------------- LLM simulator (jobs area)
@pytest.fixture
def llm_simulator(settings):
    """The project's OpenAI-compatible simulator on a free port, with the app pointed at it.

    Yields a `pipelines.simulator.SimulatorHandle`: `.base_url`, `.set_faults(rate_429=…)`,
    `.request_count()`, `.answered_counts()`, `.stop()`. Retries are made quick for tests.
    """
    from pipelines import llm
    from pipelines.simulator import serve_in_thread

    handle = serve_in_thread(port=0)
    settings.OPENAI_BASE_URL = handle.base_url
    settings.OPENAI_API_KEY = "sk-test-simulator-key"
    settings.LLM_TIMEOUT = 5.0
    settings.LLM_REQUESTS_PER_MINUTE = 0
    original_backoff = llm.BACKOFF_BASE_SECONDS
    llm.BACKOFF_BASE_SECONDS = 0.02
    try:
        yield handle
    finally:
        llm.BACKOFF_BASE_SECONDS = original_backoff
        handle.stop()
