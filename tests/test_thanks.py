"""Thanking reviewers: who counts as a reviewer, and one comment per merged pull request."""

from __future__ import annotations

from dataclasses import replace

import pytest

from engagement import thanks
from engagement.thanks import Plan, ThanksConfig, decide, reviewers_of
from tests.conftest import REPO, example, installed, run_rq_worker

AUTHOR = "li-newcomer"
REPOSITORY = {"full_name": REPO, "id": 186853002, "archived": False}


def review(login: str, state: str = "APPROVED", kind: str = "User") -> dict:
    return {"user": {"login": login, "type": kind}, "state": state}


@pytest.mark.parametrize(
    "case, reviews, expected",
    [
        (
            "each reviewer once, in order of their first review",
            [review("mei"), review("sam", "COMMENTED"), review("mei", "CHANGES_REQUESTED")],
            ("mei", "sam"),
        ),
        ("the author reviewing their own pull request is not thanked", [review(AUTHOR, "COMMENTED")], ()),
        ("bots are not thanked", [review("review-bot[bot]", kind="Bot"), review("ci[bot]")], ()),
        ("a pending review does not count", [review("mei", "PENDING")], ()),
        ("webhook payloads spell states in lower case", [review("mei", "commented")], ("mei",)),
        ("logins differing only in case are one person", [review("Mei"), review("mei")], ("Mei",)),
    ],
)
def test_reviewers(case, reviews, expected):
    assert reviewers_of(reviews, AUTHOR) == expected, case


@pytest.mark.parametrize(
    "case, pull, settings, reviewers, expected",
    [
        ("merged with reviewers: thank them", {"merged": True}, {}, ("mei",), "plan"),
        ("merged without reviewers: nothing", {"merged": True}, {}, (), "nobody reviewed"),
        ("closed without merging: nothing", {"merged": False}, {}, ("mei",), "without merging"),
        ("mode off", {"merged": True}, {"mode": "off"}, ("mei",), "off"),
        ("reaction mode does not comment", {"merged": True}, {"mode": "reaction"}, ("mei",), "off"),
        ("disabled", {"merged": True}, {"enabled": False}, ("mei",), "disabled"),
    ],
)
def test_decide(case, pull, settings, reviewers, expected):
    plan = decide(
        {"number": 5, "title": "Fix boot", **pull}, REPOSITORY, replace(ThanksConfig(), **settings), reviewers
    )
    if expected == "plan":
        assert isinstance(plan, Plan) and plan.reviewers == reviewers and plan.intent == "thanks:186853002:5"
    else:
        assert isinstance(plan, str) and expected in plan, case


def merged_pull(number: int = 5, merged: bool = True, title: str = "Fix boot on ARM") -> dict:
    payload = installed(example("pull_request.closed.1"))
    payload["pull_request"].update(number=number, merged=merged, title=title, body="", author_association="NONE")
    payload["pull_request"]["user"].update(login=AUTHOR)
    payload["sender"].update(login="octo-maintainer")
    return payload


def thank_yous(github, number: int = 5) -> list[str]:
    return [c["body"] for c in github.comments(REPO, number) if thanks.MARKER in c["body"]]


@pytest.fixture
def server(make_app, serve, redis_url):
    return serve(make_app(redis_url=redis_url, behaviours=()))


def test_one_thank_you_names_every_reviewer_once(server, github):
    github.add_issue(REPO, 5, AUTHOR, merged=True)
    github.add_review(REPO, 5, "mei", "CHANGES_REQUESTED")
    github.add_review(REPO, 5, "sam", "COMMENTED")
    github.add_review(REPO, 5, "mei", "APPROVED")
    github.add_review(REPO, 5, AUTHOR, "COMMENTED")
    for delivery_id in ("merge-1", "merge-1", "merge-2"):  # a redelivery, and a second event for the same merge
        server.deliver("pull_request", merged_pull(), delivery_id=delivery_id)
    run_rq_worker(server.app)
    [comment] = thank_yous(github)
    assert "Thank you for reviewing this pull request, @mei, @sam!" in comment
    assert f"@{AUTHOR}" not in comment


def test_chinese_pull_requests_are_thanked_in_chinese(server, github):
    github.add_issue(REPO, 5, AUTHOR, merged=True)
    github.add_review(REPO, 5, "mei")
    github.add_review(REPO, 5, "sam")
    server.deliver("pull_request", merged_pull(title="修复 ARM 开发板上的启动问题"))
    run_rq_worker(server.app)
    assert "感谢 @mei、@sam 评审这个 pull request" in thank_yous(github)[0]


def test_no_reviewers_no_comment_and_unmerged_no_lookup(server, github):
    github.add_issue(REPO, 5, AUTHOR, merged=True)
    server.deliver("pull_request", merged_pull())
    github.add_issue(REPO, 6, AUTHOR, pull_request=True, state="closed")
    server.deliver("pull_request", merged_pull(6, merged=False))
    run_rq_worker(server.app)
    assert thank_yous(github, 5) == [] and thank_yous(github, 6) == []
    assert github.calls("GET", f"/repos/{REPO}/pulls/6/reviews") == []


def test_reaction_mode_hearts_the_pull_request_instead(server, github):
    github.set_file(REPO, ".github/engage.yml", "thanks:\n  mode: reaction\n")
    github.add_issue(REPO, 2, "Codertocat", pull_request=True)
    payload = installed(example("pull_request_review.submitted.1"))
    payload["review"]["user"].update(login="mei")
    payload["sender"].update(login="mei")
    server.deliver("pull_request_review", payload)
    run_rq_worker(server.app)
    assert github.reactions(REPO, issue_number=2) == ["heart"]
    github.add_issue(REPO, 5, AUTHOR, merged=True)
    github.add_review(REPO, 5, "mei")
    server.deliver("pull_request", merged_pull())
    run_rq_worker(server.app)
    assert thank_yous(github) == [], "reaction mode posts no comment"
