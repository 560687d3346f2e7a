"""A good first issue with a pull request open for it is off the newcomers' list until that closes."""

from __future__ import annotations

import pytest

from engagement.good_first_issues.linked_pulls import closing_references
from storage.good_first_issues import GoodFirstIssueStore
from tests.conftest import REPO, example, installed, run_rq_worker, services

REPO_ID = 186853002


@pytest.mark.parametrize(
    "case, body, numbers",
    [
        ("fixes", "Fixes #3", {3}),
        ("every closing keyword, any case", "closes #1, RESOLVED #2 and fix: #4", {1, 2, 4}),
        ("mentions are not links", "Related to #3, see #5", set()),
        ("code does not count", "Run `git commit -m 'fixes #3'`\n```\nfixes #9\n```", set()),
        ("no body", "", set()),
    ],
)
def test_closing_references(case, body, numbers):
    assert closing_references(body) == numbers, case


def labelled_issue(number: int) -> dict:
    payload = installed(example("issues.labeled.1"))
    payload["issue"].update(number=number, state="open", assignee=None, assignees=[])
    payload["issue"]["labels"] = [
        {
            "id": 1,
            "node_id": "x",
            "url": "",
            "name": "good first issue",
            "color": "7057ff",
            "default": True,
            "description": "Good for newcomers",
        }
    ]
    payload["label"] = payload["issue"]["labels"][0]
    return payload


def pull_event(action: str, number: int, body: str) -> dict:
    payload = installed(example("pull_request.opened.2"))
    payload["action"] = action
    payload["pull_request"].update(number=number, body=body, state="closed" if action == "closed" else "open")
    return payload


def test_a_linked_pull_request_takes_the_issue_off_the_list_until_it_closes(make_app, serve, redis_url, github):
    app = make_app(redis_url=redis_url, behaviours=())
    server = serve(app)
    for number in (3, 4):
        github.add_issue(REPO, number, "Codertocat", labels=["good first issue"])
        server.deliver("issues", labelled_issue(number))
    run_rq_worker(app)
    store = GoodFirstIssueStore(services(app).store.engine)
    assert [i.number for i in store.open_for_newcomers(REPO)] == [3, 4]

    github.add_issue(REPO, 9, "li-newcomer", pull_request=True)
    server.deliver("pull_request", pull_event("opened", 9, "Fixes #3"))
    run_rq_worker(app)
    assert [i.number for i in store.open_for_newcomers(REPO)] == [4]
    assert store.get(REPO_ID, 3).linked_pull == 9

    server.deliver("pull_request", pull_event("edited", 9, "Fixes #4"))
    run_rq_worker(app)
    assert [i.number for i in store.open_for_newcomers(REPO)] == [3], "the edit moved the link"

    server.deliver("pull_request", pull_event("closed", 9, "Fixes #4"))
    run_rq_worker(app)
    assert [i.number for i in store.open_for_newcomers(REPO)] == [3, 4], "closed without merging: free again"
