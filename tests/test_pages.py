"""The pages over real HTTP: what they show equals the JSON API, private data never shows, words in
English and Chinese, escaping, the CSV's formula neutralisation, and the 400/404 answers.

One community is built per module through the app itself: real recorded webhook payloads (comments, an
issue, a merged pull request, a review, good first issues labelled) delivered to a live server and
processed by the embedded worker, plus some weeks of history written with `LedgerStore.record` (bulk
data the payloads cannot date back). The pages only read, so every test shares it.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
import requests

from domain import contributions as kinds
from domain.contributions import Contribution, Repo
from readmodels.insights import SERIES, SERIES_PLATFORMS, report
from readmodels.leaderboard import board
from storage.good_first_issues import GoodFirstIssueStore
from storage.ledger import LedgerStore
from tests.conftest import (
    INSTALLATION_ID,
    REPO,
    LiveServer,
    build_test_app,
    database_url_for,
    example,
    installed,
    services,
    wait_for,
)
from web.pages import safe_cell

# --- the community


@dataclass(frozen=True)
class Place:
    full_name: str
    id: int
    private: bool
    installation_id: int

    @property
    def owner(self) -> str:
        return self.full_name.split("/", 1)[0]

    @property
    def repo(self) -> Repo:
        return Repo(self.id, self.full_name, self.private, f"https://github.com/{self.full_name}", self.installation_id)


VAULT_INSTALLATION = INSTALLATION_ID + 1
PUBLIC = Place(REPO, 186853002, False, INSTALLATION_ID)  # the id in the recorded payloads
DOCS = Place("Codertocat/Docs", 186853100, False, INSTALLATION_ID)
PRIVATE = Place("Codertocat/Secret-Plans", 186853200, True, INSTALLATION_ID)
VAULT = Place("hidden-vault-org/vault", 186853300, True, VAULT_INSTALLATION)  # an owner with only private ones

# Whatever comes only from private repositories: none of it may appear on any page, API or CSV.
PRIVATE_WORDS = ("secret-plans", "zz-secret-agent", "hidden-vault-org", "zz-vault-keeper", "zz classified")
HOSTILE_TITLE = '<script>alert("gfi")</script> Fix the README & <b>docs</b>'
HOSTILE_LABELS = ("area: docs", '<img src=x onerror="alert(1)">')
FORMULA_LOGINS = ("=1+2", "+SUM(A1)", "@cmd", "-2+3")
PUBLIC_CONFIG = "leaderboard:\n  daily_comment_cap: 3\n  points:\n    comment: 2\n"


def person(login: str, user_id: int) -> dict[str, Any]:
    return {"login": login, "id": user_id, "type": "User", "node_id": "x", "site_admin": False}


def github_time(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def located(payload: dict[str, Any], place: Place) -> dict[str, Any]:
    """A recorded payload moved to another repository (and its installation)."""
    installed(payload, place.installation_id)
    payload["repository"].update(
        id=place.id,
        name=place.full_name.split("/", 1)[1],
        full_name=place.full_name,
        private=place.private,
        html_url=f"https://github.com/{place.full_name}",
    )
    payload["repository"]["owner"]["login"] = place.owner
    return payload


def comment(place: Place, login: str, user_id: int, comment_id: int, at: datetime) -> dict[str, Any]:
    payload = located(example("issue_comment.created.1"), place)
    payload["comment"].update(id=comment_id, body="Thanks, this helps!", created_at=github_time(at))
    payload["comment"]["user"] = person(login, user_id)
    payload["sender"] = person(login, user_id)
    return payload


def opened_issue(place: Place, number: int, login: str, user_id: int, at: datetime) -> dict[str, Any]:
    payload = located(example("issues.opened.1"), place)
    payload["issue"].update(number=number, created_at=github_time(at), author_association="NONE")
    payload["issue"]["user"] = person(login, user_id)
    payload["sender"] = person(login, user_id)
    return payload


def merged_pull(place: Place, number: int, login: str, user_id: int, at: datetime) -> dict[str, Any]:
    payload = located(example("pull_request.closed.1"), place)
    stamp = github_time(at)
    payload["pull_request"].update(number=number, merged=True, merged_at=stamp, closed_at=stamp, body="")
    payload["pull_request"]["user"] = person(login, user_id)
    payload["sender"] = person("octo-maintainer", 400)
    return payload


def review(place: Place, login: str, user_id: int, review_id: int, at: datetime) -> dict[str, Any]:
    payload = located(example("pull_request_review.submitted.1"), place)
    payload["review"].update(id=review_id, state="approved", submitted_at=github_time(at))
    payload["review"]["user"] = person(login, user_id)
    payload["sender"] = person(login, user_id)
    return payload


def good_first_issue(
    place: Place,
    number: int,
    title: str,
    assignees: tuple[str, ...] = (),
    others: tuple[str, ...] = (),
    opened: datetime | None = None,
) -> dict[str, Any]:
    """Labelled good first issue (and `others`), opened at `opened` (the recorded payload's 2019 time if None)."""
    payload = located(example("issues.labeled.1"), place)
    label = {**payload["label"], "name": "good first issue", "default": False}
    payload["label"] = label
    if opened is not None:
        payload["issue"]["created_at"] = github_time(opened)
    payload["issue"].update(
        number=number,
        title=title,
        labels=[label, *({**label, "id": 7000 + n, "name": name} for n, name in enumerate(others))],
        assignees=[person(login, 900 + n) for n, login in enumerate(assignees)],
        assignee=None,
        state="open",
        html_url=f"https://github.com/{place.full_name}/issues/{number}",
        updated_at=github_time(datetime.now(UTC)),
    )
    payload["sender"] = person("octo-maintainer", 400)
    return payload


def history(now: datetime) -> list[Contribution]:
    """Weeks of older activity: a regular, a crowd in one week (an anomaly), earlier work by mei and sam,
    and contributors whose logins start like spreadsheet formulas (which GitHub would not allow)."""

    def item(kind: str, place: Place, actor: int, login: str, at: datetime, key: str) -> Contribution:
        return Contribution(
            key, kind, place.repo, actor, login, at, 1, f"https://github.com/{place.full_name}/issues/1"
        )

    found = []
    for week in range(1, 12):
        for n in range(week % 2 + 1):
            at = now - timedelta(days=7 * week, hours=2 + n)
            found.append(item(kinds.COMMENT, PUBLIC, 701, "hist-ana", at, f"hist:ana:{week}:{n}"))
    for n in range(8):
        at = now - timedelta(days=42, hours=n)
        found.append(item(kinds.COMMENT, PUBLIC, 801 + n, f"crowd-{n + 1:02d}", at, f"hist:crowd:{n}"))
    found.append(item(kinds.COMMENT, PUBLIC, 501, "mei", now - timedelta(days=40), "hist:mei"))
    found.append(item(kinds.REVIEW_APPROVED, PUBLIC, 502, "sam", now - timedelta(days=50), "hist:sam"))
    for n, login in enumerate(FORMULA_LOGINS):
        found.append(item(kinds.COMMENT, DOCS, 951 + n, login, now - timedelta(days=5, hours=n), f"hist:f:{n}"))
    return found


@dataclass
class Site:
    server: LiveServer
    now: datetime
    deliveries: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def engine(self) -> Any:
        return services(self.server.app).store.engine

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.server.session.get(self.url + path, timeout=30, allow_redirects=False, **kwargs)


def prepare_github(fake: Any) -> None:
    fake.reset()
    for place in (PUBLIC, DOCS, PRIVATE, VAULT):
        fake.add_repo(place.full_name, private=place.private, default_branch="master", repo_id=place.id)
    fake.add_installation(INSTALLATION_ID, "Codertocat", [PUBLIC.full_name, DOCS.full_name, PRIVATE.full_name])
    fake.add_installation(VAULT_INSTALLATION, "hidden-vault-org", [VAULT.full_name])
    fake.set_file(PUBLIC.full_name, ".github/engage.yml", PUBLIC_CONFIG)
    for place in (PUBLIC, DOCS, PRIVATE, VAULT):
        fake.add_issue(place.full_name, 1, "Codertocat", title="Spelling error in the README file")
    fake.add_issue(PUBLIC.full_name, 2, "mei", merged=True)
    fake.add_issue(DOCS.full_name, 2, "Codertocat", pull_request=True)
    fake.add_issue(PUBLIC.full_name, 3, "li-newcomer")


def create_test_app(fake: Any, app_key: tuple[str, bytes], database_url: str) -> Any:
    """An app as conftest's `make_app` builds it (embedded worker, the fake GitHub), for a module."""
    return build_test_app(fake.url, app_key, database_url, behaviours=())


def build_site(fake: Any, app_key: tuple[str, bytes], tmp: Path) -> Site:
    """The community every page test reads (see the module docstring)."""
    prepare_github(fake)
    app = create_test_app(fake, app_key, database_url_for(tmp))
    now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    # Within the ISO week still running, whatever day the tests run (now - 4 days was last week on Mondays
    # to Thursdays): halfway between its Monday and now.
    monday = datetime.combine(now.date() - timedelta(days=now.weekday()), datetime.min.time())
    this_week = monday + (now - monday) / 2
    site = Site(LiveServer(app), now)
    LedgerStore(site.engine).record(history(now))
    events = [
        ("issue_comment", comment(PUBLIC, "mei", 501, 7001, now - timedelta(days=2))),
        ("issue_comment", comment(PUBLIC, "mei", 501, 7002, now - timedelta(days=2, hours=1))),
        ("issue_comment", comment(PUBLIC, "sam", 502, 7003, now - timedelta(days=3))),
        ("pull_request", merged_pull(PUBLIC, 2, "mei", 501, this_week)),
        ("issues", opened_issue(PUBLIC, 3, "li-newcomer", 503, now - timedelta(days=1))),
        ("pull_request_review", review(DOCS, "sam", 502, 8001, now - timedelta(days=3))),
        ("issue_comment", comment(PRIVATE, "zz-secret-agent", 601, 7101, now - timedelta(days=1))),
        ("issue_comment", comment(PRIVATE, "mei", 501, 7102, now - timedelta(days=1))),
        ("issue_comment", comment(VAULT, "zz-vault-keeper", 602, 7201, now - timedelta(days=1))),
        ("issues", good_first_issue(PUBLIC, 11, HOSTILE_TITLE, others=HOSTILE_LABELS, opened=now - timedelta(days=9))),
        ("issues", good_first_issue(PUBLIC, 12, "Taken already", assignees=("sam",))),
        ("issues", good_first_issue(PUBLIC, 16, "Being claimed")),
        ("issues", good_first_issue(PUBLIC, 17, "A pull request is open for it")),
        ("issues", good_first_issue(PRIVATE, 14, "zz classified roadmap task")),
        ("issues", good_first_issue(VAULT, 15, "zz classified vault task")),
        ("issues", good_first_issue(DOCS, 13, "Document the boot flags")),
    ]
    for n, (event, payload) in enumerate(events):
        delivery_id = f"pages-{n}"
        assert site.server.deliver(event, payload, delivery_id=delivery_id).status_code == 202
        site.deliveries.append(delivery_id)
    store = services(app).store

    def all_done() -> bool:
        services(app).dispatcher.wait_idle()
        return all((found := store.get(d)) is not None and found.status == "done" for d in site.deliveries)

    wait_for(all_done, message="every delivery processed")
    issues = GoodFirstIssueStore(site.engine)
    assert issues.reserve(PUBLIC.id, 16, "sam") is None
    issues.link_pull(PUBLIC.id, [17], 99)
    fake.assert_no_violations()
    return site


@pytest.fixture(scope="module")
def site(
    fake_github_server: Any, app_key: tuple[str, bytes], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Site]:
    built = build_site(fake_github_server, app_key, tmp_path_factory.mktemp("pages"))
    yield built
    built.server.close()
    services(built.server.app).close()
    fake_github_server.reset()


# --- reading HTML


VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


@dataclass
class Node:
    tag: str
    attrs: dict[str, str]
    children: list[Node | str] = field(default_factory=list)

    def text(self) -> str:
        parts = [child if isinstance(child, str) else child.text() for child in self.children]
        return re.sub(r"\s+", " ", "".join(parts)).strip()

    def all(self, tag: str | None = None, **attrs: str | None) -> list[Node]:
        """Descendants with this tag and these attributes (`data_col="x"` is data-col; None: present)."""
        wanted = {name.replace("_", "-"): value for name, value in attrs.items()}
        found = []
        for child in self.children:
            if isinstance(child, str):
                continue
            if (tag is None or child.tag == tag) and all(
                name in child.attrs and (value is None or child.attrs[name] == value) for name, value in wanted.items()
            ):
                found.append(child)
            found.extend(child.all(tag, **attrs))
        return found

    def one(self, tag: str | None = None, **attrs: str | None) -> Node:
        [found] = self.all(tag, **attrs)
        return found


class _Builder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#document", {})
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {name: value or "" for name, value in attrs})
        self.stack[-1].children.append(node)
        if tag not in VOID:
            self.stack.append(node)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.stack[-1].children.append(Node(tag, {name: value or "" for name, value in attrs}))

    def handle_endtag(self, tag: str) -> None:
        for depth in range(len(self.stack) - 1, 0, -1):
            if self.stack[depth].tag == tag:
                del self.stack[depth:]
                return

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(data)


