"""Credits given with `/credit`: each one a ledger contribution (so the rollups and the leaderboard count
it) and a row saying what it is for, written together in one transaction, once per person, category and
repository however often the command is delivered. Taking one back removes both and rebuilds that person's
rollups from the ledger (`storage.ledger_rebuild.rebuild_people`), so every rollup equals a rebuild.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from domain.credits import Credit, credit_key
from storage import db, windows
from storage.db import contributions, contributors, credits, listed_on_pages, repositories
from storage.ledger import LedgerStore
from storage.ledger_rebuild import rebuild_people
from storage.upsert import insert_ignore

_k = credits.c

# What giving a credit did.
GIVEN, ALREADY = "given", "already"


@dataclass(frozen=True)
class Given:
    """A credit as stored: for the contributors page and the person's."""

    repository: str
    login: str
    category: str
    note: str
    given_by: str
    url: str
    given_at: datetime


class CreditStore:
    def __init__(self, ledger: LedgerStore):
        self.ledger = ledger
        self.engine = ledger.engine

    def give(self, credit: Credit) -> str:
        """Record the credit unless the person has it already: GIVEN (by this comment, also when a retry of
        it finds its own credit stored) or ALREADY (by an earlier comment)."""
        with db.begin(self.engine) as conn:
            windows.windows_day(conn, lock="share")  # first, in the order recording takes its locks
            row = {
                "repo_id": credit.repo.id,
                "person_id": credit.person_id,
                "category": credit.category,
                "login": credit.login,
                "note": credit.note,
                "given_by": credit.given_by,
                "comment_id": credit.comment_id,
                "url": credit.url[:500],
                "given_at": credit.at,
            }
            if insert_ignore(conn, credits, row):
                self.ledger.record_in(conn, credit.contribution())
                return GIVEN
            by = conn.execute(
                sa.select(_k.comment_id).where(*self._this(credit.repo.id, credit.person_id, credit.category))
            )
            return GIVEN if by.scalar() == credit.comment_id else ALREADY

    def take_back(self, repo_id: int, person_id: int, category: str) -> bool:
        """Remove the credit and its contribution; False when the person had none."""
        with db.begin(self.engine) as conn:
            as_of = windows.windows_day(conn, lock="share")  # first, as recording takes it
            gone = conn.execute(credits.delete().where(*self._this(repo_id, person_id, category))).rowcount
            conn.execute(contributions.delete().where(contributions.c.key == credit_key(repo_id, person_id, category)))
            if gone:
                rebuild_people(conn, [person_id], [repo_id], as_of)
        return bool(gone)

    def person_id(self, login: str) -> int | None:
        """The GitHub id the ledger knows for a login (its latest), or None."""
        query = (
            sa.select(contributors.c.id)
            .where(sa.func.lower(contributors.c.login) == login.lower(), contributors.c.id > 0)
            .order_by(contributors.c.updated_at.desc())
            .limit(1)
        )
        with db.connect(self.engine) as conn:
            found = conn.execute(query).scalar()
        return int(found) if found is not None else None

    def of_person(self, login: str, readable: Collection[int] = ()) -> list[Given]:
        """The person's credits in the repositories the pages list for this viewer, newest first."""
        query = (
            sa.select(repositories.c.full_name, _k.login, _k.category, _k.note, _k.given_by, _k.url, _k.given_at)
            .select_from(credits.join(repositories, repositories.c.id == _k.repo_id))
            .where(sa.func.lower(_k.login) == login.lower(), listed_on_pages(readable))
            .order_by(_k.given_at.desc(), repositories.c.full_name, _k.category)
        )
        with db.connect(self.engine) as conn:
            return [Given(*row) for row in conn.execute(query)]

    @staticmethod
    def _this(repo_id: int, person_id: int, category: str) -> list[sa.ColumnElement[bool]]:
        return [_k.repo_id == repo_id, _k.person_id == person_id, _k.category == category]
