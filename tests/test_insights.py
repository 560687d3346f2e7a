"""Community-health metrics against a small history computed by hand (README, "Metrics").

Today is Sunday 2026-11-29; the four ISO weeks shown start on Mondays 2026-11-02, 11-09, 11-16 and
11-23 (UTC). Week 11-09 is empty on purpose.
"""

from __future__ import annotations

from datetime import date, datetime

import pytest
from sqlalchemy.engine import Engine

from domain import contributions as build
from domain import contributions as kinds
from domain.contributions import Contribution, Repo, Subject
from readmodels.insights import (
    BETTER,
    HEADLINE,
    HEADLINE_SHOWN,
    SAME,
    UNKNOWN,
    UP_IS_GOOD,
    WORSE,
    report,
    verdict,
)
from storage.ledger import LedgerStore

TODAY = date(2026, 11, 29)
REPO = Repo(42, "llmasos/kernel", private=False, installation_id=7)
ALICE, BOB, CAROL, DAVE, ERIN, FRANK, GINA, HANK = range(1, 9)
ISSUE_1 = Subject(1, False, ALICE, datetime(2026, 11, 2, 9))
PULL_2 = Subject(2, True, ALICE, datetime(2026, 11, 16, 10))
PULL_3 = Subject(3, True, BOB, datetime(2026, 11, 19, 0))
ISSUE_9 = Subject(9, False, GINA, datetime(2026, 9, 7, 8))


def event(kind: str, actor: int, at: datetime, subject: Subject, positive: int = 0, negative: int = 0) -> Contribution:
    key = f"{kind}:{actor}:{at.isoformat()}"
    return Contribution(key, kind, REPO, actor, f"user{actor}", at, subject.number, "", subject, positive, negative)


HISTORY = [
    # Week of 11-02: alice opens issue 1 and comments on it herself (not a response); bob answers 3 h after.
    event(kinds.ISSUE_OPENED, ALICE, datetime(2026, 11, 2, 9), ISSUE_1),
    event(kinds.COMMENT, ALICE, datetime(2026, 11, 2, 10), ISSUE_1),
    event(kinds.COMMENT, BOB, datetime(2026, 11, 2, 12), ISSUE_1),
    # Week of 11-16: alice's pull request 2 is reviewed by carol 24 h later and merged; bob's 3 is closed
    # unmerged by alice; dave comments at the last second of the week (Sunday 23:59:59 UTC).
    event(kinds.PR_OPENED, ALICE, datetime(2026, 11, 16, 10), PULL_2),
    event(kinds.REVIEW_APPROVED, CAROL, datetime(2026, 11, 17, 10), PULL_2),
    event(kinds.PR_MERGED, ALICE, datetime(2026, 11, 18, 10), PULL_2),
    event(kinds.PR_OPENED, BOB, datetime(2026, 11, 19, 0), PULL_3),
    event(kinds.PR_CLOSED, ALICE, datetime(2026, 11, 20, 0), PULL_3),
    event(kinds.COMMENT, DAVE, datetime(2026, 11, 22, 23, 59, 59), PULL_2),
    # Week of 11-23: erin answers pull request 3 at the first second of the week (96 h after it opened);
    # alice closes issue 1 (3 positive reactions, 1 negative); frank comments in the week's last second.
    event(kinds.COMMENT, ERIN, datetime(2026, 11, 23, 0, 0, 0), PULL_3),
    event(kinds.ISSUE_CLOSED, ALICE, datetime(2026, 11, 24, 9), ISSUE_1, positive=3, negative=1),
    event(kinds.COMMENT, FRANK, datetime(2026, 11, 29, 23, 59, 59), ISSUE_1),
    # Retention, week of 09-07: gina and hank are new; gina is back 43 days later, hank never.
    event(kinds.ISSUE_OPENED, GINA, datetime(2026, 9, 7, 8), ISSUE_9),
    event(kinds.COMMENT, HANK, datetime(2026, 9, 8, 8), ISSUE_9),
    event(kinds.COMMENT, GINA, datetime(2026, 10, 20, 8), ISSUE_9),
]


def series(engine: Engine, weeks: int = 4) -> dict:
    result = report(engine, REPO.full_name, weeks=weeks, today=TODAY)
    return result["series"]


