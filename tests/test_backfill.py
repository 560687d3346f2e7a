"""The backfill, through the real `flask backfill` command against the fake GitHub and a real database."""

from __future__ import annotations

import time
from datetime import datetime

import pytest
import sqlalchemy as sa

from jobs import backfill as backfill_module
from jobs.backfill import last_page
from storage.db import contributions, repositories
from storage.ledger import LedgerStore
from tests.conftest import REPO, example, installed, services
from tests.support.fake_github import load_contract

REPO_ID = 186853002  # as in the recorded payloads
BOT_REVIEWER = "ci-helper[bot]"


def at(day: str, clock: str = "10:00:00") -> str:
    return f"2024-{day}T{clock}Z"


@pytest.fixture
def history(github):
    return add_history(github)


def add_history(github):
    """A small history: issues by people and a bot, a merged pull request that fixes a good first
    issue, one closed without merging, reviews in every state, comments by people and a bot."""
    github.add_repo(REPO, default_branch="master", repo_id=REPO_ID)
    github.add_issue(REPO, 1, "alice", title="Typo in README", labels=["good first issue"], created_at=at("01-10"))
    github.add_issue(REPO, 2, "dependabot[bot]", title="Bump requests", created_at=at("01-12"))
    github.add_issue(
        REPO, 3, "bob", pull_request=True, body="Fix the typo.\n\nFixes #1, fixes #2", created_at=at("01-20")
    )
    github.add_issue(REPO, 4, "carol", pull_request=True, created_at=at("02-05"))
    github.add_issue(REPO, 5, "dan", title="Crash on start", created_at=at("03-01"))
    github.add_comment(REPO, 1, "alice", "I can take this", created_at=at("01-11"))
    github.add_comment(REPO, 3, "mei", "Thanks, looking", created_at=at("01-21"))
    github.add_review(REPO, 3, "carol", "CHANGES_REQUESTED", submitted_at=at("01-25"))
    github.add_review(REPO, 3, "carol", "COMMENTED", submitted_at=at("01-26"))
    github.add_review(REPO, 3, BOT_REVIEWER, "COMMENTED", submitted_at=at("01-27"))
    github.add_review(REPO, 3, "dan", "DISMISSED", submitted_at=at("01-28"))
    github.add_review(REPO, 3, "mei", "APPROVED", submitted_at=at("01-30"))
    github.close_issue(REPO, 3, by="mei", at=at("02-01"), merged=True)
    github.close_issue(REPO, 1, by="mei", at=at("02-01", "10:00:05"))
    for content, login in (("+1", "bob"), ("heart", "carol"), ("confused", "dan"), ("eyes", "erin")):
        github.react(REPO, 1, content, login)
    github.close_issue(REPO, 4, by="mei", at=at("02-10"))
    github.add_comment(REPO, 5, "github-actions[bot]", "Labelled: bug", created_at=at("03-02"))
    github.add_comment(REPO, 5, "dan", "Still happens on 1.2", created_at=at("03-03"))
    return github


# Every contribution of the history: (kind, number, who), and the reviews by who and state.
EXPECTED = {
    ("issue_opened", 1, "alice"),
    ("issue_closed", 1, "mei"),
    ("pr_opened", 3, "bob"),
    ("pr_merged", 3, "bob"),
    ("good_first_issue_solved", 3, "bob"),
    ("review_changes_requested", 3, "carol"),
    ("review_commented", 3, "carol"),
    ("review_approved", 3, "mei"),
    ("comment", 3, "mei"),
    ("pr_opened", 4, "carol"),
    ("pr_closed", 4, "mei"),
    ("issue_opened", 5, "dan"),
    ("comment", 1, "alice"),
    ("comment", 5, "dan"),
}
SUMMARY_ALL = "from 3 issues, 2 pull requests, 5 reviews, 4 comments"


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture
def run(app):
    runner = app.test_cli_runner()

    def invoke(*args: str):
        return runner.invoke(args=["backfill", *args])

    return invoke


@pytest.fixture(autouse=True)
def responses_follow_the_contract(github):
    """What the fake answered in each test validates against GitHub's response schemas."""
    yield
    contract = load_contract()
    problems = []
    for record in github.requests:
        if record.status != 200 or record.operation_id is None:
            continue
        op = next(o for o in contract.operations.values() if o.operation_id == record.operation_id)
        problems += [f"{op.operation_id}: {e}" for e in op.response_errors(200, record.response)]
    assert problems == [], "\n".join(problems[:20])


def ledger(app) -> list[sa.Row]:
    with services(app).store.engine.connect() as conn:
        return list(conn.execute(sa.select(contributions).order_by(contributions.c.id)))


def contributed(app) -> set[tuple[str, int, str]]:
    return {(row.kind, row.number, row.actor_login) for row in ledger(app)}


def complete_since(app) -> datetime | None:
    with services(app).store.engine.connect() as conn:
        return conn.execute(
            sa.select(repositories.c.ledger_complete_since).where(repositories.c.id == REPO_ID)
        ).scalar()


