"""People link their chat and forum accounts to GitHub themselves, through the real app: `/link LOGIN` to
the Telegram bot (or a private message on the forum) returns a code there, `/engage link CODE` in a
GitHub comment by LOGIN links them, and from then on they are one person on the boards, in active users
and in the forum-and-chat-to-GitHub funnel. Every request to GitHub, Telegram and Discourse goes to
fakes that check it against the contracts.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from domain.contributions import TELEGRAM, TELEGRAM_HOST, Chat
from storage import db
from tests.conftest import REPO, example, installed, services, wait_for
from tests.support.fake_chat import DISCOURSE_API_KEY, DISCOURSE_API_USERNAME, TELEGRAM_TOKEN, FakeChat
from tests.test_chat_intake import Chats, settled, update
from tests.test_discourse_intake import Forum_, payload_of

ORG = REPO.split("/")[0]  # Codertocat, the recorded payloads' owner
SECRET = "s3cr3t-Webhook_token"
FORUM_SECRET = "forum-webhook-secret"
ALICE = 412345678  # the Telegram examples' Alice (alice_ng)
OCTOCAT = {"login": "octocat", "id": 583231, "type": "User", "node_id": "MDQ6VXNlcjU4MzIzMQ==", "site_admin": False}
MALLORY = {"login": "mallory", "id": 9990001, "type": "User", "node_id": "x", "site_admin": False}
CHAT = Chat(TELEGRAM, TELEGRAM_HOST, ORG, url="https://t.me")
NOW = datetime.now(UTC)
# Tuesday 09:00 of the ISO week before this one: in the insights' last complete week whatever day the tests
# run (a fixed date there left that week on the first Monday after it was written).
LAST_WEEK = datetime.combine(NOW.date() - timedelta(days=NOW.weekday() + 6), time(9), tzinfo=UTC)


@pytest.fixture
def chat() -> Iterator[FakeChat]:
    with FakeChat() as fake:
        yield fake
        fake.assert_no_violations()


@pytest.fixture
def community(make_app: Any, serve: Any, chat: FakeChat) -> tuple[Any, Any]:
    app = make_app(
        community_org=ORG,
        telegram_bot_token=TELEGRAM_TOKEN,
        telegram_webhook_secret=SECRET,
        telegram_api_url=chat.url,
        discourse_url=chat.url,
        discourse_webhook_secret=FORUM_SECRET,
        discourse_api_key=DISCOURSE_API_KEY,
        discourse_api_username=DISCOURSE_API_USERNAME,
    )
    return app, serve(app)


def private(text: str, update_id: int, user: int = ALICE, username: str = "alice_ng") -> dict[str, Any]:
    """Alice writing to the bot in their private chat (the group example, moved to a private chat)."""
    body = update("message.group_text", text=text, entities=None)
    body["update_id"] = update_id
    body["message"]["chat"] = {"id": user, "type": "private", "first_name": "Alice", "username": username}
    return body


def comment(
    github: Any, user: dict[str, Any], comment_id: int, body: str, at: datetime = LAST_WEEK + timedelta(days=1, hours=1)
) -> dict[str, Any]:
    """The delivery of a comment on issue 1, which the fake GitHub holds too (reactions go to it)."""
    when = at.strftime("%Y-%m-%dT%H:%M:%SZ")
    if not any(c["id"] == comment_id for c in github.comments(REPO, 1)):
        github.add_comment(REPO, 1, user["login"], body, created_at=when, comment_id=comment_id)
    payload = installed(example("issue_comment.created.1"))
    payload["comment"].update(id=comment_id, body=body, created_at=when, user=user, author_association="NONE")
    payload["sender"] = user
    return payload


def sent_to(chat: FakeChat, kind: str) -> list[dict[str, Any]]:
    return [post.body for post in chat.posts if post.kind == kind]


def code_in(text: str) -> str:
    found = re.search(r"/engage link (\S+)", text)
    assert found, text
    return found.group(1)


def insights(server: Any, platform: str = "all") -> dict[str, list[Any]]:
    answer = server.session.get(f"{server.url}/api/insights", params={"org": ORG, "platform": platform, "weeks": 2})
    assert answer.status_code == 200, answer.text
    return {key: series["values"] for key, series in answer.json()["series"].items()}


def actors(app: Any) -> list[tuple[str, int]]:
    with services(app).store.engine.connect() as conn:
        query = sa.select(db.contributions.c.kind, db.contributions.c.actor_id).order_by(db.contributions.c.id)
        return [(row.kind, row.actor_id) for row in conn.execute(query)]


def test_a_telegram_account_linked_by_code_counts_as_its_github_person(
    community: tuple[Any, Any], chat: FakeChat, github: Any
) -> None:
    app, server = community
    chats = Chats(server)
    said = update("message.group_text", date=int(LAST_WEEK.timestamp()))
    assert settled(app, chats.telegram(said)) == "done"
    server.deliver("issue_comment", comment(github, OCTOCAT, 7101, "Thanks, that works for me"))
    wait_for(lambda: len(actors(app)) == 2)
    before = insights(server)
    assert before["active_users"][0] == 2 and before["forum_chat_to_first_contribution"][0] == 0

    assert settled(app, chats.telegram(private("/link @octocat", 870200001))) == "done"
    [asked] = sent_to(chat, "telegram")
    assert asked["chat_id"] == ALICE and "GitHub @octocat" in asked["text"]
    code = code_in(asked["text"])

    # Someone else posting the code links nothing: it was asked for @octocat.
    server.deliver("issue_comment", comment(github, MALLORY, 7102, f"/engage link {code}", at=NOW))
    wait_for(lambda: any("another GitHub account" in c["body"] for c in github.comments(REPO, 1)))
    assert actors(app)[0] == ("chat_message", CHAT.person(ALICE))

    server.deliver("issue_comment", comment(github, OCTOCAT, 7103, f"/engage link {code}"))
    wait_for(lambda: len(sent_to(chat, "telegram")) == 2)
    confirmed = sent_to(chat, "telegram")[1]
    assert confirmed["chat_id"] == ALICE and "linked to GitHub @octocat" in confirmed["text"]
    assert "+1" in github.reactions(REPO, comment_id=7103)
    assert actors(app)[0] == ("chat_message", OCTOCAT["id"])
    after = insights(server)
    assert after["active_users"][0] == 1, "alice and octocat are one person"
    assert after["forum_chat_to_first_contribution"][0] == 1, "from the chat to a first GitHub contribution"

    # A redelivery of the linking comment changes nothing and says nothing twice.
    server.deliver("issue_comment", comment(github, OCTOCAT, 7103, f"/engage link {code}"), delivery_id="again-7103")
    later = update("message.reply", date=int(LAST_WEEK.timestamp()) + 60)
    assert settled(app, chats.telegram(later)) == "done"
    assert len(sent_to(chat, "telegram")) == 2
    with services(app).store.engine.connect() as conn:
        answered = conn.execute(
            sa.select(db.contributions.c.subject_author_id).where(db.contributions.c.kind == "chat_reply")
        ).scalar_one()
    assert answered == OCTOCAT["id"], "a reply to alice answers octocat now"

    # Unlinking on Telegram gives the account its own activity back.
    linked = insights(server)["active_users"][0]  # octocat (with alice) and bob, who replied
    assert settled(app, chats.telegram(private("/unlink", 870200002))) == "done"
    assert "no longer linked to GitHub @octocat" in sent_to(chat, "telegram")[2]["text"]
    assert actors(app)[0] == ("chat_message", CHAT.person(ALICE))
    assert insights(server)["active_users"][0] == linked + 1


def test_private_commands_are_answered_and_nothing_else_of_a_private_chat_is_kept(
    community: tuple[Any, Any], chat: FakeChat
) -> None:
    app, server = community
    chats = Chats(server)
    for n, text in enumerate(["/start", "/link not a login!", "hello bot, how are you?", "/leaderboard opt-out"]):
        assert settled(app, chats.telegram(private(text, 870300000 + n))) in ("done", "ignored")
    texts = [body["text"] for body in sent_to(chat, "telegram")]
    assert "send /link followed by your GitHub login" in texts[0]
    assert '"not a login!" is not a GitHub login' in texts[1]
    assert "off the Codertocat community's leaderboard" in texts[-1]
    with services(app).store.engine.connect() as conn:
        stored = " ".join(str(p) for p in conn.execute(sa.select(db.deliveries.c.payload)).scalars())
        out = conn.execute(sa.select(db.contributors.c.opted_out).where(db.contributors.c.id == CHAT.person(ALICE)))
        assert out.scalar_one() is True
        assert conn.execute(sa.select(sa.func.count()).select_from(db.contributions)).scalar_one() == 0
    assert "how are you" not in stored and "/leaderboard opt-out" in stored


def test_a_forum_account_links_through_a_private_message(
    community: tuple[Any, Any], chat: FakeChat, github: Any
) -> None:
    app, server = community
    forum = Forum_(server)
    post = payload_of("post_created.reply.json")
    post["post"].update(topic_archetype="private_message", raw="/link octocat", category_id=None, id=9901)
    body = json.dumps(post).encode()
    sent = forum.send("post_created.reply.json", body=body, event_id="99001", secret=FORUM_SECRET)
    assert settled(app, sent) == "done"
    [asked] = sent_to(chat, "discourse")
    assert asked["archetype"] == "private_message" and asked["target_recipients"] == "alice"
    code = code_in(asked["raw"])
    with services(app).store.engine.connect() as conn:
        stored = " ".join(str(p) for p in conn.execute(sa.select(db.deliveries.c.payload)).scalars())
    assert "Alice Nguyen" not in stored, "a private message keeps who, when and the command only"

    server.deliver("issue_comment", comment(github, OCTOCAT, 7201, f"/engage link {code}"))
    wait_for(lambda: len(sent_to(chat, "discourse")) == 2)
    assert sent_to(chat, "discourse")[1]["target_recipients"] == "alice"
    reply = forum.send("post_created.reply.json", secret=FORUM_SECRET)
    assert settled(app, reply) == "done"
    assert ("forum_reply", OCTOCAT["id"]) in actors(app)

    server.deliver("issue_comment", comment(github, OCTOCAT, 7202, "/engage unlink discourse"))
    wait_for(lambda: "+1" in github.reactions(REPO, comment_id=7202))
    assert ("forum_reply", OCTOCAT["id"]) not in actors(app)
