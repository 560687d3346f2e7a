"""A page for every contributor, over real HTTP: the week-by-week timeline equals a hand count of the
deliveries, the ranks equal the leaderboard's, the milestones are the ledger's, a linked Telegram
account's messages count under its GitHub person by public name only, opting out leaves nothing but that,
private repositories show only to a signed-in reader (an anonymous visitor gets the same 404 as for
nobody), hostile text is escaped, and the page speaks Chinese.

One community per module, built through the app: recorded webhook payloads (edited copies) delivered to
a live server, Telegram group messages to its Telegram endpoint, and the operator's identity map synced.
"""

from __future__ import annotations

import statistics
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from domain import contributions as kinds
from domain.contributions import Contribution
from engagement import identity_map
from storage.ledger import LedgerStore
from tests.conftest import LiveServer, build_test_app, database_url_for, services, wait_for
from tests.test_chat_intake import BOT_TOKEN, Chats, settled, update
from tests.test_chat_intake import SECRET as TELEGRAM_SECRET
from tests.test_pages import (
    DOCS,
    HOSTILE_TITLE,
    PRIVATE,
    PUBLIC,
    Place,
    Site,
    comment,
    good_first_issue,
    merged_pull,
    opened_issue,
    page,
    parse,
    prepare_github,
    review,
)
from tests.test_pages_browser import CHROMIUM, Tab, chromium  # noqa: F401 (the browser fixture)

MEI, SAM, QUIET, AGENT = ("mei", 501), ("sam", 502), ("quiet-one", 504), ("zz-secret-agent", 601)
ALICE = 412345678  # the Telegram examples' Alice (alice_ng), whom the operator links to mei
CLIENT_ID, CLIENT_SECRET = "Iv1.people0000000001", "people-client-secret-0123456789abcdef"
NOT_FOUND = {"error": "not found: no contributor by that name with activity you may see"}


def days_ago(now: datetime, days: float) -> datetime:
    return now - timedelta(days=days)


def mei_events(now: datetime) -> list[tuple[str, Place | None, str, datetime, dict[str, Any] | None]]:
    """What mei does, as (what, where, count key, when, payload): the hand count's source."""
    found: list[tuple[str, Place | None, str, datetime, dict[str, Any] | None]] = []

    def add(event: str, place: Place | None, key: str, at: datetime, payload: dict[str, Any] | None) -> None:
        found.append((event, place, key, at, payload))

    add("issue_comment", PUBLIC, "comments", days_ago(now, 2), comment(PUBLIC, *MEI, 7001, days_ago(now, 2)))
    at = days_ago(now, 2.1)
    add("issue_comment", PUBLIC, "comments", at, comment(PUBLIC, *MEI, 7002, at))
    add("issue_comment", DOCS, "comments", days_ago(now, 9), comment(DOCS, *MEI, 7003, days_ago(now, 9)))
    add("issues", PUBLIC, "issues", days_ago(now, 20), opened_issue(PUBLIC, 3, *MEI, days_ago(now, 20)))
    for number, ago in ((21, 60), (22, 45), (23, 30), (24, 16), (25, 3)):
        payload = merged_pull(PUBLIC, number, *MEI, days_ago(now, ago))
        if number == 24:
            payload["pull_request"]["body"] = "Fixes #11"  # the good first issue with the hostile title
            add("pull_request", PUBLIC, "good_first_issues", days_ago(now, ago), None)
        add("pull_request", PUBLIC, "merged", days_ago(now, ago), payload)
    add("pull_request_review", DOCS, "reviews", days_ago(now, 10), review(DOCS, *MEI, 8001, days_ago(now, 10)))
    add("issue_comment", PRIVATE, "comments", days_ago(now, 1), comment(PRIVATE, *MEI, 7102, days_ago(now, 1)))
    for n, ago in enumerate((5, 5.2, 12)):
        add("telegram", None, "chat_messages", days_ago(now, ago), telegram_message(4900 + n, days_ago(now, ago)))
    return found


def telegram_message(message_id: int, at: datetime) -> dict[str, Any]:
    """Alice's message in the community's supergroup (the recorded example, edited)."""
    body = update("message.group_text", text="Thanks, the 2.4 release works", entities=None, message_id=message_id)
    body["message"]["date"] = int(at.replace(tzinfo=UTC).timestamp())
    body["update_id"] = 870500000 + message_id
    return body


