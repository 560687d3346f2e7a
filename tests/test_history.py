"""The background import of installed repositories' history (engagement.history), through the app's own
scheduled task, against the fake GitHub: what it imports, what it spends, and when it holds back."""

from __future__ import annotations

import time
from datetime import datetime, timedelta

import pytest

from engagement import history as history_module
from jobs import backfill as backfill_module
from tests.conftest import INSTALLATION_ID, REPO, services
from tests.test_backfill import EXPECTED, REPO_ID, add_history, complete_since, contributed
from tests.test_greeting import greetings, issue_opened
from tests.test_installations import HELLO, created, suspension

NOPE = {"id": 186853001, "node_id": "MDEwOlJlcG9zaXRvcnkxODY4NTMwMDE=", "name": "Nope", "full_name": "Codertocat/Nope"}


@pytest.fixture
def history(github):
    return add_history(github)


@pytest.fixture
def start(make_app, serve):
    """The app with the import on (`per_hour` requests an hour), Hello-World installed by a webhook. The
    background ticker is slowed to once an hour: the tests run each slice themselves and count its requests,
    and a slice the ticker ran meanwhile (its first is due at once) would be counted with theirs."""

    def build(per_hour: int = 1000, *repos: dict):
        app = make_app(backfill_calls_per_hour=per_hour, behaviours=(), sweep_interval_seconds=3600)
        server = serve(app)
        assert server.deliver("installation", created(*(repos or (HELLO,)))).status_code == 202
        services(app).dispatcher.wait_idle()
        return app, server

    return build


def slice_now(app) -> None:
    assert services(app).tasks.run_now(history_module.NAME).result == "ran"


def listing_pages(github, path: str) -> list[str]:
    return [call.query.get("page", "1") for call in github.calls("GET", path) if call.path == path]


def test_an_installed_repository_gets_its_history_and_newcomers_are_known_from_it(start, history):
    app, server = start()
    slice_now(app)
    assert contributed(app) == EXPECTED, "the whole history, once, no bots"
    assert complete_since(app) == datetime(1970, 1, 1)

    history.requests.clear()
    slice_now(app)
    assert history.requests == [], "an imported repository costs nothing more"

    # A newcomer's first issue: the ledger says they are new, so GitHub is not asked (it would refuse here).
    history.add_issue(REPO, 6, "zoe", title="Installer crashes")
    refused = {"message": "Resource not accessible by integration"}
    history.fail_next("GET", rf"^/repos/{REPO}/issues$", 403, body=refused)
    assert server.deliver("issues", issue_opened(6, login="zoe")).status_code == 202
    services(app).dispatcher.wait_idle()
    [greeting] = greetings(history, 6)
    assert "Welcome, @zoe" in greeting
    assert history.calls("GET", f"/repos/{REPO}/issues") == [], "no first-time lookup"

    # dan opened #5 long ago: the ledger knows him, so his next issue is not greeted, again without asking.
    history.add_issue(REPO, 7, "dan", title="Another crash")
    assert server.deliver("issues", issue_opened(7, login="dan")).status_code == 202
    services(app).dispatcher.wait_idle()
    assert greetings(history, 7) == []
    assert history.calls("GET", f"/repos/{REPO}/issues") == []


def test_after_a_suspension_the_ledger_is_not_trusted_until_imported_again(start, history):
    """GitHub sends a suspended installation's events to nobody: someone's first issue then never reaches
    the ledger, and after the suspension the ledger alone would take their second for a first."""
    app, server = start()
    slice_now(app)
    assert complete_since(app) == datetime(1970, 1, 1)

    assert server.deliver("installation", suspension("suspend")).status_code == 202
    services(app).dispatcher.wait_idle()
    history.add_issue(REPO, 6, "zoe", title="Installer crashes")  # while the app hears nothing
    assert server.deliver("installation", suspension("unsuspend")).status_code == 202
    services(app).dispatcher.wait_idle()
    assert complete_since(app) is None

    history.add_issue(REPO, 7, "zoe", title="Installer crashes again")
    assert server.deliver("issues", issue_opened(7, login="zoe")).status_code == 202
    services(app).dispatcher.wait_idle()
    assert greetings(history, 7) == [], "GitHub was asked, and knows her #6"
    assert history.calls("GET", f"/repos/{REPO}/issues"), "the first-time lookup"

    slice_now(app)  # the import runs again and brings what the ledger missed
    assert ("issue_opened", 6, "zoe") in contributed(app) and complete_since(app) == datetime(1970, 1, 1)


