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
from sqlalchemy.engine import Engine

from engagement.leaderboard import resolve
from engagement.stats import median, summarise, weeks_ending
from storage.db import WEEKLY_COUNTS, responses, scope_members, weekly

MAX_WEEKS = 156
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


def report(engine: Engine, repo: str, weeks: int = 12, today: date | None = None) -> dict[str, Any]:
    """The insights JSON for a public repository; raises leaderboard.NotVisible, ValueError for `weeks`."""
    if not 1 <= weeks <= MAX_WEEKS:
        raise ValueError(f"weeks must be between 1 and {MAX_WEEKS}")
    today = today or datetime.now(UTC).date()
    mondays = weeks_ending(today, weeks)
    first, last = mondays[0], mondays[-1]
    with engine.connect() as conn:
        scope, shown = resolve(conn, repo, None)
        repo_id = int(scope.split(":", 1)[1])
        rows = conn.execute(
            sa.select(weekly).where(weekly.c.repo_id == repo_id, weekly.c.week >= first, weekly.c.week <= last)
        )
        counts = {row.week: row._mapping for row in rows}
        answered = conn.execute(
            sa.select(
                responses.c.opened_week, responses.c.is_pull, responses.c.opened_at, responses.c.first_response_at
            )
            .where(responses.c.repo_id == repo_id, responses.c.opened_week >= first, responses.c.opened_week <= last)
            .where(responses.c.first_response_at.is_not(None))
        ).all()
        newcomers = conn.execute(
            sa.select(scope_members.c.first_at, scope_members.c.last_at).where(
                scope_members.c.scope == scope,
                scope_members.c.first_at >= datetime.combine(first, datetime.min.time()),
            )
        ).all()

    def count(week: date, column: str) -> int:
        row = counts.get(week)
        return int(row[column]) if row is not None else 0

    hours: dict[tuple[date, bool], list[float]] = defaultdict(list)
    for row in answered:
        hours[(row.opened_week, bool(row.is_pull))].append(
            (row.first_response_at - row.opened_at).total_seconds() / 3600
        )
    joined: dict[date, list[tuple[datetime, datetime]]] = defaultdict(list)
    for member in newcomers:
        joined[member.first_at.date() - timedelta(days=member.first_at.weekday())].append(
            (member.first_at, member.last_at)
        )

    def retention(week: date, days: int) -> float | None:
        if week + timedelta(days=7 + days) > today:
            return None  # not every newcomer of the week has had `days` days yet
        people = joined.get(week, [])
        return _ratio(sum(1 for first_at, last_at in people if last_at - first_at >= timedelta(days=days)), len(people))

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
            "first_response_issues_hours": _rounded(median(hours.get((week, False), []))),
            "first_response_pulls_hours": _rounded(median(hours.get((week, True), []))),
            "pr_acceptance": _ratio(c["prs_merged"], c["prs_merged"] + c["prs_closed"]),
            "satisfaction": _ratio(c["positive"], c["positive"] + c["negative"]),
        }
        for key, value in week_values.items():
            values[key].append(value)
    series = {}
    for name, unit in SERIES.items():
        summary = summarise(values[name])
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
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "series": series,
    }


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)
