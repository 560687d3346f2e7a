"""Recording metrics (text format 0.0.4), the same whichever process answers the scrape (web.metrics).

The app runs as several gunicorn processes and RQ workers on several machines, so per-process counters
(prometheus_client's default registry) would show each scrape one process's share. With REDIS_URL the
counts live in three Redis hashes: each process adds up what it records in memory, and a background
thread adds that to Redis about once a second in one MULTI/EXEC pipeline, so recording never waits for
Redis (not on a webhook request, not while Redis is down). Without Redis, the embedded single-process
default, they stay in process memory. What the database and the queue know already (deliveries by
status, queue depth, ledger size) is read when scraped. Recording never raises: metrics must never
break a delivery.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import os
import re
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import redis

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# From a handler that decides to do nothing to a job that waited out GitHub's timeouts.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
FLUSH_INTERVAL_SECONDS = 1.0
# After a failed flush, leave Redis alone a moment so scrapes answer at once while it is down.
BREAKER_SECONDS = 5.0
COUNTS_KEY, SUMS_KEY, GAUGES_KEY = "engage:metrics:counts", "engage:metrics:sums", "engage:metrics:gauges"

RECEIVED = "engage_deliveries_received_total"
PROCESSED = "engage_deliveries_processed_total"
JOB_DURATION = "engage_job_duration_seconds"
HANDLER_DURATION = "engage_handler_duration_seconds"
GITHUB_REQUESTS = "engage_github_requests_total"
RATE_LIMIT_REMAINING = "engage_github_rate_limit_remaining"
RATE_LIMIT_USED = "engage_github_rate_limit_used"
RATE_LIMIT_LIMIT = "engage_github_rate_limit_limit"
RATE_LIMIT_PROJECTED = "engage_github_rate_limit_projected"
BUDGET_LOW = "engage_github_budget_low"
LOOKUPS_SKIPPED = "engage_github_lookups_skipped_total"
QUEUE_DEPTH = "engage_queue_depth"
DELIVERIES = "engage_deliveries"
FAILED_RECENTLY = "engage_deliveries_failed_recently"
CONTRIBUTIONS = "engage_ledger_contributions_total"
SOURCE_UP = "engage_scrape_source_up"
NOTIFICATIONS = "engage_notifications_total"

Labels = Mapping[str, str]
Sample = tuple[str, dict[str, str], float]  # (sample name, labels, value)


@dataclass(frozen=True)
class Family:
    name: str
    type: str  # counter | gauge | histogram
    help: str


FAMILIES = {
    family.name: family
    for family in (
        Family(
            RECEIVED,
            "counter",
            "Webhook deliveries received, by event and outcome: accepted, ignored (stored, nothing to do), "
            "duplicate (a redelivery), rejected_signature, malformed, unsupported_media_type, too_large, "
            "database_unavailable.",
        ),
        Family(
            PROCESSED, "counter", "Delivery attempts processed, by event and outcome: done, ignored, retrying, failed."
        ),
        Family(JOB_DURATION, "histogram", "Seconds one delivery attempt took to process, by event."),
        Family(HANDLER_DURATION, "histogram", "Seconds one handler took, by handler."),
        Family(
            GITHUB_REQUESTS, "counter", "Answers from the GitHub API, by method and status code (304s and errors too)."
        ),
        Family(
            RATE_LIMIT_REMAINING,
            "gauge",
            "X-RateLimit-Remaining of GitHub's latest answer, by installation (app: calls made as the app itself).",
        ),
        Family(RATE_LIMIT_USED, "gauge", "Core API requests an installation used in the current rate-limit window."),
        Family(RATE_LIMIT_LIMIT, "gauge", "Core API requests an installation may make per window (X-RateLimit-Limit)."),
        Family(
            RATE_LIMIT_PROJECTED,
            "gauge",
            "An installation's projected use for the window: used / the elapsed part of the window x the window.",
        ),
        Family(
            BUDGET_LOW,
            "gauge",
            "1 while an installation's budget is low (under 10% left, or the pace would use it up before the "
            "reset): optional lookups are skipped.",
        ),
        Family(
            LOOKUPS_SKIPPED,
            "counter",
            "Optional GitHub lookups skipped, by lookup (reactions, file_links) and reason (budget_low).",
        ),
        Family(
            QUEUE_DEPTH,
            "gauge",
            "Jobs waiting in the RQ queue (a job carries up to 25 new deliveries); without Redis, pending deliveries.",
        ),
        Family(DELIVERIES, "gauge", "Stored deliveries by status."),
        Family(FAILED_RECENTLY, "gauge", "Deliveries that failed in the last 24 hours."),
        Family(CONTRIBUTIONS, "counter", "Contributions recorded in the ledger."),
        Family(
            NOTIFICATIONS,
            "counter",
            "Messages to chat destinations, by destination and outcome: sent, duplicate (sent before), dry_run, "
            "retrying (one failed try, retried at once), retry_later (left to the job's retry), gone, rejected.",
        ),
        Family(
            SOURCE_UP,
            "gauge",
            "1 when this scrape could read the source (recorded: the counters, database, queue), 0 when it could "
            "not: a metric missing from this scrape is unknown, not zero.",
        ),
    )
}

_EVENT_NAME = re.compile(r"[a-z_]{1,64}")


def event_label(name: str | None) -> str:
    """An event name as a label value; a forged or missing header becomes `unknown`, so series stay few."""
    return name if name and _EVENT_NAME.fullmatch(name) else "unknown"


# ---- recording


@dataclass
class Snapshot:
    """Recorded values by field (see `_field`): counters and histogram buckets, histogram sums, gauges."""

    counts: dict[str, float] = field(default_factory=dict)
    sums: dict[str, float] = field(default_factory=dict)
    gauges: dict[str, float] = field(default_factory=dict)


class Recorder(Protocol):
    def inc(self, name: str, labels: Labels, amount: int = 1) -> None: ...

    def observe(self, name: str, labels: Labels, seconds: float) -> None: ...

    def set_gauge(self, name: str, labels: Labels, value: float) -> None: ...

    def flush(self) -> bool:
        """Share what this process recorded; False when that cannot be done now."""

    def snapshot(self) -> Snapshot | None:
        """Everything recorded (by every process sharing the store), or None when unreadable."""

    def close(self) -> None: ...


def _field(name: str, labels: Labels) -> str:
    """One series as a hash field: JSON keeps any label value intact and reads back exactly."""
    return _field_of(name, tuple(labels.items()))


@functools.lru_cache(maxsize=4096)
def _field_of(name: str, labels: tuple[tuple[str, str], ...]) -> str:
    """`_field`, once per series: a delivery records the same few series, several times each."""
    return json.dumps([name, dict(labels)], sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _bucket(seconds: float) -> str:
    """The `le` of the smallest bucket holding `seconds`; buckets are stored apart and added up when read."""
    for bound in BUCKETS:
        if seconds <= bound:
            return _number(bound)
    return "+Inf"


class MemoryRecorder:
    """Totals in this process's memory: the embedded single-process default."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}
        self._sums: dict[str, float] = {}
        self._gauges: dict[str, float] = {}

    def inc(self, name: str, labels: Labels, amount: int = 1) -> None:
        try:
            self._ready()
            key = _field(name, labels)
            with self._lock:
                self._counts[key] = self._counts.get(key, 0) + amount
        except Exception:
            log.debug("metric %s not recorded", name, exc_info=True)

    def observe(self, name: str, labels: Labels, seconds: float) -> None:
        try:
            self._ready()
            bucket, total = _field(name + "_bucket", {**labels, "le": _bucket(seconds)}), _field(name + "_sum", labels)
            with self._lock:
                self._counts[bucket] = self._counts.get(bucket, 0) + 1
                self._sums[total] = self._sums.get(total, 0.0) + seconds
        except Exception:
            log.debug("metric %s not recorded", name, exc_info=True)

    def set_gauge(self, name: str, labels: Labels, value: float) -> None:
        try:
            self._ready()
            key = _field(name, labels)
            with self._lock:
                self._gauges[key] = float(value)
        except Exception:
            log.debug("metric %s not recorded", name, exc_info=True)

    def _ready(self) -> None:
        """Called before recording; the Redis recorder starts its flusher here."""

    def flush(self) -> bool:
        return True

    def snapshot(self) -> Snapshot | None:
        with self._lock:
            return Snapshot(dict(self._counts), dict(self._sums), dict(self._gauges))

    def close(self) -> None:
        pass


