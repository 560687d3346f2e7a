"""The state of good first issues, kept from webhooks: which are labelled, open, assigned, claimed.

An issue is tracked from the first event that shows it with the repository's good-first-issue label
and kept up to date by every later event about it. Webhooks can arrive out of order, so each write
carries GitHub's `updated_at` of the issue and a state older than the one stored is ignored.
`open_for_newcomers` answers the question pages ask: which good first issues can a newcomer take now?
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Collection, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from storage import db
from storage.db import good_first_issues as table
from storage.db import listed_on_pages, repositories, utcnow
from storage.prepared import Prepared

# How long a claim may wait for GitHub to show its assignment (retries, clock differences).
CLAIM_LEASE = timedelta(minutes=10)
# Every issue event reads its row (most often: none, an issue not labelled).
_ISSUE = Prepared(
    sa.select(table).where(table.c.repo_id == sa.bindparam("repo_id"), table.c.number == sa.bindparam("number"))
)
_CLAIMANTS = Prepared(
    sa.select(sa.func.lower(table.c.claimant).label("login"))
    .where(table.c.repo_id == sa.bindparam("repo_id"), table.c.claimant.is_not(None))
    .distinct()
)
# Built once: it runs for every comment by a claimant (issue 14): one issue. A pull request's body may link
# many (it is written by anyone): those go in one statement with an IN list.
_CLAIM_ACTIVE_WHERE = (
    table.update()
    .where(table.c.repo_id == sa.bindparam("b_repo_id"))
    .where(sa.func.lower(table.c.claimant) == sa.bindparam("b_login"))
    .where(sa.or_(table.c.claim_active_at.is_(None), table.c.claim_active_at < sa.bindparam("b_at")))
    .values(claim_active_at=sa.bindparam("b_at"))
)
_CLAIM_ACTIVE = Prepared(_CLAIM_ACTIVE_WHERE.where(table.c.number == sa.bindparam("b_number")))
_CLAIM_ACTIVE_ANY = Prepared(_CLAIM_ACTIVE_WHERE.where(table.c.number.in_(sa.bindparam("b_numbers", expanding=True))))


@dataclass(frozen=True)
class Snapshot:
    """An issue as an event (or GitHub's answer to a write) shows it."""

    repo_id: int
    repository: str
    number: int
    title: str
    html_url: str
    state: str
    labels: tuple[str, ...]
    assignees: tuple[str, ...]
    updated_at: datetime | None  # naive UTC; None: unknown, applied whatever is stored
    created_at: datetime | None = None  # naive UTC, GitHub's; None: unknown, what is stored stays


@dataclass(frozen=True)
class GoodFirstIssue:
    repo_id: int
    repository: str
    number: int
    title: str
    html_url: str
    labelled: bool
    state: str
    assignees: tuple[str, ...]
    claimant: str | None
    claimed_at: datetime | None
    guide_round: int
    linked_pull: int | None = None
    claim_active_at: datetime | None = None  # GitHub's time of the claimant's latest activity on it
    labels: tuple[str, ...] = ()  # as the latest event showed them (none known for issues stored earlier)
    opened_at: datetime | None = None  # GitHub's created_at

    @property
    def quiet_since(self) -> datetime | None:
        """Since when the claim has shown no activity (its claim, when nothing is known of it)."""
        return self.claim_active_at or self.claimed_at

    @property
    def open_for_newcomers(self) -> bool:
        """Labelled, open, and nobody holds it or has a pull request open for it."""
        return (
            self.labelled
            and self.state == "open"
            and not self.assignees
            and not self.claimant
            and self.linked_pull is None
        )


NO_CLAIM: dict[str, Any] = {"claimant": None, "claimed_at": None, "claim_active_at": None}

# Labelled, open, and nobody holds it: not claimed, not assigned, no open pull request for it.
FREE_FOR_NEWCOMERS = (
    table.c.labelled == sa.true(),
    table.c.state == "open",
    table.c.claimant.is_(None),
    table.c.assignees == "[]",
    table.c.linked_pull.is_(None),
)


def has_label(labels: Iterable[str], label: str) -> bool:
    """GitHub's label names are case-insensitive."""
    return label.lower() in {name.lower() for name in labels}


def _issue(row: Any) -> GoodFirstIssue:
    return GoodFirstIssue(
        repo_id=int(row.repo_id),
        repository=row.repository,
        number=int(row.number),
        title=row.title,
        html_url=row.html_url,
        labelled=bool(row.labelled),
        state=row.state,
        assignees=tuple(json.loads(row.assignees or "[]")),
        claimant=row.claimant,
        claimed_at=row.claimed_at,
        guide_round=int(row.guide_round),
        linked_pull=row.linked_pull,
        claim_active_at=row.claim_active_at,
        labels=tuple(json.loads(row.labels or "[]")),
        opened_at=row.opened_at,
    )


def _key(repo_id: int, number: int) -> sa.ColumnElement[bool]:
    return sa.and_(table.c.repo_id == repo_id, table.c.number == number)


# How long this process trusts its list of a repository's claimants. A claim recorded by another process
# meanwhile has its claimant's activity noted up to this much later: nothing, next to the days of quiet a
# claim is given before a reminder.
CLAIMANTS_RECHECK_SECONDS = 60.0


class GoodFirstIssueStore:
    def __init__(self, engine: Engine, claimants_recheck_seconds: float = CLAIMANTS_RECHECK_SECONDS):
        self.engine = engine
        self.claimants_recheck_seconds = claimants_recheck_seconds
        self._claimants: dict[int, tuple[float, frozenset[str]]] = {}  # repo id -> (monotonic time read, logins)

    def observe(self, snapshot: Snapshot, label: str, unassigned: str | None = None) -> bool:
        """Apply what an event shows of an issue; True when the store changed.

        An issue is tracked from the first time it carries `label`. A claim ends when its claimant is
        `unassigned` (by an issues.unassigned event), or when an issue state taken well after the claim
        still shows them unassigned (the assignment never happened). A state that merely predates the
        assignment, such as a second /claim racing the first, leaves the claim alone."""
        labelled = has_label(snapshot.labels, label)
        values: dict[str, Any] = dict(
            repository=snapshot.repository,
            title=snapshot.title,
            html_url=snapshot.html_url,
            labelled=labelled,
            state=snapshot.state,
            assignees=json.dumps(list(snapshot.assignees)),
            labels=json.dumps(list(snapshot.labels), ensure_ascii=False),
            updated_at=utcnow(),
        )
        if snapshot.updated_at is not None:
            values["seen_at"] = snapshot.updated_at
        if snapshot.created_at is not None:
            values["opened_at"] = snapshot.created_at

        def write(conn: Connection) -> bool:
            row = _ISSUE.execute(conn, {"repo_id": snapshot.repo_id, "number": snapshot.number}).first()
            if row is None:
                if not labelled:
                    return False
                conn.execute(table.insert().values(repo_id=snapshot.repo_id, number=snapshot.number, **values))
                return True
            if snapshot.updated_at is not None and row.seen_at is not None and snapshot.updated_at < row.seen_at:
                return False  # an older event, delivered late
            if row.claimant and row.claimant.lower() not in {a.lower() for a in snapshot.assignees}:
                released = bool(unassigned) and str(unassigned).lower() == row.claimant.lower()
                stale = (
                    bool(snapshot.updated_at and row.claimed_at) and snapshot.updated_at > row.claimed_at + CLAIM_LEASE
                )
                if released or stale:
                    values.update(NO_CLAIM)
            conn.execute(table.update().where(_key(snapshot.repo_id, snapshot.number)).values(**values))
            return True

        return self._write(write)

    def reserve(self, repo_id: int, number: int, login: str) -> str | None:
        """Take the issue for `login` before assigning it on GitHub; the claimant holding it when it is
        someone else (then nothing changes), else None. Two claims at once: one wins, one hears who."""
        with self._claimants_change(repo_id), db.begin(self.engine) as conn:
            won = conn.execute(
                table.update()
                .where(_key(repo_id, number))
                .where(sa.or_(table.c.claimant.is_(None), sa.func.lower(table.c.claimant) == login.lower()))
                .values(
                    claimant=sa.func.coalesce(table.c.claimant, login),
                    claimed_at=sa.func.coalesce(table.c.claimed_at, utcnow()),
                )
            ).rowcount
            if won:
                return None
            holder = conn.execute(sa.select(table.c.claimant).where(_key(repo_id, number))).scalar()
            return str(holder) if holder else None

    def claim(self, repo_id: int, number: int, login: str, at: datetime | None = None) -> bool:
        """Record that `login` holds the issue (GitHub shows it assigned to them), whoever held it before;
        `at`: GitHub's time of their /claim comment, from which the claim's quiet time is measured."""
        with self._claimants_change(repo_id), db.begin(self.engine) as conn:
            result = conn.execute(
                table.update()
                .where(_key(repo_id, number))
                .values(claimant=login, claimed_at=utcnow(), claim_active_at=at)
            )
            return bool(result.rowcount)

    def claim_active(self, repo_id: int, numbers: Iterable[int], login: str, at: datetime) -> int:
        """`login` showed activity at `at` (GitHub's time) on these issues: the claims they hold there
        start their quiet time again (a later time only: deliveries arrive in any order)."""
        if login.lower() not in self._claimants_in(repo_id):
            return 0  # most comments: no claim to touch, and no write transaction to find that out
        values: dict[str, Any] = {"b_repo_id": repo_id, "b_login": login.lower(), "b_at": at}
        numbers = list(numbers)
        if len(numbers) == 1:
            statement, values["b_number"] = _CLAIM_ACTIVE, numbers[0]
        else:
            statement, values["b_numbers"] = _CLAIM_ACTIVE_ANY, numbers
        with db.begin(self.engine) as conn:
            return int(statement.execute(conn, values).rowcount)

    @contextmanager
    def _claimants_change(self, repo_id: int) -> Iterator[None]:
        """Around a write that may add a claimant: this process reads the repository's claimants again after
        it (dropped after the commit, so that no thread keeps a list read before it)."""
        try:
            yield
        finally:
            self._claimants.pop(repo_id, None)

    def _claimants_in(self, repo_id: int) -> frozenset[str]:
        now = time.monotonic()
        known = self._claimants.get(repo_id)
        if known is not None and now - known[0] < self.claimants_recheck_seconds:
            return known[1]
        with db.connect(self.engine) as conn:
            logins = frozenset(row.login for row in _CLAIMANTS.execute(conn, {"repo_id": repo_id}))
        self._claimants[repo_id] = (now, logins)
        return logins

    def quiet_claims(self, since: datetime) -> list[tuple[GoodFirstIssue, int]]:
        """Open claims with no activity since `since`, in repositories installed (and not suspended)
        now, with the installation that may act on them, oldest first."""
        quiet = sa.func.coalesce(table.c.claim_active_at, table.c.claimed_at)
        r = repositories.c
        query = (
            sa.select(table, r.installation_id.label("installation"))
            .join(repositories, r.id == table.c.repo_id)
            .where(table.c.state == "open", table.c.claimant.is_not(None), quiet <= since)
            .where(r.installation_id.is_not(None), r.installation_suspended_at.is_(None))
            .order_by(quiet, table.c.repo_id, table.c.number)
        )
        with db.connect(self.engine) as conn:
            return [(_issue(row), int(row.installation)) for row in conn.execute(query)]

    def release(self, repo_id: int, number: int, login: str) -> bool:
        """Forget `login`'s claim (after /unclaim)."""
        with db.begin(self.engine) as conn:
            result = conn.execute(
                table.update()
                .where(_key(repo_id, number), sa.func.lower(table.c.claimant) == login.lower())
                .values(**NO_CLAIM)
            )
            return bool(result.rowcount)

    def open_claims(self, repo_id: int, login: str, excluding: int | None = None) -> int:
        """How many open issues of the repository `login` holds by /claim (other than `excluding`)."""
        query = (
            sa.select(sa.func.count())
            .select_from(table)
            .where(table.c.repo_id == repo_id, table.c.state == "open")
            .where(sa.func.lower(table.c.claimant) == login.lower())
        )
        if excluding is not None:
            query = query.where(table.c.number != excluding)
        with db.connect(self.engine) as conn:
            return int(conn.execute(query).scalar_one())

    def get(self, repo_id: int, number: int) -> GoodFirstIssue | None:
        with db.connect(self.engine) as conn:
            row = conn.execute(sa.select(table).where(_key(repo_id, number))).first()
        return _issue(row) if row else None

    def guide_round(self, repo_id: int, number: int) -> int:
        """Which guidance comment is due: one per round, and a new round after each removal."""
        found = self.get(repo_id, number)
        return found.guide_round if found else 0

    def next_guide_round(self, repo_id: int, number: int) -> None:
        with db.begin(self.engine) as conn:
            conn.execute(
                table.update()
                .where(_key(repo_id, number))
                .values(guide_round=table.c.guide_round + 1, updated_at=utcnow())
            )

    def link_pull(self, repo_id: int, issues: Iterable[int], pull: int) -> None:
        """Record that open pull request `pull` closes these issues, and that it no longer closes others."""
        numbers = list(issues)
        with db.begin(self.engine) as conn:
            conn.execute(
                table.update()
                .where(table.c.repo_id == repo_id, table.c.linked_pull == pull, table.c.number.not_in(numbers))
                .values(linked_pull=None)
            )
            if numbers:
                conn.execute(
                    table.update()
                    .where(table.c.repo_id == repo_id, table.c.number.in_(numbers))
                    .values(linked_pull=pull)
                )

    def forget(self, repo_id: int, number: int) -> None:
        """The issue was deleted or transferred away."""
        with db.begin(self.engine) as conn:
            conn.execute(table.delete().where(_key(repo_id, number)))

    def open_for_newcomers(self, repo: str) -> list[GoodFirstIssue]:
        """The repository's (`owner/name`) good first issues that are open and held by nobody, oldest first."""
        query = (
            sa.select(table)
            .where(sa.func.lower(table.c.repository) == repo.lower(), *FREE_FOR_NEWCOMERS)
            .order_by(table.c.number)
        )
        with db.connect(self.engine) as conn:
            return [_issue(row) for row in conn.execute(query)]

    def open_in_listed_repositories(
        self, repo: str | None = None, limit: int | None = 200, readable: Collection[int] = ()
    ) -> list[GoodFirstIssue]:
        """Good first issues a newcomer can take in installed public repositories, and private ones
        `readable` by the viewer (only `repo`, when given), newest first. Issues of any other repository
        are left out: a private repository's issues must never reach anyone who may not read it."""
        query = (
            sa.select(table)
            .join(repositories, repositories.c.id == table.c.repo_id)
            .where(listed_on_pages(readable), *FREE_FOR_NEWCOMERS)
            .order_by(table.c.updated_at.desc(), table.c.number.desc(), table.c.repo_id)
        )
        if repo is not None:
            query = query.where(sa.func.lower(repositories.c.full_name) == repo.lower())
        if limit is not None:
            query = query.limit(limit)
        with db.connect(self.engine) as conn:
            return [_issue(row) for row in conn.execute(query)]

    def _write(self, step: Callable[[Connection], bool]) -> bool:
        """Run `step(conn)` in a transaction; once more if a concurrent insert of the same issue won."""
        for attempt in (1, 2):
            try:
                with db.begin(self.engine) as conn:
                    return bool(step(conn))
            except IntegrityError:
                if attempt == 2:
                    raise
        return False