def others(now: datetime) -> list[tuple[str, dict[str, Any]]]:
    """Everyone else: sam for the ranks, a person only in the private repository, one who opts out."""
    opt_out = comment(PUBLIC, *QUIET, 7020, days_ago(now, 4))
    opt_out["comment"]["body"] = "/leaderboard opt-out"
    return [
        ("issue_comment", comment(PUBLIC, *SAM, 7010, days_ago(now, 3))),
        ("pull_request_review", review(PUBLIC, *SAM, 8002, days_ago(now, 5))),
        ("pull_request", merged_pull(DOCS, 30, *SAM, days_ago(now, 8))),
        ("pull_request", merged_pull(PUBLIC, 31, *SAM, days_ago(now, 70))),
        ("issue_comment", comment(PRIVATE, *AGENT, 7101, days_ago(now, 1))),
        ("issue_comment", opt_out),
    ]


class Community:
    def __init__(self, site: Site, fake: Any, events: list[Any]):
        self.site, self.fake, self.events = site, fake, events

    def get(self, path: str, session: requests.Session | None = None) -> requests.Response:
        return (session or requests).get(self.site.url + path, timeout=30, allow_redirects=False)

    def json(self, path: str, session: requests.Session | None = None) -> dict[str, Any]:
        response = self.get(path, session)
        assert response.status_code == 200, (path, response.text[:300])
        found: dict[str, Any] = response.json()
        return found

    def signed_in(self, login: str) -> requests.Session:
        """A browser signed in with GitHub as `login` (the fake GitHub's web flow, then the app's cookie)."""
        self.fake.sign_in_browser(login)
        browser = requests.Session()
        answer = browser.get(self.site.url + "/auth/login", params={"next": "/"}, timeout=30)
        assert answer.status_code == 200 and browser.cookies.get("engage_session"), answer.text[:300]
        return browser


def deliver_all(site: Site, items: list[tuple[str, dict[str, Any]]]) -> None:
    app, chats = site.server.app, Chats(site.server)
    store = services(app).store
    ids = []
    for event, payload in items:
        if event == "telegram":
            assert settled(app, chats.telegram(payload)) == "done"
            continue
        ids.append(f"people-{uuid.uuid4()}")
        assert site.server.deliver(event, payload, delivery_id=ids[-1]).status_code == 202

    def all_done() -> bool:
        services(app).dispatcher.wait_idle()
        return all((found := store.get(d)) is not None and found.status == "done" for d in ids)

    wait_for(all_done, message="every delivery processed")


@pytest.fixture(scope="module")
def community(
    fake_github_server: Any, app_key: tuple[str, bytes], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Community]:
    fake, tmp = fake_github_server, tmp_path_factory.mktemp("people")
    prepare_github(fake)
    for number in (3, 21, 22, 23, 24, 25, 31):
        fake.add_issue(PUBLIC.full_name, number, "mei", merged=number != 3)
    fake.add_issue(DOCS.full_name, 30, "sam", merged=True)
    fake.set_oauth_client(CLIENT_ID, CLIENT_SECRET)
    mapping = Path(tmp) / "identities.yml"
    mapping.write_text(f"- github: mei\n  telegram: {ALICE}\n")
    app = build_test_app(
        fake.url,
        app_key,
        database_url_for(tmp),
        behaviours=(),
        community_org="Codertocat",
        telegram_bot_token=BOT_TOKEN,
        telegram_webhook_secret=TELEGRAM_SECRET,
        identity_map_file=str(mapping),
        github_url=fake.url,
        github_client_id=CLIENT_ID,
        github_client_secret=CLIENT_SECRET,
    )
    now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    site = Site(LiveServer(app), now)
    events = mei_events(now)
    # The good first issue is labelled (and kept) before the pull request that solves it is merged.
    deliver_all(site, [("issues", good_first_issue(PUBLIC, 11, HOSTILE_TITLE))])
    first = [(e, p) for e, _, _, _, p in events if p is not None and e != "telegram"] + others(now)
    deliver_all(site, first + [(e, p) for e, _, _, _, p in events[-3:-1] if p is not None])
    # What the hourly task does with IDENTITY_MAP_FILE (which may have run already: then it is unchanged).
    report = identity_map.sync(services(app))
    assert len(report.linked) + report.unchanged == 1 and not report.refused, report
    deliver_all(site, [(e, p) for e, _, _, _, p in events[-1:] if p is not None])  # after the link
    fake.assert_no_violations()
    yield Community(site, fake, events)
    site.server.close()
    services(app).close()
    fake.reset()


def iso(day: date) -> str:
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def place_name(place: Place | None) -> str:
    return place.full_name if place else "Codertocat/telegram:t.me"


