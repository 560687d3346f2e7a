"""README badges over real HTTP: their figures equal the leaderboard's, the overview's and the insights',
every one is valid SVG, ETags and 304s, hostile logins escaped, Chinese, private repositories answer
the same grey 404 as unknown ones, opted-out people get a neutral badge, and the leaderboard page's
Markdown serves the badge it names; one test renders badges in a real Chromium.

The community is test_pages' (built through the app from recorded payloads), plus: a person who merges
a pull request and then opts out, a login no GitHub account could have (the ledger holds forum and
chat names too), and issues and a pull request answered last week, for the time to first response.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from statistics import median
from typing import Any
from urllib.parse import quote

import pytest
import requests

from domain import contributions as kinds
from domain.contributions import Contribution
from readmodels import overview
from readmodels.insights import report
from readmodels.leaderboard import board
from storage.ledger import LedgerStore
from tests.conftest import services, wait_for
from tests.test_pages import (
    DOCS,
    PRIVATE,
    PUBLIC,
    VAULT,
    Place,
    Site,
    build_site,
    comment,
    example,
    github_time,
    located,
    merged_pull,
    opened_issue,
    person,
)
from web.badge_svg import Badge, clean, render, text_width
from web.badges import snippets

SVG = "{http://www.w3.org/2000/svg}"
CHROMIUM = Path("/usr/bin/chromium")
HOSTILE = "\"><svg onload=alert(1)>&'x"  # no GitHub login, but a forum or chat name can be anything
SHY = ("zz-shy", 520)
ASKER, HELPER = ("newbie-asks", 540), ("octo-helper", 541)
# Hours from opening to the first answer by someone else: issues 31 and 32, pull request 33. Issue 34 is
# answered only by its author, which is no response.
WAITS = {31: 2, 32: 6, 33: 4}


@dataclass(frozen=True)
class Drawn:
    """A badge as a reader gets it: the response and the SVG's texts."""

    response: requests.Response
    root: ElementTree.Element

    @property
    def texts(self) -> list[str]:
        """label and value (each is drawn twice: a shadow, then the text)."""
        drawn = [node.text or "" for node in self.root.iter(f"{SVG}text")]
        assert drawn[0::2] == drawn[1::2], "every text has its shadow"
        return drawn[1::2]

    @property
    def label(self) -> str:
        return self.texts[0]

    @property
    def value(self) -> str:
        return self.texts[1]

    @property
    def title(self) -> str:
        found = self.root.find(f"{SVG}title")
        assert found is not None and found.text
        return found.text


def draw(site: Site, path: str, status: int = 200, **headers: str) -> Drawn:
    response = site.get(path, headers={"Accept-Language": "en", **headers})
    assert response.status_code == status, (path, response.status_code, response.text[:300])
    assert response.headers["Content-Type"] == "image/svg+xml; charset=utf-8"
    root = ElementTree.fromstring(response.content)  # valid XML, or this raises
    assert root.tag == f"{SVG}svg"
    shapes = root.find(f"{SVG}g")
    assert shapes is not None
    label_box, value_box, _shine = (int(r.attrib["width"]) for r in shapes.findall(f"{SVG}rect"))
    width = int(root.attrib["width"])
    assert label_box + value_box == width and root.attrib["height"] == "20"
    assert root.attrib["aria-label"] == (root.findtext(f"{SVG}title") or ""), "what a screen reader says"
    assert not root.findall(f".//{SVG}script") and "onload" not in {a for e in root.iter() for a in e.attrib}
    return Drawn(response, root)


def contributor_path(login: str, metric: str, repo: str | None = None, org: str | None = None) -> str:
    where = repo if repo else f"orgs/{org}"
    return f"/badges/{where}/contributors/{quote(login, safe='')}/{metric}.svg"


# --- the community


def answered(place: Place, number: int, opened: datetime, waited: float, pull: bool = False) -> list[tuple[str, Any]]:
    """An issue (or pull request) opened by ASKER and its first answer: HELPER's comment (or review)."""
    at = opened + timedelta(hours=waited)
    if pull:
        answer = located(example("pull_request_review.submitted.1"), place)
        answer["pull_request"].update(number=number, created_at=github_time(opened))
        answer["pull_request"]["user"] = person(*ASKER)
        answer["review"].update(id=8800 + number, state="commented", submitted_at=github_time(at))
        answer["review"]["user"] = person(*HELPER)
        answer["sender"] = person(*HELPER)
        return [("pull_request_review", answer)]
    answer = comment(place, *HELPER, 8800 + number, at)
    answer["issue"].update(number=number, created_at=github_time(opened))
    answer["issue"]["user"] = person(*ASKER)
    return [("issues", opened_issue(place, number, *ASKER, opened)), ("issue_comment", answer)]


