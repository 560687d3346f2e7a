"""Discourse destinations: a reply in a topic or a new topic per message, through `POST /posts.json`.

Everything goes over real HTTP to `tests/support/fake_chat.py`, which checks each request against
`tests/contract/discourse/` (the request schema, the Api-Key and Api-Username headers).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from engagement.common import config as repo_config
from engagement.digest import undelivered
from notify.notifier import DestinationGone, DestinationUnavailable, Message, Notifier
from settings import ConfigError, from_environment
from settings.destinations import destinations
from tests.conftest import REPO, services
from tests.support.fake_chat import (
    DISCOURSE_API_KEY,
    DISCOURSE_API_USERNAME,
    DISCOURSE_TOPIC_ID,
    FakeChat,
)
from tests.test_digest_posting import digest_app, issues_created, listed, tick
from tests.test_scheduling import Clock, at


@pytest.fixture
def chat() -> Iterator[FakeChat]:
    with FakeChat() as fake:
        yield fake
        fake.assert_no_violations()


def forum_env(url: str, api_key: str = DISCOURSE_API_KEY) -> dict[str, str]:
    """Two Discourse destinations on one forum: replies in a topic, and a new topic per message."""
    return {
        "DISCOURSE_URL": url,
        "DISCOURSE_API_KEY": api_key,
        "DISCOURSE_API_USERNAME": DISCOURSE_API_USERNAME,
        "DESTINATION_FORUM_KIND": "discourse",
        "DESTINATION_FORUM_TOPIC_ID": str(DISCOURSE_TOPIC_ID),
        "DESTINATION_NEWS_KIND": "discourse",
        "DESTINATION_NEWS_CATEGORY_ID": "5",
        "DESTINATION_FORUM_INTERVAL": "0",
        "DESTINATION_NEWS_INTERVAL": "0",
    }


@pytest.fixture
def notifier(make_app: Any, chat: FakeChat) -> Notifier:
    """The app's own notifier; its waits are recorded in `notifier.waits` instead of slept."""
    app = make_app(destinations=destinations(forum_env(chat.url)))
    notifier: Notifier = services(app).notifier
    waits: list[float] = []
    notifier.sleep = waits.append
    notifier.waits = waits  # type: ignore[attr-defined]
    return notifier


MESSAGE = Message(
    "digest:octo-org:2026-W48",
    "Weekly digest: 3 newcomers",
    forum_markdown="### Weekly digest\n\n| figure | value |\n| --- | --- |\n| newcomers | 3 |",
    title="Community digest, 2026-W48",
)


def test_a_reply_in_the_topic_posts_once_with_the_markdown(notifier, chat):
    assert notifier.send("forum", MESSAGE, "delivery-1") == "sent"
    assert notifier.send("forum", MESSAGE, "delivery-1") == "duplicate"
    assert notifier.send("forum", MESSAGE, "delivery-2") == "duplicate"

    [post] = chat.posts
    assert (post.kind, post.body) == ("discourse", {"raw": MESSAGE.forum_markdown, "topic_id": DISCOURSE_TOPIC_ID})


def test_a_category_destination_opens_a_titled_topic(notifier, chat):
    assert notifier.send("news", MESSAGE, "delivery-1") == "sent"

    [post] = chat.posts
    assert post.body == {"raw": MESSAGE.forum_markdown, "title": "Community digest, 2026-W48", "category": 5}


def test_429_waits_as_long_as_discourse_asks(notifier, chat):
    chat.fail_next("discourse", 429, retry_after=7)

    assert notifier.send("forum", MESSAGE, "delivery-1") == "sent"

    assert notifier.waits == [7.0]  # extras.wait_seconds, not the 1 s backoff
    assert len(chat.posts) == 1


def test_a_long_rate_limit_goes_back_to_the_job_layer(notifier, chat):
    chat.fail_next("discourse", 429, retry_after=600)

    with pytest.raises(DestinationUnavailable) as limited:
        notifier.send("forum", MESSAGE, "delivery-1")
    assert limited.value.retry_after == 600 and chat.posts == []


@pytest.mark.parametrize("status", [403, 404], ids=["key revoked or no permission", "topic deleted"])
def test_a_gone_destination_is_reported_and_not_retried(notifier, chat, status):
    chat.fail_next("discourse", status)

    with pytest.raises(DestinationGone) as gone:
        notifier.send("forum", MESSAGE, "delivery-1")

    assert str(gone.value).startswith(f"forum: {status}")
    assert DISCOURSE_API_KEY not in str(gone.value)
    assert notifier.waits == [] and chat.posts == []


