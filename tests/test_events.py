"""Events (talks, hackathons, sprints): their section of `.github/engage.yml`, checked and bounded; their pages
and leaderboard from real deliveries against a hand computation; newcomers; the digest's line; private
repositories; Chinese; escaping.

The community: Codertocat/Hello-World's own file defines `hack` (label `Hackathon`, a hostile name), `sprint`
(no label, the same window), a past and an upcoming event, all in Asia/Shanghai; the organisation's
`.github` file defines `org-week` over Hello-World, Docs and the private Secret-Plans; Secret-Plans' own file
defines `secret-sprint`.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from domain import contributions as kinds
from domain.contributions import Contribution
from engagement import events as events_behaviour
from engagement.common.config import parse
from engagement.registry import BEHAVIOURS
from readmodels import digest as digest_content
from readmodels import events as event_data
from storage.events import EventDefinition, EventStore
from storage.ledger import LedgerStore
from tests.conftest import INSTALLATION_ID, REPO, LiveServer, database_url_for, example, pushed, services, wait_for
from tests.test_pages import (
    DOCS,
    PRIVATE,
    PUBLIC,
    Place,
    Site,
    create_test_app,
    github_time,
    located,
    merged_pull,
    page,
    person,
    review,
)

CONFIGURABLE = [module for module in BEHAVIOURS if hasattr(module, "DEFAULTS")]
ZONE = ZoneInfo("Asia/Shanghai")
HOSTILE = '<script>alert("x")</script> Hack & <b>fun</b>'
ORG_FILE_REPO = "Codertocat/.github"


# --- the section, parsed (pure)


def events_of(text: str) -> tuple[dict[str, Any], list[str]]:
    loaded = parse(text, CONFIGURABLE)
    return loaded.sections["events"], [str(problem) for problem in loaded.problems]


def test_a_valid_event_reads_as_utc_times_from_its_time_zone():
    section, problems = events_of(
        "events:\n"
        "  hackathon-2027:\n"
        "    name: Spring hackathon\n"
        "    start: 2027-03-01 09:00\n"
        "    end: 2027-03-03\n"
        "    timezone: Asia/Shanghai\n"
        "    repositories: [engage, Codertocat/docs]\n"
        "    label: Hackathon-2027\n"
        "  talk:\n"
        "    name: A talk\n"
        "    start: 2027-03-05T10:00:00+01:00\n"
        "    end: '2027-03-05 12:00'\n"
    )
    assert problems == []
    assert section["hackathon-2027"] == {
        "name": "Spring hackathon",
        "start": "2027-03-01T01:00:00",  # 09:00 in Shanghai
        "end": "2027-03-03T16:00:00",  # a date alone: the whole day, to midnight in Shanghai
        "timezone": "Asia/Shanghai",
        "label": "hackathon-2027",  # GitHub's labels ignore case
        "repositories": ["engage", "Codertocat/docs"],
    }
    assert section["talk"]["start"] == "2027-03-05T09:00:00", "a time with its own offset keeps it"
    assert section["talk"]["end"] == "2027-03-05T12:00:00" and section["talk"]["timezone"] == "UTC"


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        pytest.param(
            "  x:\n    name: Sprint\n    start: 2027-01-01\n    end: 2027-06-01\n",
            "line 5: events.x.end: an event lasts at most 90 days",
            id="longer-than-90-days",
        ),
        pytest.param(
            "  x:\n    name: Sprint\n    start: 2027-01-02\n    end: 2027-01-01\n",
            "line 5: events.x.end: must be after start",
            id="ends-before-it-starts",
        ),
        pytest.param(
            "  x:\n    name: Sprint\n    start: 2027-01-01\n    end: 2027-01-02\n    timezone: Mars/Olympus\n",
            "line 6: events.x.timezone: must be a time zone name, e.g. Asia/Shanghai or Europe/Berlin",
            id="unknown-time-zone",
        ),
        pytest.param(
            "  x:\n    name: Sprint\n    start: 2027-01-01\n    end: 2027-01-02\n    timezone: ../../etc/passwd\n",
            "line 6: events.x.timezone: must be a time zone name, e.g. Asia/Shanghai or Europe/Berlin",
            id="time-zone-as-a-path",
        ),
        pytest.param(
            f"  x:\n    name: {'n' * 101}\n    start: 2027-01-01\n    end: 2027-01-02\n",
            "line 3: events.x.name: must be text of 1 to 100 characters",
            id="name-too-long",
        ),
        pytest.param(
            "  x:\n    start: 2027-01-01\n    end: 2027-01-02\n",
            "line 2: events.x.name: is required",
            id="no-name",
        ),
        pytest.param(
            "  x:\n    name: Sprint\n    start: tomorrow\n    end: 2027-01-02\n",
            "line 4: events.x.start: must be a date and time, e.g. 2027-03-01 09:00 (in the event's timezone), "
            "or a date",
            id="start-not-a-time",
        ),
        pytest.param(
            "  x:\n    name: Sprint\n    start: 9999-01-01\n    end: 2027-01-02\n",
            "line 4: events.x.start: must fall between 2000 and 2100",
            id="year-out-of-range",
        ),
        pytest.param(
            f"  x:\n    name: Sprint\n    start: 2027-01-01\n    end: 2027-01-02\n    label: {'l' * 51}\n",
            "line 6: events.x.label: must be a label's name, 1 to 50 characters",
            id="label-too-long",
        ),
        pytest.param(
            "  x:\n    name: Sprint\n    start: 2027-01-01\n    end: 2027-01-02\n    repositories: [../../x y]\n",
            "line 6: events.x.repositories: must be a list of repository names, e.g. [engage, docs]",
            id="repository-not-a-name",
        ),
        pytest.param(
            "  x:\n    name: Sprint\n    start: 2027-01-01\n    end: 2027-01-02\n    colour: red\n",
            "line 6: events.x.colour: unknown setting (known: name, start, end, timezone, repositories, label)",
            id="unknown-setting",
        ),
        pytest.param(
            "  Not A Slug!:\n    name: Sprint\n    start: 2027-01-01\n    end: 2027-01-02\n",
            "line 2: events.Not A Slug!: an event's slug is 1-50 lower-case letters, digits and hyphens, "
            "e.g. hackathon-2027",
            id="bad-slug",
        ),
        pytest.param(
            "  x: [1, 2]\n",
            "line 2: events.x: must be a mapping with name, start, end (and timezone, repositories, label)",
            id="event-not-a-mapping",
        ),
    ],
)
def test_a_wrong_event_is_named_by_line_and_key_and_left_out(spec, problem):
    section, problems = events_of(f"events:\n{spec}")
    assert problems == [problem]
    assert section == {}


def test_a_broken_events_section_leaves_the_rest_of_the_file_alone():
    loaded = parse("greeting:\n  enabled: false\nevents: [a, b]\nleaderboard:\n  daily_comment_cap: 2\n", CONFIGURABLE)
    assert [str(p) for p in loaded.problems] == [
        "line 3: events: must be a mapping of events by slug, e.g.\n" + events_behaviour.EXAMPLE
    ]
    assert loaded.sections["events"] == {}
    assert loaded.sections["greeting"]["enabled"] is False and loaded.sections["leaderboard"]["daily_comment_cap"] == 2
    # One wrong event among good ones: the good ones stand.
    section, problems = events_of(
        "events:\n  good:\n    name: G\n    start: 2027-01-01\n    end: 2027-01-02\n  bad:\n    name: B\n"
    )
    assert list(section) == ["good"] and len(problems) == 2  # bad: no start, no end


def test_the_number_of_events_is_bounded():
    spec = "".join(f"  e{n}:\n    name: E\n    start: 2027-01-01\n    end: 2027-01-02\n" for n in range(25))
    section, problems = events_of(f"events:\n{spec}")
    assert len(section) == events_behaviour.MAX_EVENTS
    assert problems == ["line 82: events: at most 20 events; the others are left out"]


def test_hostile_yaml_costs_no_more_than_the_file():
    """Aliases are refused by the loader before the section is read (a "billion laughs" file)."""
    text = "x: &a [1, 1]\nevents:\n  e:\n    name: *a\n"
    loaded = parse(text, CONFIGURABLE)
    assert loaded.sections["events"] == {} and "aliases" in str(loaded.problems[0])


# --- the community, from real deliveries


def local(at: datetime) -> str:
    """A naive UTC time as Shanghai's wall clock, as a maintainer writes it in the file."""
    return at.replace(tzinfo=UTC).astimezone(ZONE).strftime("%Y-%m-%d %H:%M")


