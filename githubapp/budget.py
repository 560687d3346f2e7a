"""GitHub's request budget per installation, read from the X-RateLimit-* headers of its answers.

GitHub gives each installation a number of REST requests an hour (5,000; more for large organisations,
as X-RateLimit-Limit says), counted in a window that ends at X-RateLimit-Reset ("Rate limits for the
REST API" in GitHub's docs). Every answer's figures go to the shared cache (Redis with REDIS_URL), so
every process sees the same budget; optional lookups ask `spare` first, so that when the budget runs
low the essential calls (the comment, the config, permission checks) still have room.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from githubapp.cache import Cache
from ops.metrics import LOOKUPS_SKIPPED, Recorder

log = logging.getLogger(__name__)

WINDOW_SECONDS = 3600
# Low when fewer than this share of the limit remains, whatever the pace.
LOW_FRACTION = 0.10
# The pace of a window's first minutes is noise (one busy delivery would project to thousands an
# hour), so the projection counts at least this much of the window as gone.
MIN_ELAPSED_SECONDS = 300
# How often a process makes sure an installation it hears of is in the shared list of installations.
INDEX_REFRESH_SECONDS = 60
INDEX_TTL_SECONDS = 24 * 3600
REASON_LOW = "budget_low"  # why a lookup was skipped
_KEY, _INDEX = "budget:{}", "budget:installations"


@dataclass(frozen=True)
class Reading:
    """One installation's budget as GitHub's latest answer told it."""

    installation_id: int
    limit: int
    remaining: int
    used: int
    reset: int  # epoch seconds when the window ends

    def projected(self, now: float) -> int:
        """The hour's use at the pace so far: used ÷ the elapsed part of the window × the window."""
        return round(self.used / self._elapsed(now) * WINDOW_SECONDS)

    def low(self, now: float) -> bool:
        """Low when fewer than LOW_FRACTION of the limit remains, or when the remaining requests would not
        last to the reset at the pace so far."""
        left = max(0.0, self.reset - now)
        pace = self.used / self._elapsed(now)
        return self.remaining < LOW_FRACTION * self.limit or pace * left > self.remaining

    @property
    def resets_at(self) -> str:
        """When the window ends, as "HH:MM UTC"."""
        return datetime.fromtimestamp(self.reset, UTC).strftime("%H:%M UTC")

    def _elapsed(self, now: float) -> float:
        return min(WINDOW_SECONDS, max(MIN_ELAPSED_SECONDS, WINDOW_SECONDS - (self.reset - now)))


def reading_from(installation_id: int, headers: Mapping[str, str]) -> Reading | None:
    """The core budget an answer's headers state; None for another resource (search, graphql) or none."""
    if headers.get("X-RateLimit-Resource", "core") != "core":
        return None
    names = ("Limit", "Remaining", "Used", "Reset")
    values = [headers.get(f"X-RateLimit-{name}", "") for name in names]
    if not all(value.isdigit() for value in values):
        return None
    limit, remaining, used, reset = (int(value) for value in values)
    return Reading(installation_id, limit, remaining, used, reset)


class Budget:
    """Each installation's latest reading, in the cache every process shares."""

    def __init__(self, cache: Cache, metrics: Recorder | None = None, clock: Callable[[], float] = time.time):
        self.cache = cache
        self.metrics = metrics
        self.clock = clock
        self._indexed: dict[int, float] = {}  # installation -> when this process last checked the list

    def record(self, installation_id: int, headers: Mapping[str, str]) -> None:
        """Keep what an answer says until its window ends; the latest answer wins."""
        reading = reading_from(installation_id, headers)
        now = self.clock()
        if reading is None or reading.reset <= now:
            return
        self.cache.set(_KEY.format(installation_id), json.dumps(vars(reading)), reading.reset - now)  # asdict: 25 µs
        if now - self._indexed.get(installation_id, -INDEX_REFRESH_SECONDS) >= INDEX_REFRESH_SECONDS:
            self._indexed[installation_id] = now
            known = self._installations()
            if installation_id not in known:
                self.cache.set(_INDEX, json.dumps(sorted({*known, installation_id})), INDEX_TTL_SECONDS)

    def reading(self, installation_id: int) -> Reading | None:
        """The installation's budget in the current window, or None when no answer told it yet."""
        stored = self.cache.get(_KEY.format(installation_id))
        if stored is None:
            return None
        reading = Reading(**json.loads(stored))
        return reading if reading.reset > self.clock() else None

    def readings(self) -> list[Reading]:
        """Every installation with a known budget, by id."""
        return [r for r in map(self.reading, self._installations()) if r is not None]

    def low(self, installation_id: int) -> bool:
        reading = self.reading(installation_id)
        return reading is not None and reading.low(self.clock())

    def spare(self, installation_id: int, lookup: str) -> bool:
        """True while the installation's budget leaves room for an optional lookup; a refusal is counted
        in LOOKUPS_SKIPPED under the lookup's name."""
        if not self.low(installation_id):
            return True
        if self.metrics is not None:
            self.metrics.inc(LOOKUPS_SKIPPED, {"lookup": lookup, "reason": REASON_LOW})
        return False

    def _installations(self) -> list[int]:
        stored = self.cache.get(_INDEX)
        return [int(i) for i in json.loads(stored)] if stored else []
