"""What a delivery costs in GitHub calls (issue 14): GitHub's 5,000 requests an hour per installation
is the app's real limit, so a fact the app already holds is never asked for again. Counted at the
fake GitHub, which sees every request."""

from __future__ import annotations

from tests.conftest import REPO, services
from tests.test_greeting import NEWCOMER, greetings, issue_opened


def requests_for(github, number: int) -> list[str]:
    """The calls a delivery made, as `METHOD path` (token requests left out: they are cached apart)."""
    return [f"{r.method} {r.path}" for r in github.requests if "/access_tokens" not in r.path]


def test_a_new_greeting_posts_without_listing_the_comments_first(make_app, serve, github):
    server = serve(make_app(behaviours=()))
    github.add_issue(REPO, 5, NEWCOMER, title="Installer crashes")
    assert server.deliver("issues", issue_opened(5)).status_code == 202
    services(server.app).dispatcher.wait_idle()
    assert len(greetings(github, 5)) == 1
    calls = requests_for(github, 5)
    assert not [c for c in calls if c.startswith("GET") and c.endswith("/issues/5/comments")], calls
