"""The community forum (Discourse) in the ledger: its webhooks at `/api/discourse/webhooks`, through the
same pipeline as GitHub's, recorded once each however Discourse retries.

Real example deliveries (`tests/contract/discourse/webhooks/`, with their recorded headers and
signatures) are posted over HTTP to the app; edited ones are signed again as Discourse would.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
import sqlalchemy as sa

from domain import contributions as kinds
from domain.contributions import Forum
from engagement.forum import contributions_of
from readmodels.leaderboard import board
from storage.db import contributions, deliveries
from storage.deliveries import DONE, IGNORED
from storage.rollups import org_scope
from tests.conftest import REPO, services, table_count, wait_for
from tests.test_digest_posting import listed
from webhooks.discourse import FORUM_KEY, sign

CONTRACT = Path(__file__).parent / "contract" / "discourse" / "webhooks"
RECORDED = json.loads((CONTRACT / "deliveries.json").read_text())
SECRET, FORUM_URL = RECORDED["secret"], RECORDED["instance"]
HEADERS = {entry["file"]: entry["headers"] for entry in RECORDED["deliveries"]}
ORG = REPO.split("/")[0]
FORUM = Forum(FORUM_URL, ORG, (5,))


def body_of(file: str) -> bytes:
    return (CONTRACT / file).read_bytes()


def payload_of(file: str) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(body_of(file))
    return value


class Forum_:
    """The app behind a real HTTP server, and Discourse sending it deliveries."""

    def __init__(self, server: Any):
        self.server = server
        self.url = server.url + "/api/discourse/webhooks"
        self.next_id = 95000

    def send(
        self, file: str, body: bytes | None = None, event_id: str | None = None, secret: str = SECRET
    ) -> requests.Response:
        """The example as recorded; with `body`, an edited one signed again; `event_id`: a retry's new id."""
        headers = dict(HEADERS[file])
        if body is not None:
            headers["X-Discourse-Event-Signature"] = sign(secret, body)
        elif secret != SECRET:
            headers["X-Discourse-Event-Signature"] = sign(secret, body_of(file))
        if event_id is not None:
            headers["X-Discourse-Event-Id"] = event_id
        return self.server.session.post(self.url, data=body or body_of(file), headers=headers, timeout=30)

    def retry(self, file: str) -> requests.Response:
        self.next_id += 1
        return self.send(file, event_id=str(self.next_id))


def forum_settings(**more: Any) -> dict[str, Any]:
    return dict(
        discourse_url=FORUM_URL,
        discourse_webhook_secret=SECRET,
        discourse_public_categories=(5,),
        community_org=ORG,
        **more,
    )


@pytest.fixture
def forum_app(make_app: Any, serve: Any) -> tuple[Any, Forum_]:
    app = make_app(**forum_settings())
    return app, Forum_(serve(app))


def settled(app: Any, response: requests.Response) -> str:
    """Wait for the embedded worker to finish the delivery; its final status."""
    delivery_id = response.json()["delivery_id"]
    store = services(app).store
    return str(wait_for(lambda: (d := store.get(delivery_id)) and d.status in (DONE, IGNORED) and d.status))


def recorded(app: Any) -> list[tuple[str, str, str]]:
    with services(app).store.engine.connect() as conn:
        rows = conn.execute(sa.select(contributions.c.kind, contributions.c.key, contributions.c.actor_login))
        return sorted((row.kind, row.key, row.actor_login) for row in rows)


EVERYTHING = [
    "topic_created.json",
    "post_created.first_post.json",
    "post_created.reply_to_topic.json",
    "post_created.reply.json",
    "post_edited.json",
    "accepted_solution.json",
    "post_liked.json",
]
ONCE_EACH = [
    (kinds.FORUM_LIKE, "bob"),  # alice liked bob's answer
    (kinds.FORUM_REPLY, "bob"),  # post 8814, replying to the topic
    (kinds.FORUM_REPLY, "alice"),  # post 8817, replying to bob
    (kinds.FORUM_SOLUTION, "bob"),
    (kinds.FORUM_TOPIC, "alice"),  # topic_created and its first post: one topic
]


