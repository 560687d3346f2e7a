"""Greeting first-time contributors: the decision as a table, then real payloads through the app."""

from __future__ import annotations

import threading
from dataclasses import replace

import pytest

from domain import contributions
from domain.contributions import Repo
from engagement import greeting
from engagement.common.config import parse
from engagement.common.language import detect
from engagement.common.templates import fill
from engagement.greeting import (
    DEFAULTS,
    FIRST_MERGE,
    FIRST_REVIEW,
    ISSUE,
    PULL_REQUEST,
    Facts,
    GreetingConfig,
    Plan,
    Situation,
    decide,
)
from storage.ledger import LedgerStore
from tests.conftest import INSTALLATION_ID, REPO, example, installed, pushed, run_rq_worker, services
from tests.test_ledger_store import history_by_others, sqlite_steps
from webhooks.jobs import process

NEWCOMER = "li-newcomer"


def situation(kind: str = ISSUE, association: str = "NONE", text: str = "It crashes", archived: bool = False):
    return Situation(kind, REPO, 186853002, 7, NEWCOMER, 4242, None, association, text, archived)


def config(**changes):
    return replace(GreetingConfig(), **changes)


@pytest.mark.parametrize(
    "case, kind, association, settings, facts, expected",
    [
        ("a first issue is greeted", ISSUE, "NONE", {}, Facts(0), "en"),
        ("a first pull request is greeted", PULL_REQUEST, "FIRST_TIME_CONTRIBUTOR", {}, Facts(0), "en"),
        ("a first merge is congratulated", FIRST_MERGE, "CONTRIBUTOR", {}, Facts(0), "en"),
        ("someone with earlier issues is not greeted", ISSUE, "NONE", {}, Facts(2), "earlier"),
        ("someone with an earlier merge is not congratulated", FIRST_MERGE, "CONTRIBUTOR", {}, Facts(1), "earlier"),
        ("a failed lookup means silence", ISSUE, "NONE", {}, Facts(None), "could not tell"),
        ("owners are skipped", ISSUE, "OWNER", {}, Facts(0), "owner"),
        ("members are skipped", PULL_REQUEST, "MEMBER", {}, Facts(0), "member"),
        ("members are greeted when configured", ISSUE, "MEMBER", {"skip_members": False}, Facts(0), "en"),
        ("contributors are not new", ISSUE, "CONTRIBUTOR", {}, Facts(0), "contributed before"),
        ("the behaviour can be turned off", ISSUE, "NONE", {"enabled": False}, Facts(0), "turned off"),
        ("issue greetings can be turned off alone", ISSUE, "NONE", {"issues": False}, Facts(0), "turned off"),
        (
            "pull request greetings can be turned off alone",
            PULL_REQUEST,
            "NONE",
            {"pull_requests": False},
            Facts(0),
            "turned off",
        ),
        (
            "merge congratulations can be turned off alone",
            FIRST_MERGE,
            "NONE",
            {"first_merge": False},
            Facts(0),
            "turned off",
        ),
        ("language can be forced to Chinese", ISSUE, "NONE", {"language": "zh"}, Facts(0), "zh"),
        ("first reviews are thanked only when turned on", FIRST_REVIEW, "NONE", {}, Facts(0), "turned off"),
        (
            "a first review is thanked when turned on",
            FIRST_REVIEW,
            "CONTRIBUTOR",
            {"first_review": True},
            Facts(0),
            "en",
        ),
        ("someone who reviewed before is not", FIRST_REVIEW, "NONE", {"first_review": True}, Facts(1), "earlier"),
        ("someone the ledger saw here is not new", ISSUE, "NONE", {}, Facts(0, seen_here=True), "taken part"),
        (
            "activity here does not stand for a first merge",
            FIRST_MERGE,
            "CONTRIBUTOR",
            {},
            Facts(0, seen_here=True),
            "en",
        ),
    ],
)
def test_decide(case, kind, association, settings, facts, expected):
    plan = decide(situation(kind, association), config(**settings), facts)
    if isinstance(plan, Plan):
        assert plan.language == expected, case
        assert plan.intent == f"greeting:186853002:{NEWCOMER}:{kind}"
    else:
        assert expected in plan, case


def test_archived_repositories_get_nothing():
    assert decide(situation(archived=True), config(), Facts(0)) == "repository is archived"


@pytest.mark.parametrize(
    "text, language",
    [
        ("The installer crashes on ARM boards", "en"),
        ("安装程序在 ARM 开发板上崩溃了，无法启动", "zh"),
        ("在 Raspberry Pi 4 上运行 `sudo apt install llmasos-desktop` 时报错", "zh"),
        ("Build fails\n```\n错误：找不到文件\n```\nwhen I run make on Debian", "en"),
        ("", "en"),
    ],
)
def test_language_follows_the_prose(text, language):
    assert detect(text) == language