def parse(html: str) -> Node:
    builder = _Builder()
    builder.feed(html)
    builder.close()
    return builder.root


def page(site: Site, path: str, **kwargs: Any) -> Node:
    response = site.get(path, **kwargs)
    assert response.status_code == 200, (path, response.status_code, response.text[:500])
    assert response.headers["Content-Type"].startswith("text/html")
    return parse(response.text)


def api(site: Site, path: str) -> dict[str, Any]:
    response = site.get(path)
    assert response.status_code == 200, (path, response.text[:500])
    found: dict[str, Any] = response.json()
    return found


def table_rows(document: Node) -> list[dict[str, str]]:
    return [
        {cell.attrs["data-col"]: cell.text() for cell in row.all("td")} for row in document.all("tr", data_login=None)
    ]


def change_text(entry: dict[str, Any], window: str) -> str | None:
    """The rank change column's text; all time has no previous window, so no column."""
    change = entry["rank_change"]
    if window == "all":
        return None
    if change is None:
        return "new"
    return "=" if change == 0 else (f"↑{change}" if change > 0 else f"↓{-change}")


# --- the leaderboard


@pytest.mark.parametrize(
    "query",
    [
        f"repo={PUBLIC.full_name}&window=30d",
        f"repo={PUBLIC.full_name}&window=7d",
        f"repo={PUBLIC.full_name}&window=all",
        f"repo={DOCS.full_name}&window=30d",
        "org=Codertocat&window=30d",
        "org=codertocat&window=90d",
    ],
)
def test_the_leaderboard_page_shows_what_the_api_answers(site, query):
    data = api(site, f"/api/leaderboard?{query}")
    document = page(site, f"/leaderboard?{query}")
    rows = table_rows(document)
    assert data["entries"], "every board here has people on it"
    assert len(rows) == len(data["entries"])
    for row, entry in zip(rows, data["entries"], strict=True):
        login_cell = row["login"].removesuffix(" new here").strip()
        assert (int(row["rank"]), login_cell, int(row["points"])) == (entry["rank"], entry["login"], entry["points"])
        assert {kind: int(row[kind]) for kind in data["kinds"]} == entry["counts"]
        assert row.get("change") == change_text(entry, data["window"])
        assert row["login"].endswith("new here") == entry["newcomer"]
    formula = document.one(data_formula=None).text()
    for kind, weight in data["formula"]["points"].items():
        assert bool(re.search(rf"(?<![0-9]){weight} × ", formula)) == bool(weight), kind  # "0 × " is in "10 × "
    current = document.one("nav", aria_label="Window").one("a", aria_current="true")
    assert current.attrs["data-window"] == data["window"]


