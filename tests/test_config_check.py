"""Config problems are reported on the pull request that introduces them, and cleared when fixed."""

from __future__ import annotations

import pytest

from engagement import config_check
from tests.conftest import REPO, example, installed, run_rq_worker

HEAD = "ec26c3e57ca3a959ca5aad62de7213c562f8c821"  # the head sha of the recorded pull_request.opened.2


FIXED = "5f0c3e1b9a7d2c4e6f8a0b1c3d5e7f9a1b2c3d4e"  # a later commit of the same pull request


def pull_request_event(action: str = "opened", head: str = HEAD) -> dict:
    payload = installed(example("pull_request.opened.2"))
    payload["action"] = action
    payload["pull_request"]["head"]["sha"] = head
    return payload


def reports(github) -> list[str]:
    return [c["body"] for c in github.comments(REPO, 2) if config_check.MARKER in c["body"]]


@pytest.fixture
def server(make_app, serve, redis_url, github):
    github.add_issue(REPO, 2, "Codertocat", pull_request=True)
    github.set_file(REPO, ".github/engage.yml", "greeting:\n  language: en\n")
    return serve(make_app(redis_url=redis_url, behaviours=()))


def test_a_broken_config_is_reported_with_line_and_key_then_marked_fixed(server, github):
    github.set_file(REPO, ".github/engage.yml", "greeting:\n  languag: zh\n  issues: yes please\n", ref=HEAD)
    server.deliver("pull_request", pull_request_event())
    run_rq_worker(server.app)
    [report] = reports(github)
    assert "line 2: ` greeting.languag `: unknown setting" in report
    assert "line 3: ` greeting.issues `: must be true or false, got text" in report

    github.set_file(REPO, ".github/engage.yml", "greeting:\n  language: zh\n", ref=FIXED)  # a new commit
    server.deliver("pull_request", pull_request_event("synchronize", head=FIXED))
    run_rq_worker(server.app)
    assert reports(github) == [config_check.message(())], "the same comment now says it is fixed"


def test_pull_requests_that_leave_the_config_alone_hear_nothing(server, github):
    github.set_file(REPO, ".github/engage.yml", "greeting:\n  language: en\n", ref=HEAD)
    server.deliver("pull_request", pull_request_event())
    run_rq_worker(server.app)
    assert reports(github) == []


def test_a_valid_change_is_not_commented_on(server, github):
    github.set_file(REPO, ".github/engage.yml", "greeting:\n  language: zh\nthanks:\n  mode: reaction\n", ref=HEAD)
    server.deliver("pull_request", pull_request_event())
    run_rq_worker(server.app)
    assert reports(github) == []
