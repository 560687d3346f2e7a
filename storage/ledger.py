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
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from domain import contributions as kinds
from domain.contributions import Contribution, Repo
from storage import db, identities, windows
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
from storage.prepared import Prepared, Rows
from storage.repositories import upsert_repository
from storage.rollups import CREDIT_COLUMNS, ROLLUP_COLUMNS, WEEKLY_COLUMNS, org_scope, repo_scope, week_of
from storage.upsert import add_counts, dialect_insert, insert_for, insert_ignore, replace_rows

_c = contributions.c
_ad = actor_days.c
_sm = scope_members.c
_r = responses.c
# What the daily comment cap counts: comments and review comments in a repository, chat messages and
# replies in a chat (each a place of its own, so they never add up with comments).
_COMMENTS_CREDITED = Prepared(
    sa.select(sum((_ad[c] for c in sorted(set(CREDIT_COLUMNS.values()))), sa.literal(0))).where(
        _ad.repo_id == sa.bindparam("repo_id"), _ad.actor_id == sa.bindparam("actor_id"), _ad.day == sa.bindparam("day")
    )
)
# The person's rows in the scopes (the repository's, and its owner's when listed), locked: `_touch_members`
# decides their first and latest times. Two parameters rather than an IN list, which is rendered per call.
_MEMBERS = Prepared(
    sa.select(_sm.scope, _sm.first_at, _sm.last_at)
    .where(_sm.actor_id == sa.bindparam("actor_id"))
    .where(sa.or_(_sm.scope == sa.bindparam("scope"), _sm.scope == sa.bindparam("other_scope")))
    .order_by(_sm.scope)
    .with_for_update()
)

_COMPLETE_SINCE = Prepared(
    sa.select(repositories.c.ledger_complete_since).where(repositories.c.id == sa.bindparam("repo_id"))
)


@cache
def _count(kinds_: tuple[str, ...], earlier: bool, capped: bool = False) -> Prepared:
    """A person's contributions of some kinds in a repository, by login (the index on lower(actor_login) serves
    it), about items numbered before `number` or other than it. The kinds as literals, not an IN list
    (rendered per call): each caller asks for its own few kinds. `capped`: at most `at_most` of them, so the
    index scan stops there instead of reading a prolific person's whole history."""
    matching = sa.and_(
        _c.repo_id == sa.bindparam("repo_id"),
        sa.func.lower(_c.actor_login) == sa.bindparam("login"),
        sa.or_(*(_c.kind == kind for kind in kinds_)),
        _c.number < sa.bindparam("number") if earlier else _c.number != sa.bindparam("number"),
    )
    if not capped:
        return Prepared(sa.select(sa.func.count()).where(matching))
    first = sa.select(sa.literal(1)).where(matching).limit(sa.bindparam("at_most")).subquery()
    return Prepared(sa.select(sa.func.count()).select_from(first))


_ACTIVE_IN = Prepared(
    sa.select(_c.id)
    .where(_c.repo_id == sa.bindparam("repo_id"), _c.actor_id == sa.bindparam("actor_id"))
    .where(sa.or_(_c.number.is_(None), _c.number != sa.bindparam("number")))
    .where(db.unindexed(_c.occurred_at < sa.bindparam("before")))
    .limit(1)
)


@dataclass(frozen=True)
class _Upserts:
    """The dialect's upserts the ledger runs per contribution (see `storage.upsert` on why built once)."""

    contributor: Prepared
    response: Prepared
    scoring: Any


@cache
def _upserts(dialect: str) -> _Upserts:
    contributor = dialect_insert(dialect, contributors)
    contributor = contributor.on_conflict_do_update(
        index_elements=["id"], set_={"login": contributor.excluded.login, "updated_at": contributor.excluded.updated_at}
    )
    # A response kind: the subject's row, or its first response moved earlier when this one is, by
    # someone other than its author and not before it opened. Compared with the stored subject, so
    # that the order events arrive in does not matter.
    at, actor = sa.bindparam("response_at", type_=sa.DateTime), sa.bindparam("responder", type_=sa.BigInteger)
    response = dialect_insert(dialect, responses).on_conflict_do_update(
        index_elements=["repo_id", "number"],
        set_={"first_response_at": at},
        where=sa.and_(
            _r.opened_at <= at,
            sa.or_(_r.author_id.is_(None), _r.author_id != actor),
            sa.or_(_r.first_response_at.is_(None), at < _r.first_response_at),
        ),
    )
    settings = dialect_insert(dialect, scoring)
    settings = settings.on_conflict_do_update(
        index_elements=["scope"],
        set_={"settings": settings.excluded.settings, "updated_at": settings.excluded.updated_at},
        where=scoring.c.settings != settings.excluded.settings,
    )
    return _Upserts(Prepared(contributor), Prepared(response), settings)


