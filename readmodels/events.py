"""Events as the pages and the digest read them: which are listed, each one's leaderboard (the repository's
formula over the event's window and label), its participants and newcomers.

An event covers repositories the viewer may see only (`listed_on_pages(readable)`): an anonymous visitor
sees an event's public repositories' contributions, and an event none of whose repositories they may
see does not exist for them. The window is at most 90 days of a few repositories (engagement/events.py
bounds it), read from the ledger through its (repository, time) index: one grouped query per page.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from domain import contributions as kinds
from engagement.leaderboard import settings_of
from readmodels.leaderboard import COUNT_COLUMNS, POINT_COLUMNS, NotVisible, _hidden, formula
from settings import DEFAULT_GITHUB_URL
from storage.db import contributions, contributors, event_items, events, listed_on_pages, repositories, scope_members
from storage.events import StoredEvent, stored
from storage.ledger import scoring_in
from storage.rollups import CREDIT_COLUMNS, ROLLUP_COLUMNS, org_scope, repo_scope

UPCOMING, RUNNING, PAST = "upcoming", "running", "past"
LISTED = 500  # events on the index at most, the latest first
ACTIVITY = [kind for kind in kinds.KINDS if kind not in kinds.OUTCOME_KINDS]
TIME_FORMAT = "%Y-%m-%d %H:%M"


@dataclass(frozen=True)
class Covered:
    """A repository an event covers that this viewer may see."""

    id: int
    full_name: str


@dataclass(frozen=True)
class Event:
    definition: StoredEvent
    repositories: tuple[Covered, ...]

    @property
    def slug(self) -> str:
        return self.definition.slug

    def status(self, now: datetime) -> str:
        if now < self.definition.starts_at:
            return UPCOMING
        return RUNNING if now < self.definition.ends_at else PAST

    def local(self, at: datetime) -> str:
        """A UTC time as the event's time zone shows it."""
        return at.replace(tzinfo=UTC).astimezone(ZoneInfo(self.definition.timezone)).strftime(TIME_FORMAT)

    def summary(self, now: datetime) -> dict[str, Any]:
        d = self.definition
        return {
            "slug": d.slug,
            "name": d.name,
            "status": self.status(now),
            "starts_at": d.starts_at.isoformat() + "Z",
            "ends_at": d.ends_at.isoformat() + "Z",
            "start_local": self.local(d.starts_at),
            "end_local": self.local(d.ends_at),
            "timezone": d.timezone,
            "label": d.label,
            "repositories": [r.full_name for r in self.repositories],
        }


@dataclass
class Tally:
    """Per person: counts per rollup column (as the leaderboard's), and their first contribution in the event."""

    counts: dict[int, Counter[str]] = field(default_factory=dict)
    first: dict[int, datetime] = field(default_factory=dict)


# --- which events there are


def _visible(conn: Connection, readable: Collection[int]) -> list[Any]:
    r = repositories.c
    return list(conn.execute(sa.select(r.id, r.full_name, r.owner).where(listed_on_pages(readable))))


def _covered(definition: StoredEvent, visible: list[Any]) -> tuple[Covered, ...]:
    """The repositories of the event's owner it names (none named: the defining repository, or every one of
    the owner's for an organisation's event) that are in `visible`."""
    owner = definition.owner.lower()
    mine = [row for row in visible if str(row.owner).lower() == owner]
    if not definition.repositories:
        if definition.source.startswith("org:"):
            chosen = mine
        else:
            chosen = [row for row in mine if repo_scope(int(row.id)) == definition.source]
    else:
        wanted = {(name if "/" in name else f"{definition.owner}/{name}").lower() for name in definition.repositories}
        chosen = [row for row in mine if str(row.full_name).lower() in wanted]
    ordered = sorted(chosen, key=lambda row: str(row.full_name).lower())
    return tuple(Covered(int(row.id), str(row.full_name)) for row in ordered)


def _definitive(rows: Iterable[StoredEvent]) -> dict[str, StoredEvent]:
    """One event per slug: an organisation's before a repository's, then the oldest definition."""
    chosen: dict[str, StoredEvent] = {}
    for event in sorted(rows, key=lambda e: (not e.source.startswith("org:"), e.created_at or datetime.min)):
        chosen.setdefault(event.slug, event)
    return chosen


