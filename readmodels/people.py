"""One contributor's page: what they did where and when (ISO weeks, per repository and per forum or
chat), their rank on each board, the milestones the ledger shows, and their linked forum and chat
accounts.

Only what the viewer may see counts: listed repositories (private ones when `readable` has them) and
the community's forum and chats, whose activity is a person's only once they linked that account. A
person with nothing visible is not there (NotVisible), whether or not the ledger knows them, so the page
never tells. Someone who opted out of the leaderboard is shown as having opted out, and nothing else.
The timeline reads the per-day rollup (`actor_days`), the ranks `leaderboard.ranks_of`, and the
milestones a few of the ledger's own rows, all found by repository and person (their indexes' order).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import quote

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from domain import contributions as kinds
from domain.credits import CATEGORIES
from engagement.milestones import MilestonesConfig
from readmodels.leaderboard import COUNT_COLUMNS, NotVisible, ranks_of
from settings import DEFAULT_GITHUB_URL
from storage.credits import CreditStore
from storage.db import (
    CHAT_COUNTS,
    CREDIT_COUNTS,
    FORUM_COUNTS,
    actor_days,
    contributions,
    contributors,
    good_first_issues,
    identity_links,
    listed_on_pages,
    repositories,
    unindexed_order,
)
from storage.ledger import LedgerStore
from storage.rollups import week_of

# What the timeline counts: the board's GitHub kinds, then the forum's and the chats' (not the
# credited copies the daily cap keeps). Keys as the leaderboard's JSON names them.
COUNTS: dict[str, str] = {
    **COUNT_COLUMNS,
    **{name: name for name in FORUM_COUNTS},
    **{name: name for name in CHAT_COUNTS if not name.endswith("_credited")},
    **{name: name for name in CREDIT_COUNTS},
}
TIMELINE_WEEKS = 104  # the most recent active weeks shown; older ones are counted in `earlier_weeks`
GOOD_FIRST_ISSUES_SHOWN = 50
GITHUB = "github"
REVIEW = "review"
REVIEW_KINDS = (kinds.REVIEW_APPROVED, kinds.REVIEW_CHANGES_REQUESTED, kinds.REVIEW_COMMENTED)
# The milestones, by what reaching them is: the first of a kind, or the Nth merged pull request (the
# counts the milestones behaviour congratulates by default, here over every repository the viewer sees).
FIRSTS = {
    kinds.ISSUE_OPENED: "first_issue",
    kinds.PR_OPENED: "first_pull_request",
    kinds.PR_MERGED: "first_merge",
    REVIEW: "first_review",
    kinds.GFI_SOLVED: "first_good_first_issue",
}
MERGED_COUNTS = MilestonesConfig().merged_prs


@dataclass(frozen=True)
class Place:
    """A repository, or the community's forum or a chat, as this page names it."""

    id: int
    name: str
    platform: str  # github | discourse | telegram | rocketchat
    url: str
    private: bool


def page(
    engine: Engine,
    login: str,
    readable: Collection[int] = (),
    today: date | None = None,
    github_url: str = DEFAULT_GITHUB_URL,
) -> dict[str, Any]:
    """The person's page as the JSON API gives it; raises NotVisible (unknown, or nothing visible). Their
    profile links to `github_url` (GITHUB_URL)."""
    today = today or datetime.now(UTC).date()
    with engine.connect() as conn:
        person = _person(conn, login)
        if person is None:
            raise NotVisible(f"no contributor {login}")
        places = _places(conn, readable)
        days = _days(conn, int(person.id), places)
        if not days:
            raise NotVisible(f"nothing of {login} to show")
        if person.opted_out:
            return {"login": str(person.login), "opted_out": True}
        github = [place_id for place_id in places if place_id >= 0]
        milestones, solved = _milestones(conn, int(person.id), places, github)
        accounts = _accounts(conn, int(person.id))
    timeline, earlier = _timeline(days, places)
    totals: Counter[str] = Counter()
    for _, _, counts in days:
        totals.update(counts)
    return {
        "login": str(person.login),
        "opted_out": False,
        "profile_url": f"{github_url}/{quote(person.login)}",
        "as_of": today.isoformat(),
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "first_day": min(day for _, day, _ in days).isoformat(),
        "last_day": max(day for _, day, _ in days).isoformat(),
        "totals": {key: totals[key] for key in COUNTS if totals[key]},
        "ranks": ranks_of(engine, int(person.id), readable, today),
        "milestones": milestones,
        "good_first_issues": solved,
        "timeline": timeline,
        "earlier_weeks": earlier,
        "community": _community(days, places, accounts),
        "credits": _credits(engine, str(person.login), readable),
    }


