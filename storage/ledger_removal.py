"""What the forum deletes leaves the ledger, and comes back when the forum recovers it: exactly once in
effect, whatever order deliveries arrive in.

A deletion leaves a tombstone (`removed_items`: a topic, a post, an acceptance withdrawn). The ledger
holds exactly the contributions none of whose items (`items_of`: a reply's topic and post) is removed:
a change to the tombstones moves the topic's contributions that must leave into `removed_contributions`
and rebuilds their people's rollups from the ledger (`storage.ledger_rebuild.rebuild_people`, the
statements `rebuild_all` runs, so every rollup equals a rebuild), and records again those that may
come back (`LedgerStore.record_in`, the incremental path). A creation arriving after its deletion finds
the tombstone and is set aside at once. Each change and each recording holds one lock per place (a
PostgreSQL advisory lock; SQLite's writers already run one at a time), so a creation and a deletion of
the same post processed at once by two workers end as if one came after the other.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from domain.contributions import Contribution, Repo, Subject
from storage import db, windows
from storage.db import contributions, identity_links, removed_contributions, removed_items, utcnow
from storage.ledger import LedgerStore
from storage.ledger_rebuild import rebuild_people
from storage.upsert import insert_ignore

# (kind, key, number) -> the items a contribution stands on (`domain.contributions.forum_items_of`).
ItemsOf = Callable[[str, str, int | None], tuple[str, ...]]

_c = contributions.c
_rc = removed_contributions.c
_ri = removed_items.c


@dataclass(frozen=True)
class Moved:
    """What a change did: contributions taken out of the ledger, and brought back into it."""

    out: int = 0
    back: int = 0


class LedgerRemovals:
    """The ledger of one place (the forum), with its removals."""

    def __init__(self, ledger: LedgerStore, place: Repo, items_of: ItemsOf):
        self.ledger, self.place, self.items_of = ledger, place, items_of

    def record(self, items: Iterable[Contribution | None], source: str = "webhook") -> int:
        """`LedgerStore.record`, except that a contribution standing on something removed is set aside
        (counted when that is recovered); returns how many were new in the ledger."""
        new = 0
        for item in items:
            if item is None:
                continue
            with db.begin(self.ledger.engine) as conn:
                self._lock(conn)
                if _removed(conn, self.items_of(item.kind, item.key, item.number)):
                    insert_ignore(conn, removed_contributions, _aside(item, source))
                    continue
                new += self.ledger.record_in(conn, item, source)
        return new

    def change(self, topic: int, item: str, removes: bool) -> Moved:
        """Remove `item` (or lift its removal), then bring topic `topic`'s contributions in line."""
        with db.begin(self.ledger.engine) as conn:
            as_of = self._lock(conn)
            if removes:
                insert_ignore(conn, removed_items, {"item": item, "removed_at": utcnow()})
            else:
                conn.execute(removed_items.delete().where(_ri.item == item))
            return self._reconcile(conn, topic, as_of)

    def set_aside(self) -> list[str]:
        """The keys set aside in this place (for tests and the operator)."""
        with db.connect(self.ledger.engine) as conn:
            query = sa.select(_rc.key).where(_rc.repo_id == self.place.id).order_by(_rc.key)
            return list(conn.execute(query).scalars())

    def _lock(self, conn: Connection) -> date | None:
        """The windows' day shared, as recording does first, then the place's own lock."""
        as_of = windows.windows_day(conn, lock="share")
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:place)"), {"place": self.place.id})
        return as_of

    def _reconcile(self, conn: Connection, topic: int, as_of: date | None) -> Moved:
        counted = conn.execute(
            sa.select(contributions).where(_c.repo_id == self.place.id, _c.number == topic).with_for_update()
        ).all()
        aside = conn.execute(
            sa.select(removed_contributions).where(_rc.repo_id == self.place.id, _rc.number == topic)
        ).all()
        stands_on = {row.key: self.items_of(row.kind, row.key, row.number) for row in counted}
        parked = {row.key: _contribution(row, self.place) for row in aside}
        stands_on |= {key: self.items_of(item.kind, key, item.number) for key, (item, _) in parked.items()}
        removed = _removed_of(conn, {item for items in stands_on.values() for item in items})
        out = [row for row in counted if removed.intersection(stands_on[row.key])]
        back = [key for key in sorted(parked) if not removed.intersection(stands_on[key])]
        if out:
            for row in out:
                insert_ignore(conn, removed_contributions, _aside_row(conn, row, self.place))
            conn.execute(contributions.delete().where(_c.key.in_([row.key for row in out])))
            rebuild_people(conn, sorted({int(row.actor_id) for row in out}), [self.place.id], as_of)
        for key in back:
            item, source = parked[key]
            conn.execute(removed_contributions.delete().where(_rc.key == key))
            self.ledger.record_in(conn, item, source)
        return Moved(len(out), len(back))


