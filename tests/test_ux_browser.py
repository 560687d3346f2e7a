"""What a new visitor sees in a real headless Chromium: at 375 px no page scrolls sideways and the
navigation stays one tidy block, the operator page fits a 1,280 px laptop, and the insights' headline
figures say better or worse in words as well as colour (a falling response time is good news).

Widths are `document.documentElement.scrollWidth`, what makes a page scroll sideways. Uses Debian's
`/usr/bin/chromium` through Playwright, like tests/test_pages_browser.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Any

import pytest
import requests

from domain import contributions as kinds
from domain.contributions import Contribution, Subject
from readmodels.insights import UP_IS_GOOD
from readmodels.stats import iso_week_start
from storage.deliveries import FAILED
from storage.ledger import LedgerStore
from tests.conftest import LiveServer, example, installed, services, wait_for
from tests.support import behaviours
from tests.test_admin import TOKEN
from tests.test_pages import DOCS, PUBLIC, Site, build_site
from tests.test_pages_browser import CHROMIUM

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium")

PHONE, LAPTOP = 375, 1280
WIDTHS = "() => ({page: document.documentElement.scrollWidth, view: window.innerWidth})"
PHONE_PAGES = [
    "/",
    f"/leaderboard?repo={PUBLIC.full_name}&window=all",
    f"/leaderboard?repo={PUBLIC.full_name}&window=all&lang=zh",
    "/leaderboard",
    f"/insights?repo={PUBLIC.full_name}&weeks=52",
    "/good-first-issues",
    "/waiting",
    "/digests",
]


@pytest.fixture(scope="module")
def site(
    fake_github_server: Any, app_key: tuple[str, bytes], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Site]:
    built = build_site(fake_github_server, app_key, tmp_path_factory.mktemp("ux"))
    LedgerStore(built.engine).record(better_and_worse(built.now))
    yield built
    built.server.close()
    services(built.server.app).close()
    fake_github_server.reset()


def better_and_worse(now: datetime) -> list[Contribution]:
    """Codertocat/Docs' two latest complete weeks: one commenter, then three (better); an issue answered in
    an hour, then one answered in 30 hours (worse: a rise in response time is bad news)."""
    last = iso_week_start(now) - timedelta(weeks=1)  # the latest complete week's Monday
    before = last - timedelta(weeks=1)

    def at(monday: date, hours: int) -> datetime:
        return datetime.combine(monday, datetime.min.time()) + timedelta(days=1, hours=hours)

    def made(key: str, kind: str, actor: int, when: datetime, subject: Subject) -> Contribution:
        return Contribution(f"ux:{key}", kind, DOCS.repo, actor, f"ux-{actor}", when, subject.number, "", subject)

    early, late = Subject(71, False, 1100, at(before, 1)), Subject(72, False, 1101, at(last, 1))
    return [
        made("early-open", kinds.ISSUE_OPENED, 1100, at(before, 1), early),
        made("early-answer", kinds.COMMENT, 1102, at(before, 2), early),
        made("late-open", kinds.ISSUE_OPENED, 1101, at(last, 1), late),
        *(made(f"late-answer-{n}", kinds.COMMENT, 1102 + n, at(last, 31 + n), late) for n in range(3)),
    ]


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield browser
        browser.close()


def open_page(chromium: Any, url: str, width: int) -> tuple[Any, Any]:
    context = chromium.new_context(
        viewport={"width": width, "height": 900}, locale="en-US", is_mobile=width < 640, has_touch=width < 640
    )
    page = context.new_page()
    response = page.goto(url, wait_until="load")
    assert response is not None and response.status == 200, url
    return context, page


@pytest.mark.parametrize("path", PHONE_PAGES)
def test_at_375px_no_page_scrolls_sideways_and_the_navigation_is_one_tidy_row(chromium, site, path):
    context, page = open_page(chromium, site.url + path, PHONE)
    try:
        widths = page.evaluate(WIDTHS)
        tables = page.eval_on_selector_all(".table-wrap", "ws => ws.map(w => [w.scrollWidth, w.clientWidth])")
        print(f"at {PHONE}px {path}: page {widths['page']} px, tables (content, frame) {tables}")
        assert widths["view"] == PHONE and widths["page"] <= PHONE, widths
        if path.startswith(("/leaderboard?", "/waiting")):
            assert tables and all(scroll <= client for scroll, client in tables), f"the table scrolls: {tables}"
        links = page.eval_on_selector_all(
            ".site-nav a",
            "links => links.map(a => {const r = a.getBoundingClientRect();"
            " return {top: Math.round(r.top), left: Math.round(r.left), right: r.right, text: a.innerText}})",
        )
        rows = sorted({link["top"] for link in links})
        assert len(rows) == -(-len(links) // 3), f"three links a row: {links}"
        lefts = [[link["left"] for link in links if link["top"] == top] for top in rows]
        assert all(row == lefts[0][: len(row)] for row in lefts), f"the links line up in columns: {lefts}"
        assert all(link["left"] >= 0 and link["right"] <= PHONE for link in links), "every link is in view"
        assert all("\n" not in link["text"] for link in links), "no link breaks inside its words"
    finally:
        context.close()


def test_the_headline_colours_good_and_bad_news_and_says_it_in_words(chromium, site):
    context, page = open_page(chromium, site.url + f"/insights?repo={DOCS.full_name}&weeks=12", LAPTOP)
    try:
        colours = page.evaluate(
            "() => { const s = getComputedStyle(document.documentElement);"
            " return {up: s.getPropertyValue('--up').trim(), down: s.getPropertyValue('--down').trim()}; }"
        )
        figures = page.eval_on_selector_all(
            ".headline-figure",
            "fs => fs.map(f => ({series: f.dataset.headline, verdict: f.dataset.verdict,"
            " colour: getComputedStyle(f.querySelector('.headline-change')).color,"
            " border: getComputedStyle(f).borderTopColor, word: f.querySelector('.verdict-word').innerText}))",
        )
        assert len(figures) == 6
        verdicts = {figure["series"]: figure["verdict"] for figure in figures}
        assert verdicts["active_contributors"] == "better" and verdicts["first_response_issues_hours"] == "worse"
        expected = {"better": rgb(colours["up"]), "worse": rgb(colours["down"])}
        words = {"better": "better", "worse": "worse", "same": "no change", "unknown": "nothing to compare"}
        for figure in figures:
            assert figure["word"] == words[figure["verdict"]], figure
            if figure["verdict"] in expected:
                assert figure["colour"] == figure["border"] == expected[figure["verdict"]], figure
            else:
                assert figure["colour"] not in expected.values(), figure
        trends = page.eval_on_selector_all(
            ".series .trend",
            "ts => ts.map(t => ({series: t.closest('.series').dataset.series, colour: getComputedStyle(t).color}))",
        )
        for trend in trends:
            verdict = site_report(site)["series"][trend["series"]]["trend_verdict"]
            if verdict in expected:
                assert trend["colour"] == expected[verdict], trend
        judged = {t["series"] for t in trends} & {
            name for name, s in site_report(site)["series"].items() if s["trend_verdict"] in expected
        }
        assert judged, "the site has at least one trend judged better or worse"
        assert any(not UP_IS_GOOD[name] for name in site_report(site)["series"]), "a series where down is good"
    finally:
        context.close()


def rgb(hex_colour: str) -> str:
    """`#1a7f37` as getComputedStyle writes it: `rgb(26, 127, 55)`."""
    red, green, blue = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgb({red}, {green}, {blue})"


def site_report(site: Site) -> dict[str, Any]:
    found: dict[str, Any] = requests.get(site.url + f"/api/insights?repo={DOCS.full_name}&weeks=12", timeout=30).json()
    return found


# Last in the module: its `database_url` empties a shared PostgreSQL database, the site's too.
LONG_ERROR = "upstream-proxy-said:" + "-".join(["connection-reset-by-peer"] * 12)


@pytest.fixture
def operator(make_app: Any, serve: Any, github: Any) -> Iterator[LiveServer]:
    """An operator page with failed deliveries, one with GitHub's long error message, and long delivery ids."""
    server: LiveServer = serve(make_app(admin_token=TOKEN, max_attempts=2))
    store = services(server.app).store
    github.fail_next("GET", r"/issues/2/comments$", 502, body={"message": LONG_ERROR}, times=5)
    for n in range(1, 4):
        behaviours.BREAK["crash"] = n == 1
        payload = installed(example("issues.opened.1"))
        payload["issue"]["number"] = n
        delivery_id = f"{n:04d}e7c0-5e2a-11ef-9b1e-2f8a1c{n:06d}"
        assert server.deliver("issues", payload, delivery_id=delivery_id).status_code == 202
        wait_for(lambda d=delivery_id: store.get(d).status in ("done", FAILED), message=delivery_id)
    behaviours.BREAK["crash"] = False
    assert LONG_ERROR[:40] in (store.get("0002e7c0-5e2a-11ef-9b1e-2f8a1c000002").last_error or "")
    yield server
    behaviours.BREAK["crash"] = False


def test_the_operator_page_fits_a_1280px_screen(chromium, operator):
    context, page = open_page(chromium, operator.url + f"/admin?token={TOKEN}", LAPTOP)
    try:
        assert page.url == operator.url + "/admin"
        widths = page.evaluate(WIDTHS)
        tables = page.eval_on_selector_all(".table-wrap", "ws => ws.map(w => [w.scrollWidth, w.clientWidth])")
        print(f"at {LAPTOP}px /admin: page {widths['page']} px, tables (content, frame) {tables}")
        assert widths["page"] <= LAPTOP, widths
        assert tables and all(scroll <= client for scroll, client in tables), f"a table scrolls sideways: {tables}"
    finally:
        context.close()