class RedisRecorder(MemoryRecorder):
    """Adds up in memory what this process records, and adds it to hashes in Redis every process shares."""

    def __init__(self, connection: redis.Redis, interval: float = FLUSH_INTERVAL_SECONDS) -> None:
        super().__init__()
        self.connection = connection
        self.interval = interval
        self._start_lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._open_until = 0.0
        _redis_recorders.add(self)

    def _ready(self) -> None:
        if self._thread is None:
            with self._start_lock:
                if self._thread is None and not self._stop.is_set():
                    self._thread = threading.Thread(target=self._flush_forever, name="engage-metrics", daemon=True)
                    self._thread.start()

    def _flush_forever(self) -> None:
        while not self._stop.wait(self.interval):
            self.flush()

    def flush(self) -> bool:
        if time.monotonic() < self._open_until:
            return False
        # A scrape's flush waits for a background flush under way, so the scrape then reads its counts too.
        with self._flush_lock:
            with self._lock:
                counts, sums, gauges = self._counts, self._sums, self._gauges
                self._counts, self._sums, self._gauges = {}, {}, {}
            if not (counts or sums or gauges):
                return True
            try:
                with self.connection.pipeline() as pipe:  # MULTI/EXEC: Redis adds all of it or none of it
                    for key, amount in counts.items():
                        pipe.hincrby(COUNTS_KEY, key, amount)
                    for key, seconds in sums.items():
                        pipe.hincrbyfloat(SUMS_KEY, key, seconds)
                    for key, value in gauges.items():
                        pipe.hset(GAUGES_KEY, key, value)
                    pipe.execute()
            except Exception as exc:
                # Kept for the next flush. An answer lost after Redis applied the transaction counts twice:
                # rarer, and less misleading, than dropping counts whenever Redis blinks.
                self._keep(counts, sums, gauges)
                self._open_until = time.monotonic() + BREAKER_SECONDS
                log.debug("metrics not flushed to Redis: %s", exc)
                return False
        return True

    def _keep(self, counts: dict[str, int], sums: dict[str, float], gauges: dict[str, float]) -> None:
        with self._lock:
            for key, amount in counts.items():
                self._counts[key] = self._counts.get(key, 0) + amount
            for key, seconds in sums.items():
                self._sums[key] = self._sums.get(key, 0.0) + seconds
            for key, value in gauges.items():
                self._gauges.setdefault(key, value)  # a newer value wins

    def snapshot(self) -> Snapshot | None:
        if not self.flush():
            return None
        try:
            with self.connection.pipeline() as pipe:
                for key in (COUNTS_KEY, SUMS_KEY, GAUGES_KEY):
                    pipe.hgetall(key)
                counts, sums, gauges = pipe.execute()
        except Exception as exc:
            self._open_until = time.monotonic() + BREAKER_SECONDS
            log.debug("metrics not read from Redis: %s", exc)
            return None
        return Snapshot(_floats(counts), _floats(sums), _floats(gauges))

    def close(self) -> None:
        self._stop.set()
        self.flush()

    def _forked(self) -> None:
        """In a forked child (gunicorn --preload): what was recorded before is the parent's to flush."""
        self._lock, self._start_lock, self._flush_lock = threading.Lock(), threading.Lock(), threading.Lock()
        self._counts, self._sums, self._gauges = {}, {}, {}
        self._thread = None


