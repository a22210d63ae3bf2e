"""How config.devstack picks the database and the broker (no server is started here)."""

import pytest

from config import devstack


@pytest.fixture
def stack(monkeypatch):
    """Environment cleared, no local servers, and embedded starts recorded, not run."""
    for key in ("DATABASE_URL", "CELERY_BROKER_URL", "DEVSTACK_EMBEDDED"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setattr(devstack, "_local_pg", lambda: False)
    monkeypatch.setattr(devstack, "_local_redis", lambda: False)
    started: list[str] = []

    def fake_ensure(server):
        started.append(server.name)
        return server.url(server.default_port)

    monkeypatch.setattr(devstack, "ensure", fake_ensure)
    return started


def test_environment_wins(stack, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgres://u:p@db:5432/x")
    monkeypatch.setenv("CELERY_BROKER_URL", "redis://broker:6379/3")
    for mode in ("run", "test"):
        assert devstack.resolve(mode) == {
            "DATABASE_URL": "postgres://u:p@db:5432/x",
            "CELERY_BROKER_URL": "redis://broker:6379/3",
        }
    assert stack == []


def test_run_starts_embedded_even_with_local_servers(stack, monkeypatch):
    monkeypatch.setattr(devstack, "_local_pg", lambda: True)
    monkeypatch.setattr(devstack, "_local_redis", lambda: True)
    assert devstack.resolve("run") == {
        "DATABASE_URL": "postgres://postgres@127.0.0.1:54329/postgres",
        "CELERY_BROKER_URL": "redis://127.0.0.1:63799/0",
    }
    assert stack == ["postgres", "redis"]


def test_test_mode_prefers_local_servers_each_on_its_own(stack, monkeypatch):
    monkeypatch.setattr(devstack, "_local_redis", lambda: True)
    assert devstack.resolve("test") == {
        "DATABASE_URL": "postgres://postgres@127.0.0.1:54329/postgres",
        "CELERY_BROKER_URL": "redis://127.0.0.1:6379/15",
    }
    assert stack == ["postgres"]


def test_test_mode_embedded_broker_uses_db_15(stack, monkeypatch):
    monkeypatch.setattr(devstack, "_local_pg", lambda: True)
    monkeypatch.setenv("DEVSTACK_EMBEDDED", "1")
    env = devstack.resolve("test")
    assert env["CELERY_BROKER_URL"] == "redis://127.0.0.1:63799/15"
    assert stack == ["postgres", "redis"]


def test_summary_hides_passwords(stack, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgres://u:secret@db:5432/x")
    line = devstack.summary(devstack.resolve("test"))
    assert "secret" not in line
    assert "postgres://u:***@db:5432/x (from environment)" in line