def test_weekly_series_equal_the_hand_computed_values(engine: Engine) -> None:
    LedgerStore(engine).record(HISTORY)
    result = report(engine, REPO.full_name, weeks=4, today=TODAY)
    assert result["weeks"] == ["2026-11-02", "2026-11-09", "2026-11-16", "2026-11-23"]
    values = {name: s["values"] for name, s in result["series"].items()}
    assert values["active_contributors"] == [2, 0, 4, 2]  # alice+bob; -; alice, carol, bob, dave; erin, frank
    assert values["new_contributors"] == [2, 0, 2, 2]  # alice+bob; -; carol+dave; erin+frank
    assert values["returning_contributors"] == [0, 0, 2, 0]
    assert values["issues_opened"] == [1, 0, 0, 0]
    assert values["comments"] == [2, 0, 1, 2]
    assert values["prs_opened"] == [0, 0, 2, 0]
    assert values["prs_merged"] == [0, 0, 1, 0]
    assert values["reviews"] == [0, 0, 1, 0]
    assert values["first_response_issues_hours"] == [3.0, None, None, None]
    assert values["first_response_pulls_hours"] == [None, None, 60.0, None]  # median of 24 h and 96 h
    assert values["pr_acceptance"] == [None, None, 0.5, None]
    assert values["satisfaction"] == [None, None, None, 0.75]
    assert values["retention_30d"] == [None] * 4, "no week shown is 30 days old yet"


def test_mean_spread_trend_and_anomalies(engine: Engine) -> None:
    LedgerStore(engine).record(HISTORY)
    result = report(engine, REPO.full_name, weeks=4, today=TODAY)
    assert result["partial_week"] == "2026-11-23", "today is its Sunday: the week runs until midnight"
    active = result["series"]["active_contributors"]
    # [2, 0, 4, 2], the last week still running, so [2, 0, 4]: mean 2; variance (0² + (-2)² + 2²) / 3 = 8/3;
    # slope Σ(x-1)(y-2) / Σ(x-1)² = 2 / 2.
    assert active["values"] == [2, 0, 4, 2], "the running week is shown"
    assert (active["mean"], active["stddev"], active["slope"]) == (2.0, 1.633, 1.0)
    assert active["direction"] == "rising" and active["anomalies"] == []
    satisfaction = result["series"]["satisfaction"]
    assert satisfaction["values"][-1] == 0.75 and (satisfaction["mean"], satisfaction["slope"]) == (None, None)


def test_a_week_is_partial_until_its_sunday_is_over(engine: Engine) -> None:
    LedgerStore(engine).record(HISTORY)
    monday = report(engine, REPO.full_name, weeks=4, today=date(2026, 11, 30))
    assert monday["partial_week"] == "2026-11-30" and monday["weeks"][-2] == "2026-11-23"
    active = monday["series"]["active_contributors"]
    assert active["values"][-2:] == [2, 0] and active["mean"] == 2.0, "[0, 4, 2] complete, the new week left out"


def test_retention_of_newcomers_after_30_and_90_days(engine: Engine) -> None:
    LedgerStore(engine).record(HISTORY)
    result = report(engine, REPO.full_name, weeks=13, today=TODAY)
    week = result["weeks"].index("2026-09-07")
    assert result["series"]["new_contributors"]["values"][week] == 2
    assert result["series"]["retention_30d"]["values"][week] == 0.5  # gina came back, hank did not
    assert result["series"]["retention_90d"]["values"][week] is None  # 90 days have not passed for the week


def test_empty_history_and_a_single_contributor(engine: Engine) -> None:
    LedgerStore(engine).record(HISTORY[:1])  # the repository exists with one issue by alice
    values = {name: s["values"] for name, s in series(engine, weeks=2).items()}
    assert values["active_contributors"] == [0, 0] and values["first_response_issues_hours"] == [None, None]
    one = series(engine, weeks=5)["active_contributors"]  # weeks from 10-26: alice alone, in the second
    # the four complete weeks [0, 1, 0, 0]: mean 0.25; slope Σ(x-1.5)(y-0.25) / Σ(x-1.5)² = -0.5 / 5 = -0.1
    assert one["values"] == [0, 1, 0, 0, 0] and (one["mean"], one["slope"], one["direction"]) == (0.25, -0.1, "falling")


