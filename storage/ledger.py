"""The contribution ledger, and the rollups that pages read instead of scanning it.

`record` writes each contribution once (its key is unique) and, in the same transaction, adds it to
every rollup: per person per day (`actor_days`), per leaderboard window (`window_totals`, for a
repository and for its owner's listed repositories together: installed, public), first and latest
contribution per person (`scope_members`), per repository per ISO week (`weekly`) and the first
human response to each issue and pull request (`responses`). Beside it: `storage.rollups` (the
columns each kind counts in, scopes, weeks), `storage.windows` (the windows, moved to today day by
day), `storage.ledger_rebuild` (every rollup recomputed from the ledger, to repair; a test holds it
equal to what `record` keeps incrementally) and `storage.repositories` (the repositories' rows and
their visibility over time).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from domain import contributions as kinds
from domain.contributions import Contribution, Repo
from storage import windows
from storage.db import (
    actor_days,
    contributions,
    contributors,
    ledger_state,
    repositories,
    responses,
    scope_members,
    scoring,
    utcnow,
    weekly,
    weekly_actors,
    window_totals,
)
from storage.ledger_rebuild import rebuild_all
from storage.repositories import upsert_repository
from storage.rollups import CREDIT_COLUMNS, ROLLUP_COLUMNS, WEEKLY_COLUMNS, org_scope, repo_scope, week_of
from storage.upsert import add_counts, insert_for, insert_ignore


class LedgerStore:
    def __init__(self, engine: Engine):
        self.engine = engine

    # --- writing

    def record(self, items: Iterable[Contribution | None], source: str = "webhook", cap: int | None = None) -> int:
        """Record the contributions not yet in the ledger; returns how many were new.

        `cap`: comments (issue, pull request and review comments together) a person earns points for
        per day in a repository; those beyond it are counted but not credited. None or 0: no cap.
        """
        new = 0
        for item in items:
            if item is None:
                continue
            with self.engine.begin() as conn:
                new += self._record_one(conn, item, source, cap or 0)
        return new

    def _record_one(self, conn: Connection, item: Contribution, source: str, cap: int) -> int:
        # Readers of the windows' day share it; `advance` moving them takes it exclusively.
        as_of = windows.windows_day(conn, lock="share")
        listed = upsert_repository(conn, item.repo)  # as stored: the payload's visibility may be older
        day = item.occurred_at.date()
        activity = item.kind not in kinds.OUTCOME_KINDS
        credited = activity and (item.kind not in CREDIT_COLUMNS or self._under_cap(conn, item, day, cap))
        subject = item.subject
        inserted = insert_ignore(
            conn,
            contributions,
            dict(
                key=item.key,
                kind=item.kind,
                repo_id=item.repo.id,
                actor_id=item.actor_id,
                actor_login=item.actor_login,
                number=item.number,
                url=item.url[:500],
                occurred_at=item.occurred_at,
                day=day,
                week=week_of(day),
                credited=credited,
                positive=item.positive,
                negative=item.negative,
                subject_is_pull=subject.is_pull if subject else None,
                subject_author_id=subject.author_id if subject else None,
                subject_opened_at=subject.opened_at if subject else None,
                source=source,
                recorded_at=utcnow(),
            ),
        )
        if not inserted:
            return 0
        week = week_of(day)
        weekly_counts = {"positive": item.positive, "negative": item.negative}
        if item.kind in WEEKLY_COLUMNS:
            weekly_counts[WEEKLY_COLUMNS[item.kind]] = 1
        if activity:
            self._upsert_contributor(conn, item)
            counts = dict.fromkeys(ROLLUP_COLUMNS.get(item.kind, ()), 1)
            if credited and item.kind in CREDIT_COLUMNS:
                counts[CREDIT_COLUMNS[item.kind]] = 1
            add_counts(conn, actor_days, {"repo_id": item.repo.id, "actor_id": item.actor_id, "day": day}, counts)
            scopes = [repo_scope(item.repo.id)] + ([org_scope(_owner(item))] if listed else [])
            for scope in scopes:
                first_moved = self._touch_member(conn, scope, item.actor_id, item.occurred_at)
                if scope == scopes[0] and first_moved is not False:
                    if isinstance(first_moved, datetime):  # an earlier first contribution arrived late
                        old_week = week_of(first_moved.date())
                        add_counts(conn, weekly, {"repo_id": item.repo.id, "week": old_week}, {"new": -1})
                    weekly_counts["new"] = 1
                if as_of is not None:
                    for span in windows.spans(as_of):
                        if (span.first is None or span.first <= day) and day <= span.last:
                            keys = {"scope": scope, "window": span.name, "actor_id": item.actor_id}
                            add_counts(conn, window_totals, keys, counts)
            if insert_ignore(conn, weekly_actors, {"repo_id": item.repo.id, "week": week, "actor_id": item.actor_id}):
                weekly_counts["active"] = 1
        add_counts(conn, weekly, {"repo_id": item.repo.id, "week": week}, weekly_counts)
        if subject is not None and subject.opened_at is not None:
            self._note_response(conn, item)
        return 1

    def _under_cap(self, conn: Connection, item: Contribution, day: date, cap: int) -> bool:
        if cap <= 0:
            return True
        row = conn.execute(
            sa.select(actor_days.c.comments_credited + actor_days.c.review_comments_credited).where(
                actor_days.c.repo_id == item.repo.id, actor_days.c.actor_id == item.actor_id, actor_days.c.day == day
            )
        ).first()
        return row is None or int(row[0]) < cap

    def observe_repository(self, repo: Repo, installs: bool = False) -> None:
        """Keep the repository's name and visibility (an event about it, or it was made public or private);
        `installs`: also its installation (the app was installed on it)."""
        with self.engine.begin() as conn:
            windows.windows_day(conn, lock="share")
            upsert_repository(conn, repo, installs)

    def _upsert_contributor(self, conn: Connection, item: Contribution) -> None:
        statement = insert_for(conn, contributors).values(id=item.actor_id, login=item.actor_login, updated_at=utcnow())
        conn.execute(
            statement.on_conflict_do_update(
                index_elements=["id"],
                set_={"login": statement.excluded.login, "updated_at": statement.excluded.updated_at},
            )
        )

    def _touch_member(self, conn: Connection, scope: str, actor_id: int, at: datetime) -> bool | datetime:
        """Note a contribution at `at`: True if the person is new to the scope, the previous first
        contribution's time if this one is earlier (it arrived late), else False."""
        if insert_ignore(conn, scope_members, {"scope": scope, "actor_id": actor_id, "first_at": at, "last_at": at}):
            return True
        key = (scope_members.c.scope == scope) & (scope_members.c.actor_id == actor_id)
        row = conn.execute(
            sa.select(scope_members.c.first_at, scope_members.c.last_at).where(key).with_for_update()
        ).one()
        if at < row.first_at:
            conn.execute(scope_members.update().where(key).values(first_at=at))
            return row.first_at  # type: ignore[no-any-return]
        if at > row.last_at:
            conn.execute(scope_members.update().where(key).values(last_at=at))
        return False

    def _note_response(self, conn: Connection, item: Contribution) -> None:
        subject = item.subject
        assert subject is not None and subject.opened_at is not None
        key = (responses.c.repo_id == item.repo.id) & (responses.c.number == subject.number)
        insert_ignore(
            conn,
            responses,
            dict(
                repo_id=item.repo.id,
                number=subject.number,
                is_pull=subject.is_pull,
                author_id=subject.author_id,
                opened_at=subject.opened_at,
                opened_week=week_of(subject.opened_at.date()),
            ),
        )
        if item.kind in kinds.RESPONSE_KINDS:
            # Compared with the stored subject, so that the order events arrive in does not matter.
            conn.execute(
                responses.update()
                .where(key, responses.c.opened_at <= item.occurred_at)
                .where(sa.or_(responses.c.author_id.is_(None), responses.c.author_id != item.actor_id))
                .where(
                    sa.or_(responses.c.first_response_at.is_(None), item.occurred_at < responses.c.first_response_at)
                )
                .values(first_response_at=item.occurred_at)
            )

    def set_opted_out(self, actor_id: int, login: str, opted_out: bool) -> bool:
        """`/leaderboard opt-out` and `opt-in`; True when it changed anything."""
        with self.engine.begin() as conn:
            statement = insert_for(conn, contributors).values(
                id=actor_id, login=login, opted_out=opted_out, updated_at=utcnow()
            )
            before = conn.execute(sa.select(contributors.c.opted_out).where(contributors.c.id == actor_id)).first()
            conn.execute(
                statement.on_conflict_do_update(
                    index_elements=["id"], set_={"opted_out": opted_out, "login": login, "updated_at": utcnow()}
                )
            )
        return (before is None and opted_out) or (before is not None and bool(before.opted_out) != opted_out)

    def set_scoring(self, scopes: Sequence[str], settings: Mapping[str, Any]) -> None:
        """Keep the `leaderboard` settings in use for these scopes (from the latest configuration read)."""
        text = json.dumps(settings, sort_keys=True)
        with self.engine.begin() as conn:
            for scope in scopes:
                statement = insert_for(conn, scoring).values(scope=scope, settings=text, updated_at=utcnow())
                conn.execute(
                    statement.on_conflict_do_update(
                        index_elements=["scope"],
                        set_={"settings": text, "updated_at": utcnow()},
                        where=scoring.c.settings != text,
                    )
                )

    def scoring_for(self, scope: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            return scoring_in(conn, scope)

    def mark_complete(self, repo_id: int, since: datetime | None) -> None:
        """The ledger now holds the repository's history since `since` (None: since its creation)."""
        with self.engine.begin() as conn:
            conn.execute(
                repositories.update()
                .where(repositories.c.id == repo_id)
                .values(ledger_complete_since=since or datetime(1970, 1, 1))
            )

    def covers(self, repo_id: int, since: datetime) -> bool:
        """True when the ledger holds the repository's whole history from `since` on."""
        with self.engine.connect() as conn:
            complete = conn.execute(
                sa.select(repositories.c.ledger_complete_since).where(repositories.c.id == repo_id)
            ).scalar()
        return complete is not None and complete <= since

    def count(self, repo_id: int, login: str, kinds_: Sequence[str], other_than: int, earlier: bool = False) -> int:
        """How many contributions of these kinds the person made in the repository about items other
        than number `other_than` (only those numbered before it, when `earlier`)."""
        c = contributions.c
        query = (
            sa.select(sa.func.count())
            .where(c.repo_id == repo_id, sa.func.lower(c.actor_login) == login.lower(), c.kind.in_(list(kinds_)))
            .where(c.number < other_than if earlier else c.number != other_than)
        )
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def active_in(self, repo_id: int, actor_id: int, other_than: int, before: datetime) -> bool:
        """Whether the person has any recorded contribution in the repository before `before`, other
        than about item number `other_than` (a comment, a review, another issue or pull request)."""
        c = contributions.c
        query = (
            sa.select(c.id)
            .where(c.repo_id == repo_id, c.actor_id == actor_id)
            .where(sa.or_(c.number.is_(None), c.number != other_than), c.occurred_at < before)
            .limit(1)
        )
        with self.engine.connect() as conn:
            return conn.execute(query).first() is not None

    def get_state(self, name: str) -> str | None:
        with self.engine.connect() as conn:
            value = conn.execute(sa.select(ledger_state.c.value).where(ledger_state.c.name == name)).scalar()
        return str(value) if value is not None else None

    def set_state(self, name: str, value: str | None) -> None:
        with self.engine.begin() as conn:
            conn.execute(ledger_state.delete().where(ledger_state.c.name == name))
            if value is not None:
                conn.execute(ledger_state.insert().values(name=name, value=value))

    # --- windows

    def windows_as_of(self) -> date | None:
        with self.engine.connect() as conn:
            return windows.windows_day(conn)

    def advance(self, today: date) -> bool:
        """Move every window to `today`; True when anything moved. Cheap when already there."""
        if self.windows_as_of() == today:
            return False
        with self.engine.begin() as conn:
            return windows.advance(conn, today)

    def rebuild(self, today: date) -> None:
        """Recompute every rollup from the ledger."""
        with self.engine.begin() as conn:
            windows.windows_day(conn, lock="update")
            rebuild_all(conn, today)


def scoring_in(conn: Connection, scope: str) -> dict[str, Any] | None:
    """The `leaderboard` settings last seen for a scope, or None (the defaults apply)."""
    text = conn.execute(sa.select(scoring.c.settings).where(scoring.c.scope == scope)).scalar()
    return json.loads(text) if text else None


def _owner(item: Contribution) -> str:
    return item.repo.full_name.split("/", 1)[0]
