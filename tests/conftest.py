import pytest

from tests.emulated import served_table


@pytest.fixture
def lumbar():
    with served_table("lumbar", seed=1, safety_limit_n=890.0) as served:
        yield served


@pytest.fixture
def cervical():
    with served_table("cervical", seed=2, safety_limit_n=222.0) as served:
        yield served
