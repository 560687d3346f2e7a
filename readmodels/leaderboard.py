"""The leaderboard as the pages read it: a scope's ranked contributors, points computed at read time
from the scoring in use (so the formula shown is the one applied), and the previous window's ranks.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Collection
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import quote

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

import catalogs
from engagement.leaderboard import LeaderboardConfig, settings_of
from settings import DEFAULT_GITHUB_URL
from storage.db import contributors, listed_on_pages, repositories, scope_members, window_totals
from storage.ledger import LedgerStore, scoring_in
from storage.rollups import org_scope, repo_scope
from storage.windows import WINDOWS

POINT_COLUMNS = {
    "merged_pull_request": "prs_merged",
    "review": "reviews",
    "issue": "issues_opened",
    "comment": "comments_credited",
    "review_comment": "review_comments_credited",
    "good_first_issue": "gfi_solved",
    "forum_topic": "forum_topics",
    "forum_reply": "forum_replies",
    "forum_solution": "forum_solutions",
    "forum_like": "forum_likes",
    "chat_message": "chat_messages_credited",
    "chat_reply": "chat_replies_credited",
    "chat_member_joined": "chat_members_joined",
    "credit": "credits",
}
COUNT_COLUMNS = {
    "issues": "issues_opened",
    "pull_requests": "prs_opened",
    "merged": "prs_merged",
    "reviews": "reviews",
    "comments": "comments",
    "review_comments": "review_comments",
    "good_first_issues": "gfi_solved",
}
MAX_LIMIT = 1000


class NotVisible(LookupError):
    """No such repository or owner, or only private data: nothing to show an anonymous visitor."""


def formula(settings: LeaderboardConfig) -> dict[str, Any]:
    weights = settings.points.by_kind()
    points = {kind: weights[kind] for kind in POINT_COLUMNS}
    cap = settings.daily_comment_cap
    # The words are the English pages' (`point.<kind>` in messages.po), for the JSON and CSV readers.
    words = catalogs.catalog(catalogs.DEFAULT, catalogs.PAGES)
    terms = [f"{weight} × {words.gettext(f'point.{kind}')}" for kind, weight in points.items() if weight]
    text = " + ".join(terms) or "0"
    if cap:
        text += f" (comments and chat messages: the first {cap} a day per person and repository or chat)"
    return {"points": points, "daily_comment_cap": cap, "text": text}


# --- reading the board


def resolve(conn: Connection, repo: str | None, org: str | None, readable: Collection[int] = ()) -> tuple[str, str]:
    """(scope, name shown) for a repository `owner/name` the pages list (installed, public, or private and
    `readable` by the viewer), or an owner of one; a repository removed from its installation, suspended
    or private is not there."""
    if repo:
        row = conn.execute(
            sa.select(repositories.c.id, repositories.c.full_name)
            .where(sa.func.lower(repositories.c.full_name) == repo.lower(), listed_on_pages(readable))
            .limit(1)
        ).first()
        if row is None:
            raise NotVisible(f"no public repository {repo}")
        return repo_scope(int(row.id)), str(row.full_name)
    if org:
        row = conn.execute(
            sa.select(repositories.c.owner)
            .where(sa.func.lower(repositories.c.owner) == org.lower(), listed_on_pages(readable))
            .limit(1)
        ).first()
        if row is None:
            raise NotVisible(f"no public repository of {org}")
        return org_scope(str(row.owner)), str(row.owner)
    raise NotVisible("say which repository (repo=OWNER/NAME) or owner (org=OWNER)")


def viewer_scopes(conn: Connection, scope: str, readable: Collection[int] = ()) -> list[str]:
    """The rollup scopes a board adds up for this viewer: the scope itself and, for an owner, each of its
    private repositories the viewer may read (owner-wide rollups hold the public repositories only)."""
    kind, _, owner = scope.partition(":")
    if kind != "org" or not readable:
        return [scope]
    r = repositories.c
    private = sa.select(r.id).where(sa.func.lower(r.owner) == owner, r.private == sa.true(), listed_on_pages(readable))
    return [scope] + [repo_scope(int(repo_id)) for repo_id in conn.execute(private.order_by(r.id)).scalars()]


TOTAL_COLUMNS = tuple(c.name for c in window_totals.c if c.name not in ("scope", "window", "actor_id"))


def _totals(scopes: list[str], window: str) -> Any:
    """One window's totals per person: a scope's rows as stored, or summed over several scopes."""
    t = window_totals.c
    if len(scopes) == 1:
        return sa.select(window_totals).where(t.scope == scopes[0], t.window == window).subquery("totals")
    sums = (sa.func.sum(t[name]).label(name) for name in TOTAL_COLUMNS)
    query = sa.select(t.actor_id, *sums).where(t.scope.in_(scopes), t.window == window).group_by(t.actor_id)
    return query.subquery("totals")


def members_in(scopes: list[str]) -> Any:
    """Each person's first and latest contribution: in a scope as stored, or the earliest and latest over
    several scopes."""
    m = scope_members.c
    if len(scopes) == 1:
        return sa.select(m.actor_id, m.first_at, m.last_at).where(m.scope == scopes[0]).subquery("members")
    query = sa.select(m.actor_id, sa.func.min(m.first_at).label("first_at"), sa.func.max(m.last_at).label("last_at"))
    return query.where(m.scope.in_(scopes)).group_by(m.actor_id).subquery("members")


def _points(settings: LeaderboardConfig, t: Any = window_totals.c) -> Any:
    """Points of a totals row under the formula (weights are integers the app validated)."""
    weights = settings.points.by_kind()
    weighted = (sa.literal(int(weights[kind])) * t[column] for kind, column in POINT_COLUMNS.items())
    return sum(weighted, sa.literal(0))


def _hidden(conn: Connection, settings: LeaderboardConfig) -> list[int]:
    """People not shown on this board: opted out everywhere, or excluded by its settings (a short list)."""
    excluded = [str(login).lower() for login in settings.exclude]
    condition = contributors.c.opted_out == sa.true()
    if excluded:
        condition = sa.or_(condition, sa.func.lower(contributors.c.login).in_(excluded))
    return [int(actor_id) for actor_id in conn.execute(sa.select(contributors.c.id).where(condition)).scalars()]


def _visible(t: Any, hidden: list[int], settings: LeaderboardConfig) -> list[Any]:
    """A board's rows of the totals `t`: people not hidden, with GitHub activity or points (forum activity
    alone, while the forum earns no points, keeps someone off the board as before the forum was recorded)."""
    on_board = sa.or_(*(t[column] > 0 for column in COUNT_COLUMNS.values()), _points(settings, t) > 0)
    return [on_board] + ([t.actor_id.notin_(hidden)] if hidden else [])


def board(
    engine: Engine,
    repo: str | None = None,
    org: str | None = None,
    window: str = "30d",
    limit: int | None = 100,
    today: date | None = None,
    readable: Collection[int] = (),
    github_url: str = DEFAULT_GITHUB_URL,
) -> dict[str, Any]:
    """The leaderboard as the JSON API gives it; raises NotVisible, or ValueError for a bad window.

    Standard competition ranking (1, 2, 2, 4); people with equal points are listed by login. Profiles link
    to `github_url` (GITHUB_URL: GitHub Enterprise Server's address, where the app runs against one).
    """
    if window not in WINDOWS:
        raise ValueError(f"window must be one of {', '.join(WINDOWS)}")
    today = today or datetime.now(UTC).date()
    store = LedgerStore(engine)
    store.advance(today)  # a no-op unless the day changed since the windows last moved
    with engine.connect() as conn:
        scope, name = resolve(conn, repo, org, readable)
        settings = settings_of(scoring_in(conn, scope))
        if not settings.enabled:
            raise NotVisible(f"the leaderboard of {name} is turned off")
        hidden = _hidden(conn, settings)
        scopes = viewer_scopes(conn, scope, readable)
        totals = _totals(scopes, window)
        t = totals.c
        visible = _visible(t, hidden, settings)
        total = int(conn.execute(sa.select(sa.func.count()).select_from(totals).where(*visible)).scalar_one())
        points = _points(settings, t).label("points")
        query = sa.select(t.actor_id, *(t[c] for c in COUNT_COLUMNS.values()), points).where(*visible)
        query = query.order_by(points.desc(), t.actor_id)
        if limit is not None:
            query = query.limit(max(1, min(limit, MAX_LIMIT)))
        rows = conn.execute(query).all()
        ids = [int(row.actor_id) for row in rows]
        logins = dict(
            conn.execute(sa.select(contributors.c.id, contributors.c.login).where(contributors.c.id.in_(ids))).all()
        )
        previous = _previous_ranks(conn, scopes, window, settings, hidden, ids)
        length = WINDOWS[window]
        start = today - timedelta(days=length - 1) if length else None
        newcomers = _newcomers(conn, scopes, ids, start) if start else set()
    ordered = sorted(rows, key=lambda row: (-int(row.points), str(logins.get(row.actor_id, "")).lower()))
    entries: list[dict[str, Any]] = []
    rank = 0
    for position, row in enumerate(ordered):
        if position == 0 or row.points != ordered[position - 1].points:
            rank = position + 1
        before = previous.get(int(row.actor_id))
        login = str(logins.get(row.actor_id, ""))
        entries.append(
            {
                "rank": rank,
                "login": login,
                "points": int(row.points),
                "counts": {key: int(row._mapping[column]) for key, column in COUNT_COLUMNS.items()},
                "previous_rank": before,
                "rank_change": None if before is None else before - rank,
                "newcomer": int(row.actor_id) in newcomers,
                # A forum or chat account not linked to GitHub (a negative id) has no GitHub profile.
                "profile_url": f"{github_url}/{quote(login)}" if int(row.actor_id) > 0 else None,
            }
        )
    return {
        "repo": name,
        "scope": "repository" if repo else "owner",
        "window": window,
        "window_start": start.isoformat() if start else None,
        "as_of": today.isoformat(),
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "formula": formula(settings),
        "kinds": list(COUNT_COLUMNS),
        "total": total,
        "entries": entries,
    }


def _previous_ranks(
    conn: Connection, scopes: list[str], window: str, settings: LeaderboardConfig, hidden: list[int], ids: list[int]
) -> dict[int, int]:
    """Each person's rank in the window before this one: 1 + how many scored more there."""
    if window == "all" or not ids:
        return {}
    t = _totals(scopes, f"{window}-prev").c
    query = sa.select(t.actor_id, _points(settings, t)).where(*_visible(t, hidden, settings))
    scores = {int(actor_id): int(points) for actor_id, points in conn.execute(query)}
    ascending = sorted(scores.values())
    wanted = set(ids)
    return {
        actor_id: len(ascending) - bisect_right(ascending, points) + 1
        for actor_id, points in scores.items()
        if actor_id in wanted
    }


def _newcomers(conn: Connection, scopes: list[str], ids: list[int], start: date) -> set[int]:
    """People whose first contribution in the scopes (the earliest over them) falls in the window."""
    if not ids:
        return set()
    m = members_in(scopes).c
    since = datetime.combine(start, datetime.min.time())
    return {
        int(row.actor_id) for row in conn.execute(sa.select(m.actor_id).where(m.actor_id.in_(ids), m.first_at >= since))
    }


def ranks_of(
    engine: Engine, actor_id: int, readable: Collection[int] = (), today: date | None = None
) -> list[dict[str, Any]]:
    """A person's rank on every board the viewer may see that has them, in each window: what `board`
    shows for them (from the same rollups and formula: 1 + how many there have more points), or None
    in a window where they are not on that board. Repository boards, and their owners' boards."""
    today = today or datetime.now(UTC).date()
    LedgerStore(engine).advance(today)
    r = repositories.c
    with engine.connect() as conn:
        names: dict[str, tuple[str, str]] = {}
        for row in conn.execute(sa.select(r.id, r.full_name, r.owner).where(listed_on_pages(readable))):
            names[repo_scope(int(row.id))] = ("repository", str(row.full_name))
            names.setdefault(org_scope(str(row.owner)), ("owner", str(row.owner)))
        if not names:
            return []
        query = sa.select(scope_members.c.scope).where(
            scope_members.c.actor_id == actor_id, scope_members.c.scope.in_(sorted(names))
        )
        member = set(conn.execute(query).scalars())
        # An owner's board also has whoever contributed to its private repositories this viewer reads.
        member |= {org_scope(names[s][1].split("/")[0]) for s in member if s.startswith("repo:")} & set(names)
        theirs = sorted(member, key=lambda scope: (names[scope][0], names[scope][1].lower()))
        found = []
        for scope in theirs:
            settings = settings_of(scoring_in(conn, scope))
            hidden = _hidden(conn, settings)
            if not settings.enabled or actor_id in hidden:
                continue
            scopes = viewer_scopes(conn, scope, readable)
            windows: dict[str, dict[str, int] | None] = {}
            for window in WINDOWS:
                totals = _totals(scopes, window)
                points, visible = _points(settings, totals.c), _visible(totals.c, hidden, settings)
                mine = conn.execute(
                    sa.select(points).select_from(totals).where(*visible, totals.c.actor_id == actor_id)
                ).scalar()
                if mine is None:
                    windows[window] = None
                    continue
                above = sa.func.coalesce(sa.func.sum(sa.case((points > int(mine), 1), else_=0)), 0)
                more, total = conn.execute(sa.select(above, sa.func.count()).select_from(totals).where(*visible)).one()
                windows[window] = {"rank": int(more) + 1, "points": int(mine), "total": int(total)}
            kind, name = names[scope]
            found.append({"scope": kind, "name": name, "windows": windows})
    return found


# --- one person's place (the badges, web/badges.py)


def standing(
    engine: Engine,
    login: str,
    repo: str | None = None,
    org: str | None = None,
    window: str = "30d",
    today: date | None = None,
    readable: Collection[int] = (),
) -> dict[str, Any]:
    """One person's line of `board()` without reading the whole board: their rank (1 + how many people
    on the board scored more, the same competition ranking), points and counts, and the board's size.
    `shown` is False for someone off the board by choice (`opted_out`) or by its `exclude`, and then
    nothing of theirs is given; someone with nothing in the window has no rank and zero counts. The login
    is matched as the board shows it (case-insensitively; a GitHub account before a forum or chat one).
    Raises NotVisible, or ValueError for a bad window."""
    if window not in WINDOWS:
        raise ValueError(f"window must be one of {', '.join(WINDOWS)}")
    today = today or datetime.now(UTC).date()
    LedgerStore(engine).advance(today)
    c = contributors.c
    with engine.connect() as conn:
        scope, name = resolve(conn, repo, org, readable)
        settings = settings_of(scoring_in(conn, scope))
        if not settings.enabled:
            raise NotVisible(f"the leaderboard of {name} is turned off")
        people = conn.execute(
            sa.select(c.id, c.login, c.opted_out)
            .where(sa.func.lower(c.login) == login.lower())
            .order_by(sa.case((c.id > 0, 0), else_=1), c.updated_at.desc())
            .limit(10)
        ).all()
        hidden = _hidden(conn, settings)
        totals = _totals(viewer_scopes(conn, scope, readable), window)
        t = totals.c
        visible = _visible(t, hidden, settings)
        count = sa.select(sa.func.count()).select_from(totals)
        total = int(conn.execute(count.where(*visible)).scalar_one())
        points = _points(settings, t).label("points")
        ids = [int(person.id) for person in people]
        rows = conn.execute(
            sa.select(t.actor_id, *(t[column] for column in COUNT_COLUMNS.values()), points).where(
                *visible, t.actor_id.in_(ids)
            )
        ).all()
        found = max(rows, key=lambda row: int(row.points), default=None)
        above = 0
        if found is not None:
            above = int(conn.execute(count.where(*visible, points > found.points)).scalar_one())
    person = next((p for p in people if found is not None and int(p.id) == int(found.actor_id)), None)
    person = person or (people[0] if people else None)
    excluded = {str(name).lower() for name in settings.exclude}
    opted_out = person is not None and bool(person.opted_out)
    shown = person is None or not (opted_out or str(person.login).lower() in excluded)
    return {
        "repo": name,
        "scope": "repository" if repo else "owner",
        "window": window,
        "as_of": today.isoformat(),
        "login": str(person.login) if person is not None else login,
        "shown": shown,
        "opted_out": opted_out,
        "rank": above + 1 if shown and found is not None else None,
        "points": int(found.points) if shown and found is not None else 0,
        "counts": {
            key: int(found._mapping[column]) if shown and found is not None else 0
            for key, column in COUNT_COLUMNS.items()
        },
        "total": total,
    }


# --- the opt-out command
