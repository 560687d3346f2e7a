"""Waiting for a first response: newcomers' open issues and pull requests nobody has answered yet.

What the response watch keeps (`storage.watched_items`) as the `/waiting` page, `/api/waiting` and
the digest read it: public, listed repositories only, oldest first, each with its SLO state (ok,
overdue, nudged, escalated; `engagement.response_watch.slo_state`).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from engagement.response_watch import slo_state
from readmodels.insights import scope_repositories
from readmodels.leaderboard import resolve
from storage.db import listed_on_pages, repositories
from storage.watched_items import WatchedItem, waiting


@dataclass(frozen=True)
class Waiting:
    item: WatchedItem
    age_hours: float
    slo: str  # ok | overdue | nudged | escalated

    def as_json(self) -> dict[str, Any]:
        item = self.item
        return {
            "repository": item.repository,
            "number": item.number,
            "kind": "pull_request" if item.is_pull else "issue",
            "title": item.title,
            "url": item.html_url,
            "author": item.author,
            "newcomer": item.newcomer,
            "opened_at": _iso(item.opened_at),
            "age_hours": self.age_hours,
            "due_at": _iso(item.due_at) if item.due_at else None,
            "slo": self.slo,
        }


def in_repositories(conn: Connection, repo_ids: Sequence[int], at: datetime) -> list[Waiting]:
    """Items of these repositories waiting at `at` (naive UTC), oldest first."""
    return [
        Waiting(item, round((at - item.opened_at).total_seconds() / 3600, 1), slo_state(item, at))
        for item in waiting(conn, repo_ids)
        if item.opened_at <= at
    ]


def past_slo(conn: Connection, repo_ids: Sequence[int], at: datetime) -> list[Waiting]:
    """Those of them past their deadline at `at` (the digest's list)."""
    return [w for w in in_repositories(conn, repo_ids, at) if w.item.due_at is not None and w.item.due_at <= at]


def queue(
    engine: Engine,
    repo: str | None = None,
    org: str | None = None,
    now: datetime | None = None,
    readable: Collection[int] = (),
) -> dict[str, Any]:
    """The queue of a listed repository (`owner/name`), an owner's listed repositories, or (neither) all
    of them; raises leaderboard.NotVisible for a name the pages do not list."""
    at = (now or datetime.now(UTC)).astimezone(UTC).replace(tzinfo=None)
    with engine.connect() as conn:
        if repo or org:
            scope, name = resolve(conn, repo, org, readable)
            repo_ids = scope_repositories(conn, scope, readable)
        else:
            name = None
            listed = sa.select(repositories.c.id).where(listed_on_pages(readable))
            repo_ids = [int(i) for i in conn.execute(listed).scalars()]
        items = in_repositories(conn, repo_ids, at)
    return {
        "scope": "repository" if repo else "owner" if org else "all",
        "name": name,
        "generated_at": _iso(at),
        "items": [w.as_json() for w in items],
    }


def _iso(at: datetime) -> str:
    return at.replace(microsecond=0).isoformat() + "Z"