def extend(site: Site, fake: Any) -> datetime:
    """The badges' own additions to test_pages' community; returns when last week began."""
    now = site.now
    last_week = datetime.combine((now - timedelta(days=7 + now.weekday())).date(), datetime.min.time())
    fake.add_issue(PUBLIC.full_name, 22, SHY[0], merged=True)
    for number in (31, 32, 34):
        fake.add_issue(PUBLIC.full_name, number, ASKER[0])
    fake.add_issue(PUBLIC.full_name, 33, ASKER[0], pull_request=True)
    events: list[tuple[str, Any]] = [("pull_request", merged_pull(PUBLIC, 22, *SHY, now - timedelta(days=5)))]
    for n, (number, waited) in enumerate(WAITS.items()):
        events += answered(PUBLIC, number, last_week + timedelta(hours=9 + n), waited, pull=number == 33)
    own = comment(PUBLIC, *ASKER, 8834, last_week + timedelta(hours=14))
    own["issue"].update(number=34, created_at=github_time(last_week + timedelta(hours=12)))
    own["issue"]["user"] = person(*ASKER)
    events += [("issues", opened_issue(PUBLIC, 34, *ASKER, last_week + timedelta(hours=12))), ("issue_comment", own)]
    opt_out = comment(PUBLIC, *SHY, 8899, now - timedelta(hours=1))
    opt_out["comment"]["body"] = "/leaderboard opt-out"
    events.append(("issue_comment", opt_out))
    for n, (event, payload) in enumerate(events):
        delivery_id = f"badges-{n}"
        assert site.server.deliver(event, payload, delivery_id=delivery_id).status_code == 202
        site.deliveries.append(delivery_id)
    store = services(site.server.app).store

    def all_done() -> bool:
        services(site.server.app).dispatcher.wait_idle()
        return all((found := store.get(d)) is not None and found.status == "done" for d in site.deliveries)

    wait_for(all_done, message="every delivery processed")
    LedgerStore(site.engine).record(
        [Contribution("badges:hostile", kinds.COMMENT, PUBLIC.repo, 530, HOSTILE, now - timedelta(days=3), 1, "")]
    )
    fake.assert_no_violations()
    return last_week


@dataclass
class BadgeSite:
    site: Site
    last_week: datetime


