"""The community chats in the ledger: Telegram's bot webhook at `/api/telegram/webhook` and Rocket.Chat's
outgoing webhook at `/api/rocketchat/webhook`, through the same pipeline as GitHub's deliveries, each
message recorded once, and never what it said.

The example updates and bodies (`tests/contract/telegram/examples/updates/`,
`tests/contract/rocketchat/examples/outgoing.*`) are posted over HTTP to the app, as recorded or edited
to the case; the Telegram ones are checked against the Bot API's `Update` type first.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
import sqlalchemy as sa

import settings
from domain import contributions as kinds
from domain.contributions import ROCKETCHAT, TELEGRAM, TELEGRAM_HOST, Chat
from engagement.chat import rocketchat_contributions, telegram_contributions
from readmodels.leaderboard import board
from settings.errors import ConfigError
from storage import db
from storage.db import contributions, deliveries
from storage.deliveries import DONE, IGNORED
from storage.rollups import org_scope
from tests.conftest import REPO, services, table_count, wait_for
from tests.support.fake_chat import FakeChat
from tests.test_digest_posting import listed

CONTRACT = Path(__file__).parent / "contract"
UPDATES = CONTRACT / "telegram" / "examples" / "updates"
OUTGOING = CONTRACT / "rocketchat" / "examples"
ORG = REPO.split("/")[0]
SECRET = "s3cr3t-Webhook_token"
BOT_TOKEN = "7123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
CHAT_URL = "https://chat.example.org"
ROCKET_TOKEN = "Xq7HkcMv4TgRzWb2NpYdJf8s"  # the examples' integration token
TELEGRAM_CHAT = Chat(TELEGRAM, TELEGRAM_HOST, ORG, url="https://t.me")
ROCKET_CHAT = Chat(ROCKETCHAT, "chat.example.org", ORG, url=CHAT_URL, channels=("support",))
ALICE, BOB, CAROL = 412345678, 598765432, 6234509871  # the examples' Telegram users


def update(name: str, **change: Any) -> dict[str, Any]:
    """An example update; `change`: fields of its message replaced (None: removed)."""
    value: dict[str, Any] = json.loads((UPDATES / f"{name}.json").read_text())
    field = next(key for key in value if key != "update_id")
    value[field] = {k: v for k, v in {**value[field], **change}.items() if v is not None}
    return value


def outgoing(name: str, **change: Any) -> dict[str, Any]:
    value: dict[str, Any] = json.loads((OUTGOING / f"outgoing.{name}.json").read_text())
    return {k: v for k, v in {**value, **change}.items() if v is not None}


def chat_settings(**more: Any) -> dict[str, Any]:
    return dict(
        telegram_bot_token=BOT_TOKEN,
        telegram_webhook_secret=SECRET,
        rocketchat_url=CHAT_URL,
        rocketchat_webhook_token=ROCKET_TOKEN,
        rocketchat_channels=("support",),
        community_org=ORG,
        **more,
    )


class Chats:
    """The app behind a real HTTP server, and Telegram and Rocket.Chat sending it deliveries."""

    def __init__(self, server: Any):
        self.server = server

    def telegram(self, body: dict[str, Any], secret: str | None = SECRET) -> requests.Response:
        headers = {"Content-Type": "application/json"}
        if secret is not None:
            headers["X-Telegram-Bot-Api-Secret-Token"] = secret
        url = self.server.url + "/api/telegram/webhook"
        return self.server.session.post(url, data=json.dumps(body), headers=headers, timeout=30)

    def rocketchat(self, body: dict[str, Any]) -> requests.Response:
        url = self.server.url + "/api/rocketchat/webhook"
        return self.server.session.post(url, json=body, timeout=30)


@pytest.fixture
def chat_app(make_app: Any, serve: Any) -> tuple[Any, Chats]:
    app = make_app(**chat_settings())
    return app, Chats(serve(app))


def settled(app: Any, response: requests.Response) -> str:
    """Wait for the embedded worker to finish the delivery; its final status."""
    assert response.status_code in (200, 202), response.text
    delivery_id = response.json()["delivery_id"]
    store = services(app).store
    return str(wait_for(lambda: (d := store.get(delivery_id)) and d.status in (DONE, IGNORED) and d.status))


def recorded(app: Any) -> list[tuple[str, str, str, int | None]]:
    """(kind, key, name, whom a reply answers) of every contribution."""
    c = contributions.c
    with services(app).store.engine.connect() as conn:
        rows = conn.execute(sa.select(c.kind, c.key, c.actor_login, c.subject_author_id))
        return sorted((r.kind, r.key, r.actor_login, r.subject_author_id) for r in rows)


def stored_payloads(app: Any) -> list[str]:
    with services(app).store.engine.connect() as conn:
        return [str(text) for text in conn.execute(sa.select(deliveries.c.payload)).scalars()]


TELEGRAM_SENT = [
    "message.group_text",
    "message.reply",
    "message.forum_topic",
    "message.new_chat_members",
    "message.left_chat_member",
    "message.from_bot",
    "edited_message",
    "channel_post",
]
TELEGRAM_ONCE_EACH = [
    (kinds.CHAT_MEMBER_JOINED, f"chat_member_joined:telegram:-1001987654321:{CAROL}", "Carol", None),
    (kinds.CHAT_MESSAGE, "chat_message:telegram:-1001987654321:4812", "alice_ng", None),
    (kinds.CHAT_MESSAGE, "chat_message:telegram:-1002233445566:2291", "Carol", None),  # in a forum topic
    (kinds.CHAT_REPLY, "chat_reply:telegram:-1001987654321:4815", "bob_builds", TELEGRAM_CHAT.person(ALICE)),
]
MESSAGE_TEXTS = ["Python 3.13", "works fine", "permission denied", "community call", "Changelog", "#help"]


def test_the_example_updates_are_telegram_updates() -> None:
    fake = FakeChat()
    fields = fake.spec["types"]["Update"]["fields"]
    for name in TELEGRAM_SENT:
        assert fake._check_fields(name, fields, update(name)) == [], name


def test_telegram_messages_replies_and_joins_are_recorded_once_whatever_telegram_repeats(
    chat_app: tuple[Any, Chats],
) -> None:
    app, chats = chat_app
    outcomes = {}
    for name in TELEGRAM_SENT:
        response = chats.telegram(update(name))
        assert response.status_code == 202, response.text
        outcomes[name] = settled(app, response)
    assert outcomes["message.left_chat_member"] == outcomes["edited_message"] == IGNORED
    assert outcomes["channel_post"] == IGNORED
    first = recorded(app)
    assert first == TELEGRAM_ONCE_EACH
    # Telegram repeats an update (same update_id) until it gets a 2XX: acknowledged, not processed again.
    again = chats.telegram(update("message.reply"))
    assert (again.status_code, again.json()["message"]) == (200, "already received")
    # The same message in another update (a replay): processed, recorded nothing new (chat id + message id).
    replayed = chats.telegram({**update("message.reply"), "update_id": 870199999})
    assert settled(app, replayed) == DONE
    assert recorded(app) == first
    assert table_count(app, deliveries) == len(TELEGRAM_SENT) + 1


def test_a_worker_running_a_chat_delivery_twice_records_it_once(chat_app: tuple[Any, Chats]) -> None:
    app, chats = chat_app
    settled(app, chats.telegram(update("message.reply")))
    settled(app, chats.rocketchat(outgoing("sendMessage")))
    store, ledger = services(app).store, services(app).stores.ledger
    telegram_stored, rocket_stored = store.get("telegram:870123459"), store.get("rocketchat:Ks4jBTvW4e9HyxRYm")
    assert telegram_stored is not None and rocket_stored is not None
    assert ledger.record(telegram_contributions(telegram_stored.payload)) == 0
    assert ledger.record(rocketchat_contributions(rocket_stored.payload, None)) == 0
    assert [kind for kind, *_ in recorded(app)] == [kinds.CHAT_MESSAGE, kinds.CHAT_REPLY]


def test_no_message_text_is_stored(chat_app: tuple[Any, Chats]) -> None:
    app, chats = chat_app
    for name in TELEGRAM_SENT:
        settled(app, chats.telegram(update(name)))
    private = update("message.group_text", chat={"id": ALICE, "type": "private"})
    settled(app, chats.telegram({**private, "update_id": 870130000}))
    for name in ("sendMessage", "sendMessage.thread_reply_edited", "sendMessage.from_bot"):
        settled(app, chats.rocketchat(outgoing(name)))
    payloads = stored_payloads(app)
    assert len(payloads) == len(TELEGRAM_SENT) + 4
    for text in payloads:
        assert '"text"' not in text and '"caption"' not in text and '"token"' not in text
        assert not [words for words in [*MESSAGE_TEXTS, "installer", "Nightly build"] if words in text]


@pytest.mark.parametrize(
    "secret", [None, "not-the-secret", SECRET + "x"], ids=["no secret header", "wrong secret", "longer secret"]
)
def test_a_telegram_update_without_the_secret_token_is_refused_and_nothing_is_stored(
    chat_app: tuple[Any, Chats], secret: str | None
) -> None:
    app, chats = chat_app
    response = chats.telegram(update("message.group_text"), secret=secret)
    assert response.status_code == 401
    assert "TELEGRAM_WEBHOOK_SECRET" in response.json()["message"] or "secret_token" in response.json()["message"]
    assert table_count(app, deliveries) == 0


def test_a_rocketchat_delivery_without_the_token_is_refused_and_nothing_is_stored(chat_app: tuple[Any, Chats]) -> None:
    app, chats = chat_app
    for body in (outgoing("sendMessage", token="not-the-token"), outgoing("sendMessage", token=None)):
        response = chats.rocketchat(body)
        assert response.status_code == 401
    assert "ROCKETCHAT_WEBHOOK_TOKEN" in chats.rocketchat(outgoing("sendMessage", token="x")).json()["message"]
    assert table_count(app, deliveries) == 0


@pytest.mark.parametrize(
    "platform, unset",
    [
        ("telegram", {"telegram_bot_token": None}),
        ("telegram", {"telegram_webhook_secret": None}),
        ("rocketchat", {"rocketchat_url": None}),
        ("rocketchat", {"rocketchat_webhook_token": None}),
    ],
    ids=["no bot token", "no webhook secret", "no Rocket.Chat address", "no Rocket.Chat token"],
)
def test_a_chat_endpoint_answers_404_until_its_chat_is_configured(
    make_app: Any, serve: Any, platform: str, unset: dict[str, Any]
) -> None:
    app = make_app(**{**chat_settings(), **unset})
    chats = Chats(serve(app))
    if platform == "telegram":
        response = chats.telegram(update("message.group_text"))
    else:
        response = chats.rocketchat(outgoing("sendMessage"))
    assert response.status_code == 404
    assert table_count(app, deliveries) == 0


@pytest.mark.parametrize(
    "change",
    [
        {"chat": {"id": ALICE, "type": "private", "username": "alice_ng", "first_name": "Alice"}},
        {"from": {"id": 7123456789, "is_bot": True, "first_name": "Helper", "username": "community_helper_bot"}},
    ],
    ids=["a private chat with the bot", "a bot"],
)
def test_private_chats_and_bots_are_never_recorded(chat_app: tuple[Any, Chats], change: dict[str, Any]) -> None:
    app, chats = chat_app
    response = chats.telegram(update("message.group_text", **change))
    assert response.status_code == 202
    settled(app, response)
    assert recorded(app) == []


def test_rocketchat_messages_and_thread_replies_know_to_whom_and_bots_are_ignored(
    chat_app: tuple[Any, Chats],
) -> None:
    app, chats = chat_app
    for name in ("sendMessage", "sendMessage.thread_reply_edited", "sendMessage.from_bot"):
        settled(app, chats.rocketchat(outgoing(name)))
    direct = chats.rocketchat(outgoing("sendMessage", message_id="Dm1aaaaaaaaaaaaaa", channel_name=None))
    other = chats.rocketchat(outgoing("sendMessage", message_id="Ot1aaaaaaaaaaaaaa", channel_name="random"))
    assert (settled(app, direct), settled(app, other)) == (IGNORED, DONE)
    alice = ROCKET_CHAT.person("aobEdbYhXfu5hkeqG")
    assert recorded(app) == [
        (kinds.CHAT_MESSAGE, "chat_message:rocketchat:chat.example.org:Ks4jBTvW4e9HyxRYm", "alice", None),
        (kinds.CHAT_REPLY, "chat_reply:rocketchat:chat.example.org:bNw8rG5TqZ2yHcLxe", "bob", alice),
    ]
    # An edit of the same message (or Rocket.Chat retrying it) carries its id: acknowledged, nothing new.
    again = chats.rocketchat(outgoing("sendMessage", isEdited=True))
    assert (again.status_code, again.json()["message"]) == (200, "already received")


def test_chat_points_count_on_the_community_board_only_when_configured_under_the_daily_cap(
    chat_app: tuple[Any, Chats],
) -> None:
    app, chats = chat_app
    listed(app, 1296269, REPO)  # the community's organisation has a public repository
    ledger = services(app).stores.ledger
    ledger.set_scoring([org_scope(ORG)], {"daily_comment_cap": 2})
    for name in ("message.group_text", "message.reply", "message.new_chat_members"):
        settled(app, chats.telegram(update(name)))
    for n in range(3):  # Alice's three more messages that day: two over the cap of 2
        settled(app, chats.telegram({**update("message.group_text", message_id=4900 + n), "update_id": 870124000 + n}))
    engine, today = services(app).store.engine, date(2026, 12, 1)
    before = board(engine, org=ORG, window="all", today=today)
    assert before["entries"] == [] and before["formula"]["points"]["chat_message"] == 0
    assert "× chat" not in before["formula"]["text"]
    points = {"chat_message": 2, "chat_reply": 3, "chat_member_joined": 1}
    ledger.set_scoring([org_scope(ORG)], {"daily_comment_cap": 2, "points": points})
    after = board(engine, org=ORG, window="all", today=today)
    assert [(e["login"], e["points"]) for e in after["entries"]] == [("alice_ng", 4), ("bob_builds", 3), ("Carol", 1)]
    assert {e["profile_url"] for e in after["entries"]} == {None}, "chat accounts have no GitHub profile"
    assert "2 × chat messages" in after["formula"]["text"]
    with pytest.raises(LookupError):
        board(engine, repo=f"{ORG}/telegram:t.me", window="all", today=today)


# --- the builders, table-driven

TELEGRAM_CASES: dict[str, tuple[dict[str, Any], list[tuple[str, int | None]]]] = {
    "a group message": (update("message.group_text")["message"], [(kinds.CHAT_MESSAGE, None)]),
    "a reply, to its author": (update("message.reply")["message"], [(kinds.CHAT_REPLY, TELEGRAM_CHAT.person(ALICE))]),
    "a message in a forum topic is no reply": (update("message.forum_topic")["message"], [(kinds.CHAT_MESSAGE, None)]),
    "a reply in a forum topic": (
        update("message.forum_topic", reply_to_message=update("message.reply")["message"]["reply_to_message"])[
            "message"
        ],
        [(kinds.CHAT_REPLY, TELEGRAM_CHAT.person(ALICE))],
    ),
    "a reply to a bot answers nobody": (
        update(
            "message.reply",
            reply_to_message={**update("message.group_text")["message"], "from": {"id": 1, "is_bot": True}},
        )["message"],
        [(kinds.CHAT_REPLY, None)],
    ),
    "a member joined": (update("message.new_chat_members")["message"], [(kinds.CHAT_MEMBER_JOINED, None)]),
    "a bot added to the group": (
        update("message.new_chat_members", new_chat_members=[{"id": 7, "is_bot": True, "first_name": "B"}])["message"],
        [],
    ),
    "a member left": (update("message.left_chat_member")["message"], []),
    "an anonymous admin, as the group": (update("message.from_bot")["message"], []),
    "a private chat": (update("message.group_text", chat={"id": ALICE, "type": "private"})["message"], []),
}


@pytest.mark.parametrize("message, expected", list(TELEGRAM_CASES.values()), ids=list(TELEGRAM_CASES))
def test_telegram_contributions(message: dict[str, Any], expected: list[tuple[str, int | None]]) -> None:
    found = [item for item in telegram_contributions({"message": message, "engage_chat": {"community_org": ORG}})]
    made = [(item.kind, item.subject.author_id if item.subject else None) for item in found if item is not None]
    assert made == expected
    for item in filter(None, found):
        assert item.actor_id < 0 and item.repo == TELEGRAM_CHAT.place and item.repo.id < 0
        assert item.occurred_at == datetime.fromtimestamp(message["date"], UTC).replace(tzinfo=None)


def test_migration_12_adds_the_chat_counts_to_a_database_made_before_it(database_url: str) -> None:
    engine = db.make_engine(database_url)
    try:
        db.migrate(engine)
        with engine.begin() as conn:
            for table in ("actor_days", "window_totals"):
                for column in db.CHAT_COUNTS:
                    conn.execute(sa.text(f"ALTER TABLE {table} DROP COLUMN {column}"))
            conn.execute(sa.text("DELETE FROM schema_version WHERE version >= 11"))
        applied = db.migrate(engine)
        assert applied[:2] == [11, 12], "11 finds its work done; 12 replays from either"
        with engine.connect() as conn:
            for table in ("actor_days", "window_totals"):
                assert set(db.CHAT_COUNTS) <= {c["name"] for c in sa.inspect(conn).get_columns(table)}
    finally:
        db.metadata.drop_all(engine)
        engine.dispose()


def test_telegram_and_rocketchat_are_places_apart_from_the_forum_and_each_other() -> None:
    places = {TELEGRAM_CHAT.place.id, ROCKET_CHAT.place.id}
    assert len(places) == 2 and all(place < 0 for place in places)
    assert TELEGRAM_CHAT.person(ALICE) != ROCKET_CHAT.person(ALICE)


@pytest.mark.parametrize(
    "env, variable",
    [
        ({"TELEGRAM_WEBHOOK_SECRET": SECRET}, "COMMUNITY_ORG"),
        ({"ROCKETCHAT_WEBHOOK_TOKEN": ROCKET_TOKEN}, "COMMUNITY_ORG"),
        ({"TELEGRAM_WEBHOOK_SECRET": "has spaces", "COMMUNITY_ORG": ORG}, "TELEGRAM_WEBHOOK_SECRET"),
    ],
    ids=["telegram without its community", "rocketchat without its community", "a secret Telegram refuses"],
)
def test_a_chat_configured_wrong_stops_the_app_naming_the_variable(env: dict[str, str], variable: str) -> None:
    config = settings.from_environment({"WEBHOOK_SECRET": "x", **env})
    with pytest.raises(ConfigError, match=variable):
        settings.check(config)