def test_slices_keep_to_their_share_and_read_no_page_twice(start, history, monkeypatch):
    monkeypatch.setattr(backfill_module, "PER_PAGE", 2)
    app, _ = start(per_hour=4 * 12)  # 4 requests a slice, every 5 minutes
    slices, spent = 0, []
    while complete_since(app) is None:
        history.requests.clear()
        slice_now(app)
        slices += 1
        spent.append(len([r for r in history.requests if r.method == "GET" and "/access_tokens" not in r.path]))
        assert slices < 30, "the import must progress"
    assert contributed(app) == EXPECTED
    assert slices > 2, f"the history was spread over slices: {spent}"
    # A slice stops at the first page after its share; one page of pull requests reads each one's reviews too.
    assert max(spent) <= 4 + 1 + 2, spent


def test_each_installation_has_its_own_share_of_a_slice(start, history, monkeypatch):
    """GitHub counts each installation's requests apart: one organisation's long history does not hold
    back another's import."""
    monkeypatch.setattr(backfill_module, "PER_PAGE", 2)
    app, server = start(per_hour=4 * 12)  # 4 requests a slice, of each installation
    other = "octo-org/engine"
    history.add_repo(other, default_branch="main", repo_id=99)
    history.add_installation(7, "octo-org", [other])
    history.add_issue(other, 1, "zoe", title="Boot hangs")
    octo = created({"id": 99, "node_id": "MDEwOlJlcG9zaXRvcnk5OQ==", "name": "engine", "full_name": other})
    octo["installation"]["id"] = 7
    octo["installation"]["account"]["login"] = "octo-org"
    assert server.deliver("installation", octo).status_code == 202
    services(app).dispatcher.wait_idle()

    history.requests.clear()
    slice_now(app)
    spent = {
        owner: len([r for r in history.requests if r.method == "GET" and r.path.startswith(f"/repos/{owner}/")])
        for owner in ("Codertocat", "octo-org")
    }
    assert 0 < spent["Codertocat"] <= 4 + 1 + 2 and 0 < spent["octo-org"] <= 4 + 1 + 2, spent
    assert ("issue_opened", 1, "zoe") in contributed(app), "the other organisation's history is in, in one slice"


def test_a_resumed_import_reads_each_listing_page_once(start, history, monkeypatch):
    monkeypatch.setattr(backfill_module, "PER_PAGE", 2)
    app, _ = start(per_hour=4 * 12)
    history.requests.clear()
    while complete_since(app) is None:
        slice_now(app)
    assert listing_pages(history, f"/repos/{REPO}/issues") == ["1", "2", "3"]
    assert listing_pages(history, f"/repos/{REPO}/pulls") == ["1"]
    assert listing_pages(history, f"/repos/{REPO}/issues/comments") == ["1", "2"]
    assert contributed(app) == EXPECTED


