"""The period each scheduled task last ran for: what makes a period run once across workers and restarts.

A claim is a conditional UPDATE that moves a task's `period` forward (or takes back a failed or
abandoned try of the same period after its back-off), so of any number of workers exactly one wins.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from storage import db
from storage.db import task_runs

RUNNING, DONE, FAILED, NEW = "running", "done", "failed", "new"
# Tries of one period before it is left failed until the next period.
MAX_ATTEMPTS = 3
# A failed try waits this long before the next, doubling each time.
RETRY_BASE = timedelta(seconds=30)


@dataclass(frozen=True)
class TaskState:
    task: str
    period: datetime | None
    status: str
    attempts: int
    started_at: datetime | None
    finished_at: datetime | None
    error: str | None
    runs: int
    lease_until: datetime | None

    def settled(self, period: datetime, now: datetime) -> bool:
        """Nothing to do for `period`: it ran, runs now, or has used up its tries."""
        if self.period is None or self.period < period:
            return False
        if self.period > period or self.status in (DONE, NEW):
            return True
        return self.attempts >= MAX_ATTEMPTS or (self.lease_until is not None and self.lease_until > now)


def _utc(moment: datetime) -> datetime:
    """Stored times are naive UTC (SQLite drops zones); callers give aware times."""
    return moment.astimezone(UTC).replace(tzinfo=None)


def _aware(moment: datetime | None) -> datetime | None:
    return moment.replace(tzinfo=UTC) if moment is not None else None


class TaskRunStore:
    def __init__(self, engine: Engine):
        self.engine = engine

    def ensure(self, task: str, baseline: datetime | None) -> None:
        """Create the task's row on first sight; `baseline` is a period counted as run (a new weekly
        task waits for its next period rather than running at once for one that began before it existed)."""
        try:
            with db.begin(self.engine) as conn:
                period = _utc(baseline) if baseline is not None else None
                conn.execute(task_runs.insert().values(task=task, period=period, status=NEW, attempts=0, runs=0))
        except IntegrityError:
            pass

    def claim(self, task: str, period: datetime, now: datetime, lease: timedelta) -> bool:
        """True if this caller runs `task` for `period` now (and holds it for `lease`)."""
        p, at = _utc(period), _utc(now)
        c = task_runs.c
        retry_same = sa.and_(
            c.period == p,
            c.status.in_((RUNNING, FAILED)),
            c.attempts < MAX_ATTEMPTS,
            sa.or_(c.lease_until.is_(None), c.lease_until <= at),
        )
        with db.begin(self.engine) as conn:
            result = conn.execute(
                task_runs.update()
                .where(c.task == task, sa.or_(c.period.is_(None), c.period < p, retry_same))
                .values(
                    period=p,
                    status=RUNNING,
                    attempts=sa.case((c.period == p, c.attempts + 1), else_=1),
                    started_at=at,
                    lease_until=at + lease,
                    finished_at=None,
                    error=None,
                )
            )
        return result.rowcount == 1

    def finish(self, task: str, period: datetime, now: datetime, error: str | None = None) -> None:
        """Record the outcome; a failure may be tried again for the same period after a back-off."""
        c = task_runs.c
        mine = sa.and_(c.task == task, c.period == _utc(period))
        with db.begin(self.engine) as conn:
            if error is None:
                conn.execute(task_runs.update().where(mine).values(status=DONE, runs=c.runs + 1, finished_at=_utc(now)))
                return
            attempts = conn.execute(sa.select(c.attempts).where(mine)).scalar() or 1
            back_off = RETRY_BASE * 2 ** (attempts - 1)
            conn.execute(
                task_runs.update()
                .where(mine)
                .values(status=FAILED, finished_at=_utc(now), error=error[:2000], lease_until=_utc(now + back_off))
            )

    def states(self) -> dict[str, TaskState]:
        with db.connect(self.engine) as conn:
            rows = conn.execute(sa.select(task_runs)).mappings().all()
        return {
            row["task"]: TaskState(
                task=row["task"],
                period=_aware(row["period"]),
                status=row["status"],
                attempts=row["attempts"],
                started_at=_aware(row["started_at"]),
                finished_at=_aware(row["finished_at"]),
                error=row["error"],
                runs=row["runs"],
                lease_until=_aware(row["lease_until"]),
            )
            for row in rows
        }