_redis_recorders: weakref.WeakSet[RedisRecorder] = weakref.WeakSet()


def _after_fork() -> None:
    for recorder in list(_redis_recorders):
        recorder._forked()


os.register_at_fork(after_in_child=_after_fork)


def _floats(values: Mapping[Any, Any]) -> dict[str, float]:
    decoded = {}
    for key, value in values.items():
        try:
            decoded[key.decode() if isinstance(key, bytes) else str(key)] = float(value)
        except (ValueError, UnicodeDecodeError):
            log.debug("metrics: unreadable value for %r", key)
    return decoded


def recorder(connection: redis.Redis | None) -> Recorder:
    """Shared through Redis when the app has it; in this process's memory otherwise."""
    return RedisRecorder(connection) if connection is not None else MemoryRecorder()


def github_hook(metrics: Recorder) -> Callable[[str, int, int | None, Mapping[str, str]], None]:
    """What the GitHub client calls with every answer: count it by method and status, note the rate limit."""

    def record(method: str, status: int, installation_id: int | None, headers: Mapping[str, str]) -> None:
        metrics.inc(GITHUB_REQUESTS, {"method": method.upper(), "status": str(status)})
        remaining = headers.get("X-RateLimit-Remaining")
        if remaining is not None and remaining.isdigit():
            metrics.set_gauge(RATE_LIMIT_REMAINING, {"installation": str(installation_id or "app")}, int(remaining))

    return record