def test_a_wrong_key_is_gone_and_never_quoted(make_app, chat):
    app = make_app(destinations=destinations(forum_env(chat.url, api_key="0" * 64)))
    with pytest.raises(DestinationGone) as gone:
        services(app).notifier.send("forum", MESSAGE, "delivery-1")
    assert "API username or key is invalid" in str(gone.value) and "0" * 64 not in str(gone.value)


BAD_ENVIRONMENTS = {
    "no forum address": ({"DISCOURSE_URL": ""}, "DISCOURSE_URL must be the forum's address"),
    "no key": ({"DISCOURSE_API_KEY": ""}, "DISCOURSE_API_KEY must be an API key"),
    "a key that is not one": ({"DISCOURSE_API_KEY": "secret key!"}, "DISCOURSE_API_KEY must be an API key"),
    "no user": ({"DISCOURSE_API_USERNAME": ""}, "DISCOURSE_API_USERNAME must be the user it posts as"),
    "topic and category": (
        {"DESTINATION_FORUM_CATEGORY_ID": "5"},
        "set one of DESTINATION_FORUM_TOPIC_ID (a reply in that topic) or DESTINATION_FORUM_CATEGORY_ID",
    ),
    "neither": ({"DESTINATION_FORUM_TOPIC_ID": ""}, "set one of DESTINATION_FORUM_TOPIC_ID"),
    "topic not a number": ({"DESTINATION_FORUM_TOPIC_ID": "general"}, "DESTINATION_FORUM_TOPIC_ID must be a number"),
}


@pytest.mark.parametrize("change, message", list(BAD_ENVIRONMENTS.values()), ids=list(BAD_ENVIRONMENTS))
def test_a_bad_discourse_destination_is_refused_at_start_naming_the_variable(change, message):
    with pytest.raises(ConfigError) as refused:
        from_environment({**forum_env("https://forum.example.org"), **change})
    assert message in str(refused.value)
    assert DISCOURSE_API_KEY not in str(refused.value) and "secret key!" not in str(refused.value)


def test_discourse_destinations_come_from_the_environment():
    found = {d.name: d for d in from_environment(forum_env("https://forum.example.org/")).destinations}
    assert (found["forum"].kind, found["forum"].topic_id, found["forum"].category_id) == ("discourse", 1042, None)
    assert (found["news"].topic_id, found["news"].category_id, found["news"].api_url) == (
        None,
        5,
        "https://forum.example.org",
    )
    assert DISCOURSE_API_KEY not in repr(found)


def test_the_weekly_digest_opens_one_forum_topic_per_period(make_app, github, chat):
    github.set_file(REPO, repo_config.CONFIG_PATH, "digest:\n  enabled: true\n  destinations: [github, news]\n")
    clock = Clock("2026-11-29 12:00:00")  # Sunday
    app = digest_app(make_app, chat, clock, forum_env(chat.url))
    listed(app, 1296269, REPO)
    tick(app)
    chat.fail_next("discourse", 429, retry_after=1)
    clock.now = at("2026-11-30 01:00:30")  # Monday 09:00:30 in Shanghai
    tick(app)
    clock.advance(minutes=15)
    tick(app)

    [post] = chat.posts
    assert post.body["title"] == "Community digest, 2026-W48 / 社区周报，2026-W48"
    assert "### Weekly digest of ` Codertocat/Hello-World `: 2026-W48" in post.body["raw"]  # the issue's Markdown
    assert len(issues_created(github)) == 1


def test_a_deleted_forum_topic_is_reported_for_the_digest(make_app, github, chat):
    github.set_file(REPO, repo_config.CONFIG_PATH, "digest:\n  enabled: true\n  destinations: [forum]\n")
    clock = Clock("2026-11-29 12:00:00")
    app = digest_app(make_app, chat, clock, forum_env(chat.url))
    listed(app, 1296269, REPO)
    tick(app)
    chat.fail_next("discourse", 404)
    clock.now = at("2026-11-30 01:00:30")
    tick(app)
    clock.advance(minutes=15)
    tick(app)
    assert chat.posts == []  # had it been retried, it would have posted
    [gone] = undelivered(services(app).store.engine)
    assert gone.destination == "forum" and gone.reason.startswith("gone: forum: 404")