def test_templates_substitute_named_fields_only():
    fields = {"login": "octo", "repo": "o/r"}
    assert fill("Hi @{login} in {repo}!", fields) == "Hi @octo in o/r!"
    assert fill("{login.__class__} {0} {unknown} {login!r}", fields) == "{login.__class__} {0} {unknown} {login!r}"


def test_config_file_is_merged_over_defaults_and_problems_name_line_and_key():
    text = "greeting:\n  language: zh\n  chat_url: 5\n  colour: blue\nthanks: {}\n"
    loaded = parse(text, [greeting])
    section = loaded.section("greeting")
    assert section["language"] == "zh" and section["chat_url"] == "" and section["issues"] is True
    assert [str(p) for p in loaded.problems] == [
        "line 3: greeting.chat_url: must be text, got a number",
        f"line 4: greeting.colour: unknown setting (known: {', '.join(sorted(DEFAULTS))})",
        "line 5: thanks: unknown section (known: greeting)",
    ]


def test_broken_yaml_falls_back_to_defaults_and_says_where():
    loaded = parse("greeting:\n  language: [zh\n", [greeting])
    assert loaded.section("greeting") == DEFAULTS
    assert len(loaded.problems) == 1 and "not valid YAML" in str(loaded.problems[0])
    assert loaded.problems[0].line == 3


# --- through the app, against the fake GitHub


def issue_opened(number: int, login: str = NEWCOMER, title: str = "Installer crashes", body: str = "") -> dict:
    payload = installed(example("issues.opened.1"))
    payload["issue"].update(number=number, title=title, body=body, author_association="NONE")
    payload["issue"]["user"].update(login=login, type="User")
    payload["sender"].update(login=login, type="User")
    return payload


def pull_request(action_example: str, number: int, login: str = NEWCOMER, merged: bool = False) -> dict:
    payload = installed(example(action_example))
    payload["pull_request"].update(number=number, author_association="NONE", merged=merged)
    payload["pull_request"]["user"].update(login=login, type="User")
    payload["sender"].update(login=login, type="User")
    return payload


def greetings(github, number: int) -> list[str]:
    return [c["body"] for c in github.comments(REPO, number) if "engage:greeting" in c["body"]]


@pytest.fixture
def app(make_app, redis_url):
    return make_app(redis_url=redis_url, behaviours=())


@pytest.fixture
def server(app, serve):
    return serve(app)


def test_a_newcomers_first_issue_is_greeted_once_in_english(server, github):
    github.add_issue(REPO, 3, NEWCOMER, title="Installer crashes")
    github.set_file(REPO, "CONTRIBUTING.md", "# How to contribute\n")
    for _ in range(2):  # a redelivery
        server.deliver("issues", issue_opened(3), delivery_id="first-issue")
    server.deliver("issues", issue_opened(3), delivery_id="github-retried-with-a-new-id")
    run_rq_worker(server.app)
    [comment] = greetings(github, 3)
    assert comment.startswith(f"<!-- engage:greeting:issue:{NEWCOMER} -->")
    assert f"Welcome, @{NEWCOMER}, and thank you for opening your first issue in {REPO}!" in comment
    assert f"[Contributing guide](https://github.com/{REPO}/blob/master/CONTRIBUTING.md)" in comment
    assert "Code of conduct" not in comment, "no link to a file the repository does not have"
    assert "label%3A%22good+first+issue%22" in comment


def test_a_returning_contributor_is_not_greeted(server, github):
    github.add_issue(REPO, 3, NEWCOMER, state="closed")
    github.add_issue(REPO, 4, NEWCOMER)
    server.deliver("issues", issue_opened(4))
    run_rq_worker(server.app)
    assert greetings(github, 4) == []


def test_a_chinese_issue_gets_a_chinese_greeting(server, github):
    title, body = "安装程序崩溃", "在树莓派上安装时出现错误，日志如下。"
    github.add_issue(REPO, 3, NEWCOMER, title=title, body=body)
    server.deliver("issues", issue_opened(3, title=title, body=body))
    run_rq_worker(server.app)
    [comment] = greetings(github, 3)
    assert f"欢迎你，@{NEWCOMER}！感谢你在 {REPO} 提交第一个 issue" in comment and "Welcome" not in comment


