"""Durable record of every webhook delivery and of each handler's outcome.

The status column is the pipeline's source of truth: a delivery is claimed by one worker with a
conditional UPDATE, so redeliveries, duplicate jobs and concurrent workers process it once.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from functools import cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from domain import json_text
from storage import db
from storage.checkpoint import WalCheckpointer
from storage.db import deliveries, handler_runs, installations, once_more_if_dropped, utcnow
from storage.group_commit import GroupCommit
from storage.installations import REMOVED, SUSPENDED
from storage.prepared import Prepared
from storage.upsert import numbered_rows, numbered_values

PENDING, PROCESSING, RETRYING = "pending", "processing", "retrying"
DONE, IGNORED, FAILED = "done", "ignored", "failed"
CLAIMABLE = (PENDING, RETRYING)
STATUSES = (PENDING, PROCESSING, RETRYING, DONE, IGNORED, FAILED)


@dataclass(frozen=True)
class DeliverySummary:
    """A delivery as lists show it: everything but its payload, which can be 25 MB."""

    id: str
    event: str
    action: str | None
    installation_id: int | None
    repository: str | None
    sender: str | None
    received_at: datetime
    status: str
    attempts: int
    last_error: str | None
    next_attempt_at: datetime | None
    finished_at: datetime | None

    @property
    def name(self) -> str:
        return f"{self.event}.{self.action}" if self.action else self.event


@dataclass(frozen=True)
class Delivery(DeliverySummary):
    payload_text: str = field(repr=False)
    # As `claim` read it in the same statement: REMOVED, SUSPENDED, or None when the app may act.
    installation_state: str | None = None

    @property
    def payload(self) -> dict[str, Any]:
        value: dict[str, Any] = json_text.loads(self.payload_text)
        return value


# The hot statements are built once: constructing Core statements per call cost more than running them.
# The delivery's installation state, read by the claim itself: one round trip fewer per delivery processed.
_INSTALLATION_STATE = (
    sa.select(
        sa.case(
            (installations.c.deleted_at.is_not(None), REMOVED),
            (installations.c.suspended_at.is_not(None), SUSPENDED),
            else_=None,
        )
    )
    .where(installations.c.id == deliveries.c.installation_id)
    .scalar_subquery()
    .label("installation_state")
)
_CLAIM = Prepared(
    deliveries.update()
    .where(
        deliveries.c.id == sa.bindparam("delivery_id"),
        sa.or_(
            *(deliveries.c.status == status for status in CLAIMABLE),  # not IN: an IN list is rendered per call
            sa.and_(deliveries.c.status == PROCESSING, deliveries.c.claimed_at < sa.bindparam("lease_cutoff")),
        ),
    )
    .values(status=PROCESSING, claimed_at=sa.bindparam("claim_time"), attempts=deliveries.c.attempts + 1)
    .returning(*deliveries.c, _INSTALLATION_STATE)
)
_FINISH = Prepared(
    deliveries.update()
    .where(deliveries.c.id == sa.bindparam("delivery_id"))
    .values(
        status=sa.bindparam("new_status"),
        last_error=sa.bindparam("error"),
        next_attempt_at=sa.bindparam("next_at"),
        finished_at=sa.bindparam("finish_time"),
    )
)


def _insert_new(dialect: str) -> Any:
    """A delivery's row unless its id is stored already (a redelivery): the row count says which, and the
    other rows written in the same transaction are not rolled back with it."""
    statement = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(deliveries)
    return statement.on_conflict_do_nothing(index_elements=[deliveries.c.id])


@cache
def _insert_rows_returning(count: int) -> Prepared:
    """PostgreSQL: `count` deliveries' rows as one INSERT ... ON CONFLICT DO NOTHING RETURNING id, the values of
    the nth row named `<column>_<n>`. One prepared statement per batch size (storage.group_commit's MAX_BATCH at
    most), run on the kept raw cursor: SQLAlchemy's insertmanyvalues rendered the batch's SQL and set up its
    execution and result at every call, about as much of the intake's CPU as psycopg's execute itself."""
    rows = numbered_rows(deliveries, [column.name for column in deliveries.columns], count)
    return Prepared(_insert_new("postgresql").values(rows).returning(deliveries.c.id))


def _upsert_runs(dialect: str) -> Any:
    """One statement records each handler's outcome, replacing an earlier attempt's."""
    statement = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(handler_runs)
    return statement.on_conflict_do_update(
        index_elements=[handler_runs.c.delivery_id, handler_runs.c.handler],
        set_={name: statement.excluded[name] for name in ("status", "error", "finished_at")},
    )


# The summary's fields are the columns of the same names: lists select these and never the payload.
_SUMMARY_COLUMNS = [deliveries.c[f.name] for f in fields(DeliverySummary)]


def _summary_values(row: Any) -> dict[str, Any]:
    return {column.name: row._mapping[column.name] for column in _SUMMARY_COLUMNS}


def _row_to_delivery(row: Any) -> Delivery:
    state = row._mapping.get("installation_state")
    return Delivery(**_summary_values(row), payload_text=row.payload, installation_state=state)


def _claimed(values: Mapping[str, Any]) -> Delivery:
    summary = {column.name: values[column.name] for column in _SUMMARY_COLUMNS}
    return Delivery(**summary, payload_text=values["payload"], installation_state=values["installation_state"])


class _KeptConnection:
    """A connection kept between uses by one user at a time, opened at its first use."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.conn: Connection | None = None

    def get(self) -> Connection:
        if self.conn is None:
            self.conn = self.engine.connect()
        return self.conn

    def drop(self) -> None:
        conn, self.conn = self.conn, None
        if conn is not None:
            conn.close()

    def closed_with_the_pool(self, _engine: Engine) -> None:
        """The engine's dispose() closes the connections in its pool and starts a new one: this connection,
        returned to the old pool, would stay open until collected."""
        conn, self.conn = self.conn, None
        if conn is not None:
            conn.detach()  # closed for good, not returned
            conn.close()