# How long this process trusts that a scope's scoring settings, once written or confirmed, are still the
# stored ones. Another process may store other settings meanwhile (it read a newer or older copy of the
# config file); the next delivery after this writes ours again, as before, when they differ.
SCORING_RECHECK_SECONDS = 60.0
# `ledger_complete_since` of a repository whose whole history the ledger holds (a backfill without --since).
WHOLE_HISTORY = datetime(1970, 1, 1)


class LedgerStore:
    def __init__(self, engine: Engine, scoring_recheck_seconds: float = SCORING_RECHECK_SECONDS):
        self.engine = engine
        self.scoring_recheck_seconds = scoring_recheck_seconds
        # scope -> (the settings' JSON this process last stored there, monotonic time it did)
        self._scoring_stored: dict[str, tuple[str, float]] = {}
        self._scoring_lock = threading.Lock()

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
            # One transaction each, as the rows a contribution locks (its repository's, its person's,
            # its week's) differ from the next one's: two workers taking several in different orders
            # could deadlock on PostgreSQL.
            with db.begin(self.engine) as conn:
                new += self._record_one(conn, item, source, cap or 0)
        return new

    def record_in(self, conn: Connection, item: Contribution, source: str = "webhook", cap: int = 0) -> int:
        """`record` of one contribution inside the caller's transaction: `storage.ledger_removal` checks
        it against what the forum deleted first, under the same lock."""
        return self._record_one(conn, item, source, cap)

    def _record_one(self, conn: Connection, item: Contribution, source: str, cap: int) -> int:
        # Readers of the windows' day share it; `advance` moving them takes it exclusively.
        as_of = windows.windows_day(conn, lock="share")
        item = identities.resolve(conn, item)  # a linked forum or chat account's, under its GitHub id
        listed = upsert_repository(conn, item.repo)  # as stored: the payload's visibility may be older
        day = item.occurred_at.date()
        week = week_of(day)
        activity = item.kind not in kinds.OUTCOME_KINDS
        credited = activity and (item.kind not in CREDIT_COLUMNS or _under_cap(conn, item, day, cap))
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
                week=week,
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
        this_week: dict[str, Any] = {"repo_id": item.repo.id, "week": week}
        this_week |= {"positive": item.positive, "negative": item.negative}
        if item.kind in WEEKLY_COLUMNS:
            this_week[WEEKLY_COLUMNS[item.kind]] = 1
        weeks = [this_week]
        if activity:
            upserts = _upserts(conn.dialect.name)
            upserts.contributor.execute(conn, {"id": item.actor_id, "login": item.actor_login, "updated_at": utcnow()})
            counts = dict.fromkeys(ROLLUP_COLUMNS.get(item.kind, ()), 1)
            if credited and item.kind in CREDIT_COLUMNS:
                counts[CREDIT_COLUMNS[item.kind]] = 1
            add_counts(conn, actor_days, [{"repo_id": item.repo.id, "actor_id": item.actor_id, "day": day, **counts}])
            in_org = listed or kinds.is_community_place(item.repo.id)
            scopes = [repo_scope(item.repo.id)] + ([org_scope(_owner(item))] if in_org else [])
            first_moved = _touch_members(conn, scopes, item.actor_id, item.occurred_at)
            if first_moved is not False:
                if isinstance(first_moved, datetime):  # an earlier first contribution arrived late
                    weeks.append({"repo_id": item.repo.id, "week": week_of(first_moved.date()), "new": -1})
                this_week["new"] = 1
            spans = windows.spans(as_of) if as_of is not None else []
            in_windows = [s.name for s in spans if (s.first is None or s.first <= day) and day <= s.last]
            window_rows = [
                {"scope": scope, "window": window, "actor_id": item.actor_id, **counts}
                for scope in scopes
                for window in in_windows
            ]
            add_counts(conn, window_totals, window_rows)
            if insert_ignore(conn, weekly_actors, {"repo_id": item.repo.id, "week": week, "actor_id": item.actor_id}):
                this_week["active"] = 1
        add_counts(conn, weekly, weeks)
        if subject is not None and subject.opened_at is not None:
            _note_response(conn, item)
        return 1

    def observe_repository(self, repo: Repo, installs: bool = False) -> None:
        """Keep the repository's name and visibility (an event about it, or it was made public or private);
        `installs`: also its installation (the app was installed on it)."""
        with db.begin(self.engine) as conn:
            windows.windows_day(conn, lock="share")
            upsert_repository(conn, repo, installs)

    def set_opted_out(self, actor_id: int, login: str, opted_out: bool) -> bool:
        """`/leaderboard opt-out` and `opt-in`; True when it changed anything."""
        with db.begin(self.engine) as conn:
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
        """Keep the `leaderboard` settings in use for these scopes (from the latest configuration read).

        Called for every contribution recorded, with the same settings nearly always: a scope this
        process stored the same settings in less than `scoring_recheck_seconds` ago is not written again."""
        text = json.dumps(settings, sort_keys=True)
        now = time.monotonic()
        with self._scoring_lock:
            due = [scope for scope in scopes if not self._stored_recently(scope, text, now)]
        if not due:
            return
        rows = [{"scope": scope, "settings": text, "updated_at": utcnow()} for scope in due]
        with db.begin(self.engine) as conn:
            conn.execute(_upserts(conn.dialect.name).scoring, rows)
        with self._scoring_lock:
            self._scoring_stored.update((scope, (text, now)) for scope in due)

    def _stored_recently(self, scope: str, text: str, now: float) -> bool:
        stored = self._scoring_stored.get(scope)
        return stored is not None and stored[0] == text and now - stored[1] < self.scoring_recheck_seconds

    def scoring_for(self, scope: str) -> dict[str, Any] | None:
        with db.connect(self.engine) as conn:
            return scoring_in(conn, scope)

    def mark_complete(self, repo_id: int, since: datetime | None) -> None:
        """The ledger now holds the repository's history since `since` (None: since its creation)."""
        with db.begin(self.engine) as conn:
            conn.execute(
                repositories.update()
                .where(repositories.c.id == repo_id)
                .values(ledger_complete_since=since or WHOLE_HISTORY)
            )

    def unimported_repositories(self) -> list[Repo]:
        """Installed, unsuspended repositories whose whole history the ledger does not hold yet, oldest row first."""
        r = repositories.c
        query = (
            sa.select(r.id, r.full_name, r.private, r.html_url, r.installation_id)
            .where(r.installation_id.is_not(None), r.installation_suspended_at.is_(None))
            .where(sa.or_(r.ledger_complete_since.is_(None), r.ledger_complete_since > WHOLE_HISTORY))
            .where(r.id > 0)  # the forum's and chats' places (negative ids) have no GitHub history
            .order_by(r.id)
        )
        with db.connect(self.engine) as conn:
            return [
                Repo(int(row.id), str(row.full_name), bool(row.private), str(row.html_url), int(row.installation_id))
                for row in conn.execute(query)
            ]

    def covers(self, repo_id: int, since: datetime) -> bool:
        """True when the ledger holds the repository's whole history from `since` on."""
        with db.connect(self.engine) as conn:
            complete = _COMPLETE_SINCE.execute(conn, {"repo_id": repo_id}).scalar()
        return complete is not None and complete <= since

    def count(
        self,
        repo_id: int,
        login: str,
        kinds_: Sequence[str],
        other_than: int,
        earlier: bool = False,
        at_most: int | None = None,
    ) -> int:
        """How many contributions of these kinds the person made in the repository about items other
        than number `other_than` (only those numbered before it, when `earlier`). `at_most`: count no
        further than that, for a caller that only compares with it (a regular's history has thousands)."""
        if not kinds_ or (at_most is not None and at_most <= 0):
            return 0
        values: dict[str, Any] = {"repo_id": repo_id, "login": login.lower(), "number": other_than}
        if at_most is not None:
            values["at_most"] = at_most
        statement = _count(tuple(sorted(kinds_)), earlier, at_most is not None)
        with db.connect(self.engine) as conn:
            return int(statement.execute(conn, values).scalar_one())

    def active_in(self, repo_id: int, actor_id: int, other_than: int, before: datetime) -> bool:
        """Whether the person has any recorded contribution in the repository before `before`, other
        than about item number `other_than` (a comment, a review, another issue or pull request)."""
        values = {"repo_id": repo_id, "actor_id": actor_id, "number": other_than, "before": before}
        with db.connect(self.engine) as conn:
            return _ACTIVE_IN.execute(conn, values).first() is not None

    def actor_of(self, key: str) -> int | None:
        """Who made the contribution recorded under `key` (a chat thread's first message), or None."""
        with db.connect(self.engine) as conn:
            actor = conn.execute(sa.select(contributions.c.actor_id).where(contributions.c.key == key)).scalar()
        return int(actor) if actor is not None else None

    def get_state(self, name: str) -> str | None:
        with db.connect(self.engine) as conn:
            value = conn.execute(sa.select(ledger_state.c.value).where(ledger_state.c.name == name)).scalar()
        return str(value) if value is not None else None

    def set_state(self, name: str, value: str | None) -> None:
        with db.begin(self.engine) as conn:
            conn.execute(ledger_state.delete().where(ledger_state.c.name == name))
            if value is not None:
                conn.execute(ledger_state.insert().values(name=name, value=value))

    def states_under(self, prefix: str) -> dict[str, str]:
        """Every state row whose name starts with `prefix`, by name."""
        with db.connect(self.engine) as conn:
            rows = conn.execute(
                sa.select(ledger_state.c.name, ledger_state.c.value).where(
                    ledger_state.c.name.startswith(prefix, autoescape=True)
                )
            )
            return {str(row.name): str(row.value) for row in rows if row.value is not None}

    def drop_states(self, prefix: str) -> None:
        with db.begin(self.engine) as conn:
            conn.execute(ledger_state.delete().where(ledger_state.c.name.startswith(prefix, autoescape=True)))

    # --- windows

    def windows_as_of(self) -> date | None:
        with db.connect(self.engine) as conn:
            return windows.windows_day(conn)

    def advance(self, today: date) -> bool:
        """Move every window to `today`; True when anything moved. Cheap when already there."""
        if self.windows_as_of() == today:
            return False
        with db.begin(self.engine) as conn:
            return windows.advance(conn, today)

    def rebuild(self, today: date) -> None:
        """Recompute every rollup from the ledger."""
        with db.begin(self.engine) as conn:
            windows.windows_day(conn, lock="update")
            rebuild_all(conn, today)