def test_the_api_is_exactly_the_board(site):
    data = api(site, f"/api/leaderboard?repo={PUBLIC.full_name}&window=30d&limit=2")
    expected = board(site.engine, repo=PUBLIC.full_name, window="30d", limit=2)
    assert {**data, "generated_at": None} == {**expected, "generated_at": None}
    assert len(data["entries"]) == 2 and data["total"] > 2


def test_points_rank_changes_and_newcomers_from_real_deliveries(site):
    entries = {e["login"]: e for e in api(site, f"/api/leaderboard?repo={PUBLIC.full_name}&window=30d")["entries"]}
    mei = entries["mei"]
    assert mei["rank"] == 1 and mei["points"] == 10 + 2 * 2, "a merged pull request and two comments at 2 points"
    assert mei["counts"]["merged"] == 1 and mei["counts"]["comments"] == 2
    assert mei["previous_rank"] is not None and not mei["newcomer"], "she commented 40 days ago too"
    assert entries["li-newcomer"]["newcomer"] and entries["li-newcomer"]["previous_rank"] is None
    document = page(site, f"/leaderboard?repo={PUBLIC.full_name}&window=30d")
    li = document.one("tr", data_login="li-newcomer")
    assert li.one("span", data_newcomer=None).text() == "new here"
    assert "2 × comments" in document.one(data_formula=None).text()
    assert "first 3 a day" in document.text(), "the repository's own comment cap"