def test_a_topic_a_reply_a_solution_and_a_like_are_recorded_once_whatever_discourse_retries(
    forum_app: tuple[Any, Forum_],
) -> None:
    app, forum = forum_app
    for file in EVERYTHING:
        response = forum.send(file)
        assert response.status_code == 202, response.text
        assert settled(app, response) == (IGNORED if file == "post_edited.json" else DONE)
    first = recorded(app)
    assert [(kind, login) for kind, _, login in first] == ONCE_EACH
    assert ("forum_reply", "forum_reply:forum.example.org:8817", "alice") in first
    # Discourse's automatic retries carry new event ids: processed again, recorded nothing new.
    for file in EVERYTHING:
        response = forum.retry(file)
        assert response.status_code == 202
        settled(app, response)
    # A manual redelivery keeps its event id: acknowledged, not processed again.
    again = forum.send("post_created.reply.json")
    assert (again.status_code, again.json()["message"]) == (200, "already received")
    assert recorded(app) == first
    assert table_count(app, deliveries) == 2 * len(EVERYTHING)


def test_a_worker_running_a_forum_delivery_twice_records_it_once(forum_app: tuple[Any, Forum_]) -> None:
    app, forum = forum_app
    settled(app, forum.send("accepted_solution.json"))
    stored = services(app).store.get("discourse:" + HEADERS["accepted_solution.json"]["X-Discourse-Event-Id"])
    assert stored is not None
    now = datetime.now(UTC).replace(tzinfo=None)
    assert services(app).stores.ledger.record(contributions_of(stored.event, stored.payload, now)) == 0
    assert [kind for kind, _, _ in recorded(app)] == [kinds.FORUM_SOLUTION]


def test_a_bad_signature_is_refused_and_nothing_is_stored(forum_app: tuple[Any, Forum_]) -> None:
    app, forum = forum_app
    response = forum.send("post_created.reply.json", secret="not-the-forum-secret")
    assert response.status_code == 401
    assert "DISCOURSE_WEBHOOK_SECRET" in response.json()["message"]
    unsigned = dict(HEADERS["post_created.reply.json"])
    del unsigned["X-Discourse-Event-Signature"]
    response = forum.server.session.post(forum.url, data=body_of("post_created.reply.json"), headers=unsigned)
    assert response.status_code == 401
    assert table_count(app, deliveries) == 0


@pytest.mark.parametrize(
    "unset", [{"discourse_url": None}, {"discourse_webhook_secret": None}], ids=["no forum address", "no secret"]
)
def test_the_forum_endpoint_answers_404_until_the_forum_is_configured(
    make_app: Any, serve: Any, unset: dict[str, Any]
) -> None:
    app = make_app(**{**forum_settings(), **unset})
    response = Forum_(serve(app)).send("post_created.reply.json")
    assert response.status_code == 404
    assert table_count(app, deliveries) == 0


def edited(file: str, change: dict[str, Any]) -> bytes:
    payload = payload_of(file)
    key = next(iter(payload))
    payload[key] = {**payload[key], **change}
    return json.dumps(payload).encode()


@pytest.mark.parametrize(
    "change",
    [
        {"topic_archetype": "private_message", "category_id": None},
        {"category_id": 9},  # a category the operator did not mark public
        {"post_type": 4},  # a whisper: staff only
        {"user_id": -1, "username": "system"},
        {"user_id": -2, "username": "discobot"},
    ],
    ids=["private message", "private category", "whisper", "system user", "discobot"],
)
def test_private_posts_and_discourse_accounts_are_never_recorded(
    forum_app: tuple[Any, Forum_], change: dict[str, Any]
) -> None:
    app, forum = forum_app
    response = forum.send("post_created.reply.json", body=edited("post_created.reply.json", change))
    assert response.status_code == 202
    assert settled(app, response) == DONE
    assert recorded(app) == []


