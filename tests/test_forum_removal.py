"""Forum posts and topics deleted and recovered, solutions withdrawn: what the ledger counts follows the
forum, once in effect, in any order of arrival, and every rollup equals a rebuild from the ledger.

The property test plays random histories (topics, replies, likes, solutions, deletions, recoveries,
withdrawals, each delivered once or twice, shuffled, days passing between them) through the forum's
decisions (`engagement.forum.contributions_of`, `domain.contributions.forum_change`) and the store
(`storage.ledger_removal`), and compares the ledger with a model of what should count and the rollups
with `LedgerStore.rebuild`. Over HTTP, `test_discourse_intake.py`'s forum posts real deliveries.
"""

from __future__ import annotations

import json
import random
import threading
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from domain import contributions as build
from domain.contributions import Forum
from engagement.forum import contributions_of
from storage import db
from storage.ledger import LedgerStore
from storage.ledger_removal import LedgerRemovals
from tests.test_discourse_intake import (  # forum_app: the app with the forum, behind a real HTTP server
    EVERYTHING,
    HEADERS,
    SECRET,
    Forum_,
    forum_app,  # noqa: F401
    payload_of,
    recorded,
    settled,
)
from tests.test_ledger_store import snapshot
from webhooks.discourse import FORUM_KEY, sign

FORUM = Forum("https://forum.example.org", "llmasos", (5,))
FIELDS = {"url": FORUM.url, "community_org": FORUM.community_org, "public_categories": [5]}
TODAY = date(2026, 11, 29)
USERS = {11: "alice", 12: "bob", 13: "carol", 14: "dave"}


@dataclass(frozen=True)
class Post:
    id: int
    topic: int
    number: int  # 1: the topic's first post
    author: int
    at: datetime


def post_payload(post: Post) -> dict[str, Any]:
    """The fields of Discourse's post payload the forum reads (`webhooks.md`)."""
    return {
        "id": post.id,
        "topic_id": post.topic,
        "post_number": post.number,
        "post_type": 1,
        "user_id": post.author,
        "username": USERS[post.author],
        "created_at": post.at.isoformat() + "Z",
        "category_id": 5,
        "topic_archetype": "regular",
        "deleted_at": None,
        "hidden": False,
    }


def topic_payload(first: Post) -> dict[str, Any]:
    return {
        "id": first.topic,
        "archetype": "regular",
        "category_id": 5,
        "created_at": first.at.isoformat() + "Z",
        "created_by": {"id": first.author, "username": USERS[first.author]},
    }


def deliver(ledger: LedgerRemovals, event: str, payload: dict[str, Any], at: datetime) -> None:
    """What `engagement.forum.record` does with a delivery, without the pipeline around it."""
    payload = {**payload, FORUM_KEY: FIELDS}
    name = f"discourse:{event}"
    change = build.forum_change(FORUM, event, payload)
    if change is not None:
        ledger.change(change.topic, change.item, change.removes)
    ledger.record(contributions_of(name, payload, at))


def removals(engine: Engine) -> LedgerRemovals:
    def items_of(kind: str, key: str, topic: int | None) -> tuple[str, ...]:
        return build.forum_items_of(FORUM, kind, key, topic)

    return LedgerRemovals(LedgerStore(engine), FORUM.place, items_of)