def scoring_in(conn: Connection, scope: str) -> dict[str, Any] | None:
    """The `leaderboard` settings last seen for a scope, or None (the defaults apply)."""
    text = conn.execute(sa.select(scoring.c.settings).where(scoring.c.scope == scope)).scalar()
    return json.loads(text) if text else None


def _under_cap(conn: Connection, item: Contribution, day: date, cap: int) -> bool:
    if cap <= 0:
        return True
    keys = {"repo_id": item.repo.id, "actor_id": item.actor_id, "day": day}
    credited = _COMMENTS_CREDITED.execute(conn, keys).scalar()
    return credited is None or int(credited) < cap


def _touch_members(conn: Connection, scopes: Sequence[str], actor_id: int, at: datetime) -> bool | datetime:
    """Note a contribution at `at` in each scope (first and latest contribution per person). For the
    first scope: True if the person is new to it, the previous first contribution's time if this one is
    earlier (it arrived late), else False."""
    stored = {row.scope: row for row in _members(conn, actor_id, scopes)}
    moved, found = [], []
    for scope in scopes:
        row = stored.get(scope)
        if row is None:
            if insert_ignore(
                conn, scope_members, {"scope": scope, "actor_id": actor_id, "first_at": at, "last_at": at}
            ):
                found.append(True)
                continue
            # Another transaction added it since the read: read it again, locked.
            row = _members(conn, actor_id, [scope]).one()
        first, last = min(row.first_at, at), max(row.last_at, at)
        if (first, last) != (row.first_at, row.last_at):
            moved.append({"scope": scope, "actor_id": actor_id, "first_at": first, "last_at": last})
        found.append(row.first_at if at < row.first_at else False)
    if moved:
        replace_rows(conn, scope_members, moved)  # read above, locked: the rows are there
    return found[0]


def _members(conn: Connection, actor_id: int, scopes: Sequence[str]) -> Rows:
    assert 1 <= len(scopes) <= 2, scopes
    return _MEMBERS.execute(conn, {"actor_id": actor_id, "scope": scopes[0], "other_scope": scopes[-1]})


def _note_response(conn: Connection, item: Contribution) -> None:
    subject = item.subject
    assert subject is not None and subject.opened_at is not None
    row = dict(
        repo_id=item.repo.id,
        number=subject.number,
        is_pull=subject.is_pull,
        author_id=subject.author_id,
        opened_at=subject.opened_at,
        opened_week=week_of(subject.opened_at.date()),
    )
    if item.kind not in kinds.RESPONSE_KINDS:
        insert_ignore(conn, responses, row)
        return
    # A new row is the subject as given: the update's conditions decided here against it.
    answers = subject.opened_at <= item.occurred_at and subject.author_id != item.actor_id
    row["first_response_at"] = item.occurred_at if answers else None
    _upserts(conn.dialect.name).response.execute(
        conn, {**row, "response_at": item.occurred_at, "responder": item.actor_id}
    )


def _owner(item: Contribution) -> str:
    return item.repo.full_name.split("/", 1)[0]