def hand_count(events: list[Any], shown: set[str]) -> dict[str, dict[str, dict[str, int]]]:
    """week -> place -> key -> count, from the list of what mei did."""
    weeks: defaultdict[str, defaultdict[str, Counter[str]]] = defaultdict(lambda: defaultdict(Counter))
    for _, place, key, at, _ in events:
        if place_name(place) in shown:
            weeks[iso(at.date())][place_name(place)][key] += 1
    return {week: {name: dict(counts) for name, counts in places.items()} for week, places in weeks.items()}


def timeline_of(data: dict[str, Any]) -> dict[str, dict[str, dict[str, int]]]:
    return {week["week"]: {p["name"]: p["counts"] for p in week["places"]} for week in data["timeline"]}


# --- what they did where and when


def test_the_timeline_equals_a_hand_count_of_the_deliveries(community):
    data = community.json("/api/people/mei")
    public = {PUBLIC.full_name, DOCS.full_name, "Codertocat/telegram:t.me"}
    assert timeline_of(data) == hand_count(community.events, public)
    weeks = [week["week"] for week in data["timeline"]]
    assert weeks == sorted(weeks, reverse=True), "newest week first"
    for week in data["timeline"]:
        assert week["total"] == sum(sum(p["counts"].values()) for p in week["places"])
        assert week["start"] == date.fromisocalendar(*map(int, week["week"].replace("-W", " ").split()), 1).isoformat()
    assert data["totals"] == {
        "issues": 1,
        "merged": 5,
        "reviews": 1,
        "comments": 3,
        "good_first_issues": 1,
        "chat_messages": 3,
    }
    assert data["earlier_weeks"] == 0 and data["opted_out"] is False
    assert data["credits"] == []  # nobody credited mei with /credit (tests/test_credit.py gives credits)


def test_the_page_shows_the_api_weeks_and_counts(community):
    data = community.json("/api/people/mei")
    document = page(community.site, "/people/mei")
    shown = {}
    for week in document.all("li", data_week=None):
        shown[week.attrs["data-week"]] = {
            place.attrs["data-place"]: {li.attrs["data-kind"]: int(li.one("strong").text()) for li in place.all("li")}
            for place in week.all("li", data_place=None)
        }
    assert shown == timeline_of(data)
    assert document.one("h1").text() == "mei's contributions"


# --- ranks, milestones


def test_ranks_are_the_leaderboards(community):
    data = community.json("/api/people/mei")
    boards = {(r["scope"], r["name"]) for r in data["ranks"]}
    assert boards == {("owner", "Codertocat"), ("repository", PUBLIC.full_name), ("repository", DOCS.full_name)}
    checked = 0
    for ranking in data["ranks"]:
        scope = "repo" if ranking["scope"] == "repository" else "org"
        for window, rank in ranking["windows"].items():
            board = community.json(f"/api/leaderboard?{scope}={ranking['name']}&window={window}&limit=1000")
            entry = next((e for e in board["entries"] if e["login"] == "mei"), None)
            if entry is None:
                assert rank is None, (ranking["name"], window)
                continue
            assert rank == {"rank": entry["rank"], "points": entry["points"], "total": board["total"]}
            checked += 1
    assert checked >= 10
    public_7d = next(r for r in data["ranks"] if r["name"] == PUBLIC.full_name)["windows"]["7d"]
    # A merge and two comments at the repository's 2 points each; sam is second, quiet-one opted out.
    assert public_7d == {"rank": 1, "points": 10 + 2 * 2, "total": 2}
    document = page(community.site, "/people/mei")
    cell = document.one("tr", data_board=f"repository:{PUBLIC.full_name}").one("td", data_window="7d")
    assert cell.text() == "1 of 2"
    assert cell.one("a").attrs["href"] == f"/leaderboard?window=7d&repo={PUBLIC.full_name}"


def test_milestones_come_from_the_ledger(community):
    data = community.json("/api/people/mei")
    now = community.site.now
    found = [(m["kind"], m["n"], m["repo"], m["at"][:10]) for m in data["milestones"]]
    day = lambda ago: days_ago(now, ago).date().isoformat()  # noqa: E731
    assert found == [
        ("first_merge", 1, PUBLIC.full_name, day(60)),
        ("first_issue", 1, PUBLIC.full_name, day(20)),
        ("first_good_first_issue", 1, PUBLIC.full_name, day(16)),
        ("first_review", 1, DOCS.full_name, day(10)),
        ("merged_prs", 5, PUBLIC.full_name, day(3)),
    ]
    assert [(g["repo"], g["number"], g["title"]) for g in data["good_first_issues"]] == [
        (PUBLIC.full_name, 11, HOSTILE_TITLE)
    ]
    document = page(community.site, "/people/mei")
    assert document.one("li", data_milestone="merged_prs:5").one("a").text() == "5 pull requests merged"


