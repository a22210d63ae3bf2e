"""How config.devstack picks the database and the broker (no server is started here), how
manage.py finds a running stack's servers, and the demo's Pilot login."""

import json
import os
import socket
import stat
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

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


# --- var/devstack.env: manage.py reaches the servers of a running `make run` -------------------


@pytest.fixture
def listening():
    """Two ports that answer, as a running stack's PostgreSQL and Redis would."""
    sockets = [socket.create_server(("127.0.0.1", 0)) for _ in range(2)]
    yield [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()


def _urls(pg_port: int, redis_port: int) -> dict[str, str]:
    return {
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:{pg_port}/postgres",
        "CELERY_BROKER_URL": f"redis://127.0.0.1:{redis_port}/0",
    }


def test_record_of_a_live_stack_names_its_servers_until_removed(tmp_path, listening):
    record = tmp_path / "devstack.env"
    devstack.record_write(_urls(*listening), record)

    assert devstack.recorded_servers(record) == _urls(*listening)
    assert stat.S_IMODE(record.stat().st_mode) == 0o600  # a URL may carry a password
    devstack.record_remove(record)
    assert not record.exists()
    assert devstack.recorded_servers(record) == {}


def test_record_of_a_stopped_or_killed_stack_is_ignored(tmp_path, listening):
    record = tmp_path / "devstack.env"
    devstack.record_write(_urls(*listening), record)
    gone = subprocess.Popen(["true"])
    gone.wait()
    record.write_text(record.read_text().replace(f"PID={os.getpid()}", f"PID={gone.pid}"))

    assert devstack.recorded_servers(record) == {}


def test_record_whose_server_does_not_answer_is_ignored(tmp_path, listening):
    closed = socket.create_server(("127.0.0.1", 0))
    closed_port = closed.getsockname()[1]
    closed.close()
    record = tmp_path / "devstack.env"
    devstack.record_write(_urls(listening[0], closed_port), record)

    assert devstack.recorded_servers(record) == {}


def test_record_is_removed_only_by_the_stack_that_wrote_it(tmp_path, listening):
    record = tmp_path / "devstack.env"
    record.write_text("DATABASE_URL=x\nCELERY_BROKER_URL=y\nDEVSTACK_PID=1\n")

    devstack.record_remove(record)

    assert record.exists()


_SETTINGS = """
import json, sys
from pathlib import Path
from config import devstack
devstack.RECORD = Path(sys.argv[1])
from config import settings
print(json.dumps([settings.DATABASES["default"]["PORT"], settings.CELERY_BROKER_URL]))
"""


def _settings_servers(record, **env) -> list:
    base = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CELERY_BROKER_URL")}
    base.pop("HTTPS", None)
    out = subprocess.run(
        [sys.executable, "-c", _SETTINGS, str(record)],
        cwd=devstack.ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return json.loads(out)


def test_settings_use_the_running_stack_when_no_database_is_named(tmp_path, listening):
    record = tmp_path / "devstack.env"
    devstack.record_write(_urls(*listening), record)

    assert _settings_servers(record) == [listening[0], f"redis://127.0.0.1:{listening[1]}/0"]


def test_settings_never_read_the_record_when_a_database_or_https_is_set(tmp_path, listening):
    record = tmp_path / "devstack.env"
    devstack.record_write(_urls(*listening), record)

    named = _settings_servers(record, DATABASE_URL="postgres://u@db.example:6543/x")
    production = _settings_servers(record, HTTPS="true")

    assert named == [6543, "redis://127.0.0.1:6379/0"]
    assert production == [5432, "redis://127.0.0.1:6379/0"]


# --- The demo's Pilot login (manage.py demo_login, called by `make run`) ----------------------


@pytest.fixture
def demo_login(tmp_path, monkeypatch, settings):
    """demo_login with its password file in tmp_path; ``own_database`` makes the test
    database pass for this checkout's embedded PostgreSQL (its data directory)."""
    from django.db import connection

    from rewards.management.commands import demo_login as command

    monkeypatch.setattr(command, "LOGIN_FILE", tmp_path / "demo-login.json")
    settings.DEBUG = True

    def run(*, own_database: bool = True) -> dict:
        if own_database:
            with connection.cursor() as cursor:
                cursor.execute("SHOW data_directory")
                monkeypatch.setattr(devstack, "PG_DATADIR", Path(cursor.fetchone()[0]))
        out = StringIO()
        call_command("demo_login", "--json", stdout=out)
        return json.loads(out.getvalue())

    return run


@pytest.mark.django_db
def test_demo_login_is_created_once_and_opens_pilot(
    demo_login, client, django_user_model, settings
):
    # `run` names the demo login to its processes (DEVSTACK_DEMO_LOGIN): no second factor.
    settings.PILOT_SECOND_FACTOR_EXEMPT_USERNAMES = ["demo"]
    first, second = demo_login(), demo_login()

    assert first == second
    assert first["username"] == "demo"
    assert django_user_model.objects.filter(username="demo").count() == 1
    response = client.post(
        "/pilot/login/?next=/pilot/",
        {"username": "demo", "password": first["password"]},
        follow=True,
    )
    page = response.content.decode()
    assert response.status_code == 200
    assert response.wsgi_request.path == "/pilot/"
    assert "demo" in page
    assert 'id="login-form"' not in page


@pytest.mark.django_db
def test_demo_login_gets_a_new_password_when_its_file_is_lost(demo_login, tmp_path, client):
    first = demo_login()
    (tmp_path / "demo-login.json").unlink()

    second = demo_login()

    assert second["password"] != first["password"]
    assert not client.login(username="demo", password=first["password"])
    assert client.login(username="demo", password=second["password"])


@pytest.mark.django_db
def test_demo_login_is_refused_on_another_database(demo_login, django_user_model):
    with pytest.raises(CommandError, match="not this checkout's embedded PostgreSQL"):
        demo_login(own_database=False)

    assert not django_user_model.objects.filter(username="demo").exists()


@pytest.mark.django_db
def test_demo_login_is_refused_with_debug_off(demo_login, settings, django_user_model):
    settings.DEBUG = False

    with pytest.raises(CommandError, match="DEBUG is off"):
        demo_login()

    assert not django_user_model.objects.filter(username="demo").exists()


def test_the_metrics_directory_starts_empty(tmp_path):
    """`make run`'s processes share one PROMETHEUS_MULTIPROC_DIR: what the last run's processes
    left there would be summed again."""
    directory = tmp_path / "metrics"
    directory.mkdir()
    (directory / "counter_123.db").write_bytes(b"old")

    devstack.metrics_dir_reset(directory)

    assert directory.is_dir() and not list(directory.iterdir())