def backfill_state(app) -> str | None:
    return LedgerStore(services(app).store.engine).get_state(backfill_module.state_key(REPO_ID))


def test_imports_the_history_once_and_credits_no_bots(app, run, history):
    result = run(REPO)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().splitlines()[-1] == (
        f"recorded {len(EXPECTED)} new contributions (0 already in the ledger) {SUMMARY_ALL}"
    )
    assert contributed(app) == EXPECTED
    rows = ledger(app)
    assert all(row.source == "backfill" and row.repo_id == REPO_ID for row in rows)
    assert not any(row.actor_login.endswith("[bot]") for row in rows), "bots are not credited"
    [closed] = [row for row in rows if row.kind == "issue_closed"]
    assert (closed.positive, closed.negative) == (2, 1), "+1 and heart count for, confused against, eyes neither"
    assert closed.occurred_at == datetime(2024, 2, 1, 10, 0, 5)
    [review] = [row for row in rows if row.kind == "review_approved"]
    assert review.occurred_at == datetime(2024, 1, 30, 10) and review.subject_author_id == github_id(history, "bob")
    [comment] = [row for row in rows if row.kind == "comment" and row.number == 3]
    assert comment.subject_is_pull and comment.url.endswith("/pull/3#issuecomment-" + comment.key.split(":")[1])
    assert complete_since(app) == datetime(1970, 1, 1), "the whole history"
    assert backfill_state(app) is None, "a finished run leaves no position behind"
    assert "issues: 5" in result.stderr and "pulls: 2" in result.stderr and "comments: 4" in result.stderr

    again = run(REPO)
    assert again.exit_code == 0, again.output
    assert f"recorded 0 new contributions ({len(EXPECTED)} already in the ledger) {SUMMARY_ALL}" in again.stdout
    assert len(ledger(app)) == len(EXPECTED)


def github_id(github, login: str) -> int:
    return github.user_id(login)


def test_synonyms_and_config_decide_what_a_good_first_issue_is(app, run, history):
    history.set_file(REPO, ".github/engage.yml", "good_first_issues:\n  labels: [starter-task]\n  synonyms: [easy]\n")
    history.add_issue(REPO, 6, "erin", labels=["easy"], created_at=at("03-05"))
    history.add_issue(REPO, 7, "frank", pull_request=True, body="Closes #6", created_at=at("03-06"))
    history.close_issue(REPO, 7, by="mei", at=at("03-07"), merged=True)
    assert run(REPO).exit_code == 0
    solved = {row.key: row.actor_login for row in ledger(app) if row.kind == "good_first_issue_solved"}
    assert solved == {f"good_first_issue_solved:{REPO_ID}:6": "frank"}, "#1's label is not this repository's"


def test_since_limits_what_is_imported(app, run, history):
    history.add_comment(REPO, 1, "erin", "Thanks for fixing it!", created_at=at("02-03"))
    result = run(REPO, "--since", "2024-02-02")
    assert result.exit_code == 0, result.output
    assert contributed(app) == {
        ("comment", 1, "erin"),  # on an older issue: the comment is new, the issue's opening is not
        ("pr_opened", 4, "carol"),
        ("pr_closed", 4, "mei"),
        ("issue_opened", 5, "dan"),
        ("comment", 5, "dan"),
    }
    assert complete_since(app) == datetime(2024, 2, 2)
    assert history.calls("GET", f"/repos/{REPO}/pulls/3/reviews") == [], "untouched since: reviews not read"
    issues_query = history.calls("GET", f"/repos/{REPO}/issues")[0].query
    assert issues_query["since"] == "2024-02-02T00:00:00Z" and issues_query["state"] == "all"


def test_an_interrupted_run_resumes_where_it_stopped(app, run, history, monkeypatch):
    monkeypatch.setattr(backfill_module, "PER_PAGE", 2)
    monkeypatch.setattr(backfill_module, "TRANSIENT_PAUSE_SECONDS", 0.0)
    comments = f"/repos/{REPO}/issues/comments"
    history.fail_next("GET", f"^{comments}$", 500, times=3, query={"page": "2"})  # one try and two retries
    first = run(REPO)
    assert first.exit_code == 1
    assert "stopped at page 2 of comments" in first.output and "run the same command again" in first.output
    assert len(ledger(app)) == len(EXPECTED) - 1, "everything before the failed page is in"
    assert '"stage": "comments", "page": 2' in (backfill_state(app) or "")
    assert complete_since(app) is None

    history.requests.clear()
    second = run(REPO)
    assert second.exit_code == 0, second.output
    assert "resuming the interrupted backfill of Codertocat/Hello-World at page 2 of comments" in second.stderr
    assert second.stdout.strip() == (
        f"recorded {len(EXPECTED)} new contributions (0 already in the ledger) {SUMMARY_ALL}"
        " (counted over the whole import, which this run resumed)"
    )
    assert contributed(app) == EXPECTED and len(ledger(app)) == len(EXPECTED)
    assert [c.query["page"] for c in history.calls("GET", comments)] == ["2"], "page 1 is not read again"
    assert history.calls("GET", f"/repos/{REPO}/pulls") == [], "finished stages (pulls, reviews) are not read again"
    listings = [c for c in history.calls("GET", f"/repos/{REPO}/issues") if c.path.endswith("/issues")]
    assert listings == [], "what the comments need of the issues listing was kept, not read again"
    [comment] = [row for row in ledger(app) if row.kind == "comment" and row.number == 5]
    assert comment.subject_author_id == github_id(history, "dan"), "the resumed page knows #5's author"
    assert backfill_state(app) is None and complete_since(app) == datetime(1970, 1, 1)
    assert LedgerStore(services(app).store.engine).states_under("backfill-subjects:") == {}, "nothing left behind"


