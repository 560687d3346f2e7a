"""Posting the weekly digest (issue 11, section 4): once per period and destination, on the repository's
own schedule (Monday 09:00 in Asia/Shanghai, 01:00 UTC), moved through time with the scheduler's clock.

GitHub is the fake GitHub (every request checked against the contract), Telegram the fake chat.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from cli.doctor import check_digests
from domain.contributions import Repo
from engagement.common import config as repo_config
from engagement.digest import DigestConfig, undelivered
from settings.destinations import destinations
from storage.repositories import upsert_repository
from tests.conftest import INSTALLATION_ID, REPO, services
from tests.support.fake_chat import FakeChat
from tests.test_notify import chat_env
from tests.test_scheduling import Clock, at

ISSUES = f"/repos/{REPO}/issues"
ORG_REPO = "Codertocat/.github"
ENABLED = "digest:\n  enabled: true\n  destinations: [github, team]\n"


@pytest.fixture
def chat() -> Iterator[FakeChat]:
    with FakeChat() as fake:
        yield fake
        fake.assert_no_violations()


def listed(app: Any, repo_id: int, full_name: str) -> None:
    """The repository as the app knows it once installed: public, with its installation."""
    with services(app).store.engine.begin() as conn:
        upsert_repository(conn, Repo(repo_id, full_name, private=False, installation_id=INSTALLATION_ID), installs=True)


def digest_app(make_app: Any, chat: FakeChat, clock: Clock, more_env: dict[str, str] | None = None) -> Any:
    app = make_app(destinations=destinations({**chat_env(chat.url), **(more_env or {})}))
    svc = services(app)
    svc.tasks.clock = clock
    svc.notifier.sleep = lambda seconds: None  # the notifier's waits (Retry-After) pass at once
    return app


def tick(app: Any) -> None:
    for outcome in services(app).tasks.tick():
        assert outcome.result in ("ran", "failed"), outcome


def issues_created(github: Any, path: str = ISSUES) -> list[Any]:
    return [call for call in github.calls("POST", path) if call.path == path and call.status == 201]


@pytest.fixture
def setup(make_app: Any, github: Any, chat: FakeChat) -> tuple[Any, Clock]:
    github.set_file(REPO, repo_config.CONFIG_PATH, ENABLED)
    clock = Clock("2026-11-29 12:00:00")  # Sunday
    app = digest_app(make_app, chat, clock)
    listed(app, 1296269, REPO)
    return app, clock


def test_one_issue_and_one_message_per_period_at_monday_nine_in_shanghai(setup, make_app, github, chat):
    app, clock = setup
    tick(app)  # Sunday: the digest is seen for the first time; its first period is Monday's
    clock.now = at("2026-11-30 00:59:00")  # Monday 08:59 in Shanghai
    tick(app)
    assert issues_created(github) == [] and chat.posts == []

    clock.now = at("2026-11-30 01:00:30")  # 09:00:30 in Shanghai
    tick(app)
    [issue] = issues_created(github)
    assert [call for call in github.calls("GET", ISSUES) if call.path == ISSUES] == []  # new: no look first
    assert issue.json["title"] == "Community digest, 2026-W48 / 社区周报，2026-W48"
    assert "### Weekly digest of ` Codertocat/Hello-World `: 2026-W48" in issue.json["body"]
    assert len(chat.posts) == 1 and "Weekly digest of Codertocat/Hello-World: 2026-W48" in chat.texts()[0]

    clock.advance(minutes=15)
    tick(app)  # a second pass
    other = digest_app(make_app, chat, clock)  # another worker on the same database
    clock.advance(minutes=15)
    tick(other)
    assert len(issues_created(github)) == 1 and len(chat.posts) == 1

    clock.now = at("2026-12-14 01:20:00")  # every worker down for two weeks: the missed period posts once
    tick(app)
    tick(other)
    clock.advance(minutes=15)
    tick(app)
    titles = [call.json["title"] for call in issues_created(github)]
    assert titles == [
        "Community digest, 2026-W48 / 社区周报，2026-W48",
        "Community digest, 2026-W50 / 社区周报，2026-W50",
    ]
    assert len(chat.posts) == 2


def test_a_telegram_429_then_500_then_success_posts_once_there_and_once_on_github(setup, github, chat):
    app, clock = setup
    tick(app)
    chat.fail_next("telegram", 429, retry_after=1)
    chat.fail_next("telegram", 500, times=2)  # beyond the notifier's three tries: the run fails, retried later
    clock.now = at("2026-11-30 01:00:30")
    tick(app)
    assert len(issues_created(github)) == 1 and chat.posts == []

    clock.advance(minutes=15)
    tick(app)
    assert len(issues_created(github)) == 1 and len(chat.posts) == 1
    clock.advance(minutes=15)
    tick(app)
    assert len(issues_created(github)) == 1 and len(chat.posts) == 1


def test_a_kicked_bot_is_reported_gone_and_not_retried(setup, github, chat):
    app, clock = setup
    tick(app)
    chat.fail_next("telegram", 403)
    clock.now = at("2026-11-30 01:00:30")
    tick(app)
    clock.advance(minutes=15)
    tick(app)
    assert len(issues_created(github)) == 1 and chat.posts == []  # had it been retried, it would have posted
    [gone] = undelivered(services(app).store.engine)
    assert gone.destination == "team" and gone.reason.startswith("gone: team: 403")

    [finding] = check_digests(services(app))  # a line of `flask doctor`
    assert (finding.status, finding.topic) == ("problem", "digest to team")
    assert finding.text.startswith("the repo:1296269 digest of 2026-11-30T01:00:00+00:00 was not delivered")


def test_an_unknown_destination_is_a_config_problem_with_line_and_key(setup, github):
    app, _ = setup
    text = "digest:\n  enabled: true\n  destinations: [github, nowhere]\n"
    config = repo_config.parse(text, services(app).configurable)
    [problem] = config.problems
    assert (problem.key, problem.line) == ("digest.destinations", 3)
    assert "unknown destination nowhere" in problem.message and "team" in problem.message
    # The repository keeps the default (github only): nothing goes to a name the operator never defined.
    assert config.typed(DigestConfig, "digest").destinations == ("github",)


def test_the_org_digest_posts_in_the_orgs_github_repository(make_app, github, chat):
    github.add_repo(ORG_REPO, default_branch="main")
    github.add_installation(INSTALLATION_ID, "Codertocat", [REPO, ORG_REPO])
    github.set_file(ORG_REPO, repo_config.CONFIG_PATH, "digest:\n  enabled: true\n  languages: en\n")
    clock = Clock("2026-11-29 12:00:00")
    app = digest_app(make_app, chat, clock)
    listed(app, 1296269, REPO)
    listed(app, 77, ORG_REPO)
    tick(app)
    clock.now = at("2026-11-30 01:00:30")
    tick(app)
    [issue] = issues_created(github, f"/repos/{ORG_REPO}/issues")
    assert issue.json["title"] == "Community digest, 2026-W48"
    assert "Weekly digest of ` Codertocat `" in issue.json["body"]
    assert issues_created(github) == []  # the repository inherits the org's file: the org's digest covers it


PERIOD_KEY = "digest:repo:1296269:2026-11-30T01:00:00+00:00"
MARKER = f"<!-- engage:{PERIOD_KEY} -->"


def test_a_run_that_died_after_github_created_the_issue_does_not_open_a_second_one(setup, github, chat):
    app, clock = setup
    tick(app)
    key = f"{PERIOD_KEY}:github"
    assert services(app).stores.intents.start(key, key[:64]) == "new"
    github.add_issue(REPO, 90, github.bot_login, "Community digest, 2026-W48", f"{MARKER}\n### Weekly digest")
    clock.now = at("2026-11-30 01:00:30")
    tick(app)
    assert issues_created(github) == []  # the issue the dead run created counts
    assert len(chat.posts) == 1
    clock.advance(minutes=15)
    tick(app)
    assert issues_created(github) == []
    assert services(app).stores.intents.start(key, "another run") == "taken"


def test_a_marker_pasted_into_someone_elses_issue_does_not_stop_the_digest(setup, github, chat):
    app, clock = setup
    tick(app)
    key = f"{PERIOD_KEY}:github"
    assert services(app).stores.intents.start(key, key[:64]) == "new"
    github.add_issue(REPO, 91, "octocat", "Not the digest", f"{MARKER}\npasted by a person")
    clock.now = at("2026-11-30 01:00:30")
    tick(app)
    [issue] = issues_created(github)
    assert issue.json["body"].startswith(MARKER)


def test_the_digests_page_lists_each_posted_week_newest_first_with_the_issue(setup, github, chat, serve):
    app, clock = setup
    listed(app, 4242, "Codertocat/another-one")
    tick(app)
    clock.now = at("2026-11-30 01:00:30")
    tick(app)
    chat.fail_next("telegram", 403)  # week 49 reaches GitHub only: the kicked bot is not listed
    clock.now = at("2026-12-07 01:00:30")
    tick(app)
    server = serve(app)

    page = server.session.get(f"{server.url}/digests", params={"repo": REPO}, timeout=10)
    assert page.status_code == 200 and "Weekly digests" in page.text
    weeks = [line.split('"')[3] for line in page.text.splitlines() if 'class="digest" data-week=' in line]
    assert weeks == ["2026-W49", "2026-W48"]
    first, second = issues_created(github)
    for issue in (first, second):
        assert f'href="{issue.response["html_url"]}"' in page.text
    row_49 = page.text.split('data-week="2026-W49"')[1].split("</tr>")[0]
    row_48 = page.text.split('data-week="2026-W48"')[1].split("</tr>")[0]
    assert "team" not in row_49 and "team" in row_48

    zh = server.session.get(f"{server.url}/digests", params={"repo": REPO, "lang": "zh"}, timeout=10)
    assert "社区周报" in zh.text and "2026-W49" in zh.text
    other = server.session.get(f"{server.url}/digests", params={"repo": "Codertocat/another-one"}, timeout=10)
    assert "2026-W48" not in other.text  # another repository's digests are its own
    private = server.session.get(f"{server.url}/digests", params={"repo": "Codertocat/private-one"}, timeout=10)
    assert private.status_code == 404
