"""Milestones: the decision as a table, then real payloads through the app and the ledger."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import datetime

import pytest

from domain.contributions import Repo
from engagement import milestones
from engagement.common.config import parse
from engagement.milestones import (
    ARRIVED,
    GOOD_FIRST_ISSUE,
    MERGED,
    MERGED_PRS,
    WELCOME_BACK,
    Facts,
    MilestonesConfig,
    Situation,
    decide,
)
from storage.good_first_issues import GoodFirstIssueStore, Snapshot
from storage.ledger import LedgerStore
from tests.conftest import INSTALLATION_ID, REPO, example, installed, run_rq_worker, services
from tests.test_ledger_store import history_by_others, sqlite_steps
from webhooks.jobs import process

REPO_ID = 186853002
AT = datetime(2019, 6, 15, 10, 0)


def situation(event: str = MERGED, bot: bool = False, text: str = "Fix the installer") -> Situation:
    return Situation(event, REPO, REPO_ID, 9, "li", 503, AT, bot, False, text)


@pytest.mark.parametrize(
    "case, event, settings, facts, expected",
    [
        ("the 5th merge is congratulated", MERGED, {}, Facts(merged_before=4), [(MERGED_PRS, 5)]),
        ("the 4th merge is not", MERGED, {}, Facts(merged_before=3), "number 4 marks no milestone"),
        ("the 6th merge is not", MERGED, {}, Facts(merged_before=5), "number 6 marks no milestone"),
        ("the counts are the repository's", MERGED, {"merged_prs": (2,)}, Facts(merged_before=1), [(MERGED_PRS, 2)]),
        ("a first solved good first issue", MERGED, {}, Facts(solved_here=True), [(GOOD_FIRST_ISSUE, 1)]),
        ("a second one is not", MERGED, {}, Facts(solved_here=True, solved_before=1), "marks no milestone"),
        (
            "the 10th merge solving a first good first issue marks both",
            MERGED,
            {},
            Facts(merged_before=9, solved_here=True),
            [(MERGED_PRS, 10), (GOOD_FIRST_ISSUE, 1)],
        ),
        (
            "good first issues can be turned off alone",
            MERGED,
            {"first_good_first_issue": False},
            Facts(solved_here=True),
            "marks no milestone",
        ),
        (
            "welcome back after more than N days",
            ARRIVED,
            {"welcome_back_after_days": 30},
            Facts(previous_at=datetime(2019, 5, 1, 9, 0)),
            [(WELCOME_BACK, 20190501)],
        ),
        (
            "not before N days",
            ARRIVED,
            {"welcome_back_after_days": 30},
            Facts(previous_at=datetime(2019, 5, 20)),
            "26 day(s) ago",
        ),
        (
            "a newcomer is the greeting's, not welcomed back",
            ARRIVED,
            {"welcome_back_after_days": 30},
            Facts(),
            "no earlier contribution",
        ),
        ("welcome back is off by default", ARRIVED, {}, Facts(previous_at=datetime(2018, 1, 1)), "turned off"),
        ("the behaviour can be turned off", MERGED, {"enabled": False}, Facts(merged_before=4), "turned off"),
        ("people who opted out get nothing", MERGED, {}, Facts(opted_out=True, merged_before=4), "opted out"),
    ],
)
def test_decide(case, event, settings, facts, expected):
    result = decide(situation(event), replace(MilestonesConfig(), **settings), facts)
    if isinstance(expected, str):
        assert isinstance(result, str) and expected in result
    else:
        assert [(m.kind, m.n) for m in result] == expected
        assert all(m.intent == f"milestones:{REPO_ID}:503:{m.kind}:{m.n}" for m in result)


def test_bots_get_nothing():
    assert decide(situation(bot=True), MilestonesConfig(), Facts(merged_before=4)) == "author is a bot"


def test_welcome_back_counts_the_days_and_chinese_follows_the_text():
    config = MilestonesConfig(welcome_back_after_days=30)
    [milestone] = decide(situation(ARRIVED, text="安装程序崩溃了"), config, Facts(previous_at=datetime(2019, 5, 1)))
    assert (milestone.days, milestone.language) == (45, "zh")


def test_the_counts_to_congratulate_are_a_list_of_whole_numbers_in_the_file():
    loaded = parse("milestones:\n  merged_prs: [1, 3]\n", [milestones])
    assert loaded.problems == () and loaded.typed(MilestonesConfig, "milestones").merged_prs == (1, 3)
    refused = parse("milestones:\n  merged_prs: [five, 2.5]\n", [milestones])
    assert [str(p) for p in refused.problems] == [
        "line 2: milestones.merged_prs: must be a list of whole numbers from 0 to 1000"
    ]
    assert refused.typed(MilestonesConfig, "milestones").merged_prs == (5, 10, 25, 50, 100), "the default stands in"


# --- through the app


def person(login: str, user_id: int) -> dict:
    return {"login": login, "id": user_id, "type": "User", "node_id": "x", "site_admin": False}


def merged(number: int, day: int, body: str = "", login: str = "li", user_id: int = 503) -> dict:
    payload = installed(example("pull_request.closed.1"))
    payload["pull_request"].update(
        number=number, merged=True, merged_at=f"2019-05-{day:02d}T16:00:00Z", body=body, author_association="NONE"
    )
    payload["pull_request"]["user"] = person(login, user_id)
    payload["sender"] = person("mei", 501)
    return payload


def celebrations(github, number: int) -> list[str]:
    return [c["body"] for c in github.comments(REPO, number) if "engage:milestones" in c["body"]]


@pytest.fixture
def app(make_app, redis_url):
    return make_app(redis_url=redis_url, behaviours=())


@pytest.fixture
def server(app, serve):
    return serve(app)


def merge_four(server, github) -> None:
    for number in range(1, 5):
        github.add_issue(REPO, number, "li", merged=True)
        server.deliver("pull_request", merged(number, number))
    run_rq_worker(server.app)


def test_the_fifth_merge_is_congratulated_once_across_redeliveries_and_two_workers(app, server, github):
    merge_four(server, github)
    assert [celebrations(github, n) for n in range(1, 5)] == [[], [], [], []], "the 1st to 4th are no milestone"
    github.add_issue(REPO, 5, "li", merged=True)
    ids = ["fifth-a", "fifth-b"]  # GitHub sending the event twice
    for delivery_id in [*ids, "fifth-a"]:  # and a redelivery
        server.deliver("pull_request", merged(5, 5), delivery_id=delivery_id)
    svc = services(app)
    svc.dispatcher.wait_idle()
    barrier = threading.Barrier(len(ids))

    def work(delivery_id: str) -> None:
        barrier.wait()
        process(svc, delivery_id)

    threads = [threading.Thread(target=work, args=(d,)) for d in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    run_rq_worker(app)
    [comment] = celebrations(github, 5)
    assert comment.startswith("<!-- engage:milestones:merged_prs:5:li -->")
    assert f"That makes 5 merged pull requests from you in {REPO}, @li!" in comment
    assert "Engage bot" in comment, "the bot says what it is"

    github.add_issue(REPO, 6, "li", merged=True)
    server.deliver("pull_request", merged(6, 6))
    run_rq_worker(app)
    assert celebrations(github, 6) == [], "the 6th is no milestone"


def test_the_first_solved_good_first_issue_is_celebrated_from_the_ledger(server, github):
    store = GoodFirstIssueStore(services(server.app).store.engine)
    for issue in (1, 3):
        store.observe(
            Snapshot(
                REPO_ID, REPO, issue, "Typo", f"https://github.com/x/{issue}", "open", ("good first issue",), (), None
            ),
            "good first issue",
        )
    github.add_issue(REPO, 2, "li", merged=True)
    server.deliver("pull_request", merged(2, 15, body="Fixes #1"))
    run_rq_worker(server.app)
    [comment] = celebrations(github, 2)
    assert f"@li, you solved your first good first issue in {REPO}" in comment

    github.add_issue(REPO, 4, "li", merged=True)
    server.deliver("pull_request", merged(4, 16, body="Closes #3"))
    github.add_issue(REPO, 6, "li", merged=True)
    server.deliver("pull_request", merged(6, 17, body="No issue closed here"))
    run_rq_worker(server.app)
    assert celebrations(github, 4) == [] and celebrations(github, 6) == [], "only the first, and only a solving one"


def comment_by(login: str, user_id: int, comment_id: int, at: str, body: str = "Any news on this?") -> dict:
    payload = installed(example("issue_comment.created.1"))
    payload["comment"].update(id=comment_id, body=body, created_at=at, user=person(login, user_id))
    payload["sender"] = person(login, user_id)
    return payload


def opened_issue(number: int, login: str, user_id: int, at: str, title: str = "The installer hangs") -> dict:
    payload = installed(example("issues.opened.1"))
    payload["issue"].update(number=number, title=title, body="", created_at=at, author_association="CONTRIBUTOR")
    payload["issue"]["user"] = person(login, user_id)
    payload["sender"] = person(login, user_id)
    return payload


def test_a_returning_contributor_is_welcomed_back_once_and_only_after_the_days_away(server, github):
    github.set_file(REPO, ".github/engage.yml", "milestones:\n  welcome_back_after_days: 30\n")
    for number in (1, 7, 8):
        github.add_issue(REPO, number, "Codertocat")
    server.deliver("issue_comment", comment_by("mei", 501, 9001, "2019-05-01T09:00:00Z"))
    server.deliver("issue_comment", comment_by("sam", 502, 9002, "2019-05-01T09:00:00Z"))
    server.deliver("issue_comment", comment_by("sam", 502, 9003, "2019-05-02T09:00:00Z", "/leaderboard opt-out"))
    run_rq_worker(server.app)
    assert celebrations(github, 1) == [], "nobody was away yet"

    back = opened_issue(7, "mei", 501, "2019-06-15T10:00:00Z")
    for delivery_id in ("back", "back", "back-again"):
        server.deliver("issues", back, delivery_id=delivery_id)
    server.deliver("issues", opened_issue(8, "sam", 502, "2019-06-15T10:00:00Z"))
    run_rq_worker(server.app)
    [comment] = celebrations(github, 7)
    assert "Welcome back, @mei! It has been 45 days since your last contribution" in comment
    assert celebrations(github, 8) == [], "sam opted out of the leaderboard"

    server.deliver("issue_comment", comment_by("mei", 501, 9004, "2019-06-20T09:00:00Z"))
    run_rq_worker(server.app)
    assert celebrations(github, 1) == [], "five days after her return is no return"


def test_with_welcome_back_on_a_comment_costs_the_same_however_long_the_repositorys_history(server, github):
    """Welcome-back asks, for every comment, when its author was last active here: on SQLite, without statistics,
    that lookup walked the repository's history back from the comment. Counted in SQLite's VM steps, not time,
    before and after 1,500 contributions by others."""
    engine = services(server.app).store.engine
    if engine.dialect.name != "sqlite":
        pytest.skip("SQLite's planner, without statistics; PostgreSQL's picks the person's index itself")
    github.set_file(REPO, ".github/engage.yml", "milestones:\n  welcome_back_after_days: 30\n")
    github.add_issue(REPO, 1, "Codertocat")

    def steps_to_process_a_comment(n: int) -> int:
        server.deliver("issue_comment", comment_by(f"someone-{n}", 7000 + n, 9000 + n, "2019-06-15T10:00:00Z"))
        return sqlite_steps(engine, lambda: run_rq_worker(server.app))

    steps_to_process_a_comment(1)  # the first delivery stores the repository and reads its config
    short = steps_to_process_a_comment(2)
    place = Repo(int(example("issue_comment.created.1")["repository"]["id"]), REPO, False, INSTALLATION_ID)
    history_by_others(LedgerStore(engine), datetime(2019, 6, 1), 1500, repo=place)
    assert steps_to_process_a_comment(3) <= short * 1.5, "processing walked the repository's history"
    assert celebrations(github, 1) == [], "nobody came back"