def _removed(conn: Connection, items: Sequence[str]) -> bool:
    return bool(_removed_of(conn, set(items)))


def _removed_of(conn: Connection, items: set[str]) -> set[str]:
    if not items:
        return set()
    query = sa.select(_ri.item).where(_ri.item.in_(sorted(items)))
    return set(conn.execute(query).scalars())


def _aside(item: Contribution, source: str) -> dict[str, Any]:
    subject = item.subject
    data = {
        "kind": item.kind,
        "actor_id": item.actor_id,
        "actor_login": item.actor_login,
        "occurred_at": item.occurred_at.isoformat(),
        "number": item.number,
        "url": item.url,
        "positive": item.positive,
        "negative": item.negative,
        "source": source,
        "subject": None
        if subject is None
        else {
            "number": subject.number,
            "is_pull": subject.is_pull,
            "author_id": subject.author_id,
            "opened_at": subject.opened_at.isoformat() if subject.opened_at else None,
        },
    }
    return {
        "key": item.key,
        "repo_id": item.repo.id,
        "number": item.number,
        "contribution": json.dumps(data),
        "removed_at": utcnow(),
    }


def _aside_row(conn: Connection, row: Any, place: Repo) -> dict[str, Any]:
    """A ledger row as it is set aside, under the forum account's own id and name when a link had moved
    it to a GitHub account's: recording it again resolves the link as it is then."""
    actor_id, login = int(row.actor_id), str(row.actor_login)
    if actor_id >= 0:
        link = conn.execute(
            sa.select(identity_links.c.person_id, identity_links.c.username).where(
                identity_links.c.github_id == actor_id, identity_links.c.place_id == place.id
            )
        ).first()
        if link is not None:
            actor_id, login = int(link.person_id), str(link.username)
    opened = row.subject_opened_at
    subject = (
        Subject(int(row.number), bool(row.subject_is_pull), row.subject_author_id, opened)
        if opened is not None and row.number is not None
        else None
    )
    item = Contribution(
        key=row.key,
        kind=row.kind,
        repo=place,
        actor_id=actor_id,
        actor_login=login,
        occurred_at=row.occurred_at,
        number=row.number,
        url=row.url,
        subject=subject,
        positive=int(row.positive),
        negative=int(row.negative),
    )
    return _aside(item, str(row.source))


def _contribution(row: Any, place: Repo) -> tuple[Contribution, str]:
    """A set-aside contribution as recorded again, and the source it first came from."""
    data = json.loads(row.contribution)
    subject = data.get("subject")
    return (
        Contribution(
            key=row.key,
            kind=data["kind"],
            repo=place,
            actor_id=int(data["actor_id"]),
            actor_login=str(data["actor_login"]),
            occurred_at=datetime.fromisoformat(data["occurred_at"]),
            number=data["number"],
            url=str(data["url"]),
            subject=None
            if subject is None
            else Subject(
                subject["number"],
                subject["is_pull"],
                subject["author_id"],
                datetime.fromisoformat(subject["opened_at"]) if subject["opened_at"] else None,
            ),
            positive=int(data["positive"]),
            negative=int(data["negative"]),
        ),
        str(data["source"]),
    )
