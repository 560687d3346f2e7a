"""What protects every page: one set of security headers on every response, and a limit on guessing
the operator token.

Why one place for the headers: headers set by each blueprint missed what no blueprint serves
(`/static/*`, Flask's own 404, 405 and 500 pages). The app-level hook runs after the blueprints' own and
only fills in what they left unset, so a blueprint that needs more (setup's script nonce and GitHub as a
form target, the operator page's `no-store`) sets its stricter value and keeps it.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable

import redis
from flask import Flask, Response

log = logging.getLogger(__name__)

# No script at all, nothing from another origin. 'unsafe-inline' styles: the charts carry a <style>.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def add_security_headers(response: Response) -> Response:
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def init_app(app: Flask) -> None:
    app.after_request(add_security_headers)


class FailureLimit:
    """Wrong tokens allowed per client address and overall: past `per_address` (or `overall`) failures,
    every try is refused until `window_seconds` have passed since the last counted failure. Counted in
    Redis when there is one, so every web process shares the counts; in this process otherwise. If Redis
    fails, tries are let through (and logged): locking the operator out while Redis is down would hurt
    more than unlimited guesses at a long token for that while."""

    PREFIX = "engage:sign-in-failures"

    def __init__(
        self,
        connection: redis.Redis | None,
        per_address: int = 10,
        overall: int = 100,
        window_seconds: int = 60,
        clock: Callable[[], float] = time.monotonic,
        prefix: str = PREFIX,
    ) -> None:
        self.connection, self.window, self.clock, self.prefix = connection, window_seconds, clock, prefix
        self.limits = {"address": per_address, "overall": overall}
        self._counts: dict[str, tuple[int, float]] = {}  # without Redis: key -> (failures, forgotten at)
        self._lock = threading.Lock()

    def _keys(self, address: str) -> dict[str, str]:
        return {"address": f"{self.prefix}:address:{address}", "overall": f"{self.prefix}:overall"}

    def retry_after(self, address: str) -> int:
        """Seconds until `address` may try a token again; 0 when it may now."""
        keys = self._keys(address)
        counts = self._read(list(keys.values()))
        waits = [left for kind, (failures, left) in zip(keys, counts, strict=True) if failures >= self.limits[kind]]
        return max(waits, default=0)

    def failed(self, address: str) -> None:
        keys = list(self._keys(address).values())
        if self.connection is None:
            now = self.clock()
            with self._lock:
                self._counts = {key: kept for key, kept in self._counts.items() if kept[1] > now}
                for key in keys:
                    self._counts[key] = (self._counts.get(key, (0, 0.0))[0] + 1, now + self.window)
            return
        try:
            with self.connection.pipeline() as pipe:
                for key in keys:
                    pipe.incr(key)
                    pipe.expire(key, self.window)
                pipe.execute()
        except redis.RedisError as exc:
            log.warning("could not count a failed sign-in: %s", exc)

    def _read(self, keys: list[str]) -> list[tuple[int, int]]:
        """(failures, seconds until they are forgotten) for each key."""
        if self.connection is None:
            now = self.clock()
            with self._lock:
                found = [self._counts.get(key, (0, now)) for key in keys]
            return [(failures, math.ceil(until - now)) if until > now else (0, 0) for failures, until in found]
        try:
            with self.connection.pipeline(transaction=False) as pipe:
                for key in keys:
                    pipe.get(key)
                    pipe.ttl(key)
                answers = pipe.execute()
        except redis.RedisError as exc:
            log.warning("could not read the failed sign-ins, letting this one through: %s", exc)
            return [(0, 0) for _ in keys]
        return [(int(answers[i] or 0), max(int(answers[i + 1]), 1)) for i in range(0, len(answers), 2)]
