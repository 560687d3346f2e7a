"""What a delivery costs in GitHub calls (issue 14): GitHub's 5,000 requests an hour per installation
is the app's real limit, so a fact the app already holds is never asked for again. Counted at the
fake GitHub, which sees every request."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from urllib.parse import urlencode

import pytest

from engagement.common import config as repo_config
from engagement.repository_files import MAX_LISTED_COMMITS, changed_paths
from tests.conftest import INSTALLATION_ID, REPO, example, installed, pushed, services
from tests.test_greeting import NEWCOMER, greetings, issue_opened
from webhooks.event import Event
from webhooks.router import Router


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


def known_author_opens(server, github, number: int, login: str, user_id: int) -> None:
    """`login` comments (so the ledger knows them), then opens issue `number`."""
    comment = installed(example("issue_comment.created.1"))
    comment["comment"].update(id=9400 + number, created_at="2026-11-30T08:00:00Z", author_association="NONE")
    comment["comment"]["user"].update(login=login, id=user_id, type="User")
    comment["sender"].update(login=login, id=user_id, type="User")
    server.deliver("issue_comment", comment)
    github.add_issue(REPO, number, login, title="Boot fails on ARM")
    opened = issue_opened(number, login=login)
    opened["issue"].update(created_at="2026-12-01T09:00:00Z")
    opened["issue"]["user"]["id"] = user_id
    server.deliver("issues", opened)
    services(server.app).dispatcher.wait_idle()


def test_an_event_that_needs_no_write_costs_no_call_once_the_app_holds_its_facts(make_app, serve, github):
    github.set_file(REPO, ".github/engage.yml", "greeting:\n  language: en\n")
    server = serve(make_app(behaviours=()))
    known_author_opens(server, github, 5, "sam", 801)  # the first event reads the config once
    github.requests.clear()
    known_author_opens(server, github, 6, "sam", 801)
    assert requests_for(github, 6) == []


def test_a_scheduled_task_reads_the_config_a_delivery_read_without_asking_github(make_app, serve, github):
    """The tasks (the weekly digest, the history import) know a repository by its name only; they share the
    copy a delivery read from its default branch, not a second one read again."""
    github.set_file(REPO, ".github/engage.yml", "leaderboard:\n  daily_comment_cap: 2\n")
    server = serve(make_app(behaviours=()))
    known_author_opens(server, github, 5, "sam", 801)
    github.requests.clear()
    svc = services(server.app)
    config = repo_config.load(svc.github.installation(INSTALLATION_ID), {"full_name": REPO}, svc.configurable)
    assert config.source == f"{REPO}/.github/engage.yml"
    assert requests_for(github, 5) == []


def test_a_push_that_changes_the_config_is_seen_by_the_next_event(make_app, serve, github):
    github.set_file(REPO, ".github/engage.yml", "greeting:\n  enabled: false\n")
    server = serve(make_app(behaviours=()))
    github.add_issue(REPO, 5, NEWCOMER)
    server.deliver("issues", issue_opened(5))
    services(server.app).dispatcher.wait_idle()
    assert greetings(github, 5) == []
    github.set_file(REPO, ".github/engage.yml", "greeting:\n  enabled: true\n")
    server.deliver("push", pushed(["README.md"]))  # another file: the copy stands
    github.add_issue(REPO, 6, "mei")
    server.deliver("issues", issue_opened(6, login="mei"))
    services(server.app).dispatcher.wait_idle()
    assert greetings(github, 6) == []
    server.deliver("push", pushed([".github/engage.yml"]))
    github.add_issue(REPO, 7, "zoe")
    server.deliver("issues", issue_opened(7, login="zoe"))
    services(server.app).dispatcher.wait_idle()
    assert len(greetings(github, 7)) == 1


def test_a_push_to_another_branch_or_a_tag_keeps_the_default_branchs_copy(make_app, serve, github):
    github.set_file(REPO, ".github/engage.yml", "greeting:\n  enabled: false\n")
    server = serve(make_app(behaviours=()))
    server.deliver("issues", issue_opened(5))
    services(server.app).dispatcher.wait_idle()
    github.set_file(REPO, ".github/engage.yml", "greeting:\n  enabled: true\n")
    tag = pushed([".github/engage.yml"])
    tag["ref"] = "refs/tags/v1.0"
    for push in (pushed([".github/engage.yml"], branch="feature"), tag):
        server.deliver("push", push)
    github.add_issue(REPO, 6, "mei")
    server.deliver("issues", issue_opened(6, login="mei"))
    services(server.app).dispatcher.wait_idle()
    assert greetings(github, 6) == [], "the default branch's copy still stands"


def test_a_push_that_changes_no_file_the_app_reads_is_answered_and_never_processed(make_app, serve, github):
    """Pushes are a busy repository's commonest delivery, and most change no file the app keeps a copy of (issue
    14): the intake stores such a push as ignored, saying why, and it is never claimed or processed. A push that
    changes one (the config on the default branch, a contributing guide on any branch) is processed as before."""
    server = serve(make_app(behaviours=()))
    store = services(server.app).store
    code, config, guide = (str(uuid.uuid4()) for _ in range(3))
    answer = server.deliver("push", pushed(["README.md", "src/main.c"]), delivery_id=code)
    assert answer.status_code == 202 and answer.json()["outcome"] == "ignored"
    server.deliver("push", pushed([".github/engage.yml"]), delivery_id=config)
    server.deliver("push", pushed(["CONTRIBUTING.md"], branch="feature"), delivery_id=guide)
    services(server.app).dispatcher.wait_idle()
    untouched = store.get(code)
    assert untouched is not None
    assert (untouched.status, untouched.attempts, untouched.last_error) == ("ignored", 0, "no handler needs this push")
    assert [store.get(config).status, store.get(guide).status] == ["done", "done"]


def test_a_handler_whose_test_fails_on_an_odd_payload_still_gets_the_delivery():
    """A handler's test of the payload runs in the webhook's answer: one that raises lets the delivery through
    to the handler (whose failure is isolated) instead of failing the answer GitHub waits for."""
    router = Router()

    def fussy(event: Event) -> bool:
        return event.payload["commits"][0]["modified"] == []

    router.on("push", name="fussy", wants=fussy)(lambda ctx: None)
    router.on("push", name="picky", wants=lambda event: False)(lambda ctx: None)
    handlers, reason = router.route(Event("d1", "push", {"commits": "not a list"}))
    assert ([h.name for h in handlers], reason) == (["fussy"], None)
    handlers, reason = router.route(Event("d2", "push", {"commits": [{"modified": ["a"]}]}))
    assert (handlers, reason) == ([], "no handler needs this push")
    assert router.route(Event("d3", "fork", {}))[1] == "no handler for fork"


def opened_just_now(number: int, login: str, user_id: int) -> dict:
    """A newcomer's issue opened now: the response watch's scheduled pass, which runs when its thread gets
    to it, has no nudge due to post while the calls are counted."""
    opened = issue_opened(number, login=login)
    opened["issue"]["created_at"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    opened["issue"]["user"]["id"] = user_id
    return opened


def test_a_newcomers_greeting_costs_at_most_three_calls(make_app, serve, github):
    github.set_file(REPO, "CONTRIBUTING.md", "# How to contribute\n")
    server = serve(make_app(behaviours=()))
    github.add_issue(REPO, 5, "first-comer")
    server.deliver("issues", opened_just_now(5, "first-comer", 4201))  # warms the config and file copies
    services(server.app).dispatcher.wait_idle()
    github.requests.clear()
    github.add_issue(REPO, 6, NEWCOMER)
    server.deliver("issues", opened_just_now(6, NEWCOMER, 4202))
    services(server.app).dispatcher.wait_idle()
    assert len(greetings(github, 6)) == 1
    calls = requests_for(github, 6)
    assert len(calls) <= 3, calls


@pytest.mark.parametrize(
    ("case", "push", "expected"),
    [
        (
            "files of every commit",
            {"commits": [{"modified": ["a"]}, {"added": ["b"], "removed": ["c"]}]},
            {"a", "b", "c"},
        ),
        ("the head commit too", {"commits": [], "head_commit": {"modified": ["d"]}}, {"d"}),
        ("a forced push cannot say", {"forced": True, "commits": [{"modified": ["a"]}]}, None),
        ("too many commits to list them all", {"commits": [{}] * MAX_LISTED_COMMITS}, None),
        ("no commit list", {}, None),
    ],
)
def test_which_files_a_push_changed(case, push, expected):
    assert changed_paths(push) == expected, case