# --- linked forum and chat accounts


def test_linked_telegram_messages_count_per_week_by_public_name_only(community):
    data = community.json("/api/people/mei")
    expected: Counter[str] = Counter(iso(at.date()) for e, _, _, at, _ in community.events if e == "telegram")
    assert {w["week"]: w["platforms"]["telegram"] for w in data["community"]["weeks"]} == dict(expected)
    assert data["community"]["accounts"] == [{"platform": "telegram", "name": None}], "its only name is its id"
    for response in (community.get("/api/people/mei"), community.get("/people/mei")):
        assert str(ALICE) not in response.text, "a platform's id for the person never shows"
    document = page(community.site, "/people/mei")
    rows = document.one("table", data_community=None).all("tr", data_week=None)
    assert {row.attrs["data-week"]: int(row.one("td").text()) for row in rows} == dict(expected)


# --- opting out, private repositories, unknown people


def test_an_opted_out_person_is_shown_only_as_opted_out(community):
    answer = community.get("/api/people/quiet-one")
    assert answer.status_code == 200 and answer.json() == {"login": "quiet-one", "opted_out": True}
    html = community.get("/people/quiet-one")
    assert html.status_code == 200
    main = parse(html.text).one("main")
    assert main.text() == "quiet-one quiet-one opted out of the leaderboard, so this page shows nothing about them."
    board = community.json(f"/api/leaderboard?repo={PUBLIC.full_name}&window=30d")
    assert "quiet-one" not in {e["login"] for e in board["entries"]}


@pytest.mark.parametrize(
    "login",
    ["zz-secret-agent", "nobody-here", "ZZ-SECRET-AGENT", "-bad-", "a" * 40, "%3Cscript%3Ealert(1)%3C"],
)
def test_unknown_and_private_only_people_answer_the_same_404(community, login):
    answer = community.get(f"/api/people/{login}")
    assert (answer.status_code, answer.json()) == (404, NOT_FOUND)
    html = community.get(f"/people/{login}")
    assert html.status_code == 404
    # The same words for everyone: only the language switch repeats the address the visitor asked for.
    main = parse(html.text).one("main").text()
    assert main == parse(community.get("/people/nobody-here").text).one("main").text()
    assert "No contributor by that name has activity you may see here." in main
    assert "<script>alert" not in html.text


def test_anonymous_visitors_never_see_the_private_repository(community):
    for response in (community.get("/api/people/mei"), community.get("/people/mei")):
        assert response.status_code == 200
        assert "Secret-Plans" not in response.text


def test_a_signed_in_reader_sees_the_private_repository(community):
    browser = community.signed_in("Codertocat")  # owns Codertocat/Secret-Plans: GitHub says admin
    data = community.json("/api/people/mei", browser)
    everything = {PUBLIC.full_name, DOCS.full_name, PRIVATE.full_name, "Codertocat/telegram:t.me"}
    assert timeline_of(data) == hand_count(community.events, everything)
    assert data["totals"]["comments"] == 4
    agent = community.json("/api/people/zz-secret-agent", browser)
    assert agent["totals"] == {"comments": 1}
    # the private repository's board, and its owner's, which adds the private repositories its viewer reads
    assert [(r["scope"], r["name"]) for r in agent["ranks"]] == [
        ("owner", "Codertocat"),
        ("repository", PRIVATE.full_name),
    ]
    html = browser.get(community.site.url + "/people/mei", timeout=30)
    assert html.status_code == 200 and html.headers["Cache-Control"] == "private, no-store"
    private = parse(html.text).all("li", data_place=PRIVATE.full_name)
    assert private and all(p.one("span", data_private=None).text() == "private" for p in private)
    assert community.get("/api/people/zz-secret-agent").status_code == 404, "still hidden from anonymous visitors"


# --- escaping, language, links


def test_a_hostile_title_is_escaped(community):
    html = community.get("/people/mei").text
    assert '<script>alert("gfi")' not in html and "&lt;script&gt;" in html
    item = parse(html).one("li", data_issue=f"{PUBLIC.full_name}#11")
    assert item.one("a").text() == HOSTILE_TITLE
    assert item.one("a").attrs["href"] == f"https://github.com/{PUBLIC.full_name}/issues/11"


