"""Per-key rate limit: a one-second window counted in Redis, shared by all web processes.

A Redis round trip per request would cost as much as the rest of the ingest request, so each
process leases tokens from the window: it asks Redis again only when its lease is used up.
Redis counts every token leased, so all processes together never admit more than the limit.
A lease is sized on what the process used in the previous second (a quarter of it, at most
1/20 of the limit), so a quiet process leases one token at a time (exact) and unused leases
cannot starve other processes by much.

It fails open: if Redis does not answer, requests pass (ingest must keep working while Redis is
down) and Redis is left alone for a few seconds instead of being asked every time.
"""

import threading
import time
from dataclasses import dataclass

import redis
from django.conf import settings

from config.errors import ApplicationError, ErrorCode

_BACKOFF_SECONDS = 5.0
_MAX_LEASE_FRACTION = 20
# Keys, and users of user tokens, this process holds leases for: past it, those idle for two
# windows are forgotten (their counts no longer matter), so one entry per user cannot pile up.
_MAX_LEASES = 10_000
_clock = time.time  # tests freeze it
_client: redis.Redis | None = None
_skip_until = 0.0
_lock = threading.Lock()


@dataclass
class _Lease:
    window: int = 0
    left: int = 0  # tokens leased and not yet used in this window
    used: int = 0  # requests this process admitted in this window
    previous: int = 0  # ... in the window before


_leases: dict[str, _Lease] = {}


def _redis() -> redis.Redis:
    global _client
    if _client is None:
        _client = redis.Redis.from_url(
            settings.CACHES["default"]["LOCATION"], socket_connect_timeout=0.2, socket_timeout=0.2
        )
    return _client


def rate_limit_check(*, key_prefix: str, limit: int) -> None:
    now = _clock()
    window = int(now)
    with _lock:  # one lease request per process at a time, so threads don't over-lease
        lease = _leases.get(key_prefix)
        if lease is None:
            if len(_leases) >= _MAX_LEASES:
                _forget_idle(window)
            lease = _leases[key_prefix] = _Lease()
        if lease.window != window:
            lease.previous = lease.used if lease.window == window - 1 else 0
            lease.window, lease.left, lease.used = window, 0, 0
        if lease.left == 0:
            if now < _skip_until:
                return
            size = max(1, min(limit // _MAX_LEASE_FRACTION, lease.previous // 4))
            granted = _lease(key_prefix, window, size, limit)
            if granted is None:
                return  # Redis unreachable: fail open
            if granted == 0:
                raise ApplicationError(429, ErrorCode.RATE_LIMITED, headers={"Retry-After": "1"})
            lease.left = granted
        lease.left -= 1
        lease.used += 1


def _forget_idle(window: int) -> None:
    for key_prefix in [key for key, lease in _leases.items() if lease.window < window - 1]:
        del _leases[key_prefix]


def _lease(key_prefix: str, window: int, chunk: int, limit: int) -> int | None:
    """Takes up to ``chunk`` tokens of this window from Redis; None if Redis is down."""
    global _skip_until
    counter = f"rl:{key_prefix}:{window}"
    try:
        pipe = _redis().pipeline(transaction=False)
        pipe.incrby(counter, chunk)
        pipe.expire(counter, 2)
        total, _ = pipe.execute()
    except redis.RedisError:
        _skip_until = _clock() + _BACKOFF_SECONDS
        return None
    return max(0, min(chunk, limit - (total - chunk)))