def test_the_owner_board_counts_only_public_repositories(site):
    entries = {e["login"]: e for e in api(site, "/api/leaderboard?org=Codertocat&window=30d")["entries"]}
    assert entries["mei"]["counts"]["comments"] == 2, "her comment in the private repository is not counted"
    assert entries["sam"]["counts"]["reviews"] == 1 and entries["sam"]["counts"]["comments"] == 1


def test_the_scope_form_leads_to_the_board_it_names(site):
    response = site.get("/leaderboard?scope=org:Codertocat&window=7d&lang=zh")
    assert response.status_code == 302
    assert response.headers["Location"] == "/leaderboard?window=7d&lang=zh&org=Codertocat"
    response = site.get(f"/leaderboard?scope=repo:{DOCS.full_name}")
    assert response.headers["Location"] == f"/leaderboard?repo={DOCS.full_name}"
    assert site.get("/leaderboard?scope=nonsense").status_code == 404


def test_without_a_repository_the_page_offers_a_choice_and_the_api_asks_for_one(site):
    document = page(site, "/leaderboard")
    values = [option.attrs["value"] for option in document.one("select", name="scope").all("option")]
    assert values == ["", "org:Codertocat", f"repo:{DOCS.full_name}", f"repo:{PUBLIC.full_name}"]
    chooser = document.one("div", **{"class": "chooser"})
    assert [a.text() for a in chooser.all("a")] == ["Codertocat", DOCS.full_name, PUBLIC.full_name]
    for path in ("/api/leaderboard", "/api/leaderboard?window=7d", "/leaderboard.csv", "/api/insights"):
        response = site.get(path)
        assert response.status_code == 400 and "error" in response.json(), path
    assert page(site, "/insights").one("select", name="repo").all("option")[1].text() == DOCS.full_name


# --- the CSV


@pytest.mark.parametrize(
    "case, cell, expected",
    [
        ("a formula", "=1+2", "'=1+2"),
        ("a plus", "+SUM(A1)", "'+SUM(A1)"),
        ("a minus", "-2+3", "'-2+3"),
        ("an at sign", "@cmd", "'@cmd"),
        ("a tab", "\tx", "'\tx"),
        ("a carriage return", "\rx", "'\rx"),
        ("a plain login", "mei", "mei"),
        ("a hyphen inside", "li-newcomer", "li-newcomer"),
        ("numbers stay numbers", 12, 12),
    ],
)
def test_csv_cells_that_look_like_formulas_are_made_text(case, cell, expected):
    assert safe_cell(cell) == expected, case


def test_the_csv_is_an_attachment_with_every_entry_and_no_formulas(site):
    response = site.get(f"/leaderboard.csv?repo={DOCS.full_name}&window=30d")
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/csv")
    assert response.headers["Content-Disposition"] == 'attachment; filename="leaderboard-Codertocat-Docs-30d.csv"'
    data = api(site, f"/api/leaderboard?repo={DOCS.full_name}&window=30d")
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[0] == ["rank", "login", "points", *data["kinds"]]
    expected = [
        [str(e["rank"]), safe_cell(e["login"]), str(e["points"]), *(str(e["counts"][k]) for k in data["kinds"])]
        for e in data["entries"]
    ]
    assert rows[1:] == expected
    logins = {row[1] for row in rows[1:]}
    assert {"'=1+2", "'+SUM(A1)", "'@cmd", "'-2+3", "sam"} <= logins
    assert not any(cell.startswith(("=", "+", "-", "@")) for row in rows for cell in row)


# --- insights


def shown(value: float | None, unit: str) -> float | None:
    return None if value is None else (round(value * 100, 2) if unit == "ratio" else value)


