from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.unit.budget.budget_helpers import redis_server
from tollhouse.budget.redis_store import RedisStore
from tollhouse.budget.sqlite_store import SqliteStore
from tollhouse.budget.store import BudgetStore


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with redis_server(tmp_path_factory.mktemp("redis")) as url:
        yield url


@pytest.fixture(params=["embedded", "redis"])
def store(request, tmp_path) -> Iterator[BudgetStore]:
    """Each test runs against both stores: they keep the same contract."""
    if request.param == "embedded":
        opened: BudgetStore = SqliteStore(tmp_path / "budget.sqlite3")
    else:
        url = request.getfixturevalue("redis_url")
        redis_store = RedisStore(url)
        redis_store._redis.flushdb()
        opened = redis_store
    yield opened
    opened.close()