class DeliveryStore:
    def __init__(self, engine: Engine, lease_seconds: float = 300, checkpointer: WalCheckpointer | None = None):
        self.engine = engine
        # SQLite's checkpoint thread (storage/checkpoint.py), started again by the intake after a fork.
        self.checkpointer = checkpointer
        # A delivery left in `processing` longer than this belongs to a worker that died.
        self.lease = timedelta(seconds=lease_seconds)
        self._upsert_run = Prepared(_upsert_runs(engine.dialect.name))
        self._insert_new = Prepared(_insert_new(engine.dialect.name))
        # Concurrent webhook answers commit their rows together (see storage/group_commit.py), one batch at
        # a time, on a connection kept for them: the pool's checkout and check-in cost a fifth of a batch of
        # one (bench/README). Opened at the first delivery, so never before a server forks its workers.
        self._inserts: GroupCommit[dict[str, Any], bool] = GroupCommit(self._insert_rows)
        self._intake = _KeptConnection(engine)
        sa.event.listen(engine, "engine_disposed", self._intake.closed_with_the_pool)

    def ping(self) -> None:
        with db.connect(self.engine) as conn:
            conn.execute(sa.text("SELECT 1"))

    def insert(
        self,
        *,
        id: str,
        event: str,
        action: str | None,
        installation_id: int | None,
        repository: str | None,
        sender: str | None,
        payload_text: str,
        status: str = PENDING,
        last_error: str | None = None,
    ) -> bool:
        """Store a new delivery; False when this delivery id was stored before (a redelivery)."""
        now = utcnow()
        values = dict(
            id=id,
            event=event,
            action=action,
            installation_id=installation_id,
            repository=repository,
            sender=sender,
            payload=payload_text,
            received_at=now,
            status=status,
            attempts=0,
            last_error=last_error,
            next_attempt_at=None,
            claimed_at=None,
            finished_at=None if status == PENDING else now,
        )
        return self._inserts.submit(values)

    def _insert_rows(self, rows: Sequence[dict[str, Any]]) -> list[bool]:
        """One transaction; per row, whether it was new. After a dropped connection the rows are written
        again: one that our first try had committed unbeknown counts as a redelivery, and stays pending
        for the sweeper to dispatch if nobody did."""

        if self.checkpointer is not None:
            self.checkpointer.ensure_running()

        def store() -> list[bool]:
            conn = self._intake.get()
            try:
                if self.engine.dialect.name == "postgresql":
                    return self._insert_in_one_statement(conn, rows)
                with conn.begin():
                    return [self._insert_new.execute(conn, row).rowcount == 1 for row in rows]
            except BaseException:
                self._intake.drop()  # whatever went wrong, the next batch starts on a connection known to be good
                raise

        return once_more_if_dropped(store)

    def _insert_in_one_statement(self, conn: Connection, rows: Sequence[dict[str, Any]]) -> list[bool]:
        """PostgreSQL: the batch as one INSERT of all its rows, committed as it runs: one round trip and one
        commit, where a transaction took a round trip for each row and two more for its BEGIN and COMMIT.
        RETURNING names the rows that were new; of one id twice in a batch (GitHub's redelivery beside the
        first), the first is new."""
        with db.statements_on_their_own(conn):
            stored = {row.id for row in _insert_rows_returning(len(rows)).execute(conn, numbered_values(rows))}
        new = []
        for row in rows:
            new.append(row["id"] in stored)
            stored.discard(row["id"])
        return new

    def close(self) -> None:
        """Give back the intake's connection, once no batch is being written on it, and stop the checkpoint
        thread after its last checkpoint."""
        self._inserts.between_batches(self._intake.drop)
        if self.checkpointer is not None:
            self.checkpointer.stop()

    def get(self, delivery_id: str) -> Delivery | None:
        with db.connect(self.engine) as conn:
            row = conn.execute(sa.select(deliveries).where(deliveries.c.id == delivery_id)).first()
        return _row_to_delivery(row) if row else None

    def claim(self, delivery_id: str) -> Delivery | None:
        """Take a delivery for processing, or None if it is done, ignored or being processed elsewhere."""
        now = utcnow()

        def take() -> Any:
            with db.one_statement(self.engine) as conn:
                return _CLAIM.execute(
                    conn, {"delivery_id": delivery_id, "claim_time": now, "lease_cutoff": now - self.lease}
                ).first()

        row = once_more_if_dropped(take)
        return _claimed(row._asdict()) if row else None

    def finish(
        self,
        delivery_id: str,
        status: str,
        error: str | None = None,
        next_attempt_at: datetime | None = None,
        outcomes: Mapping[str, tuple[str, str | None]] | None = None,
    ) -> None:
        """Set the delivery's status and record its handlers' outcomes, in one transaction."""
        now = utcnow()

        def record() -> None:
            with (db.begin if outcomes else db.one_statement)(self.engine) as conn:
                if outcomes:
                    self._upsert_run.executemany(
                        conn,
                        [
                            dict(delivery_id=delivery_id, handler=name, status=outcome, error=error, finished_at=now)
                            for name, (outcome, error) in outcomes.items()
                        ],
                    )
                _FINISH.execute(
                    conn,
                    {
                        "delivery_id": delivery_id,
                        "new_status": status,
                        "error": error,
                        "next_at": next_attempt_at,
                        "finish_time": now if status in (DONE, IGNORED, FAILED) else None,
                    },
                )

        once_more_if_dropped(record)

    def handlers_settled(self, delivery_id: str) -> set[str]:
        """Handlers with a final outcome, so an automatic retry of the delivery does not run them again."""
        with db.connect(self.engine) as conn:
            rows = conn.execute(sa.select(handler_runs.c.handler).where(handler_runs.c.delivery_id == delivery_id))
            return {row.handler for row in rows}

    def handler_outcomes(self, delivery_id: str) -> dict[str, tuple[str, str | None]]:
        with db.connect(self.engine) as conn:
            rows = conn.execute(sa.select(handler_runs).where(handler_runs.c.delivery_id == delivery_id))
            return {row.handler: (row.status, row.error) for row in rows}

    def failed_handlers(self, delivery_ids: Collection[str]) -> dict[str, list[tuple[str, str | None]]]:
        """Each delivery's failed handlers with their errors, in one query: a delivery that failed because a
        handler raised holds only "failed handlers: NAME" itself; the error is the handler's."""
        if not delivery_ids:
            return {}
        query = (
            sa.select(handler_runs.c.delivery_id, handler_runs.c.handler, handler_runs.c.error)
            .where(handler_runs.c.delivery_id.in_(sorted(delivery_ids)), handler_runs.c.status == FAILED)
            .order_by(handler_runs.c.delivery_id, handler_runs.c.handler)
        )
        found: dict[str, list[tuple[str, str | None]]] = {}
        with db.connect(self.engine) as conn:
            for row in conn.execute(query):
                found.setdefault(row.delivery_id, []).append((row.handler, row.error))
        return found

    def due(self, grace_seconds: float, limit: int = 500) -> list[tuple[str, int, str]]:
        """(id, attempts, status) of deliveries the sweeper must (re)dispatch: stranded pending ones, due
        retries, expired leases."""
        now = utcnow()
        condition = sa.or_(
            sa.and_(deliveries.c.status == PENDING, deliveries.c.received_at <= now - timedelta(seconds=grace_seconds)),
            sa.and_(deliveries.c.status == RETRYING, deliveries.c.next_attempt_at <= now),
            sa.and_(deliveries.c.status == PROCESSING, deliveries.c.claimed_at < now - self.lease),
        )
        with db.connect(self.engine) as conn:
            rows = conn.execute(
                sa.select(deliveries.c.id, deliveries.c.attempts, deliveries.c.status)
                .where(condition)
                .order_by(deliveries.c.received_at)
                .limit(limit)
            )
            return [(row.id, row.attempts, row.status) for row in rows]

    def list(
        self, statuses: Iterable[str] = (), limit: int = 50, repositories: Collection[str] | None = None
    ) -> list[DeliverySummary]:
        """The newest deliveries (with one of `statuses`; of `repositories` only, when given), without their
        payloads."""
        query = sa.select(*_SUMMARY_COLUMNS).order_by(deliveries.c.received_at.desc()).limit(limit)
        wanted = list(statuses)
        if wanted:
            query = query.where(deliveries.c.status.in_(wanted))
        if repositories is not None:
            query = query.where(deliveries.c.repository.in_(sorted(repositories)))
        with db.connect(self.engine) as conn:
            return [DeliverySummary(**_summary_values(row)) for row in conn.execute(query)]

    def requeue(self, delivery_id: str) -> bool:
        """Put a failed delivery back in line; handlers that already succeeded will not run again."""
        with db.begin(self.engine) as conn:
            result = conn.execute(
                deliveries.update()
                .where(deliveries.c.id == delivery_id, deliveries.c.status == FAILED)
                .values(status=PENDING, attempts=0, next_attempt_at=None, finished_at=None)
            )
            if result.rowcount != 1:
                return False
            conn.execute(
                handler_runs.delete().where(handler_runs.c.delivery_id == delivery_id, handler_runs.c.status == FAILED)
            )
            return True