def test_two_first_issues_processed_at_once_get_one_greeting_on_the_earlier(app, server, github):
    for number in (3, 4):
        github.add_issue(REPO, number, NEWCOMER)
        server.deliver("issues", issue_opened(number), delivery_id=f"burst-{number}")
    svc = services(app)
    svc.dispatcher.wait_idle()
    threads = [threading.Thread(target=process, args=(svc, f"burst-{n}")) for n in (3, 4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(greetings(github, 3)) == 1 and greetings(github, 4) == []


def test_concurrent_workers_on_redeliveries_greet_once(app, server, github):
    github.add_issue(REPO, 3, NEWCOMER)
    ids = [f"copy-{n}" for n in range(4)]
    for delivery_id in ids:
        server.deliver("issues", issue_opened(3), delivery_id=delivery_id)
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
    assert len(greetings(github, 3)) == 1


def test_a_crash_after_posting_does_not_post_again(app, server, github):
    """The intent was recorded and the comment posted, then the worker died before finishing."""
    github.add_issue(REPO, 3, NEWCOMER)
    server.deliver("issues", issue_opened(3), delivery_id="crashy")
    svc = services(app)
    svc.dispatcher.wait_idle()
    intent = f"greeting:186853002:{NEWCOMER}:issue"
    assert svc.intents.claim(intent, "crashy")
    github.add_comment(REPO, 3, "llmasos-engage[bot]", greeting.marker("issue", NEWCOMER) + "\nWelcome!")
    process(svc, "crashy")
    assert len(greetings(github, 3)) == 1


def test_first_pull_request_and_first_merge(server, github):
    github.add_issue(REPO, 5, NEWCOMER, pull_request=True)
    server.deliver("pull_request", pull_request("pull_request.opened.2", 5))
    run_rq_worker(server.app)
    assert "thank you for your first pull request" in greetings(github, 5)[0]

    github.add_issue(REPO, 5, NEWCOMER, merged=True)
    server.deliver("pull_request", pull_request("pull_request.closed.1", 5, merged=True))
    run_rq_worker(server.app)
    assert len(greetings(github, 5)) == 2 and "your first pull request to" in greetings(github, 5)[1]

    github.add_issue(REPO, 6, NEWCOMER, merged=True)
    server.deliver("pull_request", pull_request("pull_request.closed.1", 6, merged=True))
    run_rq_worker(server.app)
    assert greetings(github, 6) == [], "only the first merge is congratulated"


def test_closing_without_merging_says_nothing(server, github):
    github.add_issue(REPO, 5, NEWCOMER, pull_request=True, state="closed")
    server.deliver("pull_request", pull_request("pull_request.closed.1", 5, merged=False))
    run_rq_worker(server.app)
    assert greetings(github, 5) == []


def test_owners_get_no_greeting_and_no_lookup(server, github):
    payload = issue_opened(3)
    payload["issue"]["author_association"] = "OWNER"
    server.deliver("issues", payload)
    run_rq_worker(server.app)
    assert greetings(github, 3) == [] and github.calls("GET", f"/repos/{REPO}/issues") == []


def test_repository_config_turns_the_greeting_off(server, github):
    github.set_file(REPO, ".github/engage.yml", "greeting:\n  enabled: false\n")
    github.add_issue(REPO, 3, NEWCOMER)
    server.deliver("issues", issue_opened(3))
    run_rq_worker(server.app)
    assert greetings(github, 3) == []


def test_org_wide_config_applies_when_the_repository_has_none(server, github):
    github.add_installation(9001, "Codertocat", [REPO, "Codertocat/.github"])
    github.set_file(
        "Codertocat/.github",
        ".github/engage.yml",
        "greeting:\n  language: zh\n  forum_url: https://forum.llmasos.org\n",
    )
    github.add_issue(REPO, 3, NEWCOMER)
    server.deliver("issues", issue_opened(3))
    run_rq_worker(server.app)
    [comment] = greetings(github, 3)
    assert "欢迎你" in comment and "[论坛](https://forum.llmasos.org)" in comment


def test_a_broken_config_file_still_greets_with_defaults_and_logs_where(server, github, caplog):
    github.set_file(REPO, ".github/engage.yml", "greeting:\n  language: [zh\n")
    github.add_issue(REPO, 3, NEWCOMER)
    server.deliver("issues", issue_opened(3))
    run_rq_worker(server.app)
    assert "Welcome" in greetings(github, 3)[0]
    assert any("not valid YAML" in r.getMessage() and "line 3" in r.getMessage() for r in caplog.records)


def test_a_custom_message_cannot_reach_into_python(server, github):
    github.set_file(
        REPO,
        ".github/engage.yml",
        'greeting:\n  messages:\n    issue: "Hi @{login} {login.__init__.__globals__} in {repo}"\n',
    )
    github.add_issue(REPO, 3, NEWCOMER)
    server.deliver("issues", issue_opened(3))
    run_rq_worker(server.app)
    [comment] = greetings(github, 3)
    assert f"Hi @{NEWCOMER} {{login.__init__.__globals__}} in {REPO}" in comment


def test_when_github_refuses_the_lookup_nobody_is_greeted(server, github):
    github.add_issue(REPO, 3, NEWCOMER)
    github.fail_next("GET", rf"^/repos/{REPO}/issues$", 403, body={"message": "Resource not accessible by integration"})
    server.deliver("issues", issue_opened(3), delivery_id="refused")
    run_rq_worker(server.app)
    assert greetings(github, 3) == []
    assert services(server.app).store.get("refused").status == "done"


def test_bot_authors_are_never_greeted(server, github):
    payload = issue_opened(3, login="renovate[bot]")
    payload["issue"]["user"]["type"] = "Bot"
    payload["sender"].update(login="octo-maintainer")  # a person triggered it, the item is a bot's
    github.add_issue(REPO, 3, "renovate[bot]")
    server.deliver("issues", payload)
    run_rq_worker(server.app)
    assert greetings(github, 3) == []


def review_submitted(reviewer: str, number: int = 2, association: str = "NONE") -> dict:
    payload = installed(example("pull_request_review.submitted.1"))
    payload["review"]["user"].update(login=reviewer, type="User")
    payload["review"].update(author_association=association, body="Looks good, one small note.")
    payload["pull_request"].update(number=number)
    payload["sender"].update(login=reviewer)
    return payload


def test_first_reviews_are_thanked_only_when_turned_on_and_only_once(server, github):
    github.add_issue(REPO, 2, "Codertocat", pull_request=True)
    github.add_review(REPO, 2, NEWCOMER, "COMMENTED")
    server.deliver("pull_request_review", review_submitted(NEWCOMER))
    run_rq_worker(server.app)
    assert greetings(github, 2) == [], "off by default"

    github.set_file(REPO, ".github/engage.yml", "greeting:\n  first_review: true\n")
    server.deliver("push", pushed([".github/engage.yml"]))  # what tells the app the file changed
    run_rq_worker(server.app)
    server.deliver("pull_request_review", review_submitted(NEWCOMER))
    server.deliver("pull_request_review", review_submitted(NEWCOMER))
    run_rq_worker(server.app)
    [comment] = greetings(github, 2)
    assert f"Thank you for your first review in {REPO}, @{NEWCOMER}!" in comment

    github.add_issue(REPO, 5, "Codertocat", pull_request=True)
    github.add_review(REPO, 5, "mei", "APPROVED")
    github.add_review(REPO, 2, "mei", "COMMENTED")  # mei reviewed #2 before
    server.deliver("pull_request_review", review_submitted("mei", number=5))
    server.deliver("pull_request_review", review_submitted("Codertocat", number=5))  # the author's own
    run_rq_worker(server.app)
    assert greetings(github, 5) == []


def test_a_pasted_marker_does_not_stop_the_greeting(server, github):
    github.add_issue(REPO, 3, NEWCOMER)
    github.add_comment(REPO, 3, "prankster", greeting.marker("issue", NEWCOMER))
    server.deliver("issues", issue_opened(3))
    run_rq_worker(server.app)
    assert len([b for b in greetings(github, 3) if "Welcome" in b]) == 1


def test_a_newcomers_issue_costs_the_same_however_long_the_repositorys_history(app, server, github):
    """Processing a newcomer's issue (every handler, the greeting included) reads the person's rows, not the
    repository's: on SQLite, without statistics, a lookup bounded in time walked every earlier contribution to the
    repository. Counted in SQLite's VM steps, not time, before and after 1,500 contributions by others."""
    engine = services(app).store.engine
    if engine.dialect.name != "sqlite":
        pytest.skip("SQLite's planner, without statistics; PostgreSQL's picks the person's index itself")
    repository = example("issues.opened.1")["repository"]
    opened = contributions.github_time(example("issues.opened.1")["issue"]["created_at"])
    assert opened is not None

    def steps_to_greet(number: int) -> int:
        login = f"newcomer-{number}"
        github.add_issue(REPO, number, login, title="Installer crashes")
        payload = issue_opened(number, login)
        payload["issue"]["user"]["id"] = payload["sender"]["id"] = 10_000 + number  # each a person of their own
        server.deliver("issues", payload)
        steps = sqlite_steps(engine, lambda: run_rq_worker(server.app))
        assert len(greetings(github, number)) == 1
        return steps

    steps_to_greet(3)  # the first delivery stores the repository and the installation's token
    short = steps_to_greet(4)
    place = Repo(int(repository["id"]), REPO, private=False, installation_id=INSTALLATION_ID)
    history_by_others(LedgerStore(engine), opened.replace(tzinfo=None), 1500, repo=place)
    assert steps_to_greet(5) <= short * 1.5, "processing walked the repository's history"
