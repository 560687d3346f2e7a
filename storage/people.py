"""What the ledger knows of one person: when they last took part in a repository, what they did about
one item, and whether they asked to be left off the leaderboard. Read by the milestones."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from storage import db
from storage.db import contributions, contributors


class PeopleStore:
    def __init__(self, engine: Engine):
        self.engine = engine

    def latest_before(self, repo_id: int, actor_id: int, before: datetime) -> datetime | None:
        """The time (naive UTC, on GitHub) of the person's latest contribution in the repository before
        `before`; None when the ledger has none."""
        c = contributions.c
        # The bound inside the aggregate, not the WHERE: SQLite would find max(occurred_at) walking
        # ix_contributions_repo_time backwards over the repository's history (see `db.unindexed`).
        earlier = sa.case((c.occurred_at < before, c.occurred_at))
        query = sa.select(sa.func.max(earlier)).where(c.repo_id == repo_id, c.actor_id == actor_id)
        with db.connect(self.engine) as conn:
            latest = conn.execute(query).scalar()
        return latest if isinstance(latest, datetime) else None

    def made(self, repo_id: int, actor_id: int, kind: str, number: int) -> bool:
        """Whether the ledger credits the person with a contribution of `kind` about item `number`."""
        c = contributions.c
        query = (
            sa.select(c.id)
            .where(c.repo_id == repo_id, c.actor_id == actor_id, c.kind == kind, c.number == number)
            .limit(1)
        )
        with db.connect(self.engine) as conn:
            return conn.execute(query).first() is not None

    def opted_out(self, actor_id: int) -> bool:
        """`/leaderboard opt-out`: the person asked to be left out of rankings and celebrations."""
        with db.connect(self.engine) as conn:
            value = conn.execute(sa.select(contributors.c.opted_out).where(contributors.c.id == actor_id)).scalar()
        return bool(value)
