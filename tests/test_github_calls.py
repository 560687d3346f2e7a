"""What a delivery costs in GitHub calls (issue 14): GitHub's 5,000 requests an hour per installation
is the app's real limit, so a fact the app already holds is never asked for again. Counted at the
fake GitHub, which sees every request."""

from __future__ import annotations

from urllib.parse import urlencode

from tests.conftest import REPO, example, installed, services
from tests.test_greeting import NEWCOMER, greetings, issue_opened


def requests_for(github, number: int) -> list[str]:
    """The calls a delivery made, as `METHOD path` (token requests left out: they are cached apart)."""
    return [f"{r.method} {r.path}?{urlencode(r.query)}" for r in github.requests if "/access_tokens" not in r.path]


def test_a_new_greeting_posts_without_listing_the_comments_first(make_app, serve, github):
    server = serve(make_app(behaviours=()))
    github.add_issue(REPO, 5, NEWCOMER, title="Installer crashes")
    assert server.deliver("issues", issue_opened(5)).status_code == 202
    services(server.app).dispatcher.wait_idle()
    assert len(greetings(github, 5)) == 1
    calls = requests_for(github, 5)
    assert not [c for c in calls if c.startswith("GET") and c.endswith("/issues/5/comments")], calls


def test_someone_the_ledger_saw_here_opens_an_issue_and_github_is_not_asked_about_them(make_app, serve, github):
    server = serve(make_app(behaviours=()))
    comment = installed(example("issue_comment.created.1"))
    comment["comment"].update(id=9301, created_at="2026-11-30T08:00:00Z", author_association="NONE")
    comment["comment"]["user"].update(login=NEWCOMER, id=777, type="User")
    comment["sender"].update(login=NEWCOMER, id=777, type="User")
    assert server.deliver("issue_comment", comment).status_code == 202
    services(server.app).dispatcher.wait_idle()
    github.requests.clear()
    github.add_issue(REPO, 5, NEWCOMER, title="Installer crashes")
    opened = issue_opened(5)
    opened["issue"].update(created_at="2026-12-01T09:00:00Z")
    opened["issue"]["user"]["id"] = 777
    assert server.deliver("issues", opened).status_code == 202
    services(server.app).dispatcher.wait_idle()
    assert greetings(github, 5) == []
    assert not [c for c in requests_for(github, 5) if "creator=" in c or "/search/" in c], requests_for(github, 5)
