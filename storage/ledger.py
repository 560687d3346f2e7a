"""The contribution ledger, and the rollups that pages read instead of scanning it.

`record` writes each contribution once (its key is unique) and, in the same transaction, adds it to
every rollup: per person per day (`actor_days`), per leaderboard window (`window_totals`, for a
repository and for its owner's listed repositories together: installed, public), first and latest
contribution per person (`scope_members`), per repository per ISO week (`weekly`) and the first
human response to each issue and pull request (`responses`). Windows are kept as of a UTC day;
`advance` moves them to today by adding the days that enter each window and subtracting those that
leave it. `rebuild` recomputes every rollup from the ledger (to repair; `rebuild_org` redoes one
owner's when a repository joins or leaves the pages), and a test holds it equal to what `record`
keeps incrementally.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from domain import contributions as kinds
from domain.contributions import Contribution, Repo
from storage.db import (
    ROLLUP_COUNTS,
    WINDOWS_AS_OF,
    actor_days,
    contributions,
    contributors,
    ledger_state,
    listed_on_pages,
    repositories,
    responses,
    scope_members,
    scoring,
    utcnow,
    weekly,
    weekly_actors,
    window_totals,
)

# Leaderboard windows in days; each also has a "-prev" twin (the window before it) for rank changes.
WINDOWS: dict[str, int | None] = {"7d": 7, "30d": 30, "90d": 90, "365d": 365, "all": None}
# Past this many days behind, moving the windows day by day costs more than rebuilding them.
REBUILD_AFTER_DAYS = 60

ROLLUP_COLUMNS: dict[str, tuple[str, ...]] = {
    kinds.ISSUE_OPENED: ("issues_opened",),
    kinds.PR_OPENED: ("prs_opened",),
    kinds.PR_MERGED: ("prs_merged",),
    kinds.REVIEW_APPROVED: ("reviews",),
    kinds.REVIEW_CHANGES_REQUESTED: ("reviews",),
    kinds.REVIEW_COMMENTED: ("reviews",),
    kinds.COMMENT: ("comments",),
    kinds.REVIEW_COMMENT: ("review_comments",),
    kinds.GFI_SOLVED: ("gfi_solved",),
}
CREDIT_COLUMNS = {kinds.COMMENT: "comments_credited", kinds.REVIEW_COMMENT: "review_comments_credited"}
WEEKLY_COLUMNS: dict[str, str] = {
    kinds.ISSUE_OPENED: "issues_opened",
    kinds.ISSUE_CLOSED: "issues_closed",
    kinds.PR_OPENED: "prs_opened",
    kinds.PR_MERGED: "prs_merged",
    kinds.PR_CLOSED: "prs_closed",
    kinds.REVIEW_APPROVED: "reviews",
    kinds.REVIEW_CHANGES_REQUESTED: "reviews",
    kinds.REVIEW_COMMENTED: "reviews",
    kinds.COMMENT: "comments",
    kinds.REVIEW_COMMENT: "review_comments",
    kinds.GFI_SOLVED: "gfi_solved",
}


def repo_scope(repo_id: int) -> str:
    return f"repo:{repo_id}"


def org_scope(owner: str) -> str:
    """All listed repositories (`listed_on_pages`: installed, public) of one owner together."""
    return f"org:{owner.lower()}"


def week_of(day: date) -> date:
    """Monday of the ISO week (UTC)."""
    return day - timedelta(days=day.weekday())


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


def _insert(conn: Connection, table: sa.Table) -> Any:
    return (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(table)


def _add_counts(conn: Connection, table: sa.Table, keys: Mapping[str, Any], counts: Mapping[str, int]) -> None:
    """INSERT the row or add `counts` to it (atomic on both databases)."""
    statement = _insert(conn, table).values(**keys, **counts)
    statement = statement.on_conflict_do_update(
        index_elements=list(keys), set_={name: table.c[name] + statement.excluded[name] for name in counts}
    )
    conn.execute(statement)


def _insert_ignore(conn: Connection, table: sa.Table, values: Mapping[str, Any]) -> bool:
    """INSERT unless the key exists; True when a row was inserted."""
    # RETURNING, not rowcount: psycopg reports no row count for ON CONFLICT DO NOTHING.
    first_key = next(iter(table.primary_key.columns))
    statement = _insert(conn, table).values(**values).on_conflict_do_nothing().returning(first_key)
    return conn.execute(statement).first() is not None


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
        as_of = self._windows_as_of(conn, lock="share")
        listed = self._upsert_repository(conn, item.repo)  # as stored: the payload's visibility may be older
        day = item.occurred_at.date()
        activity = item.kind not in kinds.OUTCOME_KINDS
        credited = activity and (item.kind not in CREDIT_COLUMNS or self._under_cap(conn, item, day, cap))
        subject = item.subject
        inserted = _insert_ignore(
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
            _add_counts(conn, actor_days, {"repo_id": item.repo.id, "actor_id": item.actor_id, "day": day}, counts)
            scopes = [repo_scope(item.repo.id)] + ([org_scope(_owner(item))] if listed else [])
            for scope in scopes:
                first_moved = self._touch_member(conn, scope, item.actor_id, item.occurred_at)
                if scope == scopes[0] and first_moved is not False:
                    if isinstance(first_moved, datetime):  # an earlier first contribution arrived late
                        old_week = week_of(first_moved.date())
                        _add_counts(conn, weekly, {"repo_id": item.repo.id, "week": old_week}, {"new": -1})
                    weekly_counts["new"] = 1
                if as_of is not None:
                    for span in spans(as_of):
                        if (span.first is None or span.first <= day) and day <= span.last:
                            keys = {"scope": scope, "window": span.name, "actor_id": item.actor_id}
                            _add_counts(conn, window_totals, keys, counts)
            if _insert_ignore(conn, weekly_actors, {"repo_id": item.repo.id, "week": week, "actor_id": item.actor_id}):
                weekly_counts["active"] = 1
        _add_counts(conn, weekly, {"repo_id": item.repo.id, "week": week}, weekly_counts)
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

    def _upsert_repository(self, conn: Connection, repo: Repo, installs: bool = False) -> bool:
        """Keep the repository's row; returns whether the pages list it now, as stored. Its installation is
        set when the row is new, or when `installs` (installation events): a late delivery for a
        repository since removed must not add it back. Its visibility only moves forward in time
        (`visibility`)."""
        owner = repo.full_name.split("/", 1)[0]
        r = repositories.c
        listed = listed_on_pages().label("listed")
        before = conn.execute(
            sa.select(r.private, r.visibility_at, r.full_name, r.installation_id, listed).where(r.id == repo.id)
        ).first()
        if before is not None:
            kept = visibility(bool(before.private), before.visibility_at, repo.private, repo.visibility_at)
            unchanged = kept == (bool(before.private), before.visibility_at) and before.full_name == repo.full_name
            if unchanged and (not installs or before.installation_id == repo.installation_id):
                return bool(before.listed)  # nothing new: no write, no lock on a row every event touches
        values: dict[str, Any] = dict(
            full_name=repo.full_name, owner=owner, html_url=repo.html_url, updated_at=utcnow()
        )
        statement = _insert(conn, repositories).values(
            id=repo.id,
            installation_id=repo.installation_id,
            private=repo.private,
            visibility_at=repo.visibility_at,
            **values,
        )
        # Decided again inside the write, against the row as it is then: another worker may have moved it.
        private, visibility_at = _visibility_update(repo)
        updates = {**values, "private": private, "visibility_at": visibility_at}
        if installs:
            updates["installation_id"] = repo.installation_id
        conn.execute(statement.on_conflict_do_update(index_elements=["id"], set_=updates))
        # Read back rather than RETURNING: SQLite's RETURNING after an upsert's update misreports it.
        now_listed = bool(conn.execute(sa.select(listed).where(r.id == repo.id)).scalar_one())
        if before is not None and bool(before.listed) != now_listed:
            # Made public or private, or installed: the owner-wide scope gains or loses it at once.
            rebuild_org(conn, owner, _windows_day(conn))
        return now_listed

    def observe_repository(self, repo: Repo, installs: bool = False) -> None:
        """Keep the repository's name and visibility (an event about it, or it was made public or private);
        `installs`: also its installation (the app was installed on it)."""
        with self.engine.begin() as conn:
            self._windows_as_of(conn, lock="share")
            self._upsert_repository(conn, repo, installs)

    def _upsert_contributor(self, conn: Connection, item: Contribution) -> None:
        statement = _insert(conn, contributors).values(id=item.actor_id, login=item.actor_login, updated_at=utcnow())
        conn.execute(
            statement.on_conflict_do_update(
                index_elements=["id"],
                set_={"login": statement.excluded.login, "updated_at": statement.excluded.updated_at},
            )
        )

    def _touch_member(self, conn: Connection, scope: str, actor_id: int, at: datetime) -> bool | datetime:
        """Note a contribution at `at`: True if the person is new to the scope, the previous first
        contribution's time if this one is earlier (it arrived late), else False."""
        if _insert_ignore(conn, scope_members, {"scope": scope, "actor_id": actor_id, "first_at": at, "last_at": at}):
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
        _insert_ignore(
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
            statement = _insert(conn, contributors).values(
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
                statement = _insert(conn, scoring).values(scope=scope, settings=text, updated_at=utcnow())
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

    def _windows_as_of(self, conn: Connection, lock: str | None = None) -> date | None:
        return _windows_day(conn, lock)

    def windows_as_of(self) -> date | None:
        with self.engine.connect() as conn:
            return self._windows_as_of(conn)

    def advance(self, today: date) -> bool:
        """Move every window to `today`; True when anything moved. Cheap when already there."""
        if self.windows_as_of() == today:
            return False
        with self.engine.begin() as conn:
            as_of = self._windows_as_of(conn, lock="update")
            if as_of == today:
                return False
            if as_of is None or as_of > today or (today - as_of).days > REBUILD_AFTER_DAYS:
                rebuild_windows(conn, today)
            else:
                _shift_windows(conn, as_of, today)
            _set_day(conn, WINDOWS_AS_OF, today)
        return True

    def rebuild(self, today: date) -> None:
        """Recompute every rollup from the ledger."""
        with self.engine.begin() as conn:
            self._windows_as_of(conn, lock="update")
            rebuild_all(conn, today)


def scoring_in(conn: Connection, scope: str) -> dict[str, Any] | None:
    """The `leaderboard` settings last seen for a scope, or None (the defaults apply)."""
    text = conn.execute(sa.select(scoring.c.settings).where(scoring.c.scope == scope)).scalar()
    return json.loads(text) if text else None


def visibility(
    private: bool, known_at: datetime | None, claim: bool, claim_at: datetime | None
) -> tuple[bool, datetime | None]:
    """(private, known as of) after a claim about a repository's visibility, GitHub's time `claim_at`.

    GitHub delivers events in any order and a redelivery carries its old payload, so a claim older
    than the one held changes nothing, and one without a time (installation events list repositories
    without one) can only make a repository private. When in doubt (the same time, no time) private wins.
    """
    if claim_at is None:
        return private or claim, known_at
    if known_at is None or claim_at > known_at:
        return claim, claim_at
    if claim_at == known_at:
        return private or claim, known_at
    return private, known_at  # older than what is held


def _visibility_update(repo: Repo) -> tuple[Any, Any]:
    """`visibility` as SQL over the stored row, for an upsert: (private, visibility_at) expressions."""
    r = repositories.c
    if repo.visibility_at is None:
        return (sa.true() if repo.private else r.private), r.visibility_at
    newer = sa.or_(r.visibility_at.is_(None), r.visibility_at < repo.visibility_at)
    same = r.visibility_at == repo.visibility_at
    claim = sa.true() if repo.private else sa.false()
    private = sa.case((newer, claim), (same, sa.or_(r.private, claim)), else_=r.private)
    return private, sa.case((newer, sa.literal(repo.visibility_at, sa.DateTime)), else_=r.visibility_at)


def _windows_day(conn: Connection, lock: str | None = None) -> date | None:
    query = sa.select(ledger_state.c.day).where(ledger_state.c.name == WINDOWS_AS_OF)
    if lock is not None and conn.dialect.name == "postgresql":
        query = query.with_for_update(read=lock == "share")
    value = conn.execute(query).scalar()
    return value if isinstance(value, date) else None


def lock_windows(conn: Connection) -> None:
    """Share the windows' day, as recording does, before changing which repositories the pages list
    (then `relist`): moving the windows waits meanwhile."""
    _windows_day(conn, lock="share")


def relist(conn: Connection, owners: Iterable[str]) -> None:
    """Repositories of these owners joined or left the pages (installed, removed, suspended): their
    owner-wide scopes count the listed repositories again."""
    as_of = _windows_day(conn)
    for owner in sorted({owner.lower() for owner in owners}):
        rebuild_org(conn, owner, as_of)


def _owner(item: Contribution) -> str:
    return item.repo.full_name.split("/", 1)[0]


def _set_day(conn: Connection, name: str, day: date) -> None:
    """Update in place: the row may be locked by this transaction, and deleting it would free the lock."""
    statement = _insert(conn, ledger_state).values(name=name, day=day)
    conn.execute(statement.on_conflict_do_update(index_elements=["name"], set_={"day": day}))


# --- set-based maintenance (SQL over the rollups; same results as `record`, a test checks it)


def _public_repo_scope() -> tuple[Any, Any]:
    """(scope expression, join) for summing `actor_days` into owner-wide scopes of listed repositories."""
    scope = sa.literal("org:") + sa.func.lower(repositories.c.owner)
    join = actor_days.join(repositories, repositories.c.id == actor_days.c.repo_id)
    return scope, join


def _add_days(
    conn: Connection, window: str, first: date | None, last: date, sign: int, owner: str | None = None
) -> None:
    """Add (sign 1) or subtract (-1) the `actor_days` of [first, last] to a window, for every scope."""
    sums = [sa.func.sum(actor_days.c[name]) * sign for name in ROLLUP_COUNTS]
    day_filter = [actor_days.c.day <= last] + ([actor_days.c.day >= first] if first is not None else [])
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
    org_query = org_query.where(*day_filter, listed_on_pages())
    if owner is not None:
        org_query = org_query.where(sa.func.lower(repositories.c.owner) == owner.lower())
    selects.append(org_query.group_by(sa.func.lower(repositories.c.owner), actor_days.c.actor_id))
    columns = ["scope", "window", "actor_id", *ROLLUP_COUNTS]
    for select in selects:
        statement = _insert(conn, window_totals).from_select(columns, select)
        statement = statement.on_conflict_do_update(
            index_elements=["scope", "window", "actor_id"],
            set_={name: window_totals.c[name] + statement.excluded[name] for name in ROLLUP_COUNTS},
        )
        conn.execute(statement)


def _drop_empty(conn: Connection) -> None:
    conn.execute(window_totals.delete().where(sa.and_(*(window_totals.c[name] == 0 for name in ROLLUP_COUNTS))))


def _shift_windows(conn: Connection, as_of: date, today: date) -> None:
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


def rebuild_windows(conn: Connection, today: date, owner: str | None = None) -> None:
    """Recompute the windows as of `today` (only one owner's org scope, when given)."""
    if owner is None:
        conn.execute(window_totals.delete())
    else:
        conn.execute(window_totals.delete().where(window_totals.c.scope == org_scope(owner)))
    for span in spans(today):
        _add_days(conn, span.name, span.first, span.last, 1, owner)
    _drop_empty(conn)


def _rebuild_org_members(conn: Connection, owner: str | None) -> None:
    """Owner-wide first/latest contributions: the earliest and latest over the listed repositories."""
    repo_id = sa.cast(sa.func.substr(scope_members.c.scope, 6), sa.BigInteger)
    join = scope_members.join(repositories, repositories.c.id == repo_id)
    scope = sa.literal("org:") + sa.func.lower(repositories.c.owner)
    query = (
        sa.select(
            scope, scope_members.c.actor_id, sa.func.min(scope_members.c.first_at), sa.func.max(scope_members.c.last_at)
        )
        .select_from(join)
        .where(scope_members.c.scope.like("repo:%"), listed_on_pages())
    )
    if owner is not None:
        conn.execute(scope_members.delete().where(scope_members.c.scope == org_scope(owner)))
        query = query.where(sa.func.lower(repositories.c.owner) == owner.lower())
    else:
        conn.execute(scope_members.delete().where(scope_members.c.scope.like("org:%")))
    query = query.group_by(sa.func.lower(repositories.c.owner), scope_members.c.actor_id)
    conn.execute(scope_members.insert().from_select(["scope", "actor_id", "first_at", "last_at"], query))


def rebuild_org(conn: Connection, owner: str, as_of: date | None) -> None:
    """After a repository of `owner` joined or left the pages (made public or private, installed, removed)."""
    _rebuild_org_members(conn, owner)
    if as_of is not None:
        rebuild_windows(conn, as_of, owner)


def rebuild_all(conn: Connection, today: date) -> None:
    """Every rollup from the ledger: what `record` would have built one contribution at a time."""
    for table in (actor_days, window_totals, scope_members, weekly, weekly_actors, responses):
        conn.execute(table.delete())
    c = contributions.c
    activity = c.kind.notin_(list(kinds.OUTCOME_KINDS))

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
    _rebuild_org_members(conn, None)
    conn.execute(
        weekly_actors.insert().from_select(
            ["repo_id", "week", "actor_id"],
            sa.select(c.repo_id, c.week, c.actor_id).where(activity).group_by(c.repo_id, c.week, c.actor_id),
        )
    )
    _rebuild_weekly(conn)
    _rebuild_responses(conn)
    rebuild_windows(conn, today)
    _set_day(conn, WINDOWS_AS_OF, today)


def _rebuild_weekly(conn: Connection) -> None:
    c = contributions.c
    columns = sorted(set(WEEKLY_COLUMNS.values()))
    sums = [
        sa.func.sum(sa.case((c.kind.in_([k for k, v in WEEKLY_COLUMNS.items() if v == col]), 1), else_=0))
        for col in columns
    ]
    conn.execute(
        weekly.insert().from_select(
            ["repo_id", "week", *columns, "positive", "negative"],
            sa.select(c.repo_id, c.week, *sums, sa.func.sum(c.positive), sa.func.sum(c.negative)).group_by(
                c.repo_id, c.week
            ),
        )
    )
    active = sa.select(weekly_actors.c.repo_id, weekly_actors.c.week, sa.func.count().label("n")).group_by(
        weekly_actors.c.repo_id, weekly_actors.c.week
    )
    firsts = sa.select(
        sa.cast(sa.func.substr(scope_members.c.scope, 6), sa.BigInteger).label("repo_id"),
        scope_members.c.first_at,
    ).where(scope_members.c.scope.like("repo:%"))
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


def _rebuild_responses(conn: Connection) -> None:
    c = contributions.c
    subjects = (
        sa.select(c.repo_id, c.number, c.subject_is_pull, c.subject_author_id, c.subject_opened_at)
        .where(c.subject_opened_at.is_not(None), c.number.is_not(None))
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
        c.kind.in_(list(kinds.RESPONSE_KINDS)), c.number.is_not(None)
    )
    for answer in conn.execute(answers):
        subject = rows.get((answer.repo_id, answer.number))
        if subject is None or answer.actor_id == subject["author_id"] or answer.occurred_at < subject["opened_at"]:
            continue
        if subject["first_response_at"] is None or answer.occurred_at < subject["first_response_at"]:
            subject["first_response_at"] = answer.occurred_at
    if rows:
        conn.execute(responses.insert(), list(rows.values()))
