"""Rollups recomputed from the ledger in SQL: all of them (to repair; a test holds the result equal to
what `storage.ledger` keeps one contribution at a time), or one owner's when a repository joins or
leaves the pages."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from domain import contributions as kinds
from storage.db import (
    ROLLUP_COUNTS,
    WINDOWS_AS_OF,
    actor_days,
    contributions,
    in_owner_scope,
    repositories,
    responses,
    scope_members,
    weekly,
    weekly_actors,
    window_totals,
)
from storage.rollups import CREDIT_COLUMNS, ROLLUP_COLUMNS, WEEKLY_COLUMNS, org_scope, week_of
from storage.windows import rebuild_windows, set_day, windows_day


def relist(conn: Connection, owners: Iterable[str]) -> None:
    """Repositories of these owners joined or left the pages (installed, removed, suspended): their
    owner-wide scopes count the listed repositories again."""
    as_of = windows_day(conn)
    for owner in sorted({owner.lower() for owner in owners}):
        rebuild_org(conn, owner, as_of)


def rebuild_org_members(conn: Connection, owner: str | None, actors: Sequence[int] | None = None) -> None:
    """Owner-wide first/latest contributions: the earliest and latest over the listed repositories (of
    one owner, of some people, or all)."""
    repo_id = sa.cast(sa.func.substr(scope_members.c.scope, 6), sa.BigInteger)
    join = scope_members.join(repositories, repositories.c.id == repo_id)
    scope = sa.literal("org:") + sa.func.lower(repositories.c.owner)
    query = (
        sa.select(
            scope, scope_members.c.actor_id, sa.func.min(scope_members.c.first_at), sa.func.max(scope_members.c.last_at)
        )
        .select_from(join)
        .where(scope_members.c.scope.like("repo:%"), in_owner_scope())
    )
    stale = scope_members.delete()
    if owner is not None:
        stale = stale.where(scope_members.c.scope == org_scope(owner))
        query = query.where(sa.func.lower(repositories.c.owner) == owner.lower())
    else:
        stale = stale.where(scope_members.c.scope.like("org:%"))
    if actors is not None:
        stale = stale.where(scope_members.c.actor_id.in_(actors))
        query = query.where(scope_members.c.actor_id.in_(actors))
    conn.execute(stale)
    query = query.group_by(sa.func.lower(repositories.c.owner), scope_members.c.actor_id)
    conn.execute(scope_members.insert().from_select(["scope", "actor_id", "first_at", "last_at"], query))


def rebuild_org(conn: Connection, owner: str, as_of: date | None) -> None:
    """After a repository of `owner` joined or left the pages (made public or private, installed, removed)."""
    rebuild_org_members(conn, owner)
    if as_of is not None:
        rebuild_windows(conn, as_of, owner)


def rebuild_all(conn: Connection, today: date) -> None:
    """Every rollup from the ledger: what `record` would have built one contribution at a time."""
    for table in (actor_days, window_totals, scope_members, weekly, weekly_actors, responses):
        conn.execute(table.delete())
    _rebuild_people_rows(conn, None)
    rebuild_org_members(conn, None)
    _rebuild_weekly(conn, None)
    _rebuild_responses(conn, None)
    rebuild_windows(conn, today)
    set_day(conn, WINDOWS_AS_OF, today)


def rebuild_people(conn: Connection, actors: Sequence[int], places: Sequence[int], as_of: date | None) -> None:
    """After contributions in `places` changed hands between `actors` (a forum or chat account linked to
    a GitHub account, or unlinked): those people's rows in every rollup, and the places' weekly counts
    and first responses, as `rebuild_all` would make them. The caller holds the windows' day (share)."""
    conn.execute(actor_days.delete().where(actor_days.c.actor_id.in_(actors)))
    conn.execute(weekly_actors.delete().where(weekly_actors.c.actor_id.in_(actors)))
    conn.execute(
        scope_members.delete().where(scope_members.c.actor_id.in_(actors), scope_members.c.scope.like("repo:%"))
    )
    _rebuild_people_rows(conn, actors)
    rebuild_org_members(conn, None, actors)
    conn.execute(weekly.delete().where(weekly.c.repo_id.in_(places)))
    conn.execute(responses.delete().where(responses.c.repo_id.in_(places)))
    _rebuild_weekly(conn, places)
    _rebuild_responses(conn, places)
    if as_of is not None:
        rebuild_windows(conn, as_of, actors=actors)


