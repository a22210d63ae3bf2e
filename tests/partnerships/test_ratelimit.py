import uuid

import pytest

from config.errors import ApplicationError
from partnerships import ratelimit


@pytest.fixture
def frozen(monkeypatch):
    monkeypatch.setattr(ratelimit, "_clock", lambda: 2_000_000_000.25)


def admitted(prefix: str, limit: int, attempts: int, processes: int = 1) -> int:
    """Requests let through; ``processes`` > 1 spreads them over that many lease holders."""
    leases = [{} for _ in range(processes)]
    passed, refusals = 0, set()
    for attempt in range(attempts):
        ratelimit._leases.clear()
        ratelimit._leases.update(leases[attempt % processes])
        try:
            ratelimit.rate_limit_check(key_prefix=prefix, limit=limit)
            passed += 1
        except ApplicationError as error:
            refusals.add((error.status, error.headers["Retry-After"]))
        leases[attempt % processes] = dict(ratelimit._leases)  # this process's lease objects
    assert refusals <= {(429, "1")}
    return passed


def test_one_process_admits_exactly_the_limit(frozen):
    assert admitted(f"pk_test_{uuid.uuid4().hex[:8]}", limit=1000, attempts=1500) == 1000


def test_many_processes_never_admit_more_than_the_limit(frozen):
    assert (
        admitted(f"pk_test_{uuid.uuid4().hex[:8]}", limit=1000, attempts=3000, processes=4) == 1000
    )


def test_small_limits_are_exact(frozen):
    assert admitted(f"pk_test_{uuid.uuid4().hex[:8]}", limit=3, attempts=10, processes=2) == 3


def test_the_next_second_is_a_new_window(monkeypatch):
    prefix = f"pk_test_{uuid.uuid4().hex[:8]}"
    monkeypatch.setattr(ratelimit, "_clock", lambda: 2_000_000_000.5)
    assert admitted(prefix, limit=5, attempts=8) == 5
    monkeypatch.setattr(ratelimit, "_clock", lambda: 2_000_000_001.5)
    assert admitted(prefix, limit=5, attempts=8) == 5


def test_a_busy_process_leases_in_chunks_and_stays_exact(monkeypatch):
    prefix = f"pk_test_{uuid.uuid4().hex[:8]}"
    ratelimit._leases.clear()
    counts = []
    for second in (2_000_000_010.5, 2_000_000_011.5):
        monkeypatch.setattr(ratelimit, "_clock", lambda second=second: second)
        passed = 0
        for _ in range(1200):
            try:
                ratelimit.rate_limit_check(key_prefix=prefix, limit=1000)
                passed += 1
            except ApplicationError:
                pass
        counts.append(passed)

    assert counts == [1000, 1000]
    assert ratelimit._leases[prefix].previous == 1000  # so the second second leased 50 at a time


def test_many_quiet_processes_are_not_refused_below_the_limit(frozen):
    assert admitted(f"pk_test_{uuid.uuid4().hex[:8]}", limit=100, attempts=90, processes=30) == 90


def test_leases_of_idle_callers_are_forgotten_past_a_bound(monkeypatch):
    """One lease per user of user tokens: a process must not keep them all."""
    monkeypatch.setattr(ratelimit, "_MAX_LEASES", 3)
    ratelimit._leases.clear()
    for second, users in ((2_000_000_020.5, ("a", "b", "c")), (2_000_000_023.5, ("d", "e"))):
        monkeypatch.setattr(ratelimit, "_clock", lambda second=second: second)
        for user in users:
            ratelimit.rate_limit_check(key_prefix=f"user:{uuid.uuid4()}:{user}", limit=5)

    assert len(ratelimit._leases) == 2  # a, b and c were idle: forgotten when d came