def test_forum_points_count_on_the_community_board_only_when_configured(forum_app: tuple[Any, Forum_]) -> None:
    app, forum = forum_app
    listed(app, 1296269, REPO)  # the community's organisation has a public repository
    for file in EVERYTHING:
        settled(app, forum.send(file))
    engine = services(app).store.engine
    today = datetime(2026, 12, 1).date()
    before = board(engine, org=ORG, window="all", today=today)
    assert before["entries"] == [] and "forum" not in before["formula"]["text"]
    assert before["formula"]["points"]["forum_solution"] == 0
    settings = {"points": {"forum_solution": 5, "forum_reply": 1}}
    services(app).stores.ledger.set_scoring([org_scope(ORG)], settings)
    after = board(engine, org=ORG, window="all", today=today)
    assert [(e["login"], e["points"]) for e in after["entries"]] == [("bob", 6), ("alice", 1)]
    assert "5 × forum solutions accepted" in after["formula"]["text"]
    with pytest.raises(LookupError):
        board(engine, repo=f"{ORG}/discourse:forum.example.org", window="all", today=today)


# --- the builders, table-driven

REPLY = payload_of("post_created.reply.json")["post"]
CASES: dict[str, tuple[str, dict[str, Any], tuple[str, str] | None]] = {
    "a topic's first post opens the topic": (
        "post_created",
        payload_of("post_created.first_post.json"),
        (kinds.FORUM_TOPIC, "forum_topic:forum.example.org:1042"),
    ),
    "topic_created opens the same topic": (
        "topic_created",
        payload_of("topic_created.json"),
        (kinds.FORUM_TOPIC, "forum_topic:forum.example.org:1042"),
    ),
    "a reply to the topic": (
        "post_created",
        payload_of("post_created.reply_to_topic.json"),
        (kinds.FORUM_REPLY, "forum_reply:forum.example.org:8814"),
    ),
    "a reply to a post": ("post_created", {"post": REPLY}, (kinds.FORUM_REPLY, "forum_reply:forum.example.org:8817")),
    "an accepted answer": (
        "accepted_solution",
        payload_of("accepted_solution.json"),
        (kinds.FORUM_SOLUTION, "forum_solution:forum.example.org:8814"),
    ),
    "a like received": (
        "post_liked",
        payload_of("post_liked.json"),
        (kinds.FORUM_LIKE, f"forum_like:forum.example.org:8814:{FORUM.person(15)}"),
    ),
    "an edit adds nothing": ("post_edited", payload_of("post_edited.json"), None),
    "a deleted post": ("post_created", {"post": {**REPLY, "deleted_at": "2026-11-30T10:00:00.000Z"}}, None),
    "a hidden post": ("post_created", {"post": {**REPLY, "hidden": True}}, None),
    "a topic in a private message": (
        "topic_created",
        {"topic": {**payload_of("topic_created.json")["topic"], "archetype": "private_message"}},
        None,
    ),
}


@pytest.mark.parametrize("event, payload, expected", list(CASES.values()), ids=list(CASES))
def test_forum_contributions(event: str, payload: dict[str, Any], expected: tuple[str, str] | None) -> None:
    at = datetime(2026, 12, 1, 8, 0)
    found = [item for item in contributions_of(f"discourse:{event}", {**payload, FORUM_KEY: forum_fields()}, at)]
    made = [(item.kind, item.key) for item in found if item is not None]
    assert made == ([expected] if expected else [])
    for item in found:
        if item is not None:
            assert item.actor_id < 0 and item.repo == FORUM.place and item.repo.id < 0
            assert item.occurred_at == (at if item.kind == kinds.FORUM_LIKE else item.occurred_at)


def forum_fields() -> dict[str, Any]:
    return {"url": FORUM_URL, "community_org": ORG, "public_categories": [5]}
