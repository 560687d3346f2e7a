"""The repositories' rows as the ledger keeps them: name, installation, and visibility, which only moves
forward in GitHub's time; a repository joining or leaving the pages rebuilds its owner's scopes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from domain.contributions import Repo
from storage.db import listed_on_pages, repositories, utcnow
from storage.ledger_rebuild import rebuild_org
from storage.prepared import Prepared
from storage.upsert import insert_for
from storage.windows import windows_day

_LISTED = listed_on_pages().label("listed")
_r = repositories.c
_STORED = Prepared(
    sa.select(_r.private, _r.visibility_at, _r.full_name, _r.installation_id, _LISTED).where(
        _r.id == sa.bindparam("repo_id")
    )
)
_LISTED_NOW = Prepared(sa.select(_LISTED).where(_r.id == sa.bindparam("repo_id")))


def upsert_repository(conn: Connection, repo: Repo, installs: bool = False) -> bool:
    """Keep the repository's row; returns whether the pages list it now, as stored. Its installation is
    set when the row is new, or when `installs` (installation events): a late delivery for a
    repository since removed must not add it back. Its visibility only moves forward in time
    (`visibility`)."""
    owner = repo.full_name.split("/", 1)[0]
    before = _STORED.execute(conn, {"repo_id": repo.id}).first()
    if before is not None:
        kept = visibility(bool(before.private), before.visibility_at, repo.private, repo.visibility_at)
        unchanged = kept == (bool(before.private), before.visibility_at) and before.full_name == repo.full_name
        if unchanged and (not installs or before.installation_id == repo.installation_id):
            return bool(before.listed)  # nothing new: no write, no lock on a row every event touches
    values: dict[str, Any] = dict(full_name=repo.full_name, owner=owner, html_url=repo.html_url, updated_at=utcnow())
    statement = insert_for(conn, repositories).values(
        id=repo.id,
        installation_id=repo.installation_id,
        private=repo.private,
        visibility_at=repo.visibility_at,
        **values,
    )
    # Decided again inside the write, against the row as it is then: another worker may have moved it.
    private, visibility_at = visibility_update(repo)
    updates = {**values, "private": private, "visibility_at": visibility_at}
    if installs:
        updates["installation_id"] = repo.installation_id
    conn.execute(statement.on_conflict_do_update(index_elements=["id"], set_=updates))
    # Read back rather than RETURNING: SQLite's RETURNING after an upsert's update misreports it.
    now_listed = bool(_LISTED_NOW.execute(conn, {"repo_id": repo.id}).scalar_one())
    if before is not None and bool(before.listed) != now_listed:
        # Made public or private, or installed: the owner-wide scope gains or loses it at once.
        rebuild_org(conn, owner, windows_day(conn))
    return now_listed


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


def visibility_update(repo: Repo) -> tuple[Any, Any]:
    """`visibility` as SQL over the stored row, for an upsert: (private, visibility_at) expressions."""
    r = repositories.c
    if repo.visibility_at is None:
        return (sa.true() if repo.private else r.private), r.visibility_at
    newer = sa.or_(r.visibility_at.is_(None), r.visibility_at < repo.visibility_at)
    same = r.visibility_at == repo.visibility_at
    claim = sa.true() if repo.private else sa.false()
    private = sa.case((newer, claim), (same, sa.or_(r.private, claim)), else_=r.private)
    return private, sa.case((newer, sa.literal(repo.visibility_at, sa.DateTime)), else_=r.visibility_at)
