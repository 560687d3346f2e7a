"""Pace content-creating requests per installation, so the app never trips GitHub's secondary limits.

GitHub's REST guide ("Best practices for using the REST API") asks integrators to make mutating
requests serially and leave at least one second between them. Each installation gets a queue of
slots; a writer waits for its slot, and a job whose slot is too far away is retried later rather
than dropped or blocking a worker.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import redis

from githubapp.errors import WritesThrottled

# Reserve the next slot atomically across all workers: returns the wait in ms, or -wait when the
# slot is further away than allowed (nothing reserved then).
_RESERVE = """
local now = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])
local max_wait = tonumber(ARGV[3])
local nxt = tonumber(redis.call('GET', KEYS[1]) or '0')
local slot = math.max(now, nxt)
local wait = slot - now
if wait > max_wait then return -wait end
redis.call('SET', KEYS[1], slot + interval, 'PX', wait + interval + 1000)
return wait
"""


class WritePacer:
    def __init__(
        self,
        interval_seconds: float,
        max_wait_seconds: float = 5.0,
        connection: redis.Redis | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.interval_ms = int(interval_seconds * 1000)
        self.max_wait_ms = int(max_wait_seconds * 1000)
        self._redis = connection
        self._script = connection.register_script(_RESERVE) if connection is not None else None
        self._next: dict[int | str, int] = {}
        self._lock = threading.Lock()
        self._sleep = sleep

    def wait_for_slot(self, installation_id: int | str) -> None:
        """Wait for the next slot of `installation_id` (or of any other paced key, e.g. a chat destination)."""
        if self.interval_ms <= 0:
            return
        wait_ms = self._reserve(installation_id, int(time.time() * 1000))
        if wait_ms < 0:
            raise WritesThrottled(installation_id, -wait_ms / 1000)
        if wait_ms:
            self._sleep(wait_ms / 1000)

    def _reserve(self, installation_id: int | str, now_ms: int) -> int:
        if self._script is not None:
            return int(
                self._script(keys=[f"engage:pace:{installation_id}"], args=[now_ms, self.interval_ms, self.max_wait_ms])
            )
        with self._lock:
            slot = max(now_ms, self._next.get(installation_id, 0))
            wait = slot - now_ms
            if wait > self.max_wait_ms:
                return -wait
            self._next[installation_id] = slot + self.interval_ms
            return wait
