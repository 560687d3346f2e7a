"""The leaderboard windows (`window_totals`), kept as of a UTC day and moved day by day: each move adds
the days that enter a window and subtracts those that leave it, in SQL over `actor_days`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from storage.db import (
    ROLLUP_COUNTS,
    WINDOWS_AS_OF,
    actor_days,
    in_owner_scope,
    ledger_state,
    repositories,
    window_totals,
)
from storage.prepared import Prepared
from storage.rollups import org_scope
from storage.upsert import insert_for

# Leaderboard windows in days; each also has a "-prev" twin (the window before it) for rank changes.
WINDOWS: dict[str, int | None] = {"7d": 7, "30d": 30, "90d": 90, "365d": 365, "all": None}
# Past this many days behind, moving the windows day by day costs more than rebuilding them.
REBUILD_AFTER_DAYS = 60


@dataclass(frozen=True)
class Span:
    """Days [first, last] a stored window covers as of a day; first None: since the beginning."""

    name: str
    first: date | None
    last: date


def spans(as_of: date) -> list[Span]:
    found: list[Span] = []
    for name, length in WINDOWS.items():
        if length is None:
            found.append(Span(name, None, as_of))
            continue
        found.append(Span(name, as_of - timedelta(days=length - 1), as_of))
        found.append(Span(f"{name}-prev", as_of - timedelta(days=2 * length - 1), as_of - timedelta(days=length)))
    return found


_DAY = sa.select(ledger_state.c.day).where(ledger_state.c.name == WINDOWS_AS_OF)
# FOR SHARE / FOR UPDATE on PostgreSQL; SQLite's writers take the whole database (BEGIN IMMEDIATE).
_LOCKED_DAY = {"share": Prepared(_DAY.with_for_update(read=True)), "update": Prepared(_DAY.with_for_update())}
_ANY_DAY = Prepared(_DAY)


def windows_day(conn: Connection, lock: str | None = None) -> date | None:
    """The day the windows are kept as of; `lock` "share" (recording, relisting) or "update" (moving them)."""
    query = _LOCKED_DAY[lock] if lock is not None and conn.dialect.name == "postgresql" else _ANY_DAY
    value = query.execute(conn).scalar()
    return value if isinstance(value, date) else None


def lock_windows(conn: Connection) -> None:
    """Share the windows' day, as recording does, before changing which repositories the pages list
    (then `relist`): moving the windows waits meanwhile."""
    windows_day(conn, lock="share")


def set_day(conn: Connection, name: str, day: date) -> None:
    """Update in place: the row may be locked by this transaction, and deleting it would free the lock."""
    statement = insert_for(conn, ledger_state).values(name=name, day=day)
    conn.execute(statement.on_conflict_do_update(index_elements=["name"], set_={"day": day}))


def advance(conn: Connection, today: date) -> bool:
    """Move every window to `today` (rebuilt when far behind or ahead); False when already there."""
    as_of = windows_day(conn, lock="update")
    if as_of == today:
        return False
    if as_of is None or as_of > today or (today - as_of).days > REBUILD_AFTER_DAYS:
        rebuild_windows(conn, today)
    else:
        shift_windows(conn, as_of, today)
    set_day(conn, WINDOWS_AS_OF, today)
    return True


def _public_repo_scope() -> tuple[Any, Any]:
    """(scope expression, join) for summing `actor_days` into owner-wide scopes of listed repositories."""
    scope = sa.literal("org:") + sa.func.lower(repositories.c.owner)
    join = actor_days.join(repositories, repositories.c.id == actor_days.c.repo_id)
    return scope, join


def _add_days(
    conn: Connection,
    window: str,
    first: date | None,
    last: date,
    sign: int,
    owner: str | None = None,
    actors: Sequence[int] | None = None,
) -> None:
    """Add (sign 1) or subtract (-1) the `actor_days` of [first, last] to a window, for every scope (of
    these people only, when given)."""
    sums = [sa.func.sum(actor_days.c[name]) * sign for name in ROLLUP_COUNTS]
    day_filter = [actor_days.c.day <= last] + ([actor_days.c.day >= first] if first is not None else [])
    if actors is not None:
        day_filter.append(actor_days.c.actor_id.in_(actors))
    repo_scope_expr = sa.literal("repo:") + sa.cast(actor_days.c.repo_id, sa.String)
    selects = []
    if owner is None:
        selects.append(
            sa.select(repo_scope_expr, sa.literal(window), actor_days.c.actor_id, *sums)
            .where(*day_filter)
            .group_by(actor_days.c.repo_id, actor_days.c.actor_id)
        )
    scope, join = _public_repo_scope()
    org_query = sa.select(scope, sa.literal(window), actor_days.c.actor_id, *sums).select_from(join)
    org_query = org_query.where(*day_filter, in_owner_scope())
    if owner is not None:
        org_query = org_query.where(sa.func.lower(repositories.c.owner) == owner.lower())
    selects.append(org_query.group_by(sa.func.lower(repositories.c.owner), actor_days.c.actor_id))
    columns = ["scope", "window", "actor_id", *ROLLUP_COUNTS]
    for select in selects:
        statement = insert_for(conn, window_totals).from_select(columns, select)
        statement = statement.on_conflict_do_update(
            index_elements=["scope", "window", "actor_id"],
            set_={name: window_totals.c[name] + statement.excluded[name] for name in ROLLUP_COUNTS},
        )
        conn.execute(statement)


def _drop_empty(conn: Connection) -> None:
    conn.execute(window_totals.delete().where(sa.and_(*(window_totals.c[name] == 0 for name in ROLLUP_COUNTS))))


def shift_windows(conn: Connection, as_of: date, today: date) -> None:
    """Move windows from `as_of` to `today`: add the days entering, subtract the days leaving."""
    before, after = {s.name: s for s in spans(as_of)}, {s.name: s for s in spans(today)}
    for name, new in after.items():
        old = before[name]
        # Entering: (old.last, new.last] within the new span; leaving: [old.first, new.first) within the old.
        entering_first = old.last + timedelta(days=1)
        if new.first is not None:
            entering_first = max(entering_first, new.first)
        _add_days(conn, name, entering_first, new.last, 1)
        if old.first is not None and new.first is not None:
            _add_days(conn, name, old.first, min(new.first - timedelta(days=1), old.last), -1)
    _drop_empty(conn)


def rebuild_windows(
    conn: Connection, today: date, owner: str | None = None, actors: Sequence[int] | None = None
) -> None:
    """Recompute the windows as of `today` (only one owner's org scope, or some people's rows, when given)."""
    stale = window_totals.delete()
    if owner is not None:
        stale = stale.where(window_totals.c.scope == org_scope(owner))
    if actors is not None:
        stale = stale.where(window_totals.c.actor_id.in_(actors))
    conn.execute(stale)
    for span in spans(today):
        _add_days(conn, span.name, span.first, span.last, 1, owner, actors)
    _drop_empty(conn)