def listed(engine: Engine, readable: Collection[int] = (), now: datetime | None = None) -> dict[str, list[Event]]:
    """The events this viewer may see, as running, upcoming (soonest first) and past (latest first)."""
    now = now or now_utc()
    with engine.connect() as conn:
        rows = [stored(row) for row in conn.execute(sa.select(events).order_by(events.c.ends_at.desc()).limit(LISTED))]
        visible = _visible(conn, readable)
    found: dict[str, list[Event]] = {RUNNING: [], UPCOMING: [], PAST: []}
    for definition in _definitive(rows).values():
        covered = _covered(definition, visible)
        if covered:
            event = Event(definition, covered)
            found[event.status(now)].append(event)
    found[RUNNING].sort(key=lambda e: (e.definition.ends_at, e.slug))
    found[UPCOMING].sort(key=lambda e: (e.definition.starts_at, e.slug))
    found[PAST].sort(key=lambda e: (-e.definition.ends_at.timestamp(), e.slug))
    return found


def find(conn: Connection, slug: str, readable: Collection[int] = ()) -> Event:
    """The event at /events/<slug>, with the repositories this viewer may see; NotVisible when none."""
    rows = [stored(row) for row in conn.execute(sa.select(events).where(events.c.slug == slug))]
    definition = _definitive(rows).get(slug)
    if definition is None:
        raise NotVisible(f"no event {slug}")
    covered = _covered(definition, _visible(conn, readable))
    if not covered:
        raise NotVisible(f"no event {slug}")
    return Event(definition, covered)


# --- what happened in it


def tally(conn: Connection, event: Event) -> Tally:
    """Each person's contributions to the event: in its window, in its repositories, about an item carrying
    its label when it has one; bots were never recorded, closing an item is not a contribution."""
    c, i, d = contributions.c, event_items.c, event.definition
    query = (
        sa.select(c.actor_id, c.kind, c.credited, sa.func.count().label("n"), sa.func.min(c.occurred_at).label("first"))
        .where(c.repo_id.in_([r.id for r in event.repositories]))
        .where(c.occurred_at >= d.starts_at, c.occurred_at < d.ends_at, c.kind.in_(ACTIVITY))
        .group_by(c.actor_id, c.kind, c.credited)
    )
    if d.label:
        query = query.join(event_items, sa.and_(i.repo_id == c.repo_id, i.number == c.number, i.label == d.label))
    found = Tally()
    for row in conn.execute(query):
        actor_id, n = int(row.actor_id), int(row.n)
        counts = found.counts.setdefault(actor_id, Counter())
        for column in ROLLUP_COLUMNS.get(row.kind, ()):
            counts[column] += n
        if row.credited and row.kind in CREDIT_COLUMNS:
            counts[CREDIT_COLUMNS[row.kind]] += n
        first = found.first.get(actor_id)
        found.first[actor_id] = row.first if first is None else min(first, row.first)
    return found


def newcomers(conn: Connection, event: Event, people: Collection[int]) -> set[int]:
    """Participants whose first contribution ever, to the event's repositories or their owner's (as the
    rollups keep it), falls inside the event's window."""
    if not people:
        return set()
    m, d = scope_members.c, event.definition
    scopes = [repo_scope(r.id) for r in event.repositories] + [org_scope(d.owner)]
    query = (
        sa.select(m.actor_id, sa.func.min(m.first_at).label("first"))
        .where(m.scope.in_(scopes), m.actor_id.in_(sorted(people)))
        .group_by(m.actor_id)
    )
    return {int(row.actor_id) for row in conn.execute(query) if d.starts_at <= row.first < d.ends_at}


def _logins(conn: Connection, ids: Collection[int]) -> dict[int, str]:
    query = sa.select(contributors.c.id, contributors.c.login).where(contributors.c.id.in_(sorted(ids)))
    return {int(actor_id): str(login) for actor_id, login in conn.execute(query)}


def _settings(conn: Connection, event: Event) -> Any:
    """The leaderboard settings of the scope that defined the event: its formula, cap and exclusions."""
    return settings_of(scoring_in(conn, event.definition.source))