def _credits(engine: Engine, login: str, readable: Collection[int]) -> list[dict[str, Any]]:
    """What maintainers credited them for with `/credit` (engagement/credit.py), newest first."""
    return [
        {
            "repo": given.repository,
            "category": given.category,
            "emoji": CATEGORIES.get(given.category, ""),
            "note": given.note,
            "given_by": given.given_by,
            "url": given.url,
            "at": given.given_at.isoformat(timespec="seconds") + "Z",
        }
        for given in CreditStore(LedgerStore(engine)).of_person(login, readable)
    ]


def _person(conn: Connection, login: str) -> Any:
    """The GitHub person going by `login` now (the latest seen, should GitHub have given it to another)."""
    c = contributors.c
    query = (
        sa.select(c.id, c.login, c.opted_out)
        .where(sa.func.lower(c.login) == login.lower(), c.id > 0)
        .order_by(c.updated_at.desc())
        .limit(1)
    )
    return conn.execute(query).first()


def _places(conn: Connection, readable: Collection[int]) -> dict[int, Place]:
    """Where the viewer may see activity: the listed repositories, and the community's forum and chats."""
    r = repositories.c
    query = sa.select(r.id, r.full_name, r.private, r.html_url).where(sa.or_(listed_on_pages(readable), r.id < 0))
    found = {}
    for row in conn.execute(query):
        place_id, name = int(row.id), str(row.full_name)
        platform = GITHUB if place_id >= 0 else name.split("/", 1)[-1].split(":", 1)[0]
        found[place_id] = Place(place_id, name, platform, str(row.html_url or ""), bool(row.private))
    return found


def _days(conn: Connection, actor_id: int, places: dict[int, Place]) -> list[tuple[int, date, dict[str, int]]]:
    """(place, day, counts) of every day the person was active in a visible place."""
    if not places:
        return []
    a = actor_days.c
    columns = [a[column] for column in COUNTS.values()]
    query = sa.select(a.repo_id, a.day, *columns).where(a.repo_id.in_(sorted(places)), a.actor_id == actor_id)
    found = []
    for row in conn.execute(query):
        counts = {key: int(row._mapping[column]) for key, column in COUNTS.items() if row._mapping[column]}
        if counts:
            found.append((int(row.repo_id), row.day, counts))
    return found


def iso_week(monday: date) -> str:
    year, week, _ = monday.isocalendar()
    return f"{year}-W{week:02d}"


def _timeline(
    days: Iterable[tuple[int, date, dict[str, int]]], places: dict[int, Place]
) -> tuple[list[dict[str, Any]], int]:
    """Newest week first, each with its places (most active first) and their counts per kind."""
    weeks: defaultdict[date, defaultdict[int, Counter[str]]] = defaultdict(lambda: defaultdict(Counter))
    for place_id, day, counts in days:
        weeks[week_of(day)][place_id].update(counts)
    ordered = sorted(weeks, reverse=True)
    timeline = []
    for monday in ordered[:TIMELINE_WEEKS]:
        rows: list[dict[str, Any]] = []
        for place_id, counts in weeks[monday].items():
            place = places[place_id]
            shown = {key: counts[key] for key in COUNTS if counts[key]}
            rows.append(
                {
                    "name": place.name,
                    "platform": place.platform,
                    "url": place.url,
                    "private": place.private,
                    "counts": shown,
                    "total": sum(shown.values()),
                }
            )
        rows.sort(key=lambda row: (-row["total"], row["name"].lower()))
        total = sum(row["total"] for row in rows)
        timeline.append({"week": iso_week(monday), "start": monday.isoformat(), "total": total, "places": rows})
    return timeline, max(0, len(ordered) - TIMELINE_WEEKS)