@pytest.mark.parametrize("weeks", [4, 12, 26])
def test_the_insights_page_plots_what_the_api_answers(site, weeks):
    data = api(site, f"/api/insights?repo={PUBLIC.full_name}&weeks={weeks}")
    document = page(site, f"/insights?repo={PUBLIC.full_name}&weeks={weeks}")
    sections = document.all("section", data_series=None)
    shown_series = [name for name in SERIES if set(SERIES_PLATFORMS[name]) & set(data["platforms"])]
    assert [s.attrs["data-series"] for s in sections] == shown_series, "in the order the module lists them"
    assert set(SERIES) == set(data["series"])
    for section in sections:
        series = data["series"][section.attrs["data-series"]]
        marks = {
            m.attrs["data-label"]: float(m.attrs["data-value"]) for m in section.all(data_value=None, data_label=None)
        }
        expected = {
            week: shown(value, series["unit"])
            for week, value in zip(data["weeks"], series["values"], strict=True)
            if value is not None
        }
        assert marks == expected, section.attrs["data-series"]
        for stat in ("mean", "stddev"):
            raw = section.one("dd", data_stat=stat).attrs["data-value"]
            assert (float(raw) if raw else None) == series[stat]
        assert section.one("dd", data_stat="direction").attrs["data-value"] == series["direction"]
        listed = [badge.text() for badge in section.one("dd", data_stat="anomalies").all("span", data_week=None)]
        assert listed == series["anomalies"]
        anomalous = {m.attrs["data-label"] for m in section.all(data_label=None) if "anomaly" in m.attrs["class"]}
        assert anomalous == set(series["anomalies"])
    current = document.one("nav", aria_label="Span").one("a", aria_current="true")
    assert current.attrs["data-weeks"] == str(weeks)


def test_the_crowd_week_is_an_anomaly_and_the_figures_read_well(site):
    data = api(site, f"/api/insights?repo={PUBLIC.full_name}&weeks=12")
    active = data["series"]["active_contributors"]
    assert active["anomalies"], "eight people arriving in one week stands out"
    document = page(site, f"/insights?repo={PUBLIC.full_name}&weeks=12")
    section = document.one("section", data_series="active_contributors")
    assert section.one("dd", data_stat="anomalies").text() == " ".join(active["anomalies"])
    trend = section.one("dd", data_stat="direction").text()
    assert trend.split("(")[0].strip().endswith(active["direction"]) and "per week" in trend
    legend = document.one("aside", **{"class": "legend"}).text()
    assert "dashed line" in legend and "more than two standard deviations" in legend
    assert data["partial_week"] == data["weeks"][-1] and "still running" in legend
    assert data["series"]["pr_acceptance"]["values"][-1] == 1.0, "this week: one merged pull request, none closed"
    acceptance = document.one("section", data_series="pr_acceptance").one("dd", data_stat="mean").text()
    assert acceptance == "—", "the week still running is left out of the mean"


VERDICT_WORDS = {
    "en": {"better": "better", "worse": "worse", "same": "no change", "unknown": "nothing to compare"},
    "zh": {"better": "变好", "worse": "变差", "same": "没有变化", "unknown": "无可比较"},
}


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_the_insights_headline_says_better_or_worse_in_words(site, lang):
    data = api(site, f"/api/insights?repo={PUBLIC.full_name}&weeks=12")
    document = page(site, f"/insights?repo={PUBLIC.full_name}&weeks=12&lang={lang}")
    figures = document.one("section", **{"class": "headline"}).all("div", data_headline=None)
    assert [f.attrs["data-headline"] for f in figures] == [h["series"] for h in data["headline"]]
    assert len(figures) == 6
    for shown, figure in zip(figures, data["headline"], strict=True):
        assert shown.attrs["data-verdict"] == figure["verdict"]
        assert shown.one("strong", **{"class": "verdict-word"}).text() == VERDICT_WORDS[lang][figure["verdict"]]
        assert shown.one("p", **{"class": "headline-value"}).attrs["data-value"] == str(
            "" if figure["value"] is None else figure["value"]
        )
    for card in document.all("section", data_series=None):
        trend = data["series"][card.attrs["data-series"]]["trend_verdict"]
        judged = card.all("strong", data_verdict=None)
        assert [j.text() for j in judged] == ([VERDICT_WORDS[lang][trend]] if trend in ("better", "worse") else [])


def test_the_insights_api_is_exactly_the_report(site):
    data = api(site, f"/api/insights?repo={PUBLIC.full_name}&weeks=8")
    assert {**data, "generated_at": None} == {**report(site.engine, PUBLIC.full_name, weeks=8), "generated_at": None}


# --- the overview and good first issues


def test_the_overview_lists_installed_public_repositories_with_their_month(site):
    document = page(site, "/")
    cards = {card.attrs["data-repo"]: card for card in document.all("article", data_repo=None)}
    assert list(cards) == [DOCS.full_name, PUBLIC.full_name]
    public = {dd.attrs["data-figure"]: int(dd.text()) for dd in cards[PUBLIC.full_name].all("dd", data_figure=None)}
    assert public == {
        "active_contributors": 4,  # mei, sam, li-newcomer, hist-ana
        "merged_pull_requests": 1,
        "new_contributors": 1,  # li-newcomer
        "good_first_issues": 1,  # 11; 12 is assigned, 16 claimed, 17 has a pull request
    }
    docs = {dd.attrs["data-figure"]: int(dd.text()) for dd in cards[DOCS.full_name].all("dd", data_figure=None)}
    assert docs == {"active_contributors": 5, "merged_pull_requests": 0, "new_contributors": 5, "good_first_issues": 1}
    links = [a.attrs["href"] for a in document.all("a")]
    assert f"/leaderboard?repo={PUBLIC.full_name}" in links and f"/insights?repo={PUBLIC.full_name}" in links
    assert "/leaderboard?org=Codertocat" in links