def board(
    engine: Engine,
    slug: str,
    readable: Collection[int] = (),
    now: datetime | None = None,
    github_url: str = DEFAULT_GITHUB_URL,
) -> dict[str, Any]:
    """The event's leaderboard (standard competition ranking, ties by login) and its figures; NotVisible.
    Profiles link to `github_url` (GITHUB_URL)."""
    now = now or now_utc()
    with engine.connect() as conn:
        event = find(conn, slug, readable)
        settings = _settings(conn, event)
        found = tally(conn, event)
        hidden = set(_hidden(conn, settings))
        new = newcomers(conn, event, list(found.counts))
        logins = _logins(conn, [a for a in found.counts if a not in hidden])
    weights = settings.points.by_kind()
    scored = [
        (actor_id, sum(int(weights[kind]) * counts[column] for kind, column in POINT_COLUMNS.items()))
        for actor_id, counts in found.counts.items()
        if actor_id not in hidden
    ]
    scored.sort(key=lambda pair: (-pair[1], logins.get(pair[0], "").lower()))
    entries, rank = [], 0
    for position, (actor_id, points) in enumerate(scored):
        if position == 0 or points != scored[position - 1][1]:
            rank = position + 1
        login = logins.get(actor_id, "")
        entries.append(
            {
                "rank": rank,
                "login": login,
                "points": points,
                "counts": {key: int(found.counts[actor_id][column]) for key, column in COUNT_COLUMNS.items()},
                "newcomer": actor_id in new,
                "profile_url": f"{github_url}/{quote(login)}" if actor_id > 0 else None,
            }
        )
    return {
        "event": event.summary(now),
        "formula": formula(settings),
        "kinds": list(COUNT_COLUMNS),
        "participants": len(found.counts),
        "newcomers": len(new),
        "entries": entries,
    }


def people(engine: Engine, slug: str, readable: Collection[int] = (), now: datetime | None = None) -> dict[str, Any]:
    """The event's participants (by their first contribution in it) and which of them are newcomers; people
    off the leaderboard are counted, never named."""
    now = now or now_utc()
    with engine.connect() as conn:
        event = find(conn, slug, readable)
        found = tally(conn, event)
        hidden = set(_hidden(conn, _settings(conn, event)))
        new = newcomers(conn, event, list(found.counts))
        logins = _logins(conn, [a for a in found.counts if a not in hidden])
    named = sorted((a for a in found.counts if a not in hidden), key=lambda a: (found.first[a], logins.get(a, "")))
    listed_people = [
        {
            "login": logins.get(actor_id, ""),
            "first": event.local(found.first[actor_id]),
            "contributions": sum(found.counts[actor_id][column] for column in COUNT_COLUMNS.values()),
            "newcomer": actor_id in new,
        }
        for actor_id in named
    ]
    return {
        "event": event.summary(now),
        "participants": listed_people,
        "newcomers": [p for p in listed_people if p["newcomer"]],
        "unnamed": len(found.counts) - len(named),
        "unnamed_newcomers": len(new & hidden),
        "total": len(found.counts),
        "total_newcomers": len(new),
    }


@dataclass(frozen=True)
class Running:
    """An event running when a digest is made, as its line says it."""

    slug: str
    name: str
    ends: str  # in the event's time zone
    timezone: str
    participants: int
    newcomers: int


def running(conn: Connection, repo_ids: Collection[int], at: datetime) -> list[Running]:
    """The public events covering any of these repositories that run at `at` (naive UTC), soonest ending first."""
    if not repo_ids:
        return []
    wanted = set(repo_ids)
    e = events.c
    query = sa.select(events).where(e.starts_at <= at, e.ends_at > at)
    rows = [stored(row) for row in conn.execute(query)]
    visible = _visible(conn, ())
    found = []
    for definition in sorted(_definitive(rows).values(), key=lambda d: (d.ends_at, d.slug)):
        covered = _covered(definition, visible)
        if not wanted & {r.id for r in covered}:
            continue
        event = Event(definition, covered)
        counted = tally(conn, event)
        new = newcomers(conn, event, list(counted.counts))
        ends = event.local(definition.ends_at)
        found.append(
            Running(definition.slug, definition.name, ends, definition.timezone, len(counted.counts), len(new))
        )
    return found


def now_utc() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)