def test_the_page_in_chinese(community):
    document = page(community.site, "/people/mei?lang=zh")
    assert document.one("html").attrs["lang"] == "zh-CN"
    assert document.one("h1").text() == "mei 的贡献"
    assert document.one("h2", id="milestones-title").text() == "里程碑"
    assert document.one("li", data_milestone="merged_prs:5").one("a").text() == "已合并 5 个拉取请求"
    assert document.one("tr", data_board=f"repository:{PUBLIC.full_name}").one("td", data_window="7d").text() == (
        "第 1 名，共 2 人"
    )
    opted = page(community.site, "/people/quiet-one", headers={"Accept-Language": "zh-CN,zh;q=0.9"})
    assert opted.one("main").text() == "quiet-one quiet-one 已选择退出排行榜，因此本页不显示其任何信息。"


def test_leaderboard_rows_link_to_the_person_page(community):
    document = page(community.site, f"/leaderboard?repo={PUBLIC.full_name}&window=30d")
    assert document.one("tr", data_login="mei").one("a", data_person=None).attrs["href"] == "/people/mei"
    chinese = page(community.site, f"/leaderboard?repo={PUBLIC.full_name}&window=30d&lang=zh")
    assert chinese.one("tr", data_login="sam").one("a", data_person=None).attrs["href"] == "/people/sam?lang=zh"


def test_profile_and_history_links_go_to_the_configured_github(community):
    """GITHUB_URL (GitHub Enterprise Server's address; the fake's here) is where people's profiles and a
    repository's commits are: the person page, the leaderboard and the contributors list link there."""
    web = community.fake.url
    person = community.json("/api/people/mei")
    assert person["profile_url"] == f"{web}/mei"
    assert page(community.site, "/people/mei").one("a", **{"class": "button"}).attrs["href"] == f"{web}/mei"
    board = community.json(f"/api/leaderboard?repo={PUBLIC.full_name}&window=30d")
    assert {e["login"]: e["profile_url"] for e in board["entries"]}["mei"] == f"{web}/mei"
    markdown = community.get(f"/contributors/{PUBLIC.full_name}.md").text
    assert f'href="{web}/mei"' in markdown and "https://github.com/mei" not in markdown
    listed = community.get(f"/contributors/{PUBLIC.full_name}").text
    assert f"{web}/{PUBLIC.full_name}/commits?author=mei" in listed and f'href="{web}/mei"' in listed
    assert "https://github.com/mei" not in listed


@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium")
def test_the_page_renders_in_chromium_in_english_and_chinese(chromium, community):  # noqa: F811
    tab = Tab(chromium, community.site)
    try:
        data = community.json("/api/people/mei")
        view = tab.open("/people/mei")
        assert view.locator("h1").inner_text() == "mei's contributions"
        assert view.locator("li.person-week").count() == len(data["timeline"])
        assert view.locator("li.person-week").first.get_attribute("data-week") == data["timeline"][0]["week"]
        tab.screenshot("person")
        view.click("a.lang-toggle")
        view.wait_for_load_state()
        assert view.get_attribute("html", "lang") == "zh-CN"
        assert view.locator("h1").inner_text() == "mei 的贡献"
        tab.screenshot("person-zh")
        assert tab.errors == []
    finally:
        tab.close()


# --- cost


def test_a_busy_persons_page_renders_quickly(community):
    """About 1,000 contributions over three years in two repositories; prints the median of 5 renders
    (`pytest -s tests/test_people.py -k busy`)."""
    now, spread = community.site.now, [kinds.COMMENT, kinds.ISSUE_OPENED, kinds.REVIEW_APPROVED, kinds.PR_MERGED]
    items = [
        Contribution(
            f"busy:{n}",
            spread[n % len(spread)],
            (PUBLIC if n % 3 else DOCS).repo,
            777,
            "busy-bee",
            days_ago(now, n * 1.1 + 0.5),
            n,
            f"https://github.com/{PUBLIC.full_name}/issues/{n}",
        )
        for n in range(1000)
    ]
    LedgerStore(services(community.site.server.app).store.engine).record(items)
    data = community.json("/api/people/busy-bee")
    assert sum(data["totals"].values()) == 1000
    assert len(data["timeline"]) == 104 and data["earlier_weeks"] > 0
    timings = []
    for _ in range(5):
        started = time.perf_counter()
        assert community.get("/people/busy-bee").status_code == 200
        timings.append(time.perf_counter() - started)
    median = statistics.median(timings)
    print(f"\n/people/busy-bee with 1,000 ledger events: median {median * 1000:.0f} ms over 5 renders")
    assert median < 2.0
