"""A per-process cache for configuration rows read on every request (API keys, schemas).

Entries live in process memory, so a warm lookup costs no round trip. Writers call
:meth:`ConfigCache.invalidate`, which clears this process at once and publishes a new
generation token in Redis; other processes notice it within ``CONFIG_CACHE_CHECK_SECONDS``.
If Redis is unreachable, every process simply forgets its entries at that same interval.
"""

import contextlib
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import transaction

GENERATION_KEY = "config-generation"
_UNKNOWN = object()


class ConfigCache:
    def __init__(self) -> None:
        self._entries: dict[Any, Any] = {}
        self._generation: Any = _UNKNOWN
        self._checked_at = 0.0
        self._lock = threading.Lock()

    def get(self, key: Any, load: Callable[[], Any], *, cache_none: bool = True) -> Any:
        """The cached value for key, loading it on a miss. ``cache_none=False`` keeps
        lookups of attacker-chosen keys (unknown API key prefixes) from filling memory."""
        self._expire_if_stale()
        try:
            return self._entries[key]
        except KeyError:
            value = load()
            if value is not None or cache_none:
                self._entries[key] = value
            return value

    def invalidate(self) -> None:
        """Called by writers. Inside a transaction it acts now and again once it commits:
        a process that reloads in between still reads the old rows, and must reload again."""
        self._publish()
        if transaction.get_connection().in_atomic_block:
            transaction.on_commit(self._publish)

    def _publish(self) -> None:
        self._entries.clear()
        # If Redis is down, other processes expire their entries on their own.
        with contextlib.suppress(Exception):
            cache.set(GENERATION_KEY, uuid.uuid4().hex, timeout=None)

    def _expire_if_stale(self) -> None:
        now = time.monotonic()
        if now - self._checked_at < settings.CONFIG_CACHE_CHECK_SECONDS:
            return
        with self._lock:
            if now - self._checked_at < settings.CONFIG_CACHE_CHECK_SECONDS:
                return
            self._checked_at = now
            try:
                generation = cache.get(GENERATION_KEY)
            except Exception:
                generation = object()
            if generation != self._generation:
                self._entries.clear()
                self._generation = generation


config_cache = ConfigCache()