def test_bots_leave_no_trace(engine: Engine) -> None:
    LedgerStore(engine).record(HISTORY[:1])
    bot = {"login": "ci[bot]", "id": 99, "type": "Bot"}
    issue = {"number": 1, "user": {"login": "user1", "id": ALICE, "type": "User"}, "created_at": "2026-11-02T09:00:00Z"}
    comment = {"id": 5, "user": bot, "created_at": "2026-11-23T10:00:00Z", "html_url": ""}
    assert build.created_comment(REPO, issue, comment) is None
    LedgerStore(engine).record([build.created_comment(REPO, issue, comment)])
    values = series(engine)
    assert values["active_contributors"]["values"][-1] == 0 and values["comments"]["values"][-1] == 0


def test_weeks_outside_the_allowed_span_are_refused(engine: Engine) -> None:
    LedgerStore(engine).record(HISTORY[:1])
    for weeks in (0, 157):
        with pytest.raises(ValueError):
            report(engine, REPO.full_name, weeks=weeks, today=TODAY)


# --- the headline: the latest complete week against the one before, judged by each series' good direction

ISSUE_5 = Subject(5, False, GINA, datetime(2026, 11, 16, 10))
ISSUE_6 = Subject(6, False, HANK, datetime(2026, 11, 23, 10))
FASTER_ANSWERS = [
    event(kinds.ISSUE_OPENED, GINA, datetime(2026, 11, 16, 10), ISSUE_5),
    event(kinds.COMMENT, BOB, datetime(2026, 11, 16, 20), ISSUE_5),  # 10 h
    event(kinds.ISSUE_OPENED, HANK, datetime(2026, 11, 23, 10), ISSUE_6),
    event(kinds.COMMENT, CAROL, datetime(2026, 11, 23, 12), ISSUE_6),  # 2 h
]


def test_the_headline_judges_each_change_by_whether_a_rise_is_good_news(engine: Engine) -> None:
    LedgerStore(engine).record([*HISTORY, *FASTER_ANSWERS])
    result = report(engine, REPO.full_name, weeks=4, today=date(2026, 11, 30))  # 11-23 is complete
    figures = {f["series"]: f for f in result["headline"]}
    assert list(figures) == list(HEADLINE[:HEADLINE_SHOWN])

    def row(name: str) -> tuple:
        f = figures[name]
        return f["week"], f["value"], f["previous"], f["change"], f["verdict"]

    assert row("first_response_issues_hours") == ("2026-11-23", 2.0, 10.0, -8.0, BETTER), "faster answers"
    assert row("active_contributors") == ("2026-11-23", 4, 5, -1, WORSE)  # erin, frank, hank, carol; one fewer
    assert row("new_contributors") == ("2026-11-23", 2, 2, 0, SAME)
    assert row("prs_merged") == ("2026-11-23", 0, 1, -1, WORSE)
    assert row("pr_acceptance") == ("2026-11-23", None, 0.5, None, UNKNOWN)
    assert figures["first_response_issues_hours"]["up_is_good"] is False and figures["prs_merged"]["up_is_good"]


@pytest.mark.parametrize(
    "change, up_is_good, expected",
    [
        (3, True, BETTER),
        (-3, True, WORSE),
        (3, False, WORSE),
        (-3, False, BETTER),
        (0, False, SAME),
        (None, True, UNKNOWN),
    ],
    ids=[
        "more is better",
        "less is worse",
        "longer waits are worse",
        "shorter waits are better",
        "no change",
        "no figure",
    ],
)
def test_a_change_is_better_or_worse_by_the_series_direction(change, up_is_good, expected) -> None:
    assert verdict(change, up_is_good) == expected


def test_a_trend_is_judged_the_same_way_and_steady_is_no_change(engine: Engine) -> None:
    LedgerStore(engine).record([*HISTORY, *FASTER_ANSWERS])
    for name, s in report(engine, REPO.full_name, weeks=12, today=date(2026, 11, 30))["series"].items():
        expected = SAME if s["direction"] == "steady" else verdict(s["slope"], UP_IS_GOOD[name])
        assert s["trend_verdict"] == expected and s["up_is_good"] == UP_IS_GOOD[name], name
    assert [name for name, good in UP_IS_GOOD.items() if not good] == [
        "first_response_issues_hours",
        "first_response_pulls_hours",
        "forum_first_reply_hours",
    ]