def test_good_first_issues_only_those_a_newcomer_can_take(site):
    document = page(site, "/good-first-issues")
    items = [(li.attrs["data-repo"], int(li.attrs["data-number"])) for li in document.all("li", data_repo=None)]
    # Newest first, as the app stored them; these two are in two repositories, whose deliveries are processed
    # side by side, so either may have been stored first.
    assert sorted(items) == [(DOCS.full_name, 13), (PUBLIC.full_name, 11)]
    title = document.one("li", data_number="11").one("a", **{"class": "issue-title"})
    assert title.text() == HOSTILE_TITLE and title.attrs["href"] == f"https://github.com/{PUBLIC.full_name}/issues/11"
    only_docs = page(site, f"/good-first-issues?repo={DOCS.full_name.lower()}")
    assert [li.attrs["data-number"] for li in only_docs.all("li", data_repo=None)] == ["13"]


def test_an_empty_installation_shows_friendly_empty_pages(fake_github_server, app_key, tmp_path):
    """Before any event: every page answers, says there is nothing yet, and offers nothing to choose."""
    app = create_test_app(fake_github_server, app_key, f"sqlite:///{tmp_path / 'empty.sqlite3'}")
    server = LiveServer(app)
    try:
        empty = Site(server, datetime.now(UTC))
        assert "No public repository has the app installed yet." in page(empty, "/").text()
        assert "No public repository yet" in page(empty, "/leaderboard").text()
        assert "No public repository yet" in page(empty, "/insights").text()
        assert "No good first issue is free right now." in page(empty, "/good-first-issues").text()
        assert empty.get(f"/leaderboard?repo={REPO}").status_code == 404
    finally:
        server.close()
        services(app).close()


EMPTY_PAGES = ["/", "/leaderboard", "/insights", "/good-first-issues", "/waiting", "/digests"]


@pytest.mark.parametrize("slug, install", [("llmasos-engage", "/apps/llmasos-engage/installations/new"), (None, None)])
def test_empty_pages_say_to_install_the_app_and_fill_the_history(fake_github_server, app_key, tmp_path, slug, install):
    """A first run: each page says what to do next, with the App's install link (APP_SLUG) or its registration."""
    app = build_test_app(
        fake_github_server.url, app_key, f"sqlite:///{tmp_path / 'empty.sqlite3'}", behaviours=(), app_slug=slug
    )
    server = LiveServer(app)
    try:
        empty = Site(server, datetime.now(UTC))
        github = services(app).settings.github_url
        for path in EMPTY_PAGES:
            document = page(empty, path)
            [steps] = document.all("div", data_empty="install")
            assert [li.attrs["data-step"] for li in steps.all("li")] == ["install", "backfill"], path
            if install:
                assert steps.one("a", data_install=None).attrs["href"] == github + install
            else:
                assert steps.one("a", data_registration=None).attrs["href"] == github + "/settings/apps"
                assert "Install App" in steps.text()
            assert "flask --app app backfill OWNER/REPO" in steps.one("li", data_step="backfill").text()
        chinese = page(empty, "/?lang=zh").one("div", data_empty="install").text()
        assert "补录历史" in chinese and "flask --app app backfill OWNER/REPO" in chinese
    finally:
        server.close()
        services(app).close()


def test_an_empty_window_suggests_the_history_and_no_free_issue_suggests_a_label(fake_github_server, app_key, tmp_path):
    """A repository is listed (its first webhook came) but its old issue is outside the week and none is labelled."""
    app = create_test_app(fake_github_server, app_key, f"sqlite:///{tmp_path / 'first.sqlite3'}")
    server = LiveServer(app)
    try:
        first = Site(server, datetime.now(UTC))
        assert server.deliver("issues", installed(example("issues.opened.1")), delivery_id="first-1").status_code == 202
        wait_for(lambda: (d := services(app).store.get("first-1")) is not None and d.status == "done")
        week = page(first, f"/leaderboard?repo={REPO}&window=7d")
        assert not week.all("tr", data_login=None)
        [steps] = week.all("div", data_empty="history")
        assert [li.attrs["data-step"] for li in steps.all("li")] == ["backfill"]
        issues = page(first, "/good-first-issues")
        assert "good first issue" in issues.one("div", data_empty="label").one("p", data_step="label").text()
        assert not issues.all("div", data_empty="install")
        assert page(first, "/waiting").one("p", **{"class": "empty-state"}), "nobody waiting is good news: no steps"
    finally:
        server.close()
        services(app).close()


def test_good_first_issues_show_their_labels_and_age_from_the_webhooks(site, fake_github_server):
    card = page(site, "/good-first-issues").one("li", data_number="11")
    labels = [li.text() for li in card.one("ul", **{"class": "issue-labels"}).all("li")]
    assert labels == ["good first issue", *HOSTILE_LABELS]
    opened = card.one("time", data_age=None)
    assert opened.text() == "opened 9 days ago" and opened.attrs["datetime"].startswith(
        str((site.now - timedelta(days=9)).date())
    )
    old = page(site, "/good-first-issues").one("li", data_number="13").one("time", data_age=None).text()
    assert re.fullmatch(r"opened \d{4} days ago", old), "the recorded payload's issue is from 2019"
    chinese = page(site, "/good-first-issues?lang=zh").one("li", data_number="11").one("time", data_age=None)
    assert chinese.text() == "9 天前创建"
    html = site.get("/good-first-issues").text
    assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in html and "<img src=x" not in html
    asked = [call.path for call in fake_github_server.calls("GET") if "/issues/11" in call.path]
    assert asked == [], "labels and age come from the payloads, not from GitHub"


