"""Fixtures for the security tests."""
import pytest
from django.core.cache import cache


@pytest.fixture(autouse=True)
def clean_cache():
    """Login failure counters live in the cache; every test starts from none."""
    cache.clear()
    yield
    cache.clear()