def _milestones(
    conn: Connection, actor_id: int, places: dict[int, Place], github: list[int]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The milestones reached (oldest first), and the good first issues solved (newest first)."""
    if not github:
        return [], []
    c = contributions.c
    what = sa.case((c.kind.in_(REVIEW_KINDS), sa.literal(REVIEW)), else_=c.kind).label("what")
    n = sa.func.row_number().over(partition_by=what, order_by=(c.occurred_at, c.id)).label("n")
    wanted = [kinds.ISSUE_OPENED, kinds.PR_OPENED, kinds.PR_MERGED, kinds.GFI_SOLVED, *REVIEW_KINDS]
    mine = [c.repo_id.in_(github), c.actor_id == actor_id, c.kind.in_(wanted)]
    ranked = sa.select(what, c.repo_id, c.url, c.occurred_at, n).where(*mine).subquery()
    reached = sa.or_(ranked.c.n == 1, sa.and_(ranked.c.what == kinds.PR_MERGED, ranked.c.n.in_(MERGED_COUNTS)))
    milestones = []
    for row in conn.execute(sa.select(ranked).where(reached)):
        found = [(FIRSTS[row.what], 1)] if row.n == 1 else []
        if row.what == kinds.PR_MERGED and row.n in MERGED_COUNTS:
            found.append(("merged_prs", int(row.n)))
        at, repo, url = row.occurred_at.isoformat(), places[int(row.repo_id)].name, str(row.url)
        milestones += [{"kind": kind, "n": count, "at": at, "repo": repo, "url": url} for kind, count in found]
    order = [*FIRSTS.values(), "merged_prs"]
    milestones.sort(key=lambda m: (m["at"], order.index(m["kind"]), m["n"]))
    return milestones, _solved(conn, actor_id, places, github)


def _solved(conn: Connection, actor_id: int, places: dict[int, Place], github: list[int]) -> list[dict[str, Any]]:
    """Good first issues the person solved, with their titles as the app last saw them."""
    c, g = contributions.c, good_first_issues.c
    query = (
        sa.select(c.repo_id, c.key, c.url, c.occurred_at)
        .where(c.repo_id.in_(github), c.actor_id == actor_id, c.kind == kinds.GFI_SOLVED)
        .order_by(unindexed_order(c.occurred_at).desc())
        .limit(GOOD_FIRST_ISSUES_SHOWN)
    )
    rows = conn.execute(query).all()
    # The key names the issue (`good_first_issue_solved:<repo id>:<issue number>`); `number` is the pull's.
    numbers = {(int(row.repo_id), int(str(row.key).rsplit(":", 1)[-1])) for row in rows}
    issues: dict[tuple[int, int], Any] = {}
    if numbers:
        condition = sa.or_(*(sa.and_(g.repo_id == repo_id, g.number == number) for repo_id, number in numbers))
        for found in conn.execute(sa.select(g.repo_id, g.number, g.title, g.html_url).where(condition)):
            issues[(int(found.repo_id), int(found.number))] = found
    solved = []
    for row in rows:
        number = int(str(row.key).rsplit(":", 1)[-1])
        issue = issues.get((int(row.repo_id), number))
        solved.append(
            {
                "repo": places[int(row.repo_id)].name,
                "number": number,
                "title": str(issue.title) if issue is not None else "",
                "url": str(issue.html_url) if issue is not None else str(row.url),
                "at": row.occurred_at.isoformat(),
            }
        )
    return solved


def _accounts(conn: Connection, github_id: int) -> list[dict[str, str | None]]:
    """The person's linked forum and chat accounts, by their public names there (never their ids)."""
    link = identity_links.c
    query = sa.select(link.platform, link.username).where(link.github_id == github_id).order_by(link.platform)
    # A Telegram account the operator linked by its numeric id, or one without a username, has no name
    # but its id: then the platform alone is shown.
    return [
        {"platform": str(row.platform), "name": None if str(row.username).isdigit() else str(row.username)}
        for row in conn.execute(query)
    ]


def _community(
    days: Iterable[tuple[int, date, dict[str, int]]], places: dict[int, Place], accounts: list[dict[str, str | None]]
) -> dict[str, Any]:
    """Linked forum and chat activity: how much per week on each platform, newest week first."""
    weeks: defaultdict[date, Counter[str]] = defaultdict(Counter)
    for place_id, day, counts in days:
        if place_id < 0:
            weeks[week_of(day)][places[place_id].platform] += sum(counts.values())
    ordered = sorted(weeks, reverse=True)[:TIMELINE_WEEKS]
    return {
        "accounts": accounts,
        "platforms": sorted({platform for monday in ordered for platform in weeks[monday]}),
        "weeks": [{"week": iso_week(m), "start": m.isoformat(), "platforms": dict(weeks[m])} for m in ordered],
    }