def recorded_samples(snapshot: Snapshot) -> list[Sample]:
    """Counters and gauges as stored; histograms with cumulative buckets, `+Inf`, `_sum` and `_count`."""
    samples: list[Sample] = []
    histograms: dict[tuple[str, tuple[tuple[str, str], ...]], dict[str, float]] = {}
    for key, value in snapshot.counts.items():
        decoded = _decode(key)
        if decoded is None:
            continue
        name, labels = decoded
        family = name.removesuffix("_bucket")
        if name != family and "le" in labels and FAMILIES.get(family, _UNKNOWN).type == "histogram":
            le = labels.pop("le")
            buckets = histograms.setdefault((family, tuple(sorted(labels.items()))), {})
            buckets[le] = buckets.get(le, 0.0) + value
        else:
            samples.append((name, labels, value))
    for key, value in snapshot.gauges.items():
        decoded = _decode(key)
        if decoded is not None:
            samples.append((decoded[0], decoded[1], value))
    samples.sort(key=lambda sample: (sample[0], sorted(sample[1].items())))
    for (family, label_items), buckets in sorted(histograms.items()):
        labels = dict(label_items)
        running = 0.0
        for le in [*(_number(bound) for bound in BUCKETS), "+Inf"]:
            running += buckets.get(le, 0.0)
            samples.append((family + "_bucket", {**labels, "le": le}, running))
        samples.append((family + "_sum", labels, snapshot.sums.get(_field(family + "_sum", labels), 0.0)))
        samples.append((family + "_count", labels, running))
    return samples


_UNKNOWN = Family("", "untyped", "")


def _decode(key: str) -> tuple[str, dict[str, str]] | None:
    try:
        name, labels = json.loads(key)
        return str(name), {str(k): str(v) for k, v in labels.items()}
    except (ValueError, TypeError, AttributeError):
        log.debug("metrics: unreadable field %r", key)
        return None


def _family_of(sample_name: str) -> Family | None:
    if sample_name in FAMILIES:
        return FAMILIES[sample_name]
    for suffix in ("_bucket", "_sum", "_count"):
        family = FAMILIES.get(sample_name.removesuffix(suffix))
        if sample_name.endswith(suffix) and family is not None and family.type == "histogram":
            return family
    return None


def exposition(samples: Iterable[Sample]) -> str:
    """Text format 0.0.4: every family's HELP and TYPE, then its samples in the order given."""
    by_family: dict[str, list[Sample]] = {name: [] for name in FAMILIES}
    for sample in samples:
        family = _family_of(sample[0])
        if family is None:
            log.debug("metrics: %s is not a known metric", sample[0])
            continue
        by_family[family.name].append(sample)
    lines = []
    for name, family in FAMILIES.items():
        lines.append(f"# HELP {name} {_escape_help(family.help)}")
        lines.append(f"# TYPE {name} {family.type}")
        for sample_name, labels, value in by_family[name]:
            text = ",".join(f'{key}="{_escape_label(label)}"' for key, label in labels.items())
            lines.append(f"{sample_name}{{{text}}} {_number(value)}" if text else f"{sample_name} {_number(value)}")
    return "\n".join(lines) + "\n"


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))
