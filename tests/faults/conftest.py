import pytest
from redis import Redis

from tests.support import database_at


@pytest.fixture
def private_db(private_postgres, django_db_blocker):
    """The run's private PostgreSQL (tests/servers.py), its data tables emptied, with this
    process's ORM on it for the test: factories write there and the final reads read there.
    Never the machine's shared server: fault tests stop and restart this one."""
    with private_postgres.connect() as db:
        tables = [
            name
            for (name,) in db.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                "AND tablename ~ '^(partnerships|triggers|campaigns|rewards)_'"
            )
        ]
        db.execute(f"TRUNCATE {', '.join(tables)} CASCADE")
    with database_at(private_postgres.url), django_db_blocker.unblock():
        yield private_postgres


@pytest.fixture
def broker(private_redis) -> str:
    """The run's private Redis, emptied: no message of an earlier test left in it."""
    Redis.from_url(private_redis).flushdb()
    return private_redis
