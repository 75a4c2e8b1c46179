import pytest

from tests.support.docker_engine import require_engine


@pytest.fixture(scope="session")
def docker_client():
    """The real Docker engine (fails in CI when absent, skips elsewhere)."""
    return require_engine()
