"""Per-key rate limit: a one-second fixed window counted in Redis, shared by all processes.

It fails open: if Redis does not answer, requests pass (ingest must keep working while the
broker is down) and Redis is left alone for a few seconds instead of being asked every time.
"""

import time

import redis
from django.conf import settings

from config.errors import ApplicationError, ErrorCode

_BACKOFF_SECONDS = 5.0
_client: redis.Redis | None = None
_skip_until = 0.0


def _redis() -> redis.Redis:
    global _client
    if _client is None:
        _client = redis.Redis.from_url(
            settings.CACHES["default"]["LOCATION"], socket_connect_timeout=0.2, socket_timeout=0.2
        )
    return _client


def rate_limit_check(*, key_prefix: str, limit: int) -> None:
    global _skip_until
    now = time.time()
    if now < _skip_until:
        return
    window = int(now)
    counter = f"rl:{key_prefix}:{window}"
    try:
        pipe = _redis().pipeline(transaction=False)
        pipe.incr(counter)
        pipe.expire(counter, 2)
        count, _ = pipe.execute()
    except redis.RedisError:
        _skip_until = now + _BACKOFF_SECONDS
        return
    if count > limit:
        raise ApplicationError(429, ErrorCode.RATE_LIMITED, headers={"Retry-After": "1"})
