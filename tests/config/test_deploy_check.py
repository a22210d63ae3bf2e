"""`manage.py check --deploy` is silent with the production settings README names."""

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# README's "Running in production": the variables it says to set, with production values.
PRODUCTION = {
    "SECRET_KEY": "x" * 20 + "a-long-random-production-secret-0123456789",
    "ALLOWED_HOSTS": "rewards.example.com",
    "HTTPS": "true",
    "HSTS_INCLUDE_SUBDOMAINS": "true",
    "HSTS_PRELOAD": "true",
    "DEBUG": "false",
    "USER_ERASURE_SECRET": "y" * 20 + "another-long-random-secret-never-rotated",
    "USER_TOKEN_SECRET": "z" * 20 + "a-third-long-random-secret-0123456789",
}


def _check(**overrides: str) -> subprocess.CompletedProcess:
    env = {**os.environ, **PRODUCTION, **overrides}
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_readme_production_settings_pass_check_deploy_without_a_warning():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Running in production", 1)[1].split("\n## ", 1)[0]
    for name in (
        "SECRET_KEY",
        "ALLOWED_HOSTS",
        "HTTPS=true",
        "HSTS_INCLUDE_SUBDOMAINS=true",
        "USER_ERASURE_SECRET",
        "USER_TOKEN_SECRET",
    ):
        assert name in section
    assert "HSTS_PRELOAD=true" in section

    result = _check()

    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_without_the_hsts_choices_check_deploy_names_them():
    result = _check(HSTS_INCLUDE_SUBDOMAINS="false", HSTS_PRELOAD="false")

    assert result.returncode != 0
    found = set(re.findall(r"security\.W\d+", result.stdout + result.stderr))
    assert found == {"security.W005", "security.W021"}


def test_without_the_erasure_secret_the_checks_fail_naming_it():
    result = _check(USER_ERASURE_SECRET="")

    assert result.returncode != 0
    assert "partnerships.E001" in result.stderr + result.stdout
    assert "USER_ERASURE_SECRET" in result.stderr + result.stdout


def test_a_cache_that_is_not_redis_stops_the_process_at_start():
    """With RabbitMQ as broker and CACHE_URL left empty (as .env.example had it), the cache
    would fall back to the amqp:// URL and every rate limit and wake-up mark fail open."""
    for overrides in (
        {"CELERY_BROKER_URL": "amqp://guest:guest@127.0.0.1:5672//", "CACHE_URL": ""},
        {"CACHE_URL": "memcached://127.0.0.1:11211"},
    ):
        result = _check(**overrides)

        assert result.returncode != 0
        assert "CACHE_URL must name a Redis" in result.stderr


def test_a_wake_up_mark_shorter_than_a_task_stops_the_process_at_start():
    for overrides in (
        {"EVENT_WAKE_PENDING_SECONDS": "0"},  # Redis's expiry is whole seconds: 0 is none
        {"EVENT_TASK_SECONDS": "30", "EVENT_WAKE_PENDING_SECONDS": "20"},
    ):
        result = _check(**overrides)

        assert result.returncode != 0
        assert "EVENT_WAKE_PENDING_SECONDS (whole seconds" in result.stderr

    assert _check(EVENT_TASK_SECONDS="30").returncode == 0  # its default follows: 60
