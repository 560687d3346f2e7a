"""Community health per repository and ISO week (UTC), read from the ledger's weekly rollups.

Every series comes with its mean, spread (population standard deviation), least-squares trend and
the weeks beyond two standard deviations. Definitions (README, "Metrics"), CHAOSS names in brackets:
active contributors [Contributors]: people with at least one contribution (issue, pull request,
review, comment) that week; new contributors [New Contributors]: people whose first contribution to
the repository fell in that week; returning: active but not new; retention after 30 / 90 days: of
the week's new contributors, the share who contributed again 30 / 90 days or more after their first
contribution (shown once the whole week is that old); time to first response [Time to First
Response]: median hours from opening to the first comment or review by a person other than the
author (bots never count), by the week the issue or pull request was opened; pull request
acceptance [Change Request Acceptance Ratio]: merged / (merged + closed unmerged), by week closed;
satisfaction: positive reactions (👍 😄 🎉 ❤️ 🚀) / (positive + negative (👎 😕)) on issues and pull
requests closed that week.

Those series are GitHub's. An owner's community also lives on its forum and chats (places with a
negative id in its owner scope, `domain.contributions.is_community_place`); `platform` (all, github,
forum or chat) chooses which places the cross-platform series read: active, new and returning users,
the forum's and the chat's own series and the funnel from forum or chat to a first GitHub contribution.
Until identity linking is built, a forum or chat account is a person of its own (its platform id).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from domain import contributions as kinds
from readmodels.leaderboard import members_in, resolve, viewer_scopes
from readmodels.stats import median, summarise, weeks_ending
from storage.db import (
    WEEKLY_COUNTS,
    contributions,
    listed_on_pages,
    repositories,
    responses,
    scope_members,
    weekly,
    weekly_actors,
)
from storage.rollups import repo_scope, week_of

MAX_WEEKS = 156
RETENTION_DAYS = (30, 90)
# Series and their unit, in the order pages show them.
SERIES = {
    "active_contributors": "count",
    "new_contributors": "count",
    "returning_contributors": "count",
    "retention_30d": "ratio",
    "retention_90d": "ratio",
    "issues_opened": "count",
    "comments": "count",
    "prs_opened": "count",
    "prs_merged": "count",
    "reviews": "count",
    "first_response_issues_hours": "hours",
    "first_response_pulls_hours": "hours",
    "pr_acceptance": "ratio",
    "satisfaction": "ratio",
    "active_users": "count",
    "new_users": "count",
    "returning_users": "count",
    "forum_topics": "count",
    "forum_replies": "count",
    "forum_solved_share": "ratio",
    "forum_first_reply_hours": "hours",
    "chat_messages": "count",
    "chat_active_members": "count",
    "forum_chat_to_first_contribution": "count",
}
# Whether a rise is good news, per series: pages colour and word trends and changes by it, so a response
# time that climbs reads as worse, not as neutral. More people, more work and higher shares are better;
# longer waits for a first answer are worse.
UP_IS_GOOD: dict[str, bool] = {
    **{name: True for name in SERIES},
    "first_response_issues_hours": False,
    "first_response_pulls_hours": False,
    "forum_first_reply_hours": False,
}
# The headline row: the figures people read first, the first HEADLINE_SHOWN of the platforms chosen.
HEADLINE = (
    "active_contributors",
    "new_contributors",
    "prs_merged",
    "first_response_issues_hours",
    "pr_acceptance",
    "retention_30d",
    "forum_topics",
    "forum_first_reply_hours",
    "forum_solved_share",
    "chat_active_members",
    "chat_messages",
)
HEADLINE_SHOWN = 6
BETTER, WORSE, SAME, UNKNOWN = "better", "worse", "same", "unknown"
GITHUB, FORUM, CHAT = "github", "forum", "chat"
ALL_PLATFORMS = "all"
PLATFORMS = (GITHUB, FORUM, CHAT)
COMMUNITY_PLATFORMS = (FORUM, CHAT)
# A community place's platform, from its name's part before ':' (`Forum.place`, `Chat.place`).
PLACE_PLATFORMS = {"discourse": FORUM, kinds.TELEGRAM: CHAT, kinds.ROCKETCHAT: CHAT}
# What makes someone active on the forum or in a chat: writing there. A like received or joining a group
# is not taking part (and the like is credited to the post's author, not to whoever liked it).
SPEAKING_KINDS = {FORUM: (kinds.FORUM_TOPIC, kinds.FORUM_REPLY), CHAT: (kinds.CHAT_MESSAGE, kinds.CHAT_REPLY)}
CROSS_PLATFORM = ("active_users", "new_users", "returning_users")
# The platforms each series reads: it has values (and a place on the page) when one of them is chosen.
SERIES_PLATFORMS: dict[str, tuple[str, ...]] = {
    **{name: (GITHUB,) for name in SERIES},
    **{name: PLATFORMS for name in CROSS_PLATFORM},
    **{name: (FORUM,) for name in SERIES if name.startswith("forum_")},
    **{name: (CHAT,) for name in SERIES if name.startswith("chat_")},
    "forum_chat_to_first_contribution": COMMUNITY_PLATFORMS,
}


class UnknownPlatform(ValueError):
    """A `platform` other than all, github, forum or chat, or a forum or chat asked of one repository."""


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def report(
    engine: Engine,
    repo: str | None,
    weeks: int = 12,
    today: date | None = None,
    org: str | None = None,
    platform: str = ALL_PLATFORMS,
    readable: Collection[int] = (),
) -> dict[str, Any]:
    """The insights JSON for a repository the pages list, or (`org`) an owner's listed repositories and
    its community's forum and chats together, with the `platform` chosen; raises leaderboard.NotVisible,
    UnknownPlatform, ValueError for `weeks`."""
    if not 1 <= weeks <= MAX_WEEKS:
        raise ValueError(f"weeks must be between 1 and {MAX_WEEKS}")
    if platform not in (ALL_PLATFORMS, *PLATFORMS):
        raise UnknownPlatform(f"platform must be one of {ALL_PLATFORMS}, {', '.join(PLATFORMS)}")
    if repo and platform not in (ALL_PLATFORMS, GITHUB):
        raise UnknownPlatform("a repository has no forum or chat: platform must be all or github")
    chosen = PLATFORMS if platform == ALL_PLATFORMS and not repo else (GITHUB,) if repo else (platform,)
    today = today or datetime.now(UTC).date()
    mondays = weeks_ending(today, weeks)
    first, last = mondays[0], mondays[-1]
    with engine.connect() as conn:
        scope, shown = resolve(conn, repo, org, readable)
        repo_ids = scope_repositories(conn, scope, readable)
        counts = _weekly_counts(conn, scope, repo_ids, first, last)
        answered = conn.execute(
            _answered(conn, repo_ids, responses.c.opened_week >= first, responses.c.opened_week <= last)
        ).all()
        # Newcomers per day they arrived, with how many came back 30 and 90 days after (aggregated in SQL).
        # An owner's members: its public repositories' (the rollup), and the private ones this viewer reads.
        members = members_in(viewer_scopes(conn, scope, readable)).c
        stayed = _hours(conn, members.first_at, members.last_at)
        arrivals = conn.execute(
            sa.select(
                sa.type_coerce(sa.func.date(members.first_at), sa.String),
                sa.func.count(),
                *(sa.func.sum(sa.case((stayed >= days * 24 - 1e-6, 1), else_=0)) for days in RETENTION_DAYS),
            )
            .where(
                members.first_at >= datetime.combine(first, datetime.min.time()),
                members.actor_id > 0,  # GitHub's people: an owner's forum and chat ids are negative
            )
            .group_by(sa.func.date(members.first_at))
        ).all()
        community = _community_series(conn, scope, repo_ids, chosen, mondays)

    def count(week: date, column: str) -> int:
        if column == "new" and scope.startswith("org:"):
            return joined[week][0] if week in joined else 0  # people new to the owner, not to one repository
        row = counts.get(week)
        return int(row.get(column) or 0) if row is not None else 0

    response_hours: dict[tuple[str, bool], list[float]] = defaultdict(list)
    for week_text, is_pull, spent in answered:
        response_hours[(str(week_text)[:10], bool(is_pull))].append(float(spent))
    joined: dict[date, list[int]] = defaultdict(lambda: [0] * (1 + len(RETENTION_DAYS)))
    for day_text, *numbers in arrivals:
        week = week_of(date.fromisoformat(str(day_text)[:10]))
        joined[week] = [held + int(n or 0) for held, n in zip(joined[week], numbers, strict=True)]

    def retention(week: date, days: int) -> float | None:
        if week + timedelta(days=7 + days) > today:
            return None  # not every newcomer of the week has had `days` days yet
        newcomers, *returned = joined.get(week, [0] * (1 + len(RETENTION_DAYS)))
        return _ratio(returned[RETENTION_DAYS.index(days)], newcomers)

    values: dict[str, list[float | None]] = {name: [] for name in SERIES}
    for week in mondays:
        c = {column: count(week, column) for column in WEEKLY_COUNTS}
        week_values: dict[str, float | None] = {
            "active_contributors": c["active"],
            "new_contributors": c["new"],
            "returning_contributors": c["active"] - c["new"],
            "retention_30d": retention(week, 30),
            "retention_90d": retention(week, 90),
            "issues_opened": c["issues_opened"],
            "comments": c["comments"] + c["review_comments"],
            "prs_opened": c["prs_opened"],
            "prs_merged": c["prs_merged"],
            "reviews": c["reviews"],
            "first_response_issues_hours": _rounded(median(response_hours.get((week.isoformat(), False), []))),
            "first_response_pulls_hours": _rounded(median(response_hours.get((week.isoformat(), True), []))),
            "pr_acceptance": _ratio(c["prs_merged"], c["prs_merged"] + c["prs_closed"]),
            "satisfaction": _ratio(c["positive"], c["positive"] + c["negative"]),
            **{name: by_week.get(week) for name, by_week in community.items()},
        }
        for key, value in week_values.items():
            values[key].append(value)
    # The week of `today` is still running: shown, but its part-week never counts in a mean, a spread,
    # a trend or an anomaly as if it were a whole week.
    complete = sum(1 for monday in mondays if monday + timedelta(days=7) <= today)
    series = {}
    for name, unit in SERIES.items():
        if not set(SERIES_PLATFORMS[name]) & set(chosen):
            values[name] = [None] * len(mondays)  # a platform not chosen: no data, rather than zeros
        summary = summarise(values[name][:complete])
        series[name] = {
            "unit": unit,
            "values": values[name],
            "mean": _rounded(summary.mean),
            "stddev": _rounded(summary.stddev),
            "slope": _rounded(summary.slope),
            "direction": summary.direction,
            "up_is_good": UP_IS_GOOD[name],
            # A trend too small to call (steady) is the same, whichever way its slope leans.
            "trend_verdict": SAME if summary.direction == "steady" else verdict(summary.slope, UP_IS_GOOD[name]),
            "anomalies": [mondays[i].isoformat() for i in summary.anomalies],
        }
    return {
        "repo": shown,
        "scope": "repository" if scope.startswith("repo:") else "owner",
        "platform": platform,
        "platforms": list(chosen),
        "weeks": [monday.isoformat() for monday in mondays],
        "span_weeks": weeks,
        "partial_week": mondays[-1].isoformat() if complete < len(mondays) else None,
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "series": series,
        "headline": headline(series, [monday.isoformat() for monday in mondays[:complete]], chosen),
    }


def _answered(conn: Connection, repo_ids: list[int], *conditions: Any) -> Any:
    """(opened week, is a pull request, hours to the first response) of the answered issues and pull
    requests of `repo_ids` (unanswered ones are left out: the time to first response's definition)."""
    r = responses.c
    hours = _hours(conn, r.opened_at, r.first_response_at)
    return sa.select(sa.type_coerce(r.opened_week, sa.String), r.is_pull, hours).where(
        r.repo_id.in_(repo_ids), r.first_response_at.is_not(None), *conditions
    )


def first_response(
    engine: Engine, repo: str, days: int = 30, today: date | None = None, readable: Collection[int] = ()
) -> dict[str, Any]:
    """Median hours to the first response over the issues and pull requests opened in the last `days`
    days (today and the days before, UTC, as the leaderboard's windows), both kinds together: the
    insights' time to first response over a rolling span instead of per week (the repository's badge).
    Raises leaderboard.NotVisible."""
    today = today or datetime.now(UTC).date()
    since = datetime.combine(today - timedelta(days=days - 1), datetime.min.time())
    with engine.connect() as conn:
        scope, shown = resolve(conn, repo, None, readable)
        # The week bound lets `ix_responses_repo_week` find them; the time bound is the span itself.
        query = _answered(
            conn,
            scope_repositories(conn, scope),
            responses.c.opened_week >= week_of(since.date()),
            responses.c.opened_at >= since,
        )
        hours = [float(spent) for _week, _is_pull, spent in conn.execute(query)]
    return {"repo": shown, "days": days, "answered": len(hours), "median_hours": _rounded(median(hours))}


def verdict(change: float | None, up_is_good: bool) -> str:
    """Whether a change is good news for a series: better, worse, same, or unknown (no figure to compare)."""
    if change is None:
        return UNKNOWN
    if change == 0:
        return SAME
    return BETTER if (change > 0) == up_is_good else WORSE


def headline(
    series: Mapping[str, Mapping[str, Any]], complete_weeks: list[str], chosen: Iterable[str]
) -> list[dict[str, Any]]:
    """The headline figures: each one's latest complete week, the week before and the change between them,
    judged better or worse by whether a rise is good news for it (UP_IS_GOOD)."""
    shown = [name for name in HEADLINE if set(SERIES_PLATFORMS[name]) & set(chosen)][:HEADLINE_SHOWN]
    figures = []
    for name in shown:
        values = series[name]["values"][: len(complete_weeks)]
        current = values[-1] if values else None
        previous = values[-2] if len(values) > 1 else None
        change = None if current is None or previous is None else _rounded(current - previous)
        figures.append(
            {
                "series": name,
                "unit": series[name]["unit"],
                "week": complete_weeks[-1] if complete_weeks else None,
                "value": current,
                "previous": previous,
                "change": change,
                "up_is_good": UP_IS_GOOD[name],
                "verdict": verdict(change, UP_IS_GOOD[name]),
            }
        )
    return figures


def scope_repositories(conn: Connection, scope: str, readable: Collection[int] = ()) -> list[int]:
    """The repositories a scope counts: `repo:<id>` itself, or `org:<owner>`'s listed ones (installed, and
    public or `readable` by the viewer)."""
    kind, _, name = scope.partition(":")
    if kind == "repo":
        return [int(name)]
    query = sa.select(repositories.c.id).where(sa.func.lower(repositories.c.owner) == name, listed_on_pages(readable))
    return [int(repo_id) for repo_id in conn.execute(query).scalars()]


def _weekly_counts(
    conn: Connection, scope: str, repo_ids: list[int], first: date, last: date
) -> dict[date, dict[str, Any]]:
    """The `weekly` rollup of the scope's repositories, per week; for an owner summed over its repositories,
    with each person active in several counted once (its `new` comes from the owner's members instead)."""
    in_span = (weekly.c.repo_id.in_(repo_ids), weekly.c.week >= first, weekly.c.week <= last)
    if scope.startswith("repo:"):
        return {row.week: dict(row._mapping) for row in conn.execute(sa.select(weekly).where(*in_span))}
    summed = [sa.func.sum(weekly.c[column]).label(column) for column in WEEKLY_COUNTS if column != "active"]
    counts: dict[date, dict[str, Any]] = {
        row.week: dict(row._mapping)
        for row in conn.execute(sa.select(weekly.c.week, *summed).where(*in_span).group_by(weekly.c.week))
    }
    a = weekly_actors.c
    active = sa.select(a.week, sa.func.count(sa.distinct(a.actor_id))).where(
        a.repo_id.in_(repo_ids), a.week >= first, a.week <= last
    )
    for week, people in conn.execute(active.group_by(a.week)):
        counts.setdefault(week, {})["active"] = int(people)
    return counts


def community_places(conn: Connection, scope: str) -> dict[str, list[int]]:
    """The forum and chat places of an owner's community (none for a repository), per platform."""
    places: dict[str, list[int]] = {platform: [] for platform in COMMUNITY_PLATFORMS}
    kind, _, owner = scope.partition(":")
    if kind != "org":
        return places
    r = repositories.c
    for place_id, full_name in conn.execute(
        sa.select(r.id, r.full_name).where(sa.func.lower(r.owner) == owner, r.id < 0)
    ):
        platform = PLACE_PLATFORMS.get(str(full_name).split("/", 1)[-1].split(":", 1)[0])
        if platform is not None:
            places[platform].append(int(place_id))
    return places


def _community_series(
    conn: Connection, scope: str, repo_ids: list[int], chosen: tuple[str, ...], mondays: list[date]
) -> dict[str, dict[date, float | None]]:
    """The cross-platform, forum and chat series per week (README, "Metric definitions"), in SQL over
    GitHub's rollups and, for the forum and chats, the ledger itself (by `ix_contributions_repo_time`
    and `ix_contributions_repo_actor`): no rollup tells who wrote rather than was liked or joined."""
    first, last = mondays[0], mondays[-1]
    start = datetime.combine(first, datetime.min.time())
    end = datetime.combine(last + timedelta(days=7), datetime.min.time())
    places = community_places(conn, scope)
    spoken = [p for p in COMMUNITY_PLATFORMS if p in chosen]
    c = contributions.c

    def speaking(table: Any, platforms: list[str]) -> Any:
        """Contributions of `table` (the ledger or an alias) that make someone active on `platforms`."""
        ids = [place for p in platforms for place in places[p]]
        return sa.and_(table.c.repo_id.in_(ids), table.c.kind.in_([k for p in platforms for k in SPEAKING_KINDS[p]]))

    def in_span(table: Any) -> Any:
        return sa.and_(table.c.occurred_at >= start, table.c.occurred_at < end)

    # Active users: people on GitHub's weekly rollup and the forum's and chats' writers, each once a week.
    a = weekly_actors.c
    active_parts: list[Any] = [
        sa.select(c.week, c.actor_id).where(speaking(contributions, spoken), in_span(contributions))
    ]
    if GITHUB in chosen:
        active_parts.append(
            sa.select(a.week, a.actor_id).where(a.repo_id.in_(repo_ids), a.week >= first, a.week <= last)
        )
    people = sa.union_all(*active_parts).subquery()
    active = _per_week(
        conn.execute(sa.select(people.c.week, sa.func.count(sa.distinct(people.c.actor_id))).group_by(people.c.week))
    )

    # New users: people whose first activity on the chosen platforms fell in the span (GitHub's firsts
    # per repository from `scope_members`); only people active in the span are looked up at all.
    gh_scopes = [repo_scope(repo_id) for repo_id in repo_ids] if GITHUB in chosen else []
    m, cm, cc = scope_members.c, scope_members.alias("recent_member").c, contributions.alias("recent")
    recent = sa.union(
        sa.select(cm.actor_id).where(cm.scope.in_(gh_scopes), cm.first_at >= start),
        sa.select(cc.c.actor_id).where(speaking(cc, spoken), cc.c.occurred_at >= start),
    )
    firsts = sa.union_all(
        sa.select(m.actor_id, m.first_at.label("at")).where(m.scope.in_(gh_scopes), m.actor_id.in_(recent)),
        sa.select(c.actor_id, c.occurred_at.label("at")).where(speaking(contributions, spoken), c.actor_id.in_(recent)),
    ).subquery()
    arrived = (
        sa.select(sa.func.min(firsts.c.at).label("at"))
        .group_by(firsts.c.actor_id)
        .having(sa.func.min(firsts.c.at) >= start)
        .subquery()
    )
    new = _per_day(
        conn.execute(sa.select(sa.func.date(arrived.c.at), sa.func.count()).group_by(sa.func.date(arrived.c.at)))
    )

    # The funnel: people whose first GitHub contribution fell in the span, who wrote on the forum or in a
    # chat before it (0 while forum and chat accounts are not linked to GitHub ones).
    gm = scope_members.alias("github_member").c
    github_first = (
        sa.select(m.actor_id, sa.func.min(m.first_at).label("at"))
        .where(
            m.scope.in_([repo_scope(repo_id) for repo_id in repo_ids]),
            m.actor_id.in_(
                sa.select(gm.actor_id).where(gm.scope.in_([repo_scope(i) for i in repo_ids]), gm.first_at >= start)
            ),
        )
        .group_by(m.actor_id)
        .having(sa.func.min(m.first_at) >= start)
        .subquery()
    )
    # Each of them's first forum or chat writing, grouped (so both databases look it up once per person
    # in ix_contributions_repo_actor rather than once per row).
    wrote = (
        sa.select(c.actor_id, sa.func.min(c.occurred_at).label("at"))
        .where(speaking(contributions, spoken), c.actor_id.in_(sa.select(github_first.c.actor_id)))
        .group_by(c.actor_id)
        .subquery()
    )
    day = sa.func.date(github_first.c.at)
    moved = github_first.join(
        wrote, sa.and_(wrote.c.actor_id == github_first.c.actor_id, wrote.c.at < github_first.c.at)
    )
    funnel = _per_day(conn.execute(sa.select(day, sa.func.count()).select_from(moved).group_by(day)))

    # The forum: topics and replies; of the week's topics, those solved and the first reply by another person.
    forum = speaking(contributions, [FORUM])
    posts = conn.execute(
        sa.select(
            c.week,
            sa.func.sum(sa.case((c.kind == kinds.FORUM_TOPIC, 1), else_=0)),
            sa.func.sum(sa.case((c.kind == kinds.FORUM_REPLY, 1), else_=0)),
        )
        .where(forum, in_span(contributions))
        .group_by(c.week)
    ).all()
    topic, later = contributions.alias("topic"), contributions.alias("later")
    topics = (
        sa.select(topic.c.repo_id, topic.c.number, topic.c.actor_id, topic.c.occurred_at, topic.c.week)
        .where(topic.c.repo_id.in_(places[FORUM]), topic.c.kind == kinds.FORUM_TOPIC, in_span(topic))
        .subquery()
    )
    solutions = (
        sa.select(later.c.repo_id, later.c.number)
        .where(later.c.repo_id.in_(places[FORUM]), later.c.kind == kinds.FORUM_SOLUTION, later.c.occurred_at >= start)
        .group_by(later.c.repo_id, later.c.number)
        .subquery()
    )
    same_topic = sa.and_(solutions.c.repo_id == topics.c.repo_id, solutions.c.number == topics.c.number)
    solved = conn.execute(
        sa.select(topics.c.week, sa.func.count(), sa.func.count(solutions.c.number))
        .select_from(topics.outerjoin(solutions, same_topic))
        .group_by(topics.c.week)
    ).all()
    # Each person's first reply per topic, grouped first: a grouped subquery is materialised (SQLite then
    # indexes it for the join) instead of searching the forum's ledger once per topic.
    replies = (
        sa.select(later.c.repo_id, later.c.number, later.c.actor_id, sa.func.min(later.c.occurred_at).label("at"))
        .where(later.c.repo_id.in_(places[FORUM]), later.c.kind == kinds.FORUM_REPLY, later.c.occurred_at >= start)
        .group_by(later.c.repo_id, later.c.number, later.c.actor_id)
        .subquery()
    )
    answered = sa.and_(
        replies.c.repo_id == topics.c.repo_id,
        replies.c.number == topics.c.number,
        replies.c.actor_id != topics.c.actor_id,  # the author's own follow-up is no answer
    )
    waited = _hours(conn, topics.c.occurred_at, sa.func.min(replies.c.at))
    first_replies = conn.execute(
        sa.select(topics.c.week, waited)
        .select_from(topics.join(replies, answered))
        .group_by(topics.c.repo_id, topics.c.number, topics.c.week, topics.c.occurred_at)
    ).all()
    reply_hours: dict[date, list[float]] = defaultdict(list)
    for week, hours in first_replies:
        reply_hours[_day(week)].append(float(hours))

    chat = conn.execute(
        sa.select(c.week, sa.func.count(), sa.func.count(sa.distinct(c.actor_id)))
        .where(speaking(contributions, [CHAT]), in_span(contributions))
        .group_by(c.week)
    ).all()

    out: dict[str, dict[date, float | None]] = {
        "forum_topics": {_day(w): int(n or 0) for w, n, _ in posts},
        "forum_replies": {_day(w): int(n or 0) for w, _, n in posts},
        "forum_solved_share": {_day(w): _ratio(int(done), int(opened)) for w, opened, done in solved},
        "forum_first_reply_hours": {w: _rounded(median(h)) for w, h in reply_hours.items()},
        "chat_messages": {_day(w): int(n) for w, n, _ in chat},
        "chat_active_members": {_day(w): int(n) for w, _, n in chat},
    }
    for name in ("forum_topics", "forum_replies", "chat_messages", "chat_active_members"):
        out[name] = {week: out[name].get(week, 0) for week in mondays}
    out["active_users"] = {week: active.get(week, 0) for week in mondays}
    out["new_users"] = {week: new.get(week, 0) for week in mondays}
    out["returning_users"] = {week: active.get(week, 0) - new.get(week, 0) for week in mondays}
    out["forum_chat_to_first_contribution"] = {week: funnel.get(week, 0) for week in mondays}
    return out


def _day(value: Any) -> date:
    """A date as either database returns it from a union or a function (a date, or ISO text)."""
    return date.fromisoformat(str(value)[:10])


def _per_week(rows: Any) -> dict[date, int]:
    return {_day(week): int(n) for week, n in rows}


def _per_day(rows: Any) -> dict[date, int]:
    """Counts per day, summed into their ISO weeks."""
    weeks: dict[date, int] = defaultdict(int)
    for day, n in rows:
        weeks[week_of(_day(day))] += int(n)
    return weeks


def _hours(conn: Connection, start: Any, end: Any) -> Any:
    """Hours from `start` to `end` in SQL (the two databases spell time arithmetic differently)."""
    if conn.dialect.name == "postgresql":
        return sa.extract("epoch", end - start) / 3600.0
    return (sa.func.julianday(end) - sa.func.julianday(start)) * 24.0


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)
