"""Small shared key-value caches: Redis when configured (shared by all workers), memory otherwise."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Protocol

import redis


class Cache(Protocol):
    def get(self, key: str) -> str | None: ...

    def set(self, key: str, value: str, ttl_seconds: float) -> None: ...

    def delete(self, key: str) -> None: ...


class MemoryCache:
    """Bounded in-process cache with per-entry expiry (the embedded, single-process default)."""

    def __init__(self, max_entries: int = 10_000):
        self._items: OrderedDict[str, tuple[float, str]] = OrderedDict()
        self._lock = threading.Lock()
        self._max = max_entries

    def get(self, key: str) -> str | None:
        with self._lock:
            item = self._items.get(key)
            if item is None:
                return None
            expires, value = item
            if expires <= time.monotonic():
                del self._items[key]
                return None
            self._items.move_to_end(key)
            return value

    def set(self, key: str, value: str, ttl_seconds: float) -> None:
        with self._lock:
            self._items[key] = (time.monotonic() + ttl_seconds, value)
            self._items.move_to_end(key)
            while len(self._items) > self._max:
                self._items.popitem(last=False)

    def delete(self, key: str) -> None:
        with self._lock:
            self._items.pop(key, None)


class RedisCache:
    def __init__(self, connection: redis.Redis, prefix: str = "engage:"):
        self._redis = connection
        self._prefix = prefix

    def get(self, key: str) -> str | None:
        value = self._redis.get(self._prefix + key)
        return value.decode() if isinstance(value, bytes) else value

    def set(self, key: str, value: str, ttl_seconds: float) -> None:
        self._redis.set(self._prefix + key, value, px=max(1, int(ttl_seconds * 1000)))

    def delete(self, key: str) -> None:
        self._redis.delete(self._prefix + key)