def event_yaml(slug: str, name: str, start: datetime, end: datetime, extra: str = "") -> str:
    return (
        f"  {slug}:\n    name: '{name}'\n    start: {local(start)}\n    end: {local(end)}\n"
        f"    timezone: Asia/Shanghai\n{extra}"
    )


def public_file(now: datetime, with_upcoming: bool = True) -> str:
    start, end = now - timedelta(days=3), now + timedelta(days=1)
    text = (
        "leaderboard:\n  daily_comment_cap: 3\n  points:\n    comment: 2\nevents:\n"
        + event_yaml("hack", HOSTILE, start, end, "    label: Hackathon\n")
        + event_yaml("sprint", "Open sprint", start, end)
        + event_yaml("old-talk", "Old talk", now - timedelta(days=30), now - timedelta(days=29))
    )
    if with_upcoming:
        text += event_yaml("next-sprint", "Next sprint", now + timedelta(days=10), now + timedelta(days=12))
    return text


HACKATHON = {"id": 1362934389, "node_id": "x", "url": "https://api.github.com/x", "name": "Hackathon",
             "color": "f29513", "default": False, "description": None}  # fmt: skip


def opened(place: Place, number: int, login: str, user_id: int, at: datetime, labels: list[Any]) -> dict[str, Any]:
    payload = located(example("issues.opened.1"), place)
    payload["issue"].update(number=number, created_at=github_time(at), author_association="NONE", labels=labels)
    payload["issue"]["user"] = person(login, user_id)
    payload["sender"] = person(login, user_id)
    return payload