@pytest.fixture(scope="module")
def community(
    fake_github_server: Any, app_key: tuple[str, bytes], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[BadgeSite]:
    site = build_site(fake_github_server, app_key, tmp_path_factory.mktemp("badges"))
    last_week = extend(site, fake_github_server)
    yield BadgeSite(site, last_week)
    site.server.close()
    services(site.server.app).close()
    fake_github_server.reset()


@pytest.fixture
def site(community: BadgeSite) -> Site:
    return community.site


# --- the figures


@pytest.mark.parametrize(
    "scope, window",
    [
        ({"repo": PUBLIC.full_name}, "30d"),
        ({"repo": PUBLIC.full_name}, "all"),
        ({"repo": PUBLIC.full_name}, "7d"),
        ({"repo": DOCS.full_name}, "30d"),
        ({"org": "Codertocat"}, "30d"),
        ({"org": "codertocat"}, "all"),
    ],
)
def test_every_person_on_a_board_has_badges_with_its_rank_and_merged_pull_requests(site, scope, window):
    data = board(site.engine, window=window, limit=None, **scope)
    assert data["entries"]
    for entry in data["entries"]:
        rank = draw(site, contributor_path(entry["login"], "rank", **scope) + f"?window={window}")
        assert rank.value == f"#{entry['rank']} of {data['total']}", entry["login"]
        assert rank.label == ("rank" if window == "all" else f"rank · {window.removesuffix('d')} days")
        assert rank.title == (
            f"{entry['login']}: rank {entry['rank']} of {data['total']} on the {data['repo']} leaderboard "
            f"({'All time' if window == 'all' else window.removesuffix('d') + ' days'}), {entry['points']} points"
        )
        merged = draw(site, contributor_path(entry["login"], "merged", **scope) + f"?window={window}")
        assert merged.value == str(entry["counts"]["merged"]), entry["login"]


def test_the_default_windows_are_all_time_for_merged_and_30_days_for_rank(site):
    everything = {e["login"]: e for e in board(site.engine, repo=PUBLIC.full_name, window="all")["entries"]}
    month = board(site.engine, repo=PUBLIC.full_name, window="30d")
    mei = draw(site, contributor_path("mei", "merged", repo=PUBLIC.full_name))
    assert (mei.label, mei.value) == ("merged PRs", str(everything["mei"]["counts"]["merged"]))
    assert mei.title == f"mei, merged pull requests in {PUBLIC.full_name} (All time): {mei.value}"
    rank = draw(site, contributor_path("MEI", "rank", repo=PUBLIC.full_name))
    [entry] = [e for e in month["entries"] if e["login"] == "mei"]
    assert rank.value == f"#{entry['rank']} of {month['total']}", "logins match whatever their case"
    assert rank.title.startswith("mei: "), "the login as the board shows it"


def test_someone_with_nothing_on_the_board_is_unranked_with_no_merged_pull_requests(site):
    nobody = draw(site, contributor_path("never-contributed", "rank", repo=PUBLIC.full_name))
    assert (nobody.value, nobody.response.status_code) == ("unranked", 200)
    assert draw(site, contributor_path("never-contributed", "merged", repo=PUBLIC.full_name)).value == "0"
    # hist-crowd members commented 42 days ago: on the all-time board, not on the 30-day one.
    assert draw(site, contributor_path("crowd-01", "rank", repo=PUBLIC.full_name)).value == "unranked"
    assert draw(site, contributor_path("crowd-01", "rank", repo=PUBLIC.full_name) + "?window=all").value != "unranked"


def test_the_owner_badges_count_public_repositories_only(site):
    secret = draw(site, contributor_path("zz-secret-agent", "rank", org="Codertocat"))
    assert secret.value == "unranked", "their only contribution is in a private repository"
    data = board(site.engine, org="Codertocat", window="30d")
    [entry] = [e for e in data["entries"] if e["login"] == "mei"]
    assert draw(site, contributor_path("mei", "rank", org="Codertocat")).value == f"#{entry['rank']} of {data['total']}"
    merged = draw(site, contributor_path("mei", "merged", org="Codertocat") + "?window=30d")
    assert merged.value == str(entry["counts"]["merged"])


def test_the_active_contributors_badge_is_the_front_page_figure(site):
    [summary] = [s for s in overview.summaries(site.engine) if s.repository.full_name == PUBLIC.full_name]
    active = draw(site, f"/badges/{PUBLIC.full_name}/health/active.svg")
    assert summary.active_contributors > 3
    assert (active.label, active.value) == ("active contributors · 30 days", str(summary.active_contributors))
    assert (
        active.title == f"{summary.active_contributors} people contributed to {PUBLIC.full_name} in the last 30 days."
    )
    docs = draw(site, f"/badges/{DOCS.full_name.lower()}/health/active.svg")
    [summary] = [s for s in overview.summaries(site.engine) if s.repository.full_name == DOCS.full_name]
    assert docs.value == str(summary.active_contributors) and DOCS.full_name in docs.title


def test_the_first_response_badge_is_the_median_of_the_insights_definition(community):
    site = community.site
    drawn = draw(site, f"/badges/{PUBLIC.full_name}/health/first-response.svg")
    expected = median(WAITS.values())  # issue 34, answered only by its author, is left out
    assert (drawn.label, drawn.value) == ("first response", f"{expected:g} h")
    assert drawn.title == (
        f"{PUBLIC.full_name}: median time to a first response on issues and pull requests opened in the last "
        f"30 days: {expected:g} h (3 answered)."
    )
    # The insights' week (issues and pull requests apart) holds the same answers.
    weekly = report(site.engine, PUBLIC.full_name, weeks=2)
    index = weekly["weeks"].index(community.last_week.date().isoformat())
    issues = weekly["series"]["first_response_issues_hours"]["values"][index]
    pulls = weekly["series"]["first_response_pulls_hours"]["values"][index]
    assert (issues, pulls) == (median([WAITS[31], WAITS[32]]), WAITS[33])
    assert drawn.root.find(f".//{SVG}rect[@x]").attrib["fill"] == "#4c1", "under a day reads green"  # type: ignore[union-attr]
    quiet = draw(site, f"/badges/{DOCS.full_name}/health/first-response.svg")
    assert quiet.value == "no data" and "no issue or pull request" in quiet.title


@pytest.mark.parametrize(
    "hours, english, chinese",
    [(0.25, "15 min", "15 分钟"), (0.001, "1 min", "1 分钟"), (4, "4 h", "4 小时"), (30.25, "30.2 h", "30.2 小时"),
     (47.99, "48 h", "48 小时"), (72, "3 d", "3 天"), (100, "4.2 d", "4.2 天")],
)  # fmt: skip
def test_a_wait_reads_in_minutes_hours_or_days(site, hours, english, chinese):
    from web.badges import duration
    from web.shell import Translator

    for lang, expected in (("en", english), ("zh", chinese)):
        with site.server.app.test_request_context(f"/badges/x?lang={lang}"):
            assert duration(hours, Translator()) == expected


# --- who is not shown


def test_an_opted_out_contributor_gets_a_neutral_badge_without_figures(site):
    assert SHY[0] not in [e["login"] for e in board(site.engine, repo=PUBLIC.full_name, window="all")["entries"]]
    for metric in ("merged", "rank"):
        for scope in ({"repo": PUBLIC.full_name}, {"org": "Codertocat"}):
            drawn = draw(site, contributor_path(SHY[0].upper(), metric, **scope))
            assert drawn.value == "opted out" and drawn.title == f"{SHY[0]} chose not to appear on the leaderboards."
            assert drawn.root.find(f".//{SVG}rect[@x]").attrib["fill"] == "#9f9f9f"  # type: ignore[union-attr]
            assert not re.search(r"\d", drawn.value + drawn.title), "not their merged pull request, not a rank"
    zh = draw(site, contributor_path(SHY[0], "merged", repo=PUBLIC.full_name) + "?lang=zh")
    assert zh.value == "已退出排行"


def test_someone_a_board_excludes_gets_a_neutral_badge_without_figures(site):
    from web.badges import contributor_badge
    from web.shell import Translator

    place = {"window": "30d", "login": "sam", "repo": DOCS.full_name, "opted_out": False, "shown": False}
    place |= {"rank": None, "points": 0, "counts": {"merged": 0}, "total": 3}
    with site.server.app.test_request_context("/badges/x"):
        for metric in ("merged", "rank"):
            badge = contributor_badge(metric, place, Translator())
            assert (badge.value, badge.color) == ("not shown", "lightgrey")
            assert badge.title == f"The {DOCS.full_name} leaderboard does not show sam."


PRIVATE_PATHS = [
    contributor_path("mei", "merged", repo=PRIVATE.full_name),
    contributor_path("zz-secret-agent", "rank", repo=PRIVATE.full_name),
    f"/badges/{PRIVATE.full_name}/health/active.svg",
    f"/badges/{PRIVATE.full_name}/health/first-response.svg",
    contributor_path("zz-vault-keeper", "rank", org="hidden-vault-org"),
    f"/badges/{VAULT.full_name}/health/active.svg",
]


@pytest.mark.parametrize("path", PRIVATE_PATHS)
def test_a_private_repository_answers_exactly_like_an_unknown_one(site, path):
    unknown = path.replace("Secret-Plans", "No-Such-Repo").replace("hidden-vault-org", "no-such-owner-xyz")
    drawn, twin = draw(site, path, status=404), draw(site, unknown, status=404)
    assert drawn.response.content == twin.response.content, "nothing tells a private repository from none"
    assert (drawn.label, drawn.value) == ("badge", "not found")
    assert not re.search(r"\d", drawn.title) and "secret" not in drawn.response.text.lower()
    assert "vault" not in drawn.response.text.lower()


@pytest.mark.parametrize(
    "path, status, value",
    [
        (contributor_path("mei", "points", repo=PUBLIC.full_name), 404, "not found"),
        (f"/badges/{PUBLIC.full_name}/health/everything.svg", 404, "not found"),
        ("/badges/nothing-here", 404, "not found"),
        (f"/badges/{PUBLIC.full_name}/contributors/mei/merged.png", 404, "not found"),
        ("/badges/bad..owner!/x/health/active.svg", 404, "not found"),
        ("/badges/orgs/-bad-/contributors/mei/rank.svg", 404, "not found"),
        (contributor_path("mei", "rank", repo=PUBLIC.full_name) + "?window=2y", 400, "bad window"),
        (contributor_path("a" * 256, "rank", repo=PUBLIC.full_name), 404, "not found"),
    ],
)
def test_an_address_that_is_no_badge_still_answers_a_badge(site, path, status, value):
    drawn = draw(site, path, status=status)
    assert drawn.value == value
    if status == 400:
        assert drawn.title == "The window must be one of 7d, 30d, 90d, 365d, all."


# --- escaping


def test_a_hostile_login_is_escaped_everywhere(site):
    path = contributor_path(HOSTILE, "rank", repo=PUBLIC.full_name)
    drawn = draw(site, path)
    data = board(site.engine, repo=PUBLIC.full_name, window="30d")
    [entry] = [e for e in data["entries"] if e["login"] == HOSTILE]
    assert drawn.value == f"#{entry['rank']} of {data['total']}"
    assert drawn.title.startswith(HOSTILE + ": rank "), "read back exactly as it is"
    raw = drawn.response.text
    assert "<svg onload" not in raw and "&quot;&gt;&lt;svg onload=alert(1)&gt;&amp;&apos;x" in raw
    unknown = draw(site, contributor_path("<script>alert(1)<", "merged", repo=PUBLIC.full_name) + "?window=30d")
    assert "<script" not in unknown.response.text and unknown.title.startswith("<script>alert(1)<, merged ")
    assert unknown.value == "0"


@pytest.mark.parametrize(
    "case, text, shown",
    [
        ("markup", '<a href="x">&</a>', '<a href="x">&</a>'),
        ("control characters go", "a\x00b\x1bc\x7f", "abc\x7f"),
        ("a lone surrogate goes", "x\ud800y", "xy"),
        ("lines become one", "one\ntwo\r\nthree", "one two three"),
        ("long texts are cut", "x" * 80, "x" * 59 + "…"),
    ],
)
def test_any_text_makes_a_valid_badge(case, text, shown):
    svg = render(Badge(text, text, "nonsense-colour", text))
    root = ElementTree.fromstring(svg)
    assert [node.text for node in root.iter(f"{SVG}text")][1] == shown, case
    assert root.findtext(f"{SVG}title") == clean(text, 300)


def test_widths_follow_the_text_and_chinese_is_wider():
    assert text_width("iiii") < text_width("mmmm")
    assert text_width("排名") == 22.0 and text_width("e\u0301") == text_width("e")
    narrow = ElementTree.fromstring(render(Badge("rank", "#1 of 2", "blue", "t")))
    wide = ElementTree.fromstring(render(Badge("排名 · 30 天", "第 1 名 / 2 人", "blue", "t")))
    assert int(wide.attrib["width"]) > int(narrow.attrib["width"]) + 40
    for root in (narrow, wide):
        texts = list(root.iter(f"{SVG}text"))
        assert all(float(t.attrib["textLength"]) > 0 for t in texts)


# --- languages


def test_chinese_by_query_or_by_the_browser(site):
    path = contributor_path("mei", "rank", repo=PUBLIC.full_name)
    for drawn in (draw(site, path + "?lang=zh"), draw(site, path, **{"Accept-Language": "zh-CN,zh;q=0.9"})):
        assert drawn.label == "排名 · 30 天" and re.fullmatch(r"第 \d+ 名 / \d+ 人", drawn.value)
        assert drawn.root.attrib["{http://www.w3.org/XML/1998/namespace}lang"] == "zh-CN"
        assert "Accept-Language" in drawn.response.headers["Vary"]
    english = draw(site, path)
    assert english.label == "rank · 30 days"
    assert int(draw(site, path + "?lang=zh").root.attrib["width"]) != int(english.root.attrib["width"])
    health = draw(site, f"/badges/{PUBLIC.full_name}/health/first-response.svg?lang=zh")
    assert (health.label, health.value) == ("首次响应", f"{median(WAITS.values()):g} 小时")
    gone = draw(site, contributor_path("mei", "rank", repo=PRIVATE.full_name) + "?lang=zh", status=404)
    assert (gone.label, gone.value) == ("徽章", "未找到")


# --- caching


def test_a_badge_is_cached_by_its_etag_and_changes_when_its_figure_does(site, fake_github_server):
    path = contributor_path("etag-person", "merged", repo=DOCS.full_name)
    first = draw(site, path)
    etag = first.response.headers["ETag"]
    assert re.fullmatch(r'"[0-9a-f]{40}"', etag), "a strong validator"
    assert first.response.headers["Cache-Control"] == "public, max-age=300"
    assert first.value == "0"
    again = site.get(path, headers={"Accept-Language": "en", "If-None-Match": etag})
    assert again.status_code == 304 and again.content == b"" and again.headers["ETag"] == etag
    other = site.get(path, headers={"Accept-Language": "zh", "If-None-Match": etag})
    assert other.status_code == 200 and other.headers["ETag"] != etag, "another language, other bytes"
    fake_github_server.add_issue(DOCS.full_name, 41, "etag-person", merged=True)
    site.server.deliver("pull_request", merged_pull(DOCS, 41, "etag-person", 560, site.now - timedelta(hours=2)))
    wait_for(
        lambda: site.get(path, headers={"Accept-Language": "en", "If-None-Match": etag}).status_code == 200,
        message="the new figure",
    )
    changed = draw(site, path)
    assert changed.value == "1" and changed.response.headers["ETag"] != etag
    fake_github_server.assert_no_violations()
    missing = site.get(contributor_path("mei", "rank", repo=PRIVATE.full_name), headers={"If-None-Match": "*"})
    assert missing.status_code == 404, "a 404 is never turned into a 304"


# --- the leaderboard page's Markdown


def test_the_leaderboard_page_offers_markdown_that_serves_its_badges(site):
    from tests.test_pages import page

    document = page(site, f"/leaderboard?repo={PUBLIC.full_name}", headers={"Accept-Language": "en"})
    section = document.one("section", data_badges=None)
    assert section.one("h2").text() == "Badges"
    markdown = [code.text() for code in section.all("code", data_badge_markdown=None)]
    assert len(markdown) == 4
    assert markdown[0] == (
        f"[![merged PRs]({site.url}/badges/{PUBLIC.full_name}/contributors/LOGIN/merged.svg)]"
        f"({site.url}/leaderboard?repo={PUBLIC.full_name})"
    )
    for text in markdown:
        src = re.search(r"\]\((http[^)]+\.svg[^)]*)\)", text)
        assert src is not None
        response = requests.get(src.group(1), timeout=30)
        assert response.status_code == 200 and response.headers["Content-Type"].startswith("image/svg+xml")
    previews = section.all("img", data_badge_preview=None)
    assert [img.attrs["alt"] for img in previews] == ["active contributors · 30 days", "first response"]
    owner = page(site, "/leaderboard?org=Codertocat&lang=zh").one("section", data_badges=None)
    codes = [code.text() for code in owner.all("code", data_badge_markdown=None)]
    assert len(codes) == 2 and all(
        "/badges/orgs/Codertocat/contributors/LOGIN/" in c and "?lang=zh" in c for c in codes
    )


def test_a_board_only_a_signed_in_viewer_sees_offers_no_badges(site):
    with site.server.app.test_request_context("/leaderboard"):
        assert snippets({"repo": PRIVATE.full_name, "scope": "repository"}) is None
        assert snippets({"repo": VAULT.owner, "scope": "owner"}) is None
        assert snippets({"repo": PUBLIC.full_name, "scope": "repository"}) is not None


# --- in a browser


@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium")
def test_badges_render_in_chromium_in_english_and_chinese(site):
    from playwright.sync_api import sync_playwright

    widths = {}
    failed: list[str] = []  # what the pages load, besides the browser's own favicon.ico
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            for lang in ("en", "zh"):
                context = browser.new_context(locale="zh-CN" if lang == "zh" else "en-US")
                tab = context.new_page()
                tab.on("response", lambda r: r.status >= 400 and "favicon" not in r.url and failed.append(r.url))
                assert tab.goto(f"{site.url}/leaderboard?repo={PUBLIC.full_name}", wait_until="load").status == 200
                loaded = tab.eval_on_selector_all(
                    "img[data-badge-preview]", "imgs => imgs.map(i => [i.complete, i.naturalWidth, i.src])"
                )
                assert len(loaded) == 2 and all(done and width > 0 for done, width, _ in loaded), loaded
                widths[lang] = [width for _, width, _ in loaded]
                # The badge alone, as a README's reader opens it.
                opened = tab.goto(f"{site.url}/badges/{PUBLIC.full_name}/health/active.svg", wait_until="load")
                assert opened is not None and opened.status == 200
                title = tab.eval_on_selector("svg title", "t => t.textContent")
                assert ("人为" in title) == (lang == "zh")
                assert not failed, failed
                context.close()
        finally:
            browser.close()
    assert widths["zh"] != widths["en"], "the Chinese badges have their own width"