def _rebuild_people_rows(conn: Connection, actors: Sequence[int] | None) -> None:
    """Per person: `actor_days`, first and latest per repository (`scope_members`), `weekly_actors`."""
    c = contributions.c
    activity: sa.ColumnElement[bool] = c.kind.notin_(list(kinds.OUTCOME_KINDS))
    if actors is not None:
        activity = sa.and_(activity, c.actor_id.in_(actors))

    def kind_sum(names: Iterable[str], credited: bool = False) -> Any:
        condition: Any = c.kind.in_(list(names))
        if credited:
            condition = condition & (c.credited == sa.true())
        return sa.func.sum(sa.case((condition, 1), else_=0))

    rollup_kinds = {column: [k for k, cols in ROLLUP_COLUMNS.items() if column in cols] for column in ROLLUP_COUNTS}
    rollup_sums = [
        kind_sum(rollup_kinds[name])
        if rollup_kinds.get(name)
        else kind_sum([k for k, col in CREDIT_COLUMNS.items() if col == name], credited=True)
        for name in ROLLUP_COUNTS
    ]
    conn.execute(
        actor_days.insert().from_select(
            ["repo_id", "actor_id", "day", *ROLLUP_COUNTS],
            sa.select(c.repo_id, c.actor_id, c.day, *rollup_sums)
            .where(activity)
            .group_by(c.repo_id, c.actor_id, c.day),
        )
    )
    members = sa.select(
        sa.literal("repo:") + sa.cast(c.repo_id, sa.String),
        c.actor_id,
        sa.func.min(c.occurred_at),
        sa.func.max(c.occurred_at),
    )
    conn.execute(
        scope_members.insert().from_select(
            ["scope", "actor_id", "first_at", "last_at"], members.where(activity).group_by(c.repo_id, c.actor_id)
        )
    )
    conn.execute(
        weekly_actors.insert().from_select(
            ["repo_id", "week", "actor_id"],
            sa.select(c.repo_id, c.week, c.actor_id).where(activity).group_by(c.repo_id, c.week, c.actor_id),
        )
    )


def _rebuild_weekly(conn: Connection, places: Sequence[int] | None) -> None:
    """`weekly` from the ledger (of these repositories only, when given)."""
    c = contributions.c
    wa = weekly_actors.c
    columns = sorted(set(WEEKLY_COLUMNS.values()))
    sums = [
        sa.func.sum(sa.case((c.kind.in_([k for k, v in WEEKLY_COLUMNS.items() if v == col]), 1), else_=0))
        for col in columns
    ]
    conn.execute(
        weekly.insert().from_select(
            ["repo_id", "week", *columns, "positive", "negative"],
            sa.select(c.repo_id, c.week, *sums, sa.func.sum(c.positive), sa.func.sum(c.negative))
            .where(*([c.repo_id.in_(places)] if places is not None else []))
            .group_by(c.repo_id, c.week),
        )
    )
    active = sa.select(wa.repo_id, wa.week, sa.func.count().label("n")).group_by(wa.repo_id, wa.week)
    firsts = sa.select(
        sa.cast(sa.func.substr(scope_members.c.scope, 6), sa.BigInteger).label("repo_id"),
        scope_members.c.first_at,
    )
    if places is None:
        firsts = firsts.where(scope_members.c.scope.like("repo:%"))
    else:
        active = active.where(wa.repo_id.in_(places))
        firsts = firsts.where(scope_members.c.scope.in_([f"repo:{place}" for place in places]))
    for row in conn.execute(active).all():
        conn.execute(
            weekly.update().where(weekly.c.repo_id == row.repo_id, weekly.c.week == row.week).values(active=row.n)
        )
    new_per_week: dict[tuple[int, date], int] = {}
    for row in conn.execute(firsts):
        key = (int(row.repo_id), week_of(row.first_at.date()))
        new_per_week[key] = new_per_week.get(key, 0) + 1
    for (repo_id, week), n in new_per_week.items():
        conn.execute(weekly.update().where(weekly.c.repo_id == repo_id, weekly.c.week == week).values(new=n))


def _rebuild_responses(conn: Connection, places: Sequence[int] | None) -> None:
    """`responses` from the ledger (of these repositories only, when given)."""
    c = contributions.c
    where_places = [c.repo_id.in_(places)] if places is not None else []
    subjects = (
        sa.select(c.repo_id, c.number, c.subject_is_pull, c.subject_author_id, c.subject_opened_at)
        .where(c.subject_opened_at.is_not(None), c.number.is_not(None), *where_places)
        .order_by(c.repo_id, c.number, c.id)
    )
    rows: dict[tuple[int, int], dict[str, Any]] = {}
    for row in conn.execute(subjects):
        rows.setdefault(
            (row.repo_id, row.number),
            dict(
                repo_id=row.repo_id,
                number=row.number,
                is_pull=bool(row.subject_is_pull),
                author_id=row.subject_author_id,
                opened_at=row.subject_opened_at,
                opened_week=week_of(row.subject_opened_at.date()),
                first_response_at=None,
            ),
        )
    answers = sa.select(c.repo_id, c.number, c.actor_id, c.occurred_at).where(
        c.kind.in_(list(kinds.RESPONSE_KINDS)), c.number.is_not(None), *where_places
    )
    for answer in conn.execute(answers):
        subject = rows.get((answer.repo_id, answer.number))
        if subject is None or answer.actor_id == subject["author_id"] or answer.occurred_at < subject["opened_at"]:
            continue
        if subject["first_response_at"] is None or answer.occurred_at < subject["first_response_at"]:
            subject["first_response_at"] = answer.occurred_at
    if rows:
        conn.execute(responses.insert(), list(rows.values()))
