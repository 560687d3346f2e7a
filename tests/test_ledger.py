"""Contributions recorded from real webhook deliveries, and the leaderboard and insights built on them."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
import sqlalchemy as sa

from engagement import leaderboard
from readmodels.insights import report
from readmodels.leaderboard import NotVisible, board, formula
from storage import db
from storage.good_first_issues import GoodFirstIssueStore, Snapshot
from storage.ledger import LedgerStore
from tests.conftest import REPO, example, installed, run_rq_worker, services

TODAY = date(2019, 5, 20)  # the recorded payloads are from May 2019
REPO_ID = 186853002


@pytest.fixture
def server(make_app, serve, redis_url):
    return serve(make_app(redis_url=redis_url, behaviours=()))


def person(login: str, user_id: int) -> dict:
    return {"login": login, "id": user_id, "type": "User", "node_id": "x", "site_admin": False}


def comment_payload(login: str, user_id: int, comment_id: int, at: str, body: str = "Looks good to me") -> dict:
    payload = installed(example("issue_comment.created.1"))
    payload["comment"].update(id=comment_id, body=body, created_at=at, user=person(login, user_id))
    payload["sender"] = person(login, user_id)
    return payload


def recorded(app) -> list[tuple]:
    with services(app).store.engine.connect() as conn:
        query = sa.select(db.contributions.c.kind, db.contributions.c.actor_login, db.contributions.c.number)
        return sorted(tuple(row) for row in conn.execute(query.order_by(db.contributions.c.id)))


def engine_of(server):
    return services(server.app).store.engine


def test_each_contribution_is_recorded_once_with_the_time_it_happened(server, github):
    opened = installed(example("issues.opened.1"))
    opened["issue"]["user"] = person("mei", 501)
    opened["sender"] = person("mei", 501)
    for delivery_id in ("a", "a", "b"):  # a redelivery, and GitHub sending the same event twice
        server.deliver("issues", opened, delivery_id=delivery_id)
    server.deliver("issue_comment", comment_payload("sam", 502, 9001, "2019-05-15T15:20:33Z"))
    run_rq_worker(server.app)
    assert recorded(server.app) == [("comment", "sam", 1), ("issue_opened", "mei", 1)]
    with engine_of(server).connect() as conn:
        times = dict(conn.execute(sa.select(db.contributions.c.kind, db.contributions.c.occurred_at)).all())
    assert times["issue_opened"].isoformat() == opened["issue"]["created_at"].rstrip("Z")


def test_bots_are_never_credited(server, github):
    payload = comment_payload("dependabot[bot]", 49699333, 9002, "2019-05-15T15:20:33Z")
    payload["comment"]["user"]["type"] = "Bot"
    payload["sender"]["type"] = "Bot"
    server.deliver("issue_comment", payload)
    # A person merging a bot's pull request: no code credit for the bot.
    merged = installed(example("pull_request.closed.1"))
    merged["pull_request"].update(merged=True, merged_at="2019-05-15T16:00:00Z")
    merged["pull_request"]["user"] = {**person("renovate[bot]", 29139614), "type": "Bot"}
    merged["sender"] = person("mei", 501)
    github.add_issue(REPO, 2, "renovate[bot]", pull_request=True, state="closed")
    server.deliver("pull_request", merged)
    run_rq_worker(server.app)
    assert recorded(server.app) == []


def test_a_merged_pull_request_closing_a_good_first_issue_credits_its_author(server, github):
    GoodFirstIssueStore(engine_of(server)).observe(
        Snapshot(REPO_ID, REPO, 1, "Typo", "https://github.com/x/1", "open", ("good first issue",), (), None),
        "good first issue",
    )
    github.add_issue(REPO, 2, "li", pull_request=True, state="closed")
    merged = installed(example("pull_request.closed.1"))
    merged["pull_request"].update(merged=True, merged_at="2019-05-15T16:00:00Z", body="Fixes #1")
    merged["pull_request"]["user"] = person("li", 503)
    merged["sender"] = person("mei", 501)
    server.deliver("pull_request", merged)
    run_rq_worker(server.app)
    assert recorded(server.app) == [("good_first_issue_solved", "li", 2), ("pr_merged", "li", 2)]
    entry = board(engine_of(server), repo=REPO, window="all", today=TODAY)["entries"][0]
    assert (entry["login"], entry["points"]) == ("li", 10 + 5)
    assert entry["counts"]["merged"] == 1 and entry["counts"]["good_first_issues"] == 1


def test_points_follow_the_repository_formula_and_the_daily_comment_cap(server, github):
    github.set_file(REPO, ".github/engage.yml", "leaderboard:\n  daily_comment_cap: 2\n  points:\n    comment: 4\n")
    for n in range(3):  # three comments on one day: only two earn points
        server.deliver("issue_comment", comment_payload("sam", 502, 9100 + n, f"2019-05-15T1{n}:00:00Z"))
    server.deliver("issue_comment", comment_payload("sam", 502, 9200, "2019-05-16T10:00:00Z"))
    run_rq_worker(server.app)
    result = board(engine_of(server), repo=REPO, window="30d", today=TODAY)
    [entry] = result["entries"]
    assert entry["counts"]["comments"] == 4
    assert entry["points"] == 3 * 4, "2 credited on the first day, 1 on the next, 4 points each"
    assert result["formula"]["points"]["comment"] == 4 and result["formula"]["daily_comment_cap"] == 2
    assert "4 × comments" in result["formula"]["text"]


def test_opting_out_hides_a_person_from_the_board_but_not_from_the_totals(server, github):
    server.deliver("issue_comment", comment_payload("sam", 502, 9300, "2019-05-15T10:00:00Z"))
    server.deliver("issue_comment", comment_payload("mei", 501, 9301, "2019-05-15T11:00:00Z"))
    run_rq_worker(server.app)
    assert [e["login"] for e in board(engine_of(server), repo=REPO, window="30d", today=TODAY)["entries"]] == [
        "mei",
        "sam",
    ]
    opt_out = comment_payload("sam", 502, 9302, "2019-05-15T12:00:00Z", body="/leaderboard opt-out")
    server.deliver("issue_comment", opt_out)
    run_rq_worker(server.app)
    result = board(engine_of(server), repo=REPO, window="30d", today=TODAY)
    assert [e["login"] for e in result["entries"]] == ["mei"]
    [reply] = [c["body"] for c in github.comments(REPO, 1) if "engage:leaderboard" in c["body"]]
    assert "@sam you are off the leaderboard" in reply
    insight = report(engine_of(server), REPO, weeks=2, today=TODAY)
    assert insight["series"]["active_contributors"]["values"][-2] == 2, "sam still counts, anonymously"
    server.deliver("issue_comment", comment_payload("sam", 502, 9303, "2019-05-15T13:00:00Z", "/leaderboard opt-in"))
    run_rq_worker(server.app)
    assert "sam" in [e["login"] for e in board(engine_of(server), repo=REPO, window="30d", today=TODAY)["entries"]]


def test_excluded_logins_never_show(server, github):
    github.set_file(REPO, ".github/engage.yml", "leaderboard:\n  exclude: [Sam]\n")
    server.deliver("issue_comment", comment_payload("sam", 502, 9400, "2019-05-15T10:00:00Z"))
    run_rq_worker(server.app)
    assert board(engine_of(server), repo=REPO, window="30d", today=TODAY)["entries"] == []


def test_a_private_repository_is_never_shown_and_making_it_private_hides_it(server, github):
    server.deliver("issue_comment", comment_payload("sam", 502, 9500, "2019-05-15T10:00:00Z"))
    run_rq_worker(server.app)
    assert board(engine_of(server), org="Codertocat", window="30d", today=TODAY)["entries"]
    privatized = installed(example("repository.created.1"))
    privatized["action"] = "privatized"
    privatized["repository"].update(id=REPO_ID, full_name=REPO, private=True)
    server.deliver("repository", privatized)
    run_rq_worker(server.app)
    for scope in ({"repo": REPO}, {"org": "Codertocat"}):
        with pytest.raises(NotVisible):
            board(engine_of(server), window="30d", today=TODAY, **scope)
    with pytest.raises(NotVisible):
        report(engine_of(server), REPO, today=TODAY)


def test_rank_changes_and_newcomers_of_the_window(server, github):
    # Week before last: mei leads. Last 7 days: sam overtakes her, and li arrives.
    server.deliver("issue_comment", comment_payload("mei", 501, 9600, "2019-05-08T10:00:00Z"))
    server.deliver("issue_comment", comment_payload("mei", 501, 9601, "2019-05-08T11:00:00Z"))
    server.deliver("issue_comment", comment_payload("sam", 502, 9602, "2019-05-08T12:00:00Z"))
    for n in range(3):
        server.deliver("issue_comment", comment_payload("sam", 502, 9610 + n, f"2019-05-18T1{n}:00:00Z"))
    server.deliver("issue_comment", comment_payload("li", 503, 9620, "2019-05-19T10:00:00Z"))
    run_rq_worker(server.app)
    entries = board(engine_of(server), repo=REPO, window="7d", today=TODAY)["entries"]
    view = [(e["rank"], e["login"], e["points"], e["previous_rank"], e["rank_change"], e["newcomer"]) for e in entries]
    assert view == [(1, "sam", 3, 2, 1, False), (2, "li", 1, None, None, True)]


def test_the_ledger_answers_first_time_questions_once_it_covers_the_repository(server, github):
    store = LedgerStore(engine_of(server))
    server.deliver("issue_comment", comment_payload("sam", 502, 9700, "2019-05-15T10:00:00Z"))
    run_rq_worker(server.app)
    store.mark_complete(REPO_ID, None)
    github.add_issue(REPO, 3, "mei")  # on GitHub, but not in the ledger: GitHub is no longer asked
    github.add_issue(REPO, 4, "mei")
    opened = installed(example("issues.opened.1"))
    opened["issue"].update(number=4, author_association="NONE")
    opened["issue"]["user"] = person("mei", 501)
    opened["sender"] = person("mei", 501)
    server.deliver("issues", opened)
    run_rq_worker(server.app)
    assert not [c for c in github.calls("GET") if c.path == f"/repos/{REPO}/issues"], "the ledger answered"
    assert any("engage:greeting" in c["body"] for c in github.comments(REPO, 4))


def test_bad_windows_and_unknown_repositories(server):
    with pytest.raises(ValueError):
        board(engine_of(server), repo=REPO, window="2d")
    with pytest.raises(NotVisible):
        board(engine_of(server), repo="nobody/nothing")
    assert formula(leaderboard.settings_of(None))["text"].startswith("10 × merged pull requests")


def test_equal_points_share_a_rank_and_are_listed_by_login(server, github):
    for n, login in enumerate(("zoe", "Amy", "bo")):
        server.deliver("issue_comment", comment_payload(login, 600 + n, 9800 + n, "2019-05-15T10:00:00Z"))
    server.deliver("issue_comment", comment_payload("zoe", 600, 9810, "2019-05-15T11:00:00Z"))
    run_rq_worker(server.app)
    result = board(engine_of(server), repo=REPO, window="30d", today=TODAY)
    assert [(e["rank"], e["login"], e["points"]) for e in result["entries"]] == [
        (1, "zoe", 2),
        (2, "Amy", 1),
        (2, "bo", 1),
    ]
    assert result["total"] == 3
    assert [e["login"] for e in board(engine_of(server), repo=REPO, window="30d", limit=1, today=TODAY)["entries"]] == [
        "zoe"
    ]


def test_a_scheduled_task_moves_the_windows_so_pages_do_not_have_to(make_app):
    app = make_app()
    store = LedgerStore(services(app).store.engine)
    store.advance(date(2026, 1, 1))
    services(app).tick()
    assert store.windows_as_of() == datetime.now(UTC).date()