def test_titles_are_escaped(site):
    html = site.get("/good-first-issues").text
    assert "&lt;script&gt;alert(" in html and "&lt;b&gt;docs&lt;/b&gt;" in html
    assert "<script" not in html and "<b>docs" not in html


# --- private data never shows


SHOWN_ROUTES = [
    "/",
    "/leaderboard",
    f"/leaderboard?repo={PUBLIC.full_name}&window=30d",
    f"/leaderboard?repo={PUBLIC.full_name}&window=all",
    "/leaderboard?org=Codertocat&window=7d",
    "/leaderboard?org=Codertocat&window=all",
    f"/leaderboard.csv?repo={PUBLIC.full_name}&window=all",
    "/leaderboard.csv?org=Codertocat&window=all",
    f"/api/leaderboard?repo={PUBLIC.full_name}&window=all",
    "/api/leaderboard?org=Codertocat&window=all&limit=1000",
    "/insights",
    f"/insights?repo={PUBLIC.full_name}&weeks=52",
    f"/api/insights?repo={PUBLIC.full_name}&weeks=52",
    "/good-first-issues",
    f"/good-first-issues?repo={PUBLIC.full_name}",
    "/?lang=zh",
    "/good-first-issues?lang=zh",
]
# Addresses naming a private repository or an owner with only private ones, each with its twin naming
# nothing at all: the answers must be the same but for the name asked about.
PRIVATE_ROUTES = [
    (f"/leaderboard?repo={PRIVATE.full_name}", "/leaderboard?repo=Codertocat/No-Such-Repo"),
    (
        f"/leaderboard?repo={PRIVATE.full_name.lower()}&window=all",
        "/leaderboard?repo=codertocat/no-such-repo&window=all",
    ),
    (f"/leaderboard?org={VAULT.owner}", "/leaderboard?org=no-such-owner-abcdefg"),
    (f"/leaderboard.csv?repo={PRIVATE.full_name}", "/leaderboard.csv?repo=Codertocat/No-Such-Repo"),
    (f"/leaderboard.csv?org={VAULT.owner}", "/leaderboard.csv?org=no-such-owner-abcdefg"),
    (f"/api/leaderboard?repo={PRIVATE.full_name}", "/api/leaderboard?repo=Codertocat/No-Such-Repo"),
    (f"/api/leaderboard?org={VAULT.owner}", "/api/leaderboard?org=no-such-owner-abcdefg"),
    (f"/insights?repo={PRIVATE.full_name}", "/insights?repo=Codertocat/No-Such-Repo"),
    (f"/insights?repo={VAULT.full_name}&lang=zh", "/insights?repo=no-such-owner-abcdefg/vault&lang=zh"),
    (f"/api/insights?repo={PRIVATE.full_name}", "/api/insights?repo=Codertocat/No-Such-Repo"),
    (f"/good-first-issues?repo={PRIVATE.full_name}", "/good-first-issues?repo=Codertocat/No-Such-Repo"),
    (f"/leaderboard?scope=repo:{PRIVATE.full_name}", "/leaderboard?scope=repo:Codertocat/No-Such-Repo"),
]


def without_private_words(text: str) -> list[str]:
    return [word for word in PRIVATE_WORDS if word in text.lower()]


def asked(path: str) -> str:
    """The name an address asks about."""
    return re.search(r"(?:repo|org|scope)=(?:repo:)?([^&]+)", path).group(1)  # type: ignore[union-attr]


@pytest.mark.parametrize("path", SHOWN_ROUTES + [pair[0] for pair in PRIVATE_ROUTES])
def test_private_data_never_appears(site, path):
    response = site.get(path, headers={"Accept-Language": "en"})
    body = response.text
    if path in dict(PRIVATE_ROUTES):
        twin = dict(PRIVATE_ROUTES)[path]
        other = site.get(twin, headers={"Accept-Language": "en"})
        assert response.status_code == other.status_code and response.status_code in (302, 404)
        assert body.replace(asked(path), "NAME") == other.text.replace(asked(twin), "NAME")
        assert response.headers.get("Location", "").replace(asked(path), "NAME") == other.headers.get(
            "Location", ""
        ).replace(asked(twin), "NAME")
        body = body.replace(asked(path), "")
        if response.status_code == 302:
            return  # the redirect leads to the first route of the list, checked there
    else:
        assert response.status_code == 200, (path, body[:300])
    assert without_private_words(body) == [], path


def test_mei_shows_only_her_public_work_everywhere(site):
    """She also commented in the private repository: no count anywhere may include it."""
    for path in ("/api/leaderboard?org=Codertocat&window=all", f"/api/leaderboard?repo={PUBLIC.full_name}&window=all"):
        [mei] = [e for e in api(site, path)["entries"] if e["login"] == "mei"]
        assert mei["counts"]["comments"] == 3, path  # two recent, one 40 days ago; none of the private one


# --- languages


def internal_links(document: Node) -> list[str]:
    hrefs = [a.attrs.get("href", "") for a in document.all("a")]
    return [h for h in hrefs if h.startswith("/") and not h.startswith("/static/")]


