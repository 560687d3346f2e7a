"""Payload retention: old deliveries (raw payloads and handler runs) are deleted; what they meant is kept.

Why: a payload is needed to process or retry its delivery and, for a while, to look into it; kept
forever, payloads would be most of the database. The ledger, its rollups and the intents are other
tables, so pruning never touches a contribution or lets a side effect happen twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from storage.db import deliveries, handler_runs, utcnow
from storage.deliveries import DONE, FAILED, IGNORED

# Failed deliveries wait longer for someone to look at them and retry them.
FAILED_RETENTION_FACTOR = 4
# Rows deleted per transaction, so pruning a large backlog never holds a long lock.
BATCH = 500


@dataclass(frozen=True)
class Pruned:
    finished: int  # done or ignored
    failed: int

    @property
    def total(self) -> int:
        return self.finished + self.failed


def prune(engine: Engine, days: int, now: datetime | None = None) -> Pruned:
    """Delete done and ignored deliveries finished more than `days` days ago, failed ones after
    FAILED_RETENTION_FACTOR times as long, each with its handler runs. Pending and retrying ones stay."""
    if days <= 0:
        raise ValueError("retention must be at least one day")
    now = now or utcnow()
    finished = _older(now - timedelta(days=days), deliveries.c.status.in_((DONE, IGNORED)))
    failed = _older(now - timedelta(days=days * FAILED_RETENTION_FACTOR), deliveries.c.status == FAILED)
    return Pruned(finished=_delete(engine, finished), failed=_delete(engine, failed))


def _older(cutoff: datetime, status: Any) -> Any:
    # received_at <= finished_at: the first condition is implied, and lets the received_at index narrow the scan.
    # finished_at, not received_at, decides: a delivery retried today was looked at today.
    return sa.and_(status, deliveries.c.received_at < cutoff, deliveries.c.finished_at < cutoff)


def _delete(engine: Engine, condition: Any) -> int:
    total = 0
    while True:
        with engine.begin() as conn:
            ids = [row.id for row in conn.execute(sa.select(deliveries.c.id).where(condition).limit(BATCH))]
            if not ids:
                return total
            conn.execute(handler_runs.delete().where(handler_runs.c.delivery_id.in_(ids)))
            conn.execute(deliveries.delete().where(deliveries.c.id.in_(ids)))
        total += len(ids)
