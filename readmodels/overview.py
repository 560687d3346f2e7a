"""The front page's numbers: a few headline figures per installed public repository, from the rollups.

The overview is read by anonymous visitors, so it starts from the repositories the app is installed on
and that are public, and never looks at anything else. Every figure comes from a rollup the ledger
keeps as events arrive (`window_totals` for the 30-day window, `scope_members` for first contributions,
`weekly` for the latest activity) or from the good-first-issue store, so the page costs a few indexed
reads however long the history is.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from engagement.leaderboard import settings_of
from readmodels.insights import scope_repositories
from readmodels.leaderboard import resolve
from storage.db import listed_on_pages, repositories, scope_members, scoring, weekly, window_totals
from storage.good_first_issues import GoodFirstIssueStore
from storage.ledger import LedgerStore
from storage.rollups import repo_scope

WINDOW = "30d"
WINDOW_DAYS = 30


@dataclass(frozen=True)
class Repository:
    """An installed public repository, as the pages name and link it."""

    id: int
    full_name: str
    owner: str
    html_url: str


@dataclass(frozen=True)
class Summary:
    repository: Repository
    active_contributors: int  # people with any contribution in the last 30 days
    merged_pull_requests: int  # merged in the last 30 days
    new_contributors: int  # whose first contribution to the repository fell in the last 30 days
    good_first_issues: int  # open, and free for a newcomer to take
    last_active_week: date | None  # the latest ISO week (Monday) with any recorded activity
    leaderboard_enabled: bool


def visible_repositories(engine: Engine, readable: Collection[int] = ()) -> list[Repository]:
    """Repositories the app is installed on and that are public (or `readable` by the viewer), by owner
    then name."""
    query = (
        sa.select(repositories.c.id, repositories.c.full_name, repositories.c.owner, repositories.c.html_url)
        .where(listed_on_pages(readable))
        .order_by(sa.func.lower(repositories.c.owner), sa.func.lower(repositories.c.full_name))
    )
    with engine.connect() as conn:
        return [
            Repository(int(row.id), str(row.full_name), str(row.owner), str(row.html_url or ""))
            for row in conn.execute(query)
        ]


def owners(repos: list[Repository]) -> list[str]:
    """The owners of these repositories, once each (case-insensitively), in their order."""
    seen: dict[str, str] = {}
    for repo in repos:
        seen.setdefault(repo.owner.lower(), repo.owner)
    return list(seen.values())


def summaries(engine: Engine, today: date | None = None, readable: Collection[int] = ()) -> list[Summary]:
    """Headline numbers for every installed public repository (and private one `readable` by the viewer)."""
    today = today or datetime.now(UTC).date()
    store = LedgerStore(engine)
    store.advance(today)  # the 30-day window as of today, as the leaderboard reads it
    repos = visible_repositories(engine, readable)
    if not repos:
        return []
    ids = [repo.id for repo in repos]
    listed_issues = GoodFirstIssueStore(engine).open_in_listed_repositories(limit=None, readable=readable)
    open_issues = Counter(issue.repo_id for issue in listed_issues)
    since = datetime.combine(today - timedelta(days=WINDOW_DAYS - 1), datetime.min.time())
    with engine.connect() as conn:
        totals = _window_totals(conn, ids)
        newcomers = _newcomers(conn, ids, since)
        latest = _last_active_weeks(conn, ids)
        enabled = _leaderboard_enabled(conn, ids)
    return [
        Summary(
            repository=repo,
            active_contributors=totals.get(repo.id, (0, 0))[0],
            merged_pull_requests=totals.get(repo.id, (0, 0))[1],
            new_contributors=newcomers.get(repo.id, 0),
            good_first_issues=open_issues.get(repo.id, 0),
            last_active_week=latest.get(repo.id),
            leaderboard_enabled=enabled.get(repo.id, True),
        )
        for repo in repos
    ]


def _scope_ids(ids: list[int]) -> dict[str, int]:
    return {repo_scope(repo_id): repo_id for repo_id in ids}


def _window_totals(conn: Connection, ids: list[int]) -> dict[int, tuple[int, int]]:
    """(active contributors, merged pull requests) in the 30-day window, per repository id."""
    scopes = _scope_ids(ids)
    query = (
        sa.select(window_totals.c.scope, sa.func.count(), sa.func.coalesce(sa.func.sum(window_totals.c.prs_merged), 0))
        .where(window_totals.c.scope.in_(list(scopes)), window_totals.c.window == WINDOW)
        .group_by(window_totals.c.scope)
    )
    return {scopes[row[0]]: (int(row[1]), int(row[2])) for row in conn.execute(query)}


def _leaderboard_enabled(conn: Connection, ids: list[int]) -> dict[int, bool]:
    """Whether each repository's leaderboard is on, from the settings last seen (default: on)."""
    scopes = _scope_ids(ids)
    query = sa.select(scoring.c.scope, scoring.c.settings).where(scoring.c.scope.in_(list(scopes)))
    return {scopes[scope]: settings_of(json.loads(text)).enabled for scope, text in conn.execute(query)}


def _newcomers(conn: Connection, ids: list[int], since: datetime) -> dict[int, int]:
    scopes = _scope_ids(ids)
    query = (
        sa.select(scope_members.c.scope, sa.func.count())
        .where(scope_members.c.scope.in_(list(scopes)), scope_members.c.first_at >= since)
        .group_by(scope_members.c.scope)
    )
    return {scopes[row[0]]: int(row[1]) for row in conn.execute(query)}


def _last_active_weeks(conn: Connection, ids: list[int]) -> dict[int, date]:
    query = (
        sa.select(weekly.c.repo_id, sa.func.max(weekly.c.week))
        .where(weekly.c.repo_id.in_(ids), weekly.c.active > 0)
        .group_by(weekly.c.repo_id)
    )
    return {int(row[0]): row[1] for row in conn.execute(query) if isinstance(row[1], date)}


def active_contributors(engine: Engine, repo: str, today: date | None = None) -> tuple[str, int]:
    """(its name, people with any contribution in the last 30 days) for one installed public repository:
    the front page's figure, for the repository's badge. Raises leaderboard.NotVisible."""
    today = today or datetime.now(UTC).date()
    LedgerStore(engine).advance(today)
    with engine.connect() as conn:
        scope, name = resolve(conn, repo, None)
        (repo_id,) = scope_repositories(conn, scope)
        active, _merged = _window_totals(conn, [repo_id]).get(repo_id, (0, 0))
    return name, active
