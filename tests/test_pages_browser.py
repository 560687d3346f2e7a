"""The pages in a real headless Chromium: they render, their numbers equal the JSON API, the switchers
work by clicking and submitting (no script of ours runs: there is none), nothing logs a console error
(a Content-Security-Policy violation would), a 375px phone scrolls only the waiting table sideways, and the
Chinese toggle works. Full-page screenshots land in `artifacts/screenshots/` for people to look at.

Uses Debian's `/usr/bin/chromium` through Playwright (never `playwright install`); `scripts/services`
installs it where it is missing, so these are skipped only on a machine without it.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
import requests

from readmodels.insights import SERIES_PLATFORMS
from tests.conftest import ROOT, example, services, wait_for
from tests.test_pages import (
    DOCS,
    PRIVATE_WORDS,
    PUBLIC,
    Place,
    Site,
    build_site,
    github_time,
    located,
    opened_issue,
    person,
    shown,
)

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = ROOT / "artifacts" / "screenshots"

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium (scripts/services installs it)"
)


@pytest.fixture(scope="module")
def site(
    fake_github_server: Any, app_key: tuple[str, bytes], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Site]:
    from tests.conftest import services

    built = build_site(fake_github_server, app_key, tmp_path_factory.mktemp("browser"))
    yield built
    built.server.close()
    services(built.server.app).close()
    fake_github_server.reset()


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield browser
        browser.close()


class Tab:
    """A browser tab on the site that remembers every console error and uncaught page error."""

    def __init__(self, browser: Any, site: Site, **context: Any):
        options = {"viewport": {"width": 1280, "height": 900}, "locale": "en-US", "color_scheme": "light", **context}
        self.context = browser.new_context(**options)
        self.page = self.context.new_page()
        self.site = site
        self.errors: list[str] = []
        self.page.on("console", lambda message: message.type == "error" and self.errors.append(message.text))
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))

    def open(self, path: str) -> Any:
        response = self.page.goto(self.site.url + path, wait_until="load")
        assert response is not None and response.status == 200, path
        return self.page

    def screenshot(self, name: str) -> None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)

    def path(self) -> str:
        """The address shown now, decoded (a submitted form spells `/` as `%2F`)."""
        return unquote(str(self.page.url).removeprefix(self.site.url))

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def tab(chromium: Any, site: Site) -> Iterator[Tab]:
    opened = Tab(chromium, site)
    yield opened
    opened.close()


def api(site: Site, path: str) -> dict[str, Any]:
    response = requests.get(site.url + path, timeout=30)
    assert response.status_code == 200, path
    found: dict[str, Any] = response.json()
    return found


ROWS = """rows => rows.map(row => Object.assign(
    Object.fromEntries([...row.querySelectorAll('td[data-col]')].map(td => [td.dataset.col, td.innerText.trim()])),
    {login: row.dataset.login, newcomer: !!row.querySelector('[data-newcomer]')}
))"""


def board_rows(page: Any) -> list[dict[str, Any]]:
    return list(page.eval_on_selector_all("tr[data-login]", ROWS))


def assert_board_equals_api(page: Any, site: Site, query: str) -> None:
    data = api(site, f"/api/leaderboard?{query}")
    rows = board_rows(page)
    assert [row["login"] for row in rows] == [entry["login"] for entry in data["entries"]]
    for row, entry in zip(rows, data["entries"], strict=True):
        assert (int(row["rank"]), int(row["points"]), row["newcomer"]) == (
            entry["rank"],
            entry["points"],
            entry["newcomer"],
        )
        assert {kind: int(row[kind]) for kind in data["kinds"]} == entry["counts"]


def test_the_leaderboard_renders_its_api_numbers_and_switches_by_link_and_form(tab, site):
    page = tab.open(f"/leaderboard?repo={PUBLIC.full_name}&window=30d")
    assert page.locator("h1").inner_text() == f"Leaderboard · {PUBLIC.full_name}"
    assert_board_equals_api(page, site, f"repo={PUBLIC.full_name}&window=30d")
    assert page.locator("tr[data-login='li-newcomer'] .badge-new").is_visible()
    tab.screenshot("leaderboard-en")

    page.click("nav.segmented a[data-window='7d']")
    page.wait_for_load_state()
    assert tab.path() == f"/leaderboard?repo={PUBLIC.full_name}&window=7d"
    assert page.locator("nav.segmented a[aria-current]").inner_text() == "7 days"
    assert_board_equals_api(page, site, f"repo={PUBLIC.full_name}&window=7d")

    page.select_option("#scope", f"repo:{DOCS.full_name}")
    with page.expect_navigation():
        page.click("form.switcher button[type=submit]")
    assert tab.path() == f"/leaderboard?window=7d&repo={DOCS.full_name}"
    assert page.locator("h1").inner_text() == f"Leaderboard · {DOCS.full_name}"
    assert_board_equals_api(page, site, f"repo={DOCS.full_name}&window=7d")

    page.select_option("#scope", "org:Codertocat")
    with page.expect_navigation():
        page.click("form.switcher button[type=submit]")
    assert tab.path() == "/leaderboard?window=7d&org=Codertocat"
    assert_board_equals_api(page, site, "org=Codertocat&window=7d")
    assert tab.errors == []


def test_insights_plot_the_api_numbers_and_switch_span_and_repository(tab, site):
    page = tab.open(f"/insights?repo={PUBLIC.full_name}&weeks=12")
    data = api(site, f"/api/insights?repo={PUBLIC.full_name}&weeks=12")
    shown_series = {n: s for n, s in data["series"].items() if set(SERIES_PLATFORMS[n]) & set(data["platforms"])}
    assert "active_contributors" in shown_series and "chat_messages" not in shown_series, "a repository: GitHub's"
    assert page.locator("section[data-series='chat_messages']").count() == 0
    for name, series in shown_series.items():
        plotted = page.eval_on_selector_all(
            f"section[data-series='{name}'] [data-label]",
            "marks => Object.fromEntries(marks.map(m => [m.dataset.label, Number(m.dataset.value)]))",
        )
        expected = {
            week: shown(value, series["unit"])
            for week, value in zip(data["weeks"], series["values"], strict=True)
            if value is not None
        }
        assert plotted == expected, name
        assert page.locator(f"section[data-series='{name}'] svg").is_visible()
    assert page.locator(".legend").is_visible()
    tab.screenshot("insights-en")

    page.click("nav.segmented a[data-weeks='26']")
    page.wait_for_load_state()
    assert tab.path() == f"/insights?repo={PUBLIC.full_name}&weeks=26"
    assert page.locator("section[data-series='active_contributors'] [data-label]").count() == 26

    page.select_option("#repo", DOCS.full_name)
    with page.expect_navigation():
        page.click("form.switcher button[type=submit]")
    assert tab.path() == f"/insights?repo={DOCS.full_name}&weeks=26"
    assert page.locator("h1").inner_text() == DOCS.full_name
    assert tab.errors == []


def test_overview_and_good_first_issues(tab, site):
    page = tab.open("/")
    assert page.locator("article[data-repo]").count() == 2
    tab.screenshot("overview-en")
    page.click(f"article[data-repo='{PUBLIC.full_name}'] .card-links a >> text=Leaderboard")
    page.wait_for_load_state()
    assert tab.path() == f"/leaderboard?repo={PUBLIC.full_name}"

    page = tab.open("/good-first-issues")
    # Newest first; these two are in two repositories, whose deliveries are processed side by side.
    titles = sorted(page.locator(".issue-title").all_inner_texts())
    assert len(titles) == 2 and titles[0].startswith('<script>alert("gfi")</script>'), "shown as text, not run"
    assert titles[1] == "Document the boot flags"
    assert page.evaluate("() => document.querySelectorAll('main script').length") == 0
    tab.screenshot("good-first-issues-en")
    body = page.content().lower()
    assert [word for word in PRIVATE_WORDS if word in body] == []
    assert tab.errors == []


def test_the_chinese_toggle_switches_and_stays(tab, site):
    page = tab.open(f"/leaderboard?repo={PUBLIC.full_name}")
    page.click("a.lang-toggle")
    page.wait_for_load_state()
    assert page.get_attribute("html", "lang") == "zh-CN"
    assert page.locator("h1").inner_text() == f"排行榜 · {PUBLIC.full_name}"
    assert page.locator("[data-formula]").inner_text().startswith("积分 = 10 × 已合并的 PR")
    tab.screenshot("leaderboard-zh")
    page.click("nav.segmented a[data-window='90d']")
    page.wait_for_load_state()
    assert "lang=zh" in tab.path() and page.get_attribute("html", "lang") == "zh-CN"
    page.click("nav.site-nav a >> text=社区洞察")
    page.wait_for_load_state()
    page.click("div.chooser a >> nth=1")
    page.wait_for_load_state()
    assert page.locator("section[data-series='active_contributors'] h2").inner_text() == "活跃贡献者"
    tab.screenshot("insights-zh")
    page.click("a.lang-toggle")
    page.wait_for_load_state()
    assert page.get_attribute("html", "lang") == "en"
    assert tab.errors == []


# Newcomers' items nobody answered: (place, number, author, user id, hours ago, title, pull request).
WAITING = [
    (PUBLIC, 41, "wen-newcomer", 541, 75, "在 ARM 开发板上启动失败，日志见附件", False),
    (PUBLIC, 42, "newcomer-42", 542, 60, "Document how to run the whole test suite offline, behind a proxy", False),
    (DOCS, 43, "newcomer-43", 543, 2, "Fix the broken link to the configuration reference", True),
]


def waiting_item(place: Place, number: int, login: str, user_id: int, at: datetime, title: str, pull: bool) -> Any:
    if not pull:
        payload = opened_issue(place, number, login, user_id, at)
        payload["issue"].update(title=title, html_url=f"https://github.com/{place.full_name}/issues/{number}")
        return "issues", payload
    payload = located(example("pull_request.opened.2"), place)
    stamp = github_time(at)
    payload["pull_request"].update(
        number=number, title=title, created_at=stamp, updated_at=stamp, author_association="NONE", body=""
    )
    payload["pull_request"]["html_url"] = f"https://github.com/{place.full_name}/pull/{number}"
    payload["pull_request"]["user"] = person(login, user_id)
    payload["sender"] = person(login, user_id)
    return "pull_request", payload


@pytest.fixture(scope="module")
def waiting(site: Site, fake_github_server: Any) -> list[dict[str, Any]]:
    """The WAITING items opened through the app's webhooks, then one response-watch pass (it nudges the
    two past 48 hours) as `flask tasks run response_watch` runs it; the queue as /api/waiting shows it."""
    now = datetime.now(UTC).replace(microsecond=0)
    deliveries = []
    for place, number, login, user_id, hours, title, pull in WAITING:
        fake_github_server.add_issue(place.full_name, number, login, title=title, pull_request=pull)
        event, payload = waiting_item(place, number, login, user_id, now - timedelta(hours=hours), title, pull)
        delivery_id = f"waiting-{number}"
        assert site.server.deliver(event, payload, delivery_id=delivery_id).status_code == 202
        deliveries.append(delivery_id)
    app = services(site.server.app)

    def all_done() -> bool:
        app.dispatcher.wait_idle()
        return all((found := app.store.get(d)) is not None and found.status == "done" for d in deliveries)

    wait_for(all_done, message="every item delivered")
    app.tasks.clock = lambda: now
    # The embedded sweeper ticks the same task in the background: while its pass runs, ours is "taken".
    wait_for(lambda: app.tasks.run_now("response_watch").result == "ran", message="our response-watch pass")
    fake_github_server.assert_no_violations()
    items: list[dict[str, Any]] = api(site, "/api/waiting")["items"]
    assert {(item["number"], item["slo"]) for item in items} >= {(41, "nudged"), (42, "nudged"), (43, "ok")}
    return items


def table_frame(page: Any) -> dict[str, int]:
    """The width of the table inside its scrolling frame (`scroll`) and of the frame (`client`)."""
    return dict(
        page.evaluate(
            "() => { const w = document.querySelector('.table-wrap');"
            " return {scroll: w.scrollWidth, client: w.clientWidth}; }"
        )
    )


def waiting_rows(page: Any) -> list[dict[str, Any]]:
    return list(
        page.eval_on_selector_all(
            "tr.waiting-item",
            """rows => rows.map(row => ({repository: row.dataset.repo, number: Number(row.dataset.number),
                slo: row.dataset.slo, title: row.querySelector('.issue-title').innerText.trim(),
                href: row.querySelector('.issue-title').href, newcomer: !!row.querySelector('.badge')}))""",
        )
    )


def test_the_waiting_page_lists_the_api_queue_oldest_first_and_switches_repository(tab, site, waiting):
    page = tab.open("/waiting")
    assert page.locator("h1").inner_text() == "Waiting for a first response"
    rows = waiting_rows(page)
    assert [(row["repository"], row["number"], row["slo"]) for row in rows] == [
        (item["repository"], item["number"], item["slo"]) for item in waiting
    ]
    mine = {row["number"]: row for row in rows if row["number"] in (41, 42, 43)}
    assert mine[41]["title"] == WAITING[0][5], "a Chinese title shown as written"
    assert mine[43]["href"] == f"https://github.com/{DOCS.full_name}/pull/43"
    assert all(row["newcomer"] for row in mine.values())
    assert page.locator("tr[data-number='42'] td.slo").inner_text() == "reminded"
    assert page.locator("tr[data-number='42'] td.slo").is_visible()
    wrap = table_frame(page)
    assert wrap["scroll"] <= wrap["client"], "every column fits a laptop screen: titles wrap"
    tab.screenshot("waiting-en")

    page.select_option("#repo", DOCS.full_name)
    with page.expect_navigation():
        page.click("form.switcher button[type=submit]")
    assert tab.path() == f"/waiting?repo={DOCS.full_name}"
    assert [row["number"] for row in waiting_rows(page)] == [43]
    body = page.content().lower()
    assert [word for word in PRIVATE_WORDS if word in body] == []
    assert tab.errors == []


def test_the_waiting_page_in_chinese(tab, site, waiting):
    page = tab.open(f"/waiting?repo={PUBLIC.full_name}&lang=zh")
    assert page.get_attribute("html", "lang") == "zh-CN"
    assert page.locator("h1").inner_text() == "等待首次回应"
    assert page.locator("tr[data-number='41'] .issue-title").inner_text() == WAITING[0][5]
    assert page.locator("tr[data-number='41'] td.slo").inner_text() == "已提醒"
    assert page.locator("tr[data-number='41'] td >> nth=3").inner_text() == "75 小时"
    tab.screenshot("waiting-zh")
    page.select_option("#repo", DOCS.full_name)
    with page.expect_navigation():
        page.click("form.switcher button[type=submit]")
    assert "lang=zh" in tab.path() and page.locator("tr[data-number='43'] td.slo").inner_text() == "时限内"
    assert tab.errors == []


PHONE_PAGES = [
    ("overview", "/"),
    ("leaderboard", f"/leaderboard?repo={PUBLIC.full_name}&window=all"),
    ("insights", f"/insights?repo={PUBLIC.full_name}&weeks=52"),
    ("good-first-issues", "/good-first-issues"),
    ("waiting", "/waiting"),
    ("waiting-zh", "/waiting?lang=zh"),
]


@pytest.mark.parametrize("name, path", PHONE_PAGES, ids=[name for name, _ in PHONE_PAGES])
def test_a_phone_scrolls_only_the_tables_sideways(chromium, site, waiting, name, path):
    tab = Tab(chromium, site, viewport={"width": 375, "height": 812}, is_mobile=True, has_touch=True)
    try:
        page = tab.open(path)
        widths = page.evaluate(
            "() => ({page: document.documentElement.scrollWidth, body: document.body.scrollWidth,"
            " view: window.innerWidth})"
        )
        assert widths["view"] == 375
        assert widths["page"] <= widths["view"] and widths["body"] <= widths["view"], widths
        if name == "leaderboard":
            wrap = table_frame(page)
            assert wrap["scroll"] <= wrap["client"], "the board fits: its counts per kind go on a line below"
            assert page.locator("tr.kinds-row").first.is_visible()
        if name.startswith("waiting"):
            wrap = table_frame(page)
            assert wrap["scroll"] <= wrap["client"], "the queue fits: who opened it and its state go on a line below"
            assert page.locator(".waiting-meta").first.is_visible()
            assert not page.locator("td.slo-col").first.is_visible()
        tab.screenshot(f"{name}-phone" if name.endswith("-zh") else f"{name}-phone-en")
        assert tab.errors == []
    finally:
        tab.close()


def test_dark_mode_renders_cleanly(chromium, site):
    tab = Tab(chromium, site, color_scheme="dark")
    try:
        page = tab.open(f"/insights?repo={PUBLIC.full_name}&weeks=12")
        background = page.evaluate("() => getComputedStyle(document.body).backgroundColor")
        assert background == "rgb(14, 17, 22)"
        tab.screenshot("insights-dark-en")
        tab.open(f"/leaderboard?repo={PUBLIC.full_name}")
        tab.screenshot("leaderboard-dark-en")
        assert tab.errors == []
    finally:
        tab.close()