def commented(
    place: Place, number: int, login: str, user_id: int, comment_id: int, at: datetime, labels: list[Any]
) -> dict[str, Any]:
    payload = located(example("issue_comment.created.1"), place)
    payload["issue"].update(number=number, labels=labels)
    payload["comment"].update(id=comment_id, body="On it", created_at=github_time(at), user=person(login, user_id))
    payload["sender"] = person(login, user_id)
    return payload


def merged(place: Place, number: int, login: str, user_id: int, at: datetime, labels: list[Any]) -> dict[str, Any]:
    payload = merged_pull(place, number, login, user_id, at)
    payload["pull_request"]["labels"] = labels
    return payload


def unlabelled(place: Place, number: int) -> dict[str, Any]:
    payload = located(example("issues.unlabeled.1"), place)
    payload["label"] = HACKATHON
    payload["issue"].update(number=number, labels=[])
    payload["sender"] = person("octo-maintainer", 400)
    return payload


def deliver_all(site: Site, deliveries: list[tuple[str, dict[str, Any]]]) -> None:
    store = services(site.server.app).store
    ids = []
    for event, payload in deliveries:
        delivery_id = f"events-{len(site.deliveries)}"
        assert site.server.deliver(event, payload, delivery_id=delivery_id).status_code == 202
        site.deliveries.append(delivery_id)
        ids.append(delivery_id)

    def all_done() -> bool:
        services(site.server.app).dispatcher.wait_idle()
        return all((found := store.get(d)) is not None and found.status == "done" for d in ids)

    wait_for(all_done, message="every delivery processed")


