"""`/metrics`: what every process recorded (ops.metrics) plus what the database and the queue say now.

A source that is down leaves its metrics out (and says so in engage_scrape_source_up) rather than
failing the scrape.
"""

from __future__ import annotations

import hmac
import logging
from datetime import timedelta

import sqlalchemy as sa
from flask import Flask, Response, current_app, request
from rq import Queue

from ops.metrics import (
    BUDGET_LOW,
    CONTENT_TYPE,
    CONTRIBUTIONS,
    DELIVERIES,
    FAILED_RECENTLY,
    QUEUE_DEPTH,
    RATE_LIMIT_LIMIT,
    RATE_LIMIT_PROJECTED,
    RATE_LIMIT_REMAINING,
    RATE_LIMIT_USED,
    SOURCE_UP,
    Sample,
    exposition,
    recorded_samples,
)
from services import Services
from storage import db
from storage.deliveries import FAILED, PENDING, STATUSES

log = logging.getLogger(__name__)


def init_app(app: Flask) -> None:
    """Serve `/metrics`; with METRICS_TOKEN set, only to `Authorization: Bearer <token>`."""
    app.add_url_rule("/metrics", "metrics", scrape)


def scrape() -> Response:
    services: Services = current_app.extensions["engage"]
    token = services.settings.metrics_token
    if token and not authorised(request.headers.get("Authorization", ""), token):
        return Response(
            "metrics need the header Authorization: Bearer <METRICS_TOKEN>\n",
            401,
            {"WWW-Authenticate": 'Bearer realm="metrics"'},
            content_type="text/plain; charset=utf-8",
        )
    return Response(exposition(collect(services)), content_type=CONTENT_TYPE)


def authorised(header: str, token: str) -> bool:
    return hmac.compare_digest(header.encode(), f"Bearer {token}".encode())


def collect(services: Services) -> list[Sample]:
    """What every process recorded, and what the database and the queue say now; a source that is down
    leaves its metrics out (and says so in engage_scrape_source_up) rather than failing the scrape."""
    snapshot = services.metrics.snapshot()
    samples = recorded_samples(snapshot) if snapshot is not None else []
    removed = _removed_installations(services)
    samples = [s for s in samples if not (s[0] == RATE_LIMIT_REMAINING and s[1].get("installation") in removed)]
    samples += _budget(services, removed)
    backlog = _backlog(services)
    if backlog is not None:
        by_status, failed_recently, contributions = backlog
        samples += [(DELIVERIES, {"status": status}, by_status.get(status, 0)) for status in STATUSES]
        samples += [(FAILED_RECENTLY, {}, failed_recently), (CONTRIBUTIONS, {}, contributions)]
    if services.redis is None:
        depth = backlog[0].get(PENDING, 0) if backlog is not None else None
    else:
        depth = _rq_depth(services) if snapshot is not None else None  # Redis is down: do not wait on it twice
    if depth is not None:
        samples.append((QUEUE_DEPTH, {}, depth))
    up = {"recorded": snapshot is not None, "database": backlog is not None, "queue": depth is not None}
    samples += [(SOURCE_UP, {"source": source}, float(ok)) for source, ok in up.items()]
    return samples


def _budget(services: Services, removed: set[str]) -> list[Sample]:
    """Each installation's request budget this window, the projection computed now; a cache that cannot
    be read leaves them out (the recorded gauges still show what remains)."""
    budget = services.github.budget
    try:
        readings = budget.readings()
    except Exception as exc:
        log.warning("metrics: GitHub budget unreadable: %s", type(exc).__name__)
        return []
    now = budget.clock()
    samples: list[Sample] = []
    for reading in readings:
        labels = {"installation": str(reading.installation_id)}
        if labels["installation"] in removed:
            continue
        samples += [
            (RATE_LIMIT_USED, labels, reading.used),
            (RATE_LIMIT_LIMIT, labels, reading.limit),
            (RATE_LIMIT_PROJECTED, labels, reading.projected(now)),
            (BUDGET_LOW, labels, float(reading.low(now))),
        ]
    return samples


def _removed_installations(services: Services) -> set[str]:
    """Installations the app was removed from: their last rate-limit reading is no longer news."""
    try:
        with services.store.engine.connect() as conn:
            query = sa.select(db.installations.c.id).where(db.installations.c.deleted_at.is_not(None))
            return {str(installation_id) for installation_id in conn.execute(query).scalars()}
    except Exception:
        return set()  # _backlog reports the database as down


def _backlog(services: Services) -> tuple[dict[str, int], int, int] | None:
    """Deliveries by status, failures in the last 24 hours, contributions in the ledger."""
    d = db.deliveries.c
    since = db.utcnow() - timedelta(hours=24)
    try:
        with services.store.engine.connect() as conn:
            counts = conn.execute(sa.select(d.status, sa.func.count()).group_by(d.status))
            by_status = {str(status): int(count) for status, count in counts}
            failed = conn.execute(
                sa.select(sa.func.count()).select_from(db.deliveries).where(d.status == FAILED, d.finished_at >= since)
            ).scalar_one()
            # count(*) takes about 50 ms per million rows on PostgreSQL, fine once a scrape; max(id) would
            # overcount, as inserts that lose ON CONFLICT DO NOTHING still use up an id.
            contributions = conn.execute(sa.select(sa.func.count()).select_from(db.contributions)).scalar_one()
    except Exception as exc:
        log.warning("metrics: database unreachable: %s", type(exc).__name__)
        return None
    return by_status, int(failed), int(contributions)


def _rq_depth(services: Services) -> int | None:
    try:
        return int(Queue(services.settings.queue_name, connection=services.redis).count)
    except Exception as exc:
        log.warning("metrics: queue unreachable: %s", type(exc).__name__)
        return None
