"""Newcomers' issues and pull requests awaiting a first human response, kept from webhooks.

The response watch adds an item when a newcomer opens it and keeps its state and labels from later
events, so that its pass and the `/waiting` page need no GitHub call. Webhooks can arrive out of
order, so each write carries GitHub's `updated_at` of the item and an older state is ignored. Whether
someone answered is the ledger's `responses` table (the insights' first response), read here.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from storage import db
from storage.db import listed_on_pages, repositories, responses, utcnow
from storage.db import watched_items as table
from storage.prepared import Prepared
from storage.upsert import insert_ignore

OPEN = "open"


@dataclass(frozen=True)
class Snapshot:
    """An item as an event shows it; times are naive UTC."""

    repo_id: int
    number: int
    repository: str
    installation_id: int
    is_pull: bool
    title: str
    html_url: str
    author: str
    opened_at: datetime
    state: str
    labels: tuple[str, ...]
    on_hold: bool  # carries the repository's waiting-on-author label
    updated_at: datetime | None  # None: unknown, applied whatever is stored


@dataclass(frozen=True)
class WatchedItem:
    repo_id: int
    number: int
    repository: str
    installation_id: int
    is_pull: bool
    title: str
    html_url: str
    author: str
    newcomer: bool
    opened_at: datetime
    state: str
    labels: tuple[str, ...]
    on_hold: bool
    due_at: datetime | None
    escalate_at: datetime | None
    nudged_at: datetime | None
    escalated_at: datetime | None
    responded_at: datetime | None  # the first human response, from the ledger
    private: bool = False


_WATCHED = Prepared(
    sa.select(table.c.number).where(
        table.c.repo_id == sa.bindparam("repo_id"), table.c.number == sa.bindparam("number")
    )
)


class WatchedItemStore:
    def __init__(self, engine: Engine):
        self.engine = engine

    def add(self, item: Snapshot, newcomer: bool, due_at: datetime | None, escalate_at: datetime | None) -> bool:
        """Start watching an item (a redelivery changes nothing); True if it is new. The INSERT is a write of one
        statement (`db.one_statement`: no BEGIN and COMMIT round trips on PostgreSQL); an item watched already
        is brought up to date after it."""
        with db.one_statement(self.engine) as conn:
            added = insert_ignore(
                conn,
                table,
                dict(
                    _values(item),
                    newcomer=newcomer,
                    opened_at=item.opened_at,
                    due_at=due_at,
                    escalate_at=escalate_at,
                ),
            )
        if not added:
            self.observe(item)
        return added

    def observe(self, item: Snapshot) -> bool:
        """Keep the state and labels of an item watched already; False when it is not watched (or the
        event is older than what is stored)."""
        with db.begin(self.engine) as conn:
            return _update(conn, item)

    def is_watched(self, repo_id: int, number: int) -> bool:
        with db.connect(self.engine) as conn:
            return _WATCHED.execute(conn, {"repo_id": repo_id, "number": number}).first() is not None

    def open_items(self) -> list[WatchedItem]:
        """Open items in repositories the app is installed in and not suspended: what the pass looks at."""
        r = repositories.c
        with db.connect(self.engine) as conn:
            return read(
                conn,
                sa.and_(table.c.state == OPEN, r.installation_id.is_not(None), r.installation_suspended_at.is_(None)),
            )

    def set_deadlines(self, repo_id: int, number: int, due_at: datetime | None, escalate_at: datetime | None) -> None:
        """The repository's settings may have changed since the item was opened: the pass keeps these current."""
        with db.begin(self.engine) as conn:
            conn.execute(
                table.update()
                .where(table.c.repo_id == repo_id, table.c.number == number)
                .where(
                    sa.or_(table.c.due_at.is_distinct_from(due_at), table.c.escalate_at.is_distinct_from(escalate_at))
                )
                .values(due_at=due_at, escalate_at=escalate_at, updated_at=utcnow())
            )

    def unmark_newcomer(self, repo_id: int, number: int) -> None:
        """The author had earlier contributions after all (recorded after the item was watched): no nudge,
        and the page stops listing it as a newcomer's."""
        with db.begin(self.engine) as conn:
            conn.execute(
                table.update()
                .where(table.c.repo_id == repo_id, table.c.number == number, table.c.newcomer.is_(True))
                .values(newcomer=False, updated_at=utcnow())
            )

    def mark(self, repo_id: int, number: int, stage: str, at: datetime) -> None:
        """Record a nudge (`nudge`) or an escalation (`escalate`) as done, for the page."""
        column = "nudged_at" if stage == "nudge" else "escalated_at"
        with db.begin(self.engine) as conn:
            conn.execute(
                table.update()
                .where(table.c.repo_id == repo_id, table.c.number == number, table.c[column].is_(None))
                .values({column: at, "updated_at": utcnow()})
            )


def read(conn: Connection, condition: sa.ColumnElement[bool], order: bool = False) -> list[WatchedItem]:
    """Watched items matching `condition` (on this table and `repositories`), with their first response."""
    t, r = table.c, repositories.c
    query = (
        sa.select(table, responses.c.first_response_at, r.private)
        .join(repositories, r.id == t.repo_id)
        .outerjoin(responses, sa.and_(responses.c.repo_id == t.repo_id, responses.c.number == t.number))
        .where(condition)
    )
    if order:
        query = query.order_by(t.opened_at, t.repo_id, t.number)
    return [
        WatchedItem(
            repo_id=int(row.repo_id),
            number=int(row.number),
            repository=str(row.repository),
            installation_id=int(row.installation_id),
            is_pull=bool(row.is_pull),
            title=str(row.title),
            html_url=str(row.html_url),
            author=str(row.author),
            newcomer=bool(row.newcomer),
            opened_at=row.opened_at,
            state=str(row.state),
            labels=tuple(json.loads(row.labels)),
            on_hold=bool(row.on_hold),
            due_at=row.due_at,
            escalate_at=row.escalate_at,
            nudged_at=row.nudged_at,
            escalated_at=row.escalated_at,
            responded_at=row.first_response_at,
            private=bool(row.private),
        )
        for row in conn.execute(query)
    ]


def waiting(conn: Connection, repo_ids: Sequence[int]) -> list[WatchedItem]:
    """Open items of these listed repositories with no human response yet and not on hold, oldest first."""
    t = table.c
    condition = sa.and_(
        t.repo_id.in_(list(repo_ids)),
        t.state == OPEN,
        t.on_hold == sa.false(),
        responses.c.first_response_at.is_(None),
        listed_on_pages(),
    )
    return read(conn, condition, order=True)


def _values(item: Snapshot) -> dict[str, object]:
    return dict(
        repo_id=item.repo_id,
        number=item.number,
        repository=item.repository,
        installation_id=item.installation_id,
        is_pull=item.is_pull,
        title=item.title,
        html_url=item.html_url,
        author=item.author,
        state=item.state,
        labels=json.dumps(list(item.labels)),
        on_hold=item.on_hold,
        seen_at=item.updated_at,
        updated_at=utcnow(),
    )


def _update(conn: Connection, item: Snapshot) -> bool:
    t = table.c
    values = _values(item)
    for key in ("repo_id", "number", "author"):
        values.pop(key)
    query = table.update().where(t.repo_id == item.repo_id, t.number == item.number)
    if item.updated_at is not None:
        query = query.where(sa.or_(t.seen_at.is_(None), t.seen_at <= item.updated_at))
    return conn.execute(query.values(values)).rowcount > 0