@pytest.fixture(scope="module")
def site(fake_github_server: Any, app_key: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    fake = fake_github_server
    fake.reset()
    for place in (PUBLIC, DOCS, PRIVATE):
        fake.add_repo(place.full_name, private=place.private, default_branch="master", repo_id=place.id)
    fake.add_repo(ORG_FILE_REPO, default_branch="main")
    names = [PUBLIC.full_name, DOCS.full_name, PRIVATE.full_name, ORG_FILE_REPO]
    fake.add_installation(INSTALLATION_ID, "Codertocat", names)
    now = datetime.now(UTC).replace(tzinfo=None, second=0, microsecond=0)
    start, end = now - timedelta(days=3), now + timedelta(days=1)
    fake.set_file(PUBLIC.full_name, ".github/engage.yml", public_file(now))
    org_events = event_yaml("org-week", "Org week", start, end, "    repositories: [Hello-World, Secret-Plans, Docs]\n")
    fake.set_file(ORG_FILE_REPO, ".github/engage.yml", "events:\n" + org_events)
    fake.set_file(PRIVATE.full_name, ".github/engage.yml", "events:\n" + event_yaml("secret-sprint", "Zz", start, end))
    for place, number, author in ((PUBLIC, 5, "ana"), (PUBLIC, 6, "eve"), (PRIVATE, 1, "zz-secret-agent")):
        fake.add_issue(place.full_name, number, author)
    fake.add_issue(PUBLIC.full_name, 7, "cy", pull_request=True)
    app = create_test_app(fake, app_key, database_url_for(tmp_path_factory.mktemp("events")))
    built = Site(LiveServer(app), now)
    day = timedelta(days=1)
    deliver_all(
        built,
        [
            ("issue_comment", commented(PUBLIC, 5, "cy", 603, 9001, now - 5 * day, [])),  # before any event
            ("issues", opened(PUBLIC, 5, "ana", 601, now - 2 * day, [HACKATHON])),
            ("issue_comment", commented(PUBLIC, 5, "ana", 601, 9002, now - day, [HACKATHON])),
            ("issue_comment", commented(PUBLIC, 5, "bo", 602, 9003, now - day, [HACKATHON])),
            ("issue_comment", commented(PUBLIC, 5, "bo", 602, 9004, now - day, [HACKATHON])),
            ("issue_comment", commented(PUBLIC, 6, "bo", 602, 9005, now - day, [])),
            ("issue_comment", commented(PUBLIC, 5, "dee", 604, 9006, now - 4 * day, [HACKATHON])),  # too early
            ("issues", opened(PUBLIC, 6, "eve", 605, now - day, [])),
            ("pull_request", merged(PUBLIC, 7, "cy", 603, now - 2 * day, [HACKATHON])),
            ("pull_request_review", review(DOCS, "sam", 502, 8001, now - day)),  # Docs reads the org's file
            ("issue_comment", commented(PRIVATE, 1, "zz-secret-agent", 606, 9007, now - day, [])),
            ("issue_comment", commented(PUBLIC, 5, "bo", 602, 9003, now - day, [HACKATHON])),  # redelivered
        ],
    )
    fake.assert_no_violations()
    yield built
    built.server.close()
    services(app).close()
    fake.reset()


def board_of(site: Site, slug: str, **kwargs: Any) -> dict[str, Any]:
    response = site.get(f"/api/events/{slug}", **kwargs)
    assert response.status_code == 200, response.text[:300]
    found: dict[str, Any] = response.json()
    return found


def ranks(board: dict[str, Any]) -> list[tuple[int, str, int, bool]]:
    return [(e["rank"], e["login"], e["points"], e["newcomer"]) for e in board["entries"]]


def test_a_labelled_event_counts_only_its_window_and_its_label(site):
    """By hand, with the repository's formula (comment 2, issue 2, merged 10): cy's merged #7 (10); ana's
    issue #5 and comment on it (2 + 2); bo's two comments on #5 (2 + 2; the redelivery counts once, and
    #6 has no label); dee's comment came before the window, eve's issue has no label."""
    board = board_of(site, "hack")
    assert ranks(board) == [(1, "cy", 10, False), (2, "ana", 4, True), (2, "bo", 4, True)]
    assert board["participants"] == 3 and board["newcomers"] == 2, "cy contributed before the event"
    assert board["formula"]["points"]["comment"] == 2, "the repository's own formula"
    assert board["event"]["label"] == "hackathon"


def test_an_event_without_a_label_counts_everything_in_its_window(site):
    board = board_of(site, "sprint")
    # bo: three comments (#5 twice, #6), all under the cap of 3 a day; eve: her issue.
    assert ranks(board) == [(1, "cy", 10, False), (2, "bo", 6, True), (3, "ana", 4, True), (4, "eve", 2, True)]
    document = page(site, "/events/sprint")
    rows = {row.attrs["data-login"]: row for row in document.all("tr", data_login=None)}
    assert list(rows) == ["cy", "bo", "ana", "eve"]
    assert rows["bo"].one("td", data_col="comments").text() == "3"
    assert rows["bo"].one("td", data_col="points").text() == "6"


def test_the_window_includes_its_start_and_excludes_its_end(site):
    """sam's review in Docs was at exactly now - 1 day: an event starting then counts it, one ending then does
    not; and the past event saw nothing of this week."""
    at = site.now - timedelta(days=1)
    store = EventStore(site.engine)
    starts = EventDefinition("edge-start", "Edge", at, at + timedelta(hours=1), "UTC", None, ("Docs",))
    ends = EventDefinition("edge-end", "Edge", at - timedelta(hours=1), at, "UTC", None, ("Docs",))
    store.replace("repo:999", "Codertocat", [starts, ends])
    assert [e["login"] for e in board_of(site, "edge-start")["entries"]] == ["sam"]
    assert board_of(site, "edge-end")["entries"] == []
    assert board_of(site, "old-talk")["entries"] == []
    store.replace("repo:999", "Codertocat", [])
    assert site.get("/events/edge-start").status_code == 404, "gone from the file, gone from the pages"


def test_the_people_page_names_participants_and_newcomers(site):
    document = page(site, "/events/hack/people")
    newcomers = document.one("table", data_kind="newcomers")
    assert [row.attrs["data-login"] for row in newcomers.all("tr", data_login=None)] == ["ana", "bo"]
    participants = document.one("table", data_kind="participants")
    # By their first contribution in the event: cy and ana two days ago (cy's merge first by login), bo yesterday.
    assert [row.attrs["data-login"] for row in participants.all("tr", data_login=None)] == ["ana", "cy", "bo"]
    first = participants.one("tr", data_login="bo").all("td")[1].text()
    assert first == local(site.now - timedelta(days=1)), "times in the event's time zone"


def test_the_index_lists_running_upcoming_and_past_events_in_their_time_zone(site):
    document = page(site, "/events")
    groups = {
        section.attrs["data-status"]: [li.attrs["data-slug"] for li in section.all("li", data_slug=None)]
        for section in document.all("section", data_status=None)
    }
    assert groups == {"running": ["hack", "org-week", "sprint"], "upcoming": ["next-sprint"], "past": ["old-talk"]}
    item = document.one("li", data_slug="sprint").text()
    start, end = local(site.now - timedelta(days=3)), local(site.now + timedelta(days=1))
    assert f"{start} to {end} (Asia/Shanghai)" in item
    assert document.one("nav").one("a", aria_current="page").text() == "Events"


def test_a_private_repository_stays_out_for_anonymous_visitors(site):
    assert site.get("/events/secret-sprint").status_code == 404
    assert site.get("/api/events/secret-sprint").status_code == 404
    assert site.get("/events/no-such-event").status_code == 404
    assert site.get("/events/Bad%20Slug").status_code == 404
    for path in ("/events", "/events/org-week", "/events/org-week/people", "/api/events/org-week"):
        text = site.get(path).text.lower()
        assert "secret" not in text and "zz-" not in text, path
    org_week = board_of(site, "org-week")
    # The organisation's formula (its file has no leaderboard section: the defaults, a comment is 1 point).
    assert ranks(org_week) == [
        (1, "cy", 10, False),
        (2, "ana", 3, True),
        (2, "bo", 3, True),
        (2, "sam", 3, True),
        (5, "eve", 2, True),
    ]
    assert org_week["event"]["repositories"] == [DOCS.full_name, PUBLIC.full_name]
    # A viewer who may read Secret-Plans (web.signin's `readable`) sees its contributions and its event.
    readable = frozenset({PRIVATE.id})
    with_private = event_data.board(site.engine, "org-week", readable)
    assert "zz-secret-agent" in [e["login"] for e in with_private["entries"]]
    assert [e["login"] for e in event_data.board(site.engine, "secret-sprint", readable)["entries"]] == [
        "zz-secret-agent"
    ]


def test_the_chinese_page_and_escaping(site):
    response = site.get("/events/hack?lang=zh")
    assert response.status_code == 200
    text = response.text
    assert 'lang="zh-CN"' in text and "参与者" in text and "正在进行" in text
    start, end = local(site.now - timedelta(days=3)), local(site.now + timedelta(days=1))
    assert f"{start} 至 {end}（Asia/Shanghai）" in text
    assert "<script>alert" not in text
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; Hack &amp; &lt;b&gt;fun" in text
    assert "<b>fun" not in site.get("/events").text
    assert page(site, "/events?lang=zh").one("h1").text() == "活动"


def test_the_digest_has_a_line_per_running_event_and_none_after(site):
    now = site.now
    during = digest_content.build(site.engine, repo=REPO, today=now.date(), at=now)
    assert [(e.slug, e.participants, e.newcomers) for e in during.events] == [
        ("hack", 3, 2),
        ("org-week", 5, 4),  # public repositories only: sam's review in Docs was his first
        ("sprint", 4, 3),
    ]
    text = digest_content.render(during, "en")
    end = local(now + timedelta(days=1))
    assert "### Events running now" in text
    assert f"- ` Open sprint `: until {end} (Asia/Shanghai), 4 participants so far, 3 of them newcomers" in text
    assert '- ` <script>alert("x")</script> Hack & <b>fun</b> `: until' in text, "inert: a code span"
    assert "正在进行的活动" in digest_content.render(during, "zh")
    after = now + timedelta(days=2)
    assert digest_content.build(site.engine, repo=REPO, today=after.date(), at=after).events == ()
    assert "Events running now" not in digest_content.render(
        digest_content.build(site.engine, repo=REPO, today=after.date(), at=after), "en"
    )


def test_an_unlabelled_item_leaves_the_event_and_a_push_updates_the_events(site, fake_github_server):
    """Last: changes the community. Removing the label from #5 takes ana's and bo's work out of `hack`; a
    push that changes the file (here: dropping `next-sprint`) is read at once."""
    deliver_all(site, [("issues", unlabelled(PUBLIC, 5))])
    assert ranks(board_of(site, "hack")) == [(1, "cy", 10, False)]
    fake_github_server.set_file(PUBLIC.full_name, ".github/engage.yml", public_file(site.now, with_upcoming=False))
    deliver_all(site, [("push", pushed([".github/engage.yml"]))])
    assert site.get("/events/next-sprint").status_code == 404
    assert "next-sprint" not in site.get("/events").text


def test_an_event_page_over_a_thousand_contributions(site):
    """The page's time with 1,000 contributions in the window, half of them on labelled items (the figure
    printed: `pytest tests/test_events.py -k thousand -s`)."""
    now = site.now
    store = EventStore(site.engine)
    bench = EventDefinition("bench", "Bench", now - timedelta(days=30), now + timedelta(days=1), "UTC", "bench", ())
    store.replace(f"repo:{DOCS.id}", "Codertocat", [bench])
    for number in range(1, 51, 2):
        store.note_labels(DOCS.id, "Codertocat", number, ["Bench"])
    items = [
        Contribution(
            f"bench:{n}",
            kinds.COMMENT if n % 3 else kinds.ISSUE_OPENED,
            DOCS.repo,
            20_000 + n % 100,
            f"bench-{n % 100:03d}",
            now - timedelta(days=n % 29, minutes=n),
            n % 50 + 1,
            f"https://github.com/{DOCS.full_name}/issues/{n % 50 + 1}",
        )
        for n in range(1000)
    ]
    LedgerStore(site.engine).record(items)
    timings = []
    for _ in range(5):
        began = time.perf_counter()
        response = site.get("/events/bench")
        timings.append(time.perf_counter() - began)
        assert response.status_code == 200
    reference = []
    for _ in range(5):  # the repository's own leaderboard page, for comparison
        began = time.perf_counter()
        assert site.get(f"/leaderboard?repo={DOCS.full_name}").status_code == 200
        reference.append(time.perf_counter() - began)
    began = time.perf_counter()
    event_data.board(site.engine, "bench")
    alone = time.perf_counter() - began
    board = board_of(site, "bench")
    assert board["participants"] == 50, "only the odd-numbered (labelled) items: the even people's"
    median = statistics.median(timings) * 1000
    print(
        f"\n/events/bench over 1,000 contributions: page median {median:.1f} ms, read model {alone * 1000:.1f} ms"
        f" (the repository's leaderboard page: {statistics.median(reference) * 1000:.1f} ms)"
    )
    assert statistics.median(timings) < 2.0


def test_a_label_is_kept_from_the_moment_its_event_is_defined(tmp_path):
    """Every comment asks which labels the owner's events use, so the answer is kept for a while; defining a
    labelled event in this process is seen at once, and another process sees it once its copy is due."""
    from storage import db
    from storage.db import event_items

    engine = db.make_engine(f"sqlite:///{tmp_path / 'labels.sqlite3'}")
    db.migrate(engine)
    here, elsewhere = EventStore(engine), EventStore(engine, recheck_seconds=0)
    at = datetime(2026, 12, 1)
    sprint = EventDefinition("sprint", "Sprint", at, at + timedelta(days=7), "UTC", "sprint", ())

    def held(number: int) -> list[str]:
        with engine.connect() as conn:
            return list(conn.execute(event_items.select().where(event_items.c.number == number)).scalars("label"))

    here.note_labels(7, "Codertocat", 1, ["Sprint"])  # no event uses the label yet: nothing kept
    assert held(1) == []
    here.replace("repo:7", "Codertocat", [sprint])
    here.note_labels(7, "Codertocat", 2, ["Sprint"])
    assert held(2) == ["sprint"], "the label of an event defined a moment ago was not kept"
    elsewhere.note_labels(7, "codertocat", 3, ["SPRINT", "bug"])
    assert held(3) == ["sprint"]
    engine.dispose()
