"""Claims that don't go stale: the decision as a table, then a claim through the app and the fake GitHub,
with the `claims` task run at moved clocks (GitHub's times in the payloads, the task's clock injected)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from engagement.good_first_issues import GoodFirstIssuesConfig
from engagement.good_first_issues.decide import RELEASE, REMIND, ClaimStep, decide_claim
from engagement.good_first_issues.defaults import ClaimsConfig
from storage.good_first_issues import GoodFirstIssue
from tests.conftest import REPO, example, installed, run_rq_worker, services
from tests.test_good_first_issues import NEWCOMER, REPO_ID, commented, good_first_issue, store_of

T0 = datetime(2026, 3, 2, 10, 0, 0)  # naive UTC, as stored


def stamp(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def claim(quiet_for: timedelta, **changes) -> GoodFirstIssue:
    found = GoodFirstIssue(
        REPO_ID, REPO, 3, "Fix a typo", f"https://github.com/{REPO}/issues/3", True, "open", (NEWCOMER,),
        NEWCOMER, T0 - quiet_for, 0, claim_active_at=None,
    )  # fmt: skip
    return replace(found, **changes)


def settings(remind: int = 7, release: int = 14, **changes) -> GoodFirstIssuesConfig:
    return replace(GoodFirstIssuesConfig(), claims=ClaimsConfig(remind, release), **changes)


DAY = timedelta(days=1)


@pytest.mark.parametrize(
    "case, quiet_for, changes, config, expected",
    [
        ("six quiet days are fine", 6 * DAY + timedelta(hours=23), {}, settings(), "quiet for 6 day(s)"),
        ("seven quiet days bring a reminder", 7 * DAY, {}, settings(), ClaimStep(REMIND, 7, "en")),
        ("fourteen quiet days release it", 14 * DAY, {}, settings(), ClaimStep(RELEASE, 14, "en")),
        ("activity restarts the clock", 20 * DAY, {"claim_active_at": T0 - 3 * DAY}, settings(), "quiet for 3"),
        ("no reminders: straight to release", 10 * DAY, {}, settings(remind=0), "quiet for 10"),
        ("no release: reminded however long", 90 * DAY, {}, settings(release=0), ClaimStep(REMIND, 90, "en")),
        ("a reminder not before the release is skipped", 7 * DAY, {}, settings(remind=7, release=7), RELEASE),
        ("both off: nothing ever", 90 * DAY, {}, settings(0, 0), "quiet for 90"),
        ("the behaviour off: nothing", 90 * DAY, {}, settings(enabled=False), "turned off"),
        ("a closed issue is no claim", 90 * DAY, {"state": "closed"}, settings(), "not an open claim"),
        ("an unlabelled issue is left alone", 90 * DAY, {"labelled": False}, settings(), "not an open claim"),
        (
            "a Chinese issue hears Chinese",
            7 * DAY,
            {"title": "修复文档中的错别字"},
            settings(),
            ClaimStep(REMIND, 7, "zh"),
        ),
    ],
)
def test_decide_claim(case, quiet_for, changes, config, expected):
    result = decide_claim(claim(quiet_for, **changes), config, T0)
    if isinstance(expected, str) and expected in (REMIND, RELEASE):
        assert isinstance(result, ClaimStep) and result.step == expected, case
    elif isinstance(expected, str):
        assert isinstance(result, str) and expected in result, case
    else:
        assert result == expected, case


# --- through the app


@pytest.fixture
def app(make_app, redis_url):
    return make_app(redis_url=redis_url)


@pytest.fixture
def server(app, serve):
    return serve(app)


def said(github, number: int, step: str) -> list[str]:
    return [c["body"] for c in github.comments(REPO, number) if f"engage:good-first-issues:claim-{step}:" in c["body"]]


def run_pass(app, at: datetime) -> None:
    """The `claims` task, as `flask tasks run claims` runs it, with the clock at `at`."""
    svc = services(app)
    svc.tasks.clock = lambda: at.replace(tzinfo=UTC)
    assert svc.tasks.run_now("claims").result == "ran"


def comment_at(server, github, number: int, body: str, at: datetime) -> None:
    payload = commented(github, number, NEWCOMER, body)
    payload["comment"].update(created_at=stamp(at), updated_at=stamp(at))
    server.deliver("issue_comment", payload)
    run_rq_worker(server.app)


def claimed(server, github) -> None:
    good_first_issue(github, 3)
    comment_at(server, github, 3, "I'd like to try this one!\n/claim", T0)
    assert github.assignees(REPO, 3) == [NEWCOMER]


def test_a_quiet_claim_is_reminded_once_then_released_and_activity_restarts_the_clock(make_app, server, github):
    claimed(server, github)
    run_pass(server.app, T0 + 6 * DAY)
    assert said(github, 3, REMIND) == []

    run_pass(server.app, T0 + 7 * DAY)
    [reminder] = said(github, 3, REMIND)
    assert f"Hi @{NEWCOMER}, how is this issue going? It has been quiet for 7 days" in reminder
    assert "comment `/unclaim`" in reminder and "in the next 7 days" in reminder
    run_pass(server.app, T0 + 7 * DAY + timedelta(hours=1))
    other_worker = make_app(redis_url=services(server.app).settings.redis_url)
    run_pass(other_worker, T0 + 7 * DAY + timedelta(hours=2))
    assert len(said(github, 3, REMIND)) == 1, "one reminder per claim, whichever pass or worker comes next"

    comment_at(server, github, 3, "Still on it, the tests are tricky.", T0 + 8 * DAY)
    run_pass(server.app, T0 + 22 * DAY - timedelta(hours=1))
    assert github.assignees(REPO, 3) == [NEWCOMER] and said(github, 3, RELEASE) == []
    assert len(said(github, 3, REMIND)) == 1

    run_pass(server.app, T0 + 23 * DAY)
    assert github.assignees(REPO, 3) == []
    [released] = said(github, 3, RELEASE)
    assert f"Hi @{NEWCOMER}, this issue has been quiet for 15 days, so I have unassigned it" in released
    assert "label%3A%22good+first+issue%22+no%3Aassignee" in released
    store = store_of(server)
    assert store.get(REPO_ID, 3).claimant is None
    assert [i.number for i in store.open_for_newcomers(REPO)] == [3], "listed for newcomers again"
    run_pass(server.app, T0 + 24 * DAY)
    assert len(said(github, 3, RELEASE)) == 1


def pull_request(action: str, at: datetime, body: str = "Fixes #3") -> dict:
    payload = installed(example("pull_request.opened.2"))
    payload["action"] = action
    payload["pull_request"].update(number=10, body=body, updated_at=stamp(at), state="open")
    payload["pull_request"]["user"].update(login=NEWCOMER, type="User")
    payload["sender"].update(login=NEWCOMER, type="User")
    return payload


def test_the_claimants_linked_pull_request_and_pushes_to_it_count_as_activity(server, github):
    claimed(server, github)
    github.add_issue(REPO, 10, NEWCOMER, title="Fix the typo", pull_request=True)
    server.deliver("pull_request", pull_request("opened", T0 + 6 * DAY))
    run_rq_worker(server.app)
    run_pass(server.app, T0 + 12 * DAY)
    assert said(github, 3, REMIND) == [], "the pull request opened six days ago"

    server.deliver("pull_request", pull_request("synchronize", T0 + 12 * DAY))
    run_rq_worker(server.app)
    run_pass(server.app, T0 + 18 * DAY)
    assert said(github, 3, REMIND) == [], "the push six days ago"
    run_pass(server.app, T0 + 19 * DAY)
    assert len(said(github, 3, REMIND)) == 1


def test_someone_elses_pull_request_is_no_sign_of_life(server, github):
    claimed(server, github)
    github.add_issue(REPO, 10, "sam-second", title="Fix the typo", pull_request=True)
    payload = pull_request("opened", T0 + 6 * DAY)
    payload["pull_request"]["user"].update(login="sam-second")
    server.deliver("pull_request", payload)
    run_rq_worker(server.app)
    run_pass(server.app, T0 + 7 * DAY)
    assert len(said(github, 3, REMIND)) == 1
