"""Events as the latest config files define them, and the issues and pull requests carrying their labels.

A config file is read by deliveries, never by a page: each delivery that read one keeps its events here
(`replace`, written only when they changed), so the event pages and the digest need no GitHub call. A
labelled event counts the contributions about items that carry its label; the webhooks about an issue or
pull request carry its labels, so `note_labels` keeps, per item, those that are some event's label.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from storage import db
from storage.db import event_items, events, utcnow
from storage.upsert import insert_ignore

# How long this process trusts that a source's events, once written or confirmed, are still the stored
# ones (as the ledger trusts its scoring settings): a delivery after that writes them again if they differ.
RECHECK_SECONDS = 60.0


@dataclass(frozen=True)
class EventDefinition:
    """One event as a config file defines it (engagement/events.py checked it)."""

    slug: str
    name: str
    starts_at: datetime  # naive UTC
    ends_at: datetime  # naive UTC, excluded
    timezone: str
    label: str | None  # lower case
    repositories: tuple[str, ...]  # names as written; empty: the defining repository, or all the owner's


@dataclass(frozen=True)
class StoredEvent(EventDefinition):
    source: str = ""  # repo:<id> | org:<owner>
    owner: str = ""
    created_at: datetime | None = None


_LABELS_OF = (
    sa.select(events.c.label)
    .where(sa.func.lower(events.c.owner) == sa.bindparam("owner"), events.c.label.is_not(None))
    .distinct()
)


class EventStore:
    def __init__(self, engine: Engine, recheck_seconds: float = RECHECK_SECONDS):
        self.engine = engine
        self.recheck_seconds = recheck_seconds
        self._stored: dict[str, tuple[str, float]] = {}  # source -> (what this process stored, when)
        # owner (lower case) -> (their events' labels, when read): every comment and issue webhook asks.
        self._labels: dict[str, tuple[frozenset[str], float]] = {}
        self._lock = threading.Lock()

    def replace(self, source: str, owner: str, definitions: Sequence[EventDefinition]) -> bool:
        """Make `source`'s events exactly `definitions`; True when anything was written."""
        text = json.dumps([_plain(d) for d in definitions], sort_keys=True, default=str) + owner
        now = time.monotonic()
        with self._lock:
            stored = self._stored.get(source)
            if stored is not None and stored[0] == text and now - stored[1] < self.recheck_seconds:
                return False
        wanted = {d.slug: d for d in definitions}
        e = events.c
        changed = False
        with db.begin(self.engine) as conn:
            rows = {row.slug: row for row in conn.execute(sa.select(events).where(e.source == source))}
            gone = [slug for slug in rows if slug not in wanted]
            if gone:
                conn.execute(events.delete().where(e.source == source, e.slug.in_(gone)))
                changed = True
            for slug, definition in wanted.items():
                values = {**_plain(definition), "owner": owner}
                values["repositories"] = json.dumps(list(definition.repositories))
                row = rows.get(slug)
                if row is None:
                    conn.execute(
                        events.insert().values(source=source, created_at=utcnow(), updated_at=utcnow(), **values)
                    )
                    changed = True
                elif any(getattr(row, key) != value for key, value in values.items()):
                    conn.execute(
                        events.update().where(e.source == source, e.slug == slug).values(updated_at=utcnow(), **values)
                    )
                    changed = True
        with self._lock:
            self._stored[source] = (text, now)
            if changed:
                self._labels.pop(owner.lower(), None)
        return changed

    def labels_of(self, owner: str) -> frozenset[str]:
        """The labels of the owner's labelled events (lower case). Read again after `recheck_seconds`, as
        `replace` trusts what it wrote, and at once after this process changed the owner's events."""
        key, now = owner.lower(), time.monotonic()
        with self._lock:
            known = self._labels.get(key)
        if known is not None and now - known[1] < self.recheck_seconds:
            return known[0]
        with db.connect(self.engine) as conn:
            found = frozenset(str(label) for label in conn.execute(_LABELS_OF, {"owner": key}).scalars())
        with self._lock:
            self._labels[key] = (found, now)
        return found

    def note_labels(self, repo_id: int, owner: str, number: int, labels: Iterable[str]) -> None:
        """An issue or pull request carries `labels` now (its latest webhook's): keep those that are an
        event's label. Costs one small read when the owner has no labelled event."""
        needed = self.labels_of(owner)
        if not needed:
            return
        wanted = {label.lower() for label in labels} & needed
        i = event_items.c
        with db.begin(self.engine) as conn:
            held = set(conn.execute(sa.select(i.label).where(i.repo_id == repo_id, i.number == number)).scalars())
            if held - wanted:
                conn.execute(
                    event_items.delete().where(
                        i.repo_id == repo_id, i.number == number, i.label.in_(sorted(held - wanted))
                    )
                )
            for label in sorted(wanted - held):
                insert_ignore(conn, event_items, {"repo_id": repo_id, "number": number, "label": label})


def _plain(definition: EventDefinition) -> dict[str, object]:
    return {
        "slug": definition.slug,
        "name": definition.name,
        "starts_at": definition.starts_at,
        "ends_at": definition.ends_at,
        "timezone": definition.timezone,
        "label": definition.label,
        "repositories": list(definition.repositories),
    }


def stored(row: sa.Row[object]) -> StoredEvent:
    """A row of `events` as a value."""
    m = row._mapping
    return StoredEvent(
        slug=str(m["slug"]),
        name=str(m["name"]),
        starts_at=m["starts_at"],
        ends_at=m["ends_at"],
        timezone=str(m["timezone"]),
        label=m["label"],
        repositories=tuple(json.loads(m["repositories"] or "[]")),
        source=str(m["source"]),
        owner=str(m["owner"]),
        created_at=m["created_at"],
    )
