"""The response watch: a newcomer's issue nobody answered gets one nudge, at the right hour, and the
maintainers see the queue on /waiting and /api/waiting."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from engagement import response_watch
from engagement.response_watch import ResponseWatchConfig, deadline, decide
from settings.destinations import destinations
from storage.watched_items import WatchedItem
from tests.conftest import REPO, example, installed, run_rq_worker, services
from tests.support.fake_chat import FakeChat
from tests.test_notify import chat_env

NEWCOMER = "li-newcomer"
OPENED = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)  # a Friday, 10:00 UTC
REPO_ID = 186853002
WATCH = "response_watch:\n  triagers: [mei, '@Codertocat/triage']\n"


def at(text: str, zone: str = "UTC") -> datetime:
    from zoneinfo import ZoneInfo

    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(zone)).astimezone(UTC)


@pytest.mark.parametrize(
    "case, opened, hours, business, zone, expected",
    [
        ("wall time: 48 hours later, weekend or not", "2026-11-27 10:00", 48, False, "UTC", "2026-11-29 10:00"),
        ("working hours: Friday 10:00 + 9 h is Monday 10:00", "2026-11-27 10:00", 9, True, "UTC", "2026-11-30 10:00"),
        ("opened on a Saturday: the clock starts Monday 09:00", "2026-11-28 15:00", 2, True, "UTC", "2026-11-30 11:00"),
        (
            "opened after hours: the clock starts the next morning",
            "2026-11-25 20:00",
            1,
            True,
            "UTC",
            "2026-11-26 10:00",
        ),
        ("48 working hours span a weekend", "2026-11-27 10:00", 48, True, "UTC", "2026-12-04 13:00"),
        (
            "Friday evening in Europe is Saturday in Shanghai: it waits for Shanghai's Monday",
            "2026-11-27 18:30",  # UTC: 02:30 Saturday in Shanghai
            2,
            True,
            "Asia/Shanghai",
            "2026-11-30 03:00",  # Monday 11:00 in Shanghai
        ),
        (
            "a working day in New York ends at 18:00 New York time, not UTC",
            "2026-11-30 21:00",  # 16:00 in New York
            4,
            True,
            "America/New_York",
            "2026-12-01 16:00",  # Tuesday 11:00 in New York
        ),
    ],
)
def test_deadline(case, opened, hours, business, zone, expected):
    assert deadline(at(opened), hours, business, zone) == at(expected), case


def item(**changes) -> WatchedItem:
    base = WatchedItem(
        repo_id=REPO_ID,
        number=7,
        repository=REPO,
        installation_id=9001,
        is_pull=False,
        title="Boot fails",
        html_url=f"https://github.com/{REPO}/issues/7",
        author=NEWCOMER,
        newcomer=True,
        opened_at=OPENED.replace(tzinfo=None),
        state="open",
        labels=(),
        on_hold=False,
        due_at=None,
        escalate_at=None,
        nudged_at=None,
        escalated_at=None,
        responded_at=None,
    )
    return replace(base, **changes)


LATER = (OPENED + timedelta(hours=49)).replace(tzinfo=None)


@pytest.mark.parametrize(
    "case, changes, settings, now, expected",
    [
        ("past 48 h without a response: nudge", {}, {}, LATER, "nudge"),
        ("before 48 h: nothing yet", {}, {}, LATER - timedelta(hours=2), "not due"),
        ("someone responded", {"responded_at": LATER}, {}, LATER, "responded"),
        ("closed", {"state": "closed"}, {}, LATER, "closed"),
        ("waiting on its author", {"labels": ("Waiting on author",)}, {}, LATER, "waiting"),
        ("nudged, no escalation configured", {"nudged_at": LATER}, {}, LATER, "nudged already"),
        (
            "nudged, escalation due",
            {"nudged_at": LATER},
            {"escalate_after_hours": 72},
            LATER + timedelta(days=1),
            "escalate",
        ),
        (
            "escalated already",
            {"nudged_at": LATER, "escalated_at": LATER},
            {"escalate_after_hours": 72},
            LATER + timedelta(days=2),
            "nudged already",
        ),
        ("turned off", {}, {"enabled": False}, LATER, "off"),
    ],
)
def test_decide(case, changes, settings, now, expected):
    plan = decide(item(**changes), replace(ResponseWatchConfig(), **settings), now)
    if expected in ("nudge", "escalate"):
        assert isinstance(plan, response_watch.Plan) and plan.stage == expected, case
        assert plan.intent == f"response_watch:{REPO_ID}:7:{expected}"
    else:
        assert isinstance(plan, str) and expected in plan, case


# --- end to end: webhooks through the app, the pass run as `flask tasks run response_watch` runs it


def opened_issue(number: int = 7, login: str = NEWCOMER, association: str = "NONE") -> dict:
    payload = installed(example("issues.opened.1"))
    stamp = OPENED.strftime("%Y-%m-%dT%H:%M:%SZ")
    payload["issue"].update(
        number=number, title="Boot fails on ARM", created_at=stamp, updated_at=stamp, author_association=association
    )
    payload["issue"]["html_url"] = f"https://github.com/{REPO}/issues/{number}"
    payload["issue"]["user"].update(login=login, id=900000 + number)
    payload["sender"].update(login=login, id=900000 + number)
    return payload


def comment_by(login: str, number: int = 7, hours: int = 3, author: str | None = None) -> dict:
    payload = installed(example("issue_comment.created.1"))
    stamp = (OPENED + timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%SZ")
    payload["issue"].update(number=number, created_at=OPENED.strftime("%Y-%m-%dT%H:%M:%SZ"))
    payload["issue"]["user"].update(login=author or NEWCOMER, id=900000 + number)
    payload["comment"].update(created_at=stamp, updated_at=stamp, id=777000 + 100 * number + hours)  # unique
    commenter = 900000 + number if login == (author or NEWCOMER) else 123456  # the author keeps their id
    payload["comment"]["user"].update(login=login, id=commenter, type="User")
    payload["sender"].update(login=login, id=commenter, type="User")
    return payload


def changed(
    action: str, number: int = 7, labels: tuple[str, ...] = (), state: str = "open", author: str = NEWCOMER
) -> dict:
    payload = opened_issue(number, author)  # as GitHub sends it: the issue's author, in every delivery about it
    payload["action"] = action
    stamp = (OPENED + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    payload["issue"].update(state=state, updated_at=stamp, labels=[{"name": name} for name in labels])
    payload["sender"].update(login="octo-maintainer")
    if action in ("labeled", "unlabeled"):
        payload["label"] = {"name": labels[0] if labels else "x"}
    return payload


def nudges(github, number: int = 7) -> list[str]:
    return [c["body"] for c in github.comments(REPO, number) if "engage:response-watch" in c["body"]]


def run_at(app, when: datetime) -> str:
    """One pass now, as `flask --app app tasks run response_watch` runs it, with the clock at `when`."""
    svc = services(app)
    svc.tasks.clock = lambda: when
    return svc.tasks.run_now("response_watch").result


@pytest.fixture
def server(make_app, serve, redis_url, github):
    github.set_file(REPO, ".github/engage.yml", WATCH)
    return serve(make_app(redis_url=redis_url, behaviours=()))


def deliver(server, *deliveries: tuple[str, dict]) -> None:
    for event, payload in deliveries:
        server.deliver(event, payload)
    run_rq_worker(server.app)


def test_a_newcomers_issue_nobody_answered_gets_one_nudge_mentioning_the_triagers(server, github, make_app):
    github.add_issue(REPO, 7, NEWCOMER)
    deliver(server, ("issues", opened_issue()))
    assert run_at(server.app, OPENED + timedelta(hours=47)) == "ran"
    assert nudges(github) == [], "not before 48 hours"
    run_at(server.app, OPENED + timedelta(hours=49))
    [nudge] = nudges(github)
    assert "@mei @Codertocat/triage" in nudge and NEWCOMER in nudge and "49 hours" in nudge
    assert f"@{NEWCOMER}" not in nudge, "the author is named, not pinged"
    run_at(server.app, OPENED + timedelta(hours=50))
    other_worker = make_app(redis_url=services(server.app).settings.redis_url, behaviours=())
    run_at(other_worker, OPENED + timedelta(hours=51))
    assert len(nudges(github)) == 1, "once per item and stage, across passes and workers"


def test_no_nudge_when_a_maintainer_answered_it_was_closed_or_it_waits_on_its_author(server, github):
    for number in (7, 8, 9, 10):
        github.add_issue(REPO, number, NEWCOMER)
    deliver(
        server,
        # Four newcomers (a person's second issue would not be a newcomer's).
        *(("issues", opened_issue(number, f"newcomer-{number}")) for number in (7, 8, 9, 10)),
        ("issue_comment", comment_by("octo-maintainer", 7, author="newcomer-7")),
        (
            "issue_comment",
            comment_by("newcomer-10", 10, author="newcomer-10"),
        ),  # the author's own comment is no response
        ("issues", changed("closed", 8, state="closed", author="newcomer-8")),
        ("issues", changed("labeled", 9, labels=("waiting on author",), author="newcomer-9")),
    )
    run_at(server.app, OPENED + timedelta(hours=49))
    assert [number for number in (7, 8, 9, 10) if nudges(github, number)] == [10]


def test_an_issue_closed_before_its_opening_was_processed_gets_no_nudge(server, github):
    """Several worker processes can take one item's deliveries out of order: the close, processed first,
    found nothing watched, and the opening then watched an open issue. GitHub, asked before the nudge,
    says it is closed; the waiting page stops listing it."""
    github.add_issue(REPO, 7, NEWCOMER)
    github.close_issue(REPO, 7, by="octo-maintainer")
    deliver(server, ("issues", changed("closed", 7, state="closed")), ("issues", opened_issue()))
    run_at(server.app, OPENED + timedelta(hours=49))
    assert nudges(github) == []
    waiting = server.session.get(f"{server.url}/api/waiting", params={"repo": REPO}, timeout=10).json()["items"]
    assert [entry["number"] for entry in waiting] == []


def test_an_opening_delivered_again_after_the_close_changes_nothing(server, github):
    """GitHub's "Redeliver" sends the opening again under a new delivery id: the item watched already stays as the
    close left it (the older opening does not reopen it), and is watched once."""
    github.add_issue(REPO, 7, NEWCOMER)
    deliver(server, ("issues", opened_issue()))
    github.close_issue(REPO, 7, by="octo-maintainer")
    deliver(server, ("issues", changed("closed", 7, state="closed")), ("issues", opened_issue()))
    run_at(server.app, OPENED + timedelta(hours=49))
    assert nudges(github) == []
    waiting = server.session.get(f"{server.url}/api/waiting", params={"repo": REPO}, timeout=10).json()["items"]
    assert waiting == []


def test_a_members_issue_is_not_watched(server, github):
    github.add_issue(REPO, 7, "Codertocat")
    deliver(server, ("issues", opened_issue(7, "Codertocat", "OWNER")))
    run_at(server.app, OPENED + timedelta(hours=49))
    assert nudges(github) == []


def test_newcomer_max_counts_a_persons_earlier_contributions_up_to_it(make_app, serve, redis_url, github):
    """With newcomer_max 3, someone's first three issues are a newcomer's and the fourth is not: the
    ledger's count goes as far as the setting needs (it stops there for a regular's long history)."""
    github.set_file(REPO, ".github/engage.yml", WATCH + "  newcomer_max: 3\n")
    server = serve(make_app(redis_url=redis_url, behaviours=()))
    issues = []
    for number in (7, 8, 9, 10):
        github.add_issue(REPO, number, "lan-regular")
        payload = opened_issue(number, "lan-regular")
        payload["issue"]["user"]["id"] = payload["sender"]["id"] = 900777  # one person, four issues
        issues.append(("issues", payload))
    deliver(server, *issues)
    run_at(server.app, OPENED + timedelta(hours=49))
    assert [number for number in (7, 8, 9, 10) if nudges(github, number)] == [7, 8, 9]


def test_an_item_counted_before_its_authors_earlier_ones_were_recorded_is_counted_again_before_a_nudge(
    make_app, serve, redis_url, github
):
    """The fourth issue processed first (redelivered, or taken by another worker beside the others): when it
    was opened the ledger held none of its author's earlier issues, so it was watched as a newcomer's. The
    pass counts again before nudging, and the ledger now holds the three earlier ones."""
    github.set_file(REPO, ".github/engage.yml", WATCH + "  newcomer_max: 3\n")
    server = serve(make_app(redis_url=redis_url, behaviours=()))
    issues = {}
    for number in (7, 8, 9, 10):
        github.add_issue(REPO, number, "lan-regular")
        payload = opened_issue(number, "lan-regular")
        payload["issue"]["user"]["id"] = payload["sender"]["id"] = 900777  # one person, four issues
        issues[number] = ("issues", payload)
    deliver(server, issues[10])
    deliver(server, issues[7], issues[8], issues[9])
    run_at(server.app, OPENED + timedelta(hours=49))
    assert [number for number in (7, 8, 9, 10) if nudges(github, number)] == [7, 8, 9]
    waiting = server.session.get(f"{server.url}/api/waiting", params={"repo": REPO}, timeout=10).json()["items"]
    assert {entry["number"]: entry["newcomer"] for entry in waiting}.get(10) in (None, False)


def test_escalation_once_after_the_nudge(make_app, serve, redis_url, github):
    github.set_file(REPO, ".github/engage.yml", WATCH + "  escalate_after_hours: 96\n")
    server = serve(make_app(redis_url=redis_url, behaviours=()))
    github.add_issue(REPO, 7, NEWCOMER)
    deliver(server, ("issues", opened_issue()))
    for hours in (49, 90, 97, 98, 120):
        run_at(server.app, OPENED + timedelta(hours=hours))
    bodies = nudges(github)
    assert len(bodies) == 2 and "still had no response after 97 hours" in bodies[1]


@pytest.fixture
def chat() -> Iterator[FakeChat]:
    with FakeChat() as fake:
        yield fake
        fake.assert_no_violations()


def test_the_chat_destination_gets_the_nudge_instead_of_a_comment(make_app, serve, redis_url, github, chat):
    github.set_file(REPO, ".github/engage.yml", WATCH + "  chat: team\n")
    app = make_app(redis_url=redis_url, behaviours=(), destinations=destinations(chat_env(chat.url)))
    server = serve(app)
    github.add_issue(REPO, 7, NEWCOMER)
    deliver(server, ("issues", opened_issue()))
    run_at(app, OPENED + timedelta(hours=49))
    run_at(app, OPENED + timedelta(hours=50))
    [text] = chat.texts()
    assert f"{REPO}#7" in text and "Boot fails on ARM" in text and NEWCOMER in text
    assert nudges(github) == []


def test_an_unknown_chat_name_falls_back_to_the_comment_and_says_so(server, github, caplog):
    github.set_file(REPO, ".github/engage.yml", WATCH + "  chat: https-evil-example\n")
    github.add_issue(REPO, 7, NEWCOMER)
    deliver(server, ("issues", opened_issue()))
    run_at(server.app, OPENED + timedelta(hours=49))
    assert len(nudges(github)) == 1
    problems = [record.getMessage() for record in caplog.records if "config problem" in record.getMessage()]
    assert any("response_watch.chat: unknown destination https-evil-example" in text for text in problems)


def test_the_waiting_queue_page_and_json(server, github):
    for number in (7, 8):
        github.add_issue(REPO, number, NEWCOMER, title="Boot fails on ARM")
    deliver(
        server,
        ("issues", opened_issue(7)),
        ("issues", opened_issue(8, "newcomer-8")),
        ("issue_comment", comment_by("mei", 8, author="newcomer-8")),
    )
    run_at(server.app, OPENED + timedelta(hours=49))
    answer = server.session.get(f"{server.url}/api/waiting", params={"repo": REPO}, timeout=10)
    assert answer.status_code == 200
    [entry] = answer.json()["items"]
    assert entry["repository"] == REPO and entry["number"] == 7 and entry["title"] == "Boot fails on ARM"
    assert entry["url"] == f"https://github.com/{REPO}/issues/7"
    assert entry["author"] == NEWCOMER and entry["newcomer"] is True
    assert entry["opened_at"] == "2026-11-27T10:00:00Z" and entry["slo"] == "nudged"
    assert server.session.get(f"{server.url}/api/waiting", params={"org": "Codertocat"}, timeout=10).json()["items"]
    missing = server.session.get(f"{server.url}/api/waiting", params={"repo": "Codertocat/private-one"}, timeout=10)
    assert missing.status_code == 404
    page = server.session.get(f"{server.url}/waiting", params={"repo": REPO}, timeout=10)
    assert page.status_code == 200 and "Waiting for a first response" in page.text
    assert 'data-number="7"' in page.text and 'data-number="8"' not in page.text and "Boot fails on ARM" in page.text
    zh = server.session.get(f"{server.url}/waiting", params={"repo": REPO, "lang": "zh"}, timeout=10)
    assert "等待首次回应" in zh.text and "已提醒" in zh.text
