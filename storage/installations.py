"""Installations of the app and the repositories each may act on, kept current from GitHub's events.

Why: pages list only repositories installed now, and a worker must not try (and retry, and fail) to
act for an installation GitHub has deleted or suspended. `repositories.installation_id` keeps its
meaning, "installed now": it is set to NULL when a repository leaves its installation, and
`repositories.installation_suspended_at` is set while the installation is suspended. Either way the app
stops hearing of the repository, so its ledger stops being complete (`ledger_complete_since` NULL): the
greeting asks GitHub again who is new, and the history import fills the gap once the app is back.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from storage import db
from storage.db import installations, repositories, utcnow
from storage.ledger_rebuild import relist
from storage.windows import lock_windows

REMOVED, SUSPENDED = "removed", "suspended"

_STATE = sa.select(installations.c.deleted_at, installations.c.suspended_at).where(
    installations.c.id == sa.bindparam("installation_id")
)


@dataclass(frozen=True)
class Installation:
    id: int
    account_login: str
    account_type: str
    suspended_at: datetime | None = None


class InstallationStore:
    def __init__(self, engine: Engine):
        self.engine = engine

    def state(self, installation_id: int) -> str | None:
        """REMOVED, SUSPENDED, or None when the app may act (also for an installation not seen yet)."""
        with db.connect(self.engine) as conn:
            row = conn.execute(_STATE, {"installation_id": installation_id}).first()
        if row is None:
            return None
        if row.deleted_at is not None:
            return REMOVED
        return SUSPENDED if row.suspended_at is not None else None

    def get(self, installation_id: int) -> Installation | None:
        with db.connect(self.engine) as conn:
            row = conn.execute(sa.select(installations).where(installations.c.id == installation_id)).first()
        if row is None:
            return None
        return Installation(int(row.id), str(row.account_login), str(row.account_type), row.suspended_at)

    def observe(self, installation: Installation) -> bool:
        """Record an installation as it is now, suspended or not (its repositories follow); False, and
        nothing written, when it was deleted before: GitHub never reuses an id, and events can arrive
        out of order."""
        values = dict(
            account_login=installation.account_login,
            account_type=installation.account_type,
            suspended_at=installation.suspended_at,
            updated_at=utcnow(),
        )
        with db.begin(self.engine) as conn:
            # One atomic upsert: two workers may process `created` and `added` of one installation at once.
            statement = _insert(conn).values(id=installation.id, deleted_at=None, **values)
            written = conn.execute(
                statement.on_conflict_do_update(
                    index_elements=["id"], set_=values, where=installations.c.deleted_at.is_(None)
                ).returning(installations.c.id)
            ).first()
            if written is None:
                return False
            _mark_suspended(conn, installation.id, installation.suspended_at)
        return True

    def delete(self, installation: Installation) -> int:
        """The app was uninstalled: the installation stays deleted, its repositories are installed no more.
        Returns how many repositories left."""
        now = utcnow()
        with db.begin(self.engine) as conn:
            statement = _insert(conn).values(
                id=installation.id,
                account_login=installation.account_login,
                account_type=installation.account_type,
                deleted_at=now,
                updated_at=now,
            )
            conn.execute(
                statement.on_conflict_do_update(
                    index_elements=["id"],
                    set_={"deleted_at": sa.func.coalesce(installations.c.deleted_at, now), "updated_at": now},
                )
            )
            return _uninstall(conn, installation.id, None)

    def remove_repositories(self, installation_id: int, repo_ids: Iterable[int]) -> int:
        """Repositories taken out of the installation; one that moved to another installation meanwhile
        keeps its new one. Returns how many left."""
        ids = list(repo_ids)
        if not ids:
            return 0
        with db.begin(self.engine) as conn:
            return _uninstall(conn, installation_id, ids)

    def installed_repositories(self, installation_id: int) -> list[str]:
        with db.connect(self.engine) as conn:
            rows = conn.execute(
                sa.select(repositories.c.full_name)
                .where(repositories.c.installation_id == installation_id)
                .order_by(repositories.c.full_name)
            )
            return [str(row.full_name) for row in rows]


def _insert(conn: Connection) -> Any:
    return (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(installations)


def _mark_suspended(conn: Connection, installation_id: int, since: datetime | None) -> None:
    lock_windows(conn)
    # GitHub sends a suspended installation's events to nobody: its ledger will have a gap.
    out_of_sight = {"ledger_complete_since": None} if since is not None else {}
    changed = conn.execute(
        repositories.update()
        .where(
            repositories.c.installation_id == installation_id,
            repositories.c.installation_suspended_at.is_distinct_from(since),
        )
        .values(installation_suspended_at=since, updated_at=utcnow(), **out_of_sight)
        .returning(repositories.c.owner)
    )
    relist(conn, changed.scalars().all())  # a suspended installation's repositories leave the pages


def _uninstall(conn: Connection, installation_id: int, repo_ids: list[int] | None) -> int:
    """Its repositories (those of `repo_ids`) are installed no more, so they leave every page and the
    owner-wide boards, and their ledger is no longer complete (what happens while the app is away never
    reaches it: installed again, the history is imported again); returns how many left."""
    lock_windows(conn)
    query = repositories.update().where(repositories.c.installation_id == installation_id)
    if repo_ids is not None:
        query = query.where(repositories.c.id.in_(repo_ids))
    values = dict(installation_id=None, installation_suspended_at=None, ledger_complete_since=None, updated_at=utcnow())
    owners = conn.execute(query.values(**values).returning(repositories.c.owner)).scalars().all()
    relist(conn, owners)
    return len(owners)