def test_an_operators_backfill_under_way_is_left_to_it_then_finished(start, history, monkeypatch):
    monkeypatch.setattr(backfill_module, "PER_PAGE", 2)
    monkeypatch.setattr(backfill_module, "TRANSIENT_PAUSE_SECONDS", 0.0)
    app, _ = start()
    # An operator's `flask backfill` has saved its place at page 2 of the comments (it stops there here; a
    # run still going would be saving it page after page).
    comments = f"/repos/{REPO}/issues/comments"
    history.fail_next("GET", f"^{comments}$", 500, times=3, query={"page": "2"})
    assert app.test_cli_runner().invoke(args=["backfill", REPO]).exit_code == 1

    history.requests.clear()
    slice_now(app)
    assert [r for r in history.requests if "/access_tokens" not in r.path] == [], "left to the operator's run"
    assert history_module.progress(services(app).stores.ledger, REPO_ID) == "at page 2 of comments"

    # Quiet for longer than an operator's run can be: the import continues where that run stopped.
    monkeypatch.setattr(history_module, "OPERATOR_QUIET", timedelta(0))
    slice_now(app)
    assert contributed(app) == EXPECTED and complete_since(app) == datetime(1970, 1, 1)
    assert listing_pages(history, comments) == ["2"], "the operator's pages are not read again"


def test_a_low_budget_holds_the_import_back(start, history):
    app, _ = start()
    history.set_rate_limit(INSTALLATION_ID, remaining=2000)  # under half of 5,000 left this hour
    # The app learns the budget from GitHub's answers, as it does from any call.
    services(app).github.installation(INSTALLATION_ID).get(f"/repos/{REPO}")
    history.requests.clear()
    slice_now(app)
    assert [r for r in history.requests if "/access_tokens" not in r.path] == [], "no request spent on history"
    assert contributed(app) == set()

    history.set_rate_limit(INSTALLATION_ID, remaining=4900, reset=time.time() + 3600)
    services(app).github.installation(INSTALLATION_ID).get(f"/repos/{REPO}")
    slice_now(app)
    assert contributed(app) == EXPECTED


def test_a_rate_limit_pauses_the_slice_without_waiting_and_loses_nothing(start, history):
    app, _ = start()
    history.fail_next(
        "GET",
        f"/repos/{REPO}/pulls$",
        403,
        body={"message": "API rate limit exceeded for installation ID 9001.", "documentation_url": "https://docs"},
        headers={"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int(time.time()) + 3600)},
    )
    started = time.monotonic()
    slice_now(app)
    assert time.monotonic() - started < 10, "the slice does not sleep until GitHub's reset"
    assert complete_since(app) is None
    assert {row[0] for row in contributed(app)} == {"issue_opened", "issue_closed"}, "the issues stage is in"
    # GitHub's window reset (the app's budget reading ended with it):
    services(app).github.budget.cache.delete(f"budget:{INSTALLATION_ID}")
    slice_now(app)
    assert contributed(app) == EXPECTED and complete_since(app) == datetime(1970, 1, 1)


def test_an_unreadable_repository_is_set_aside_and_the_next_one_imported(start, history, caplog):
    app, _ = start(1000, NOPE, HELLO)  # Nope was installed, then deleted on GitHub: its id comes first
    slice_now(app)
    assert contributed(app) == EXPECTED and complete_since(app) == datetime(1970, 1, 1)
    assert "history import failed; trying again in 6 hours" in caplog.text and "Codertocat/Nope" in caplog.text

    history.requests.clear()
    slice_now(app)
    assert history.calls("GET", "/repos/Codertocat/Nope") == [], "not tried again before 6 hours"


def test_off_when_the_operator_sets_no_requests_for_it(start, history):
    app, _ = start(per_hour=0)
    history.requests.clear()
    slice_now(app)
    assert history.requests == [] and contributed(app) == set() and complete_since(app) is None


def test_the_operator_page_list_is_only_of_the_repositories_the_viewer_may_see(start, history):
    app, _ = start(1000, NOPE, HELLO)
    ledger, now = services(app).stores.ledger, datetime(2026, 1, 1)
    everyone, total = history_module.pending(ledger, now, None, 20)
    assert [p.full_name for p in everyone] == ["Codertocat/Nope", REPO] and total == 2
    theirs, total = history_module.pending(ledger, now, {REPO}, 20)
    assert [p.full_name for p in theirs] == [REPO] and total == 1
    first, total = history_module.pending(ledger, now, None, 1)
    assert [p.full_name for p in first] == ["Codertocat/Nope"] and total == 2