def test_a_failure_in_the_middle_of_a_page_loses_nothing(app, run, history, monkeypatch):
    monkeypatch.setattr(backfill_module, "TRANSIENT_PAUSE_SECONDS", 0.0)
    history.fail_next("GET", f"/repos/{REPO}/pulls/4/reviews$", 502, times=3)
    first = run(REPO)
    assert first.exit_code == 1 and "stopped at page 1 of pulls" in first.output
    assert not any(row.number in (3, 4) and row.kind != "comment" for row in ledger(app))
    assert run(REPO).exit_code == 0
    assert contributed(app) == EXPECTED and len(ledger(app)) == len(EXPECTED)


def test_a_brief_outage_is_retried(app, run, history, monkeypatch):
    monkeypatch.setattr(backfill_module, "TRANSIENT_PAUSE_SECONDS", 0.0)
    history.fail_next("GET", f"/repos/{REPO}/pulls$", 503, times=2)
    result = run(REPO)
    assert result.exit_code == 0, result.output
    assert contributed(app) == EXPECTED


def test_a_rate_limit_is_waited_out(app, run, history):
    reset = int(time.time()) + 2
    history.fail_next(
        "GET",
        f"/repos/{REPO}/pulls$",
        403,
        body={"message": "API rate limit exceeded for installation ID 9001.", "documentation_url": "https://docs"},
        headers={"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(reset)},
    )
    started = time.monotonic()
    result = run(REPO)
    assert result.exit_code == 0, result.output
    assert time.monotonic() - started >= 0.9, "it waited for the reset"
    assert "GitHub rate limit reached: waiting until " in result.stderr and " UTC (" in result.stderr
    assert contributed(app) == EXPECTED


@pytest.mark.parametrize(
    "case, args, message",
    [
        (
            "a repository the installation does not include",
            ["Codertocat/Nope"],
            "Codertocat/Nope is unknown to the app: it does not exist, or the app's installation for Codertocat",
        ),
        (
            "an owner the app is not installed for",
            ["octo-org/engine"],
            "the app is not installed for octo-org, so it cannot read octo-org/engine (installed for: Codertocat)",
        ),
        ("not OWNER/REPO", ["Hello-World"], "'Hello-World' is not a repository name: give it as OWNER/REPO"),
        ("a date that is not a day", [REPO, "--since", "2024-13-01"], "Invalid value for '--since'"),
    ],
)
def test_clear_errors(app, run, github, case, args, message):
    result = run(*args)
    assert result.exit_code != 0, case
    assert message in result.output, case
    assert ledger(app) == []


def test_the_webhook_and_the_backfill_count_a_comment_once(app, serve, history):
    """A comment the live webhook recorded is the same contribution when the backfill meets it."""
    payload = installed(example("issue_comment.created.1"))
    comment, issue = payload["comment"], payload["issue"]
    assert payload["repository"]["id"] == REPO_ID and issue["number"] == 1
    for user in (comment["user"], payload["sender"]):
        user["id"] = history.user_id(user["login"])
    issue["user"].update(login="alice", id=history.user_id("alice"))
    login = comment["user"]["login"]
    history.add_comment(REPO, 1, login, comment["body"], created_at=comment["created_at"], comment_id=comment["id"])
    key = f"comment:{comment['id']}"

    server = serve(app)
    assert server.deliver("issue_comment", payload, delivery_id="live-comment").status_code == 202
    services(app).dispatcher.wait_idle()
    assert services(app).store.get("live-comment").status == "done"
    assert [row.source for row in ledger(app) if row.key == key] == ["webhook"]

    result = app.test_cli_runner().invoke(args=["backfill", REPO])
    assert result.exit_code == 0, result.output
    assert "(1 already in the ledger)" in result.stdout
    assert [row.source for row in ledger(app) if row.key == key] == ["webhook"], "still one contribution"
    assert len(ledger(app)) == len(EXPECTED) + 1


@pytest.mark.parametrize(
    "case, header, expected",
    [
        ("middle page", '<http://h/x?page=3>; rel="next", <http://h/x?per_page=2&page=9>; rel="last"', 9),
        ("last page: no last link", '<http://h/x?page=1>; rel="prev", <http://h/x?page=1>; rel="first"', None),
        ("no header", None, None),
    ],
)
def test_last_page(case, header, expected):
    assert last_page(header) == expected, case
