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
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from readmodels.leaderboard import resolve
from readmodels.stats import median, summarise, weeks_ending
from storage.db import (
    WEEKLY_COUNTS,
    listed_on_pages,
    repositories,
    responses,
    scope_members,
    weekly,
    weekly_actors,
)
from storage.rollups import week_of

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
}


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def report(
    engine: Engine, repo: str | None, weeks: int = 12, today: date | None = None, org: str | None = None
) -> dict[str, Any]:
    """The insights JSON for a repository the pages list, or (`org`) an owner's listed repositories
    together; raises leaderboard.NotVisible, ValueError for `weeks`."""
    if not 1 <= weeks <= MAX_WEEKS:
        raise ValueError(f"weeks must be between 1 and {MAX_WEEKS}")
    today = today or datetime.now(UTC).date()
    mondays = weeks_ending(today, weeks)
    first, last = mondays[0], mondays[-1]
    with engine.connect() as conn:
        scope, shown = resolve(conn, repo, org)
        repo_ids = scope_repositories(conn, scope)
        counts = _weekly_counts(conn, scope, repo_ids, first, last)
        hours = _hours(conn, responses.c.opened_at, responses.c.first_response_at)
        answered = conn.execute(
            sa.select(sa.type_coerce(responses.c.opened_week, sa.String), responses.c.is_pull, hours)
            .where(responses.c.repo_id.in_(repo_ids), responses.c.opened_week >= first, responses.c.opened_week <= last)
            .where(responses.c.first_response_at.is_not(None))
        ).all()
        # Newcomers per day they arrived, with how many came back 30 and 90 days after (aggregated in SQL).
        stayed = _hours(conn, scope_members.c.first_at, scope_members.c.last_at)
        arrivals = conn.execute(
            sa.select(
                sa.type_coerce(sa.func.date(scope_members.c.first_at), sa.String),
                sa.func.count(),
                *(sa.func.sum(sa.case((stayed >= days * 24 - 1e-6, 1), else_=0)) for days in RETENTION_DAYS),
            )
            .where(
                scope_members.c.scope == scope,
                scope_members.c.first_at >= datetime.combine(first, datetime.min.time()),
            )
            .group_by(sa.func.date(scope_members.c.first_at))
        ).all()

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
        }
        for key, value in week_values.items():
            values[key].append(value)
    # The week of `today` is still running: shown, but its part-week never counts in a mean, a spread,
    # a trend or an anomaly as if it were a whole week.
    complete = sum(1 for monday in mondays if monday + timedelta(days=7) <= today)
    series = {}
    for name, unit in SERIES.items():
        summary = summarise(values[name][:complete])
        series[name] = {
            "unit": unit,
            "values": values[name],
            "mean": _rounded(summary.mean),
            "stddev": _rounded(summary.stddev),
            "slope": _rounded(summary.slope),
            "direction": summary.direction,
            "anomalies": [mondays[i].isoformat() for i in summary.anomalies],
        }
    return {
        "repo": shown,
        "weeks": [monday.isoformat() for monday in mondays],
        "span_weeks": weeks,
        "partial_week": mondays[-1].isoformat() if complete < len(mondays) else None,
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "series": series,
    }


def scope_repositories(conn: Connection, scope: str) -> list[int]:
    """The repositories a scope counts: `repo:<id>` itself, or `org:<owner>`'s listed ones (installed, public)."""
    kind, _, name = scope.partition(":")
    if kind == "repo":
        return [int(name)]
    query = sa.select(repositories.c.id).where(sa.func.lower(repositories.c.owner) == name, listed_on_pages())
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


def _hours(conn: Connection, start: Any, end: Any) -> Any:
    """Hours from `start` to `end` in SQL (the two databases spell time arithmetic differently)."""
    if conn.dialect.name == "postgresql":
        return sa.extract("epoch", end - start) / 3600.0
    return (sa.func.julianday(end) - sa.func.julianday(start)) * 24.0


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)
