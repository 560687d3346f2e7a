"""GitHub's request budget per installation: the projection as a table, the figures shared through Redis,
optional lookups skipped (and essential calls made) while it is low, and what /metrics, doctor and the
operator page say about it."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

import pytest
import requests

from githubapp.budget import Budget, Reading
from githubapp.cache import MemoryCache
from ops import metrics
from tests.conftest import INSTALLATION_ID, REPO, example, installed, run_rq_worker, services
from tests.test_metrics import scrape

NOW = 1_700_000_000.0
NEWCOMER = "li-newcomer"
TOKEN = "operator-token-for-the-tests-0123456789"


def reading(used: int, seconds_left: float, limit: int = 5000) -> Reading:
    return Reading(INSTALLATION_ID, limit, limit - used, used, int(NOW + seconds_left))


@pytest.mark.parametrize(
    "case, used, seconds_left, limit, projected, low",
    [
        ("half the hour gone, a fifth used: plenty left", 1000, 1800, 5000, 2000, False),
        ("ten minutes in, a fifth used: the pace runs out before the reset", 1000, 3000, 5000, 6000, True),
        ("a burst in the first seconds is not taken as the hour's pace", 100, 3570, 5000, 1200, False),
        ("under a tenth left is low at any pace", 4600, 60, 5000, 4678, True),
        ("a large organisation's limit leaves room for the same pace", 6000, 1800, 15000, 12000, False),
        ("nothing used yet", 0, 3599, 5000, 0, False),
    ],
)
def test_projection_and_low(case, used, seconds_left, limit, projected, low):
    found = reading(used, seconds_left, limit)
    assert (found.projected(NOW), found.low(NOW)) == (projected, low)


def answer_headers(used: int, reset: float, resource: str = "core") -> dict[str, str]:
    return {
        "X-RateLimit-Limit": "5000",
        "X-RateLimit-Remaining": str(5000 - used),
        "X-RateLimit-Used": str(used),
        "X-RateLimit-Reset": str(int(reset)),
        "X-RateLimit-Resource": resource,
    }


def test_a_reading_lasts_until_its_window_ends_and_other_resources_are_not_the_core_budget():
    clock = [NOW]
    budget = Budget(MemoryCache(), clock=lambda: clock[0])
    budget.record(INSTALLATION_ID, answer_headers(10, NOW + 600, resource="search"))
    assert budget.readings() == []
    budget.record(INSTALLATION_ID, answer_headers(4700, NOW + 600))
    assert budget.readings() == [reading(4700, 600)] and budget.low(INSTALLATION_ID)
    assert not budget.spare(INSTALLATION_ID, "reactions")
    clock[0] = NOW + 600  # the window is over: nothing is known of the next one
    assert budget.readings() == [] and budget.spare(INSTALLATION_ID, "reactions")


def call_github(app) -> None:
    """One real call to the fake GitHub as the installation: the app hears of the budget from the answer."""
    services(app).github.installation(INSTALLATION_ID).get_issue(REPO, 1)


def test_apps_sharing_redis_see_one_budget_and_metrics_show_it(make_app, serve, redis_url, github):
    reset = int(time.time()) + 1800  # half the window gone
    github.set_rate_limit(INSTALLATION_ID, remaining=4000, reset=reset)
    first, second = make_app(redis_url=redis_url), serve(make_app(redis_url=redis_url))
    call_github(first)
    [seen] = services(second.app).github.budget.readings()
    assert (seen.installation_id, seen.used, seen.limit, seen.reset) == (INSTALLATION_ID, 1001, 5000, reset)

    found = scrape(second)
    labels = {"installation": str(INSTALLATION_ID)}
    assert found.value(metrics.RATE_LIMIT_USED, **labels) == 1001
    assert found.value(metrics.RATE_LIMIT_LIMIT, **labels) == 5000
    assert abs(found.value(metrics.RATE_LIMIT_PROJECTED, **labels) - 2002) <= 5  # 1001 in half an hour
    assert found.value(metrics.BUDGET_LOW, **labels) == 0
    assert found.type[metrics.LOOKUPS_SKIPPED] == "counter"


def merged_pull_request(number: int) -> dict:
    payload = installed(example("pull_request.closed.1"))
    payload["pull_request"].update(number=number, author_association="NONE", merged=True)
    payload["pull_request"]["user"].update(login=NEWCOMER, type="User")
    payload["sender"].update(login=NEWCOMER, type="User")
    return payload


def test_a_low_budget_skips_optional_lookups_but_the_greeting_still_posts(make_app, serve, redis_url, github):
    github.add_issue(REPO, 5, NEWCOMER, merged=True)
    github.set_file(REPO, "CONTRIBUTING.md", "# How to contribute\n")
    github.set_rate_limit(INSTALLATION_ID, remaining=300)  # under a tenth of 5,000
    server = serve(make_app(redis_url=redis_url, behaviours=()))
    call_github(server.app)  # the app heard from GitHub earlier this hour
    server.deliver("pull_request", merged_pull_request(5))
    run_rq_worker(server.app)

    assert [r.path for r in github.calls("GET") if r.path == f"/repos/{REPO}/issues/5"] == [], "no reactions lookup"
    assert not github.calls("GET", f"/repos/{REPO}/contents/CONTRIBUTING.md"), "no file links lookup"
    [greeting] = [c["body"] for c in github.comments(REPO, 5) if "engage:greeting:first_merge" in c["body"]]
    assert "CONTRIBUTING.md" not in greeting
    found = scrape(server)
    assert found.by(metrics.LOOKUPS_SKIPPED, "lookup", "reason") == {
        ("reactions", "budget_low"): 1,
        ("file_links", "budget_low"): 1,
    }
    assert found.value(metrics.BUDGET_LOW, installation=str(INSTALLATION_ID)) == 1


def test_with_room_in_the_budget_the_lookups_are_made(make_app, serve, redis_url, github):
    github.add_issue(REPO, 5, NEWCOMER, merged=True)
    github.set_file(REPO, "CONTRIBUTING.md", "# How to contribute\n")
    server = serve(make_app(redis_url=redis_url, behaviours=()))
    call_github(server.app)
    server.deliver("pull_request", merged_pull_request(5))
    run_rq_worker(server.app)

    assert [r.path for r in github.calls("GET") if r.path == f"/repos/{REPO}/issues/5"], "reactions looked up"
    [greeting] = [c["body"] for c in github.comments(REPO, 5) if "engage:greeting:first_merge" in c["body"]]
    assert f"https://github.com/{REPO}/blob/master/CONTRIBUTING.md" in greeting


def test_doctor_prints_each_installations_budget(make_app, redis_url, github):
    reset = int(time.time()) + 1800
    github.set_rate_limit(INSTALLATION_ID, remaining=400, reset=reset)
    call_github(make_app(redis_url=redis_url))  # a worker's call; doctor runs in a process of its own
    result = make_app(redis_url=redis_url).test_cli_runner().invoke(args=["doctor"])
    resets = datetime.fromtimestamp(reset, UTC).strftime("%H:%M")
    pattern = (
        rf"problem +GitHub budget: installation {INSTALLATION_ID}: used 4601 of 5000 this hour "
        rf"\(resets {resets} UTC\), projected (\d+); low: optional lookups skipped"
    )
    found = re.search(pattern, result.output)
    assert found, result.output
    assert abs(int(found[1]) - 9202) <= 30 and result.exit_code == 1


def test_the_operator_page_says_when_optional_lookups_are_skipped(make_app, serve, github):
    reset = int(time.time()) + 1800
    github.set_rate_limit(INSTALLATION_ID, remaining=100, reset=reset)
    server = serve(make_app(admin_token=TOKEN))
    call_github(server.app)
    page = requests.get(server.url + f"/admin?token={TOKEN}", timeout=30).text
    resets = datetime.fromtimestamp(reset, UTC).strftime("%H:%M")
    assert "GitHub request budget" in page
    assert f"optional lookups (reactions, file links) are being skipped until {resets} UTC" in page
    assert f"<td>{INSTALLATION_ID}</td>" in page and '<td class="num">4901</td>' in page