def counted(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        return set(conn.execute(sa.select(db.contributions.c.key)).scalars())


class World:
    """A random forum history as deliveries, and a model of what must count after them."""

    def __init__(self, seed: int, topics: int = 4, replies: int = 5):
        rng = self.rng = random.Random(seed)
        self.posts: list[Post] = []
        post_id = 5000
        for topic in range(100, 100 + topics):
            start = datetime.combine(TODAY, datetime.min.time()) - timedelta(days=rng.randrange(1, 400))
            for number in range(1, replies + 2):
                post_id += 1
                at = start + timedelta(hours=number * rng.randrange(1, 30))
                self.posts.append(Post(post_id, topic, number, rng.choice(list(USERS)), at))
        self.firsts = {p.topic: p for p in self.posts if p.number == 1}
        self.replies = [p for p in self.posts if p.number > 1]

    def events(self) -> list[tuple[str, dict[str, Any], datetime, tuple[str, Any]]]:
        """(event, payload, received at, what it means to the model), some twice, shuffled."""
        rng = self.rng
        found: list[tuple[str, dict[str, Any], datetime, tuple[str, Any]]] = []
        for first in self.firsts.values():
            found.append(("topic_created", {"topic": topic_payload(first)}, first.at, ("create", first)))
        for post in self.posts:
            found.append(("post_created", {"post": post_payload(post)}, post.at, ("create", post)))
            if rng.random() < 0.5:
                liker = rng.choice([u for u in USERS if u != post.author])
                like = {"post": post_payload(post), "user": {"id": liker, "username": USERS[liker]}}
                found.append(("post_liked", {"like": like}, post.at + timedelta(hours=2), ("like", (post, liker))))
            for event in rng.sample(["post_destroyed", "post_recovered"], k=rng.randrange(0, 3)):
                found.append((event, {"post": post_payload(post)}, post.at, (event, post)))
        for post in rng.sample(self.replies, k=len(self.replies) // 3):
            for event in ["accepted_solution", *(["unaccepted_solution"] if rng.random() < 0.5 else [])]:
                found.append((event, {"solved": post_payload(post)}, post.at, (event, post)))
        for first in rng.sample(list(self.firsts.values()), k=len(self.firsts) // 2):
            for event in rng.sample(["topic_destroyed", "topic_recovered"], k=rng.randrange(1, 3)):
                found.append((event, {"topic": topic_payload(first)}, first.at, (event, first)))
        found += rng.sample(found, k=len(found) // 4)  # redeliveries
        rng.shuffle(found)
        return found

    def expected(self, arrived: list[tuple[str, Any]]) -> set[str]:
        """The model: something counts once created, while neither its topic nor its post (nor, for a
        solution, its acceptance) is removed; of a removal and a recovery, the later arrival holds."""
        host = FORUM.host
        removed: dict[tuple[str, int], bool] = {}
        made: dict[str, tuple[tuple[str, int], ...]] = {}
        for what, subject in arrived:
            if what == "like":
                post, liker = subject
                key = f"forum_like:{host}:{post.id}:{FORUM.person(liker)}"
                made[key] = self._stands_on(post)
                continue
            post = subject
            if what in ("create", "post_recovered"):
                made[self._key(post)] = self._stands_on(post)
            if what in ("topic_recovered",):
                made[self._key(post)] = self._stands_on(post)
            if what == "accepted_solution":
                made[f"forum_solution:{host}:{post.id}"] = (*self._stands_on(post), ("solution", post.id))
            target = ("solution", post.id) if "solution" in what else self._item(post)
            if what.endswith("destroyed") or what == "unaccepted_solution":
                removed[target] = True
            elif what.endswith("recovered") or what == "accepted_solution":
                removed[target] = False
        return {key for key, items in made.items() if not any(removed.get(item) for item in items)}

    @staticmethod
    def _key(post: Post) -> str:
        if post.number == 1:
            return f"forum_topic:{FORUM.host}:{post.topic}"
        return f"forum_reply:{FORUM.host}:{post.id}"

    @staticmethod
    def _item(post: Post) -> tuple[str, int]:
        return ("topic", post.topic) if post.number == 1 else ("post", post.id)

    @staticmethod
    def _stands_on(post: Post) -> tuple[tuple[str, int], ...]:
        return (("topic", post.topic),) if post.number == 1 else (("topic", post.topic), ("post", post.id))


@pytest.mark.parametrize("seed", range(6))
def test_any_history_of_deletions_and_recoveries_counts_what_the_forum_shows_and_equals_a_rebuild(
    engine: Engine, seed: int
) -> None:
    world = World(seed)
    events = world.events()
    store, ledger = LedgerStore(engine), removals(engine)
    store.advance(TODAY - timedelta(days=5))
    for n, (event, payload, at, _) in enumerate(events):
        deliver(ledger, event, payload, at)
        if n == len(events) // 2:
            store.advance(TODAY - timedelta(days=2))  # days pass while deliveries arrive
    store.advance(TODAY)
    assert counted(engine) == world.expected([meaning for *_, meaning in events])
    assert counted(engine).isdisjoint(ledger.set_aside())
    incremental = snapshot(engine)
    assert incremental["window_totals"] and incremental["weekly_actors"]
    store.rebuild(TODAY)
    assert snapshot(engine) == incremental


def test_a_deletion_that_arrives_first_keeps_the_post_out_until_it_is_recovered(engine: Engine) -> None:
    world = World(10, topics=1, replies=2)
    reply = world.replies[0]
    ledger = removals(engine)
    deliver(ledger, "post_destroyed", {"post": post_payload(reply)}, reply.at)
    deliver(ledger, "post_created", {"post": post_payload(reply)}, reply.at)
    deliver(ledger, "post_created", {"post": post_payload(reply)}, reply.at)  # a retry
    assert counted(engine) == set()
    assert ledger.set_aside() == [f"forum_reply:{FORUM.host}:{reply.id}"]
    deliver(ledger, "post_recovered", {"post": post_payload(reply)}, reply.at)
    assert counted(engine) == {f"forum_reply:{FORUM.host}:{reply.id}"}
    assert ledger.set_aside() == []


def test_a_destroyed_topic_takes_its_replies_likes_and_solution_and_brings_back_only_what_was_not_deleted_itself(
    engine: Engine,
) -> None:
    world = World(11, topics=1, replies=3)
    first, (answer, deleted, _) = world.firsts[100], world.replies
    ledger = removals(engine)
    for post in world.posts:
        deliver(ledger, "post_created", {"post": post_payload(post)}, post.at)
    like = {"post": post_payload(answer), "user": {"id": 14, "username": "dave"}}
    deliver(ledger, "post_liked", {"like": like}, answer.at)
    deliver(ledger, "accepted_solution", {"solved": post_payload(answer)}, answer.at)
    deliver(ledger, "post_destroyed", {"post": post_payload(deleted)}, deleted.at)
    everything_but_deleted = counted(engine)
    assert len(everything_but_deleted) == 5  # topic, two replies, a like, a solution
    deliver(ledger, "topic_destroyed", {"topic": topic_payload(first)}, first.at)
    assert counted(engine) == set()
    deliver(ledger, "topic_recovered", {"topic": topic_payload(first)}, first.at)
    assert counted(engine) == everything_but_deleted
    deliver(ledger, "unaccepted_solution", {"solved": post_payload(answer)}, answer.at)
    assert f"forum_solution:{FORUM.host}:{answer.id}" not in counted(engine)
    deliver(ledger, "accepted_solution", {"solved": post_payload(answer)}, answer.at)  # accepted again
    assert counted(engine) == everything_but_deleted


def test_a_removed_first_reply_moves_the_topics_first_reply_time_and_the_peoples_first_and_latest(
    engine: Engine,
) -> None:
    world = World(12, topics=1, replies=2)
    (first_reply, second_reply) = world.replies
    store, ledger = LedgerStore(engine), removals(engine)
    store.advance(TODAY)
    for post in world.posts:
        deliver(ledger, "post_created", {"post": post_payload(post)}, post.at)
    deliver(ledger, "post_destroyed", {"post": post_payload(first_reply)}, first_reply.at)
    with engine.connect() as conn:
        firsts = dict(
            conn.execute(
                sa.select(db.scope_members.c.actor_id, db.scope_members.c.first_at).where(
                    db.scope_members.c.scope == f"repo:{FORUM.place.id}"
                )
            ).all()
        )
        replies = conn.execute(
            sa.select(db.contributions.c.occurred_at).where(db.contributions.c.kind == build.FORUM_REPLY)
        ).scalars()
        assert list(replies) == [second_reply.at]
    left: dict[int, datetime] = {}
    for post in (world.firsts[100], second_reply):
        person = FORUM.person(post.author)
        left[person] = min(left.get(person, post.at), post.at)
    assert firsts == left


def test_a_post_created_and_deleted_at_once_by_two_workers_never_counts(engine: Engine) -> None:
    """The place's lock: whichever runs first, the deletion's tombstone or the creation's insert, the
    other sees it (on PostgreSQL two connections really race; SQLite runs writers one at a time)."""
    world = World(13, topics=1, replies=30)
    ledger = removals(engine)
    errors: list[BaseException] = []

    def run(event: str) -> None:
        try:
            for post in world.replies:
                deliver(ledger, event, {"post": post_payload(post)}, post.at)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(event,)) for event in ("post_created", "post_destroyed")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert counted(engine) == set()
    assert len(ledger.set_aside()) == len(world.replies)


# --- over HTTP: real deliveries (the recorded examples, their event renamed and signed again) through the app


def send_as(forum: Forum_, event: str, file: str, change: dict[str, Any] | None = None) -> Any:
    """The example `file`'s object delivered as `event` (Discourse sends the deleted or recovered post, the
    withdrawn answer, the topic, in the same shape), under a new event id as Discourse's retries have."""
    payload = payload_of(file)
    key = next(iter(payload))
    group = {"topic": "topic", "solved": "solved"}.get(key, "post")
    body = json.dumps({group: {**payload[key], **(change or {})}}).encode()
    forum.next_id += 1
    headers = {
        **HEADERS[file],
        "X-Discourse-Event": event,
        "X-Discourse-Event-Type": group,
        "X-Discourse-Event-Id": str(forum.next_id),
        "X-Discourse-Event-Signature": sign(SECRET, body),
    }
    return forum.server.session.post(forum.url, data=body, headers=headers, timeout=30)


def kinds_by_login(app: Any) -> list[tuple[str, str]]:
    return [(kind, login) for kind, _, login in recorded(app)]


def test_deleted_recovered_and_withdrawn_over_http_once_each_whatever_discourse_retries(
    forum_app: tuple[Any, Forum_],  # noqa: F811
) -> None:
    app, forum = forum_app
    for file in EVERYTHING:
        settled(app, forum.send(file))
    everything = kinds_by_login(app)
    deleted = {"deleted_at": "2026-11-30T11:00:00.000Z"}
    for _ in range(2):  # the second: Discourse's retry, a new event id
        response = send_as(forum, "post_destroyed", "post_created.reply_to_topic.json", deleted)
        assert response.status_code == 202 and settled(app, response) == "done"
    # bob's reply 8814 was the accepted answer, liked by alice: all three go with it
    assert kinds_by_login(app) == [(build.FORUM_REPLY, "alice"), (build.FORUM_TOPIC, "alice")]
    settled(app, send_as(forum, "post_created", "post_created.reply_to_topic.json"))  # a late retry of its creation
    assert kinds_by_login(app) == [(build.FORUM_REPLY, "alice"), (build.FORUM_TOPIC, "alice")]
    settled(app, send_as(forum, "post_recovered", "post_created.reply_to_topic.json"))
    assert kinds_by_login(app) == everything
    settled(app, send_as(forum, "topic_destroyed", "topic_created.json", {"deleted_at": "2026-11-30T12:00:00.000Z"}))
    assert kinds_by_login(app) == []
    settled(app, send_as(forum, "topic_recovered", "topic_created.json"))
    assert kinds_by_login(app) == everything
    settled(app, send_as(forum, "unaccepted_solution", "accepted_solution.json", {"accepted_answer": False}))
    assert build.FORUM_SOLUTION not in [kind for kind, _ in kinds_by_login(app)]
    private = {"topic_archetype": "private_message", "category_id": None}
    response = send_as(forum, "post_destroyed", "post_created.reply.json", private)
    assert settled(app, response) == "done"
    assert (build.FORUM_REPLY, "alice") in kinds_by_login(app)  # not this forum's public post: nothing removed