def test_chinese_by_query_kept_in_every_link(site):
    document = page(site, f"/leaderboard?repo={PUBLIC.full_name}&lang=zh")
    assert document.one("html").attrs["lang"] == "zh-CN"
    text = document.text()
    assert "排行榜" in text and "贡献者" in text and "积分" in text and "新人" in text
    headers = [th.text() for th in document.all("th")]
    assert "评审" in headers and "已合并" in headers
    formula = document.one(data_formula=None).text()
    assert formula.startswith("积分 = 10 × 已合并的 PR + 3 × 评审 + 2 × 提交的 issue + 2 × 评论")
    assert "每天仅前 3 条计分" in text
    links = internal_links(document)
    assert links and all("lang=zh" in href for href in links if "lang=en" not in href)
    assert [a.attrs["href"] for a in document.all("a", data_lang="en")] == [
        f"/leaderboard?repo={PUBLIC.full_name}&lang=en"
    ]
    assert document.one("input", name="lang").attrs["value"] == "zh"


def test_chinese_by_accept_language(site):
    headers = {"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"}
    document = page(site, f"/insights?repo={PUBLIC.full_name}", headers=headers)
    assert document.one("html").attrs["lang"] == "zh-CN"
    titles = [h2.text() for h2 in document.all("h2")]
    assert "活跃贡献者" in titles and "PR 接受率" in titles
    words = {dd.text().split("(")[0].split()[-1] for dd in document.all("dd", data_stat="direction")}
    assert words <= {"上升", "下降", "平稳"}
    assert "虚线" in document.one("aside", **{"class": "legend"}).text()
    assert not [href for href in internal_links(document) if "lang=" in href and "lang=en" not in href]
    english = page(site, f"/insights?repo={PUBLIC.full_name}&lang=en", headers=headers)
    assert english.one("html").attrs["lang"] == "en" and "Active contributors" in english.text()
    assert page(site, "/", headers={"Accept-Language": "fr"}).one("html").attrs["lang"] == "en"


def test_every_page_has_the_language_toggle(site):
    for path in ("/", f"/leaderboard?repo={REPO}", f"/insights?repo={REPO}", "/good-first-issues", "/leaderboard"):
        for lang, other in (("en", "zh"), ("zh", "en")):
            document = page(site, f"{path}{'&' if '?' in path else '?'}lang={lang}")
            [toggle] = document.all("a", data_lang=other)
            assert f"lang={other}" in toggle.attrs["href"]


# --- errors, headers, no outside resources


@pytest.mark.parametrize(
    "path, status",
    [
        (f"/leaderboard?repo={REPO}&window=2d", 400),
        (f"/leaderboard.csv?repo={REPO}&window=2d", 400),
        (f"/api/leaderboard?repo={REPO}&window=2d", 400),
        (f"/api/leaderboard?repo={REPO}&limit=many", 400),
        (f"/insights?repo={REPO}&weeks=0", 400),
        (f"/insights?repo={REPO}&weeks=157", 400),
        (f"/insights?repo={REPO}&weeks=twelve", 400),
        (f"/api/insights?repo={REPO}&weeks=-1", 400),
        ("/leaderboard?repo=nobody/nothing", 404),
        ("/leaderboard?org=nobody-at-all", 404),
        ("/api/leaderboard?repo=nobody/nothing", 404),
        ("/leaderboard.csv?repo=nobody/nothing", 404),
        ("/insights?repo=nobody/nothing", 404),
        ("/api/insights?repo=nobody/nothing", 404),
        ("/good-first-issues?repo=nobody/nothing", 404),
        # Names GitHub cannot have, such as a NUL byte (which PostgreSQL refuses in text): not here.
        ("/leaderboard?org=Codertocat%00", 404),
        (f"/leaderboard?repo={REPO}%00&window=all", 404),
        ("/leaderboard?scope=org:Codertocat%00", 404),
        ("/api/leaderboard?org=Codertocat%00", 404),
        (f"/api/leaderboard?repo={REPO}%00", 404),
        ("/leaderboard.csv?org=Codertocat%00", 404),
        (f"/insights?repo={REPO}%00", 404),
        ("/api/insights?repo=Codertocat%00/Hello-World", 404),
        (f"/good-first-issues?repo={REPO}%00", 404),
        ("/leaderboard?org=-Codertocat", 404),
        (f"/api/leaderboard?repo={REPO}/extra", 404),
        (f"/api/leaderboard?org={'a' * 40}", 404),
    ],
)
def test_bad_requests_and_unknown_names(site, path, status):
    response = site.get(path)
    assert response.status_code == status
    if path.startswith("/api/") or ".csv" in path:
        assert set(response.json()) == {"error"}
        if status == 404:
            assert response.json()["error"] == "not found: no public repository or owner by that name"
    else:
        document = parse(response.text)
        assert document.one("p", **{"class": "error-code"}).text() == str(status)


def test_pages_load_nothing_from_elsewhere_and_say_so(site):
    for path in ("/", f"/leaderboard?repo={REPO}", f"/insights?repo={REPO}", "/good-first-issues"):
        response = site.get(path)
        policy = response.headers["Content-Security-Policy"]
        assert "default-src 'none'" in policy and "style-src 'self' 'unsafe-inline'" in policy
        assert "img-src 'self' data:" in policy and "script-src" not in policy
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        document = parse(response.text)
        assert not document.all("script")
        loaded = [n.attrs.get("src") or n.attrs.get("href") for n in document.all("link") + document.all("img")]
        assert loaded and all(url.startswith(("/static/", "/badges/")) for url in loaded), loaded
        assert document.one("meta", name="viewport").attrs["content"] == "width=device-width, initial-scale=1"
    css = site.get("/static/engage.css")
    assert css.status_code == 200 and css.headers["Content-Type"].startswith("text/css")
    assert "prefers-color-scheme: dark" in css.text and "@import" not in css.text and "url(" not in css.text
