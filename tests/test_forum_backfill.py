"""`flask backfill --forum`: the forum's public posts from Discourse's API (the fake, which checks every
request against `tests/contract/discourse/openapi.subset.json`), recorded under the same keys as the
webhooks', once each whichever path saw them first; resumable; waiting out a 429; leaving out what the
webhooks leave out, and what the forum deleted."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from domain import contributions as kinds
from tests.support.fake_chat import DISCOURSE_API_KEY, DISCOURSE_API_USERNAME, FakeChat
from tests.test_discourse_intake import ORG, SECRET, Forum_, recorded, settled
from tests.test_forum_removal import send_as

CONTRACT = Path(__file__).parent / "contract" / "discourse"
LISTED_FIELDS = set(
    json.loads((CONTRACT / "openapi.subset.json").read_text())["paths"]["/posts.json"]["get"]["responses"]["200"][
        "content"
    ]["application/json"]["schema"]["properties"]["latest_posts"]["items"]["properties"]
)


def listed(file: str, **change: Any) -> dict[str, Any]:
    """A webhook example's post as listPosts lists it (its fields only), edited."""
    body = json.loads((CONTRACT / "webhooks" / file).read_text())
    post = next(iter(body.values()))
    return {**{k: v for k, v in post.items() if k in LISTED_FIELDS}, **change}


FIRST = listed("post_created.first_post.json")  # alice opens topic 1042
ANSWER = listed("post_created.reply_to_topic.json", accepted_answer=True)  # bob's reply 8814, the solution
THANKS = listed("post_created.reply.json")  # alice's reply 8817
OTHER_TOPIC = [
    listed(
        "post_created.first_post.json",
        id=9201,
        topic_id=2001,
        user_id=16,
        username="carol",
        created_at="2026-12-01T07:00:00.000Z",
    ),
    listed("post_created.reply_to_topic.json", id=9202, topic_id=2001, created_at="2026-12-01T08:00:00.000Z"),
]
NEVER = [
    listed("post_created.reply.json", id=9101, post_type=4),  # a whisper
    listed("post_created.reply.json", id=9102, user_id=-1, username="system"),
    listed("post_created.reply.json", id=9103, category_id=9),  # not a public category
    listed("post_created.reply.json", id=9104, hidden=True),
]


@pytest.fixture
def discourse() -> Iterator[FakeChat]:
    with FakeChat() as fake:
        fake.forum_posts = [FIRST, ANSWER, THANKS, *OTHER_TOPIC, *NEVER]
        fake.posts_per_page = 3
        yield fake
        fake.assert_no_violations()


@pytest.fixture
def forum_app(make_app: Any, serve: Any, discourse: FakeChat) -> tuple[Any, Forum_]:
    app = make_app(
        discourse_url=discourse.url,
        discourse_webhook_secret=SECRET,
        discourse_api_key=DISCOURSE_API_KEY,
        discourse_api_username=DISCOURSE_API_USERNAME,
        discourse_public_categories=(5,),
        community_org=ORG,
    )
    return app, Forum_(serve(app))


def backfill(app: Any, *args: str) -> Any:
    return app.test_cli_runner().invoke(args=["backfill", "--forum", *args])


def expected(host: str) -> list[tuple[str, str, str]]:
    return sorted(
        [
            (kinds.FORUM_REPLY, f"forum_reply:{host}:8814", "bob"),
            (kinds.FORUM_REPLY, f"forum_reply:{host}:8817", "alice"),
            (kinds.FORUM_REPLY, f"forum_reply:{host}:9202", "bob"),
            (kinds.FORUM_SOLUTION, f"forum_solution:{host}:8814", "bob"),
            (kinds.FORUM_TOPIC, f"forum_topic:{host}:1042", "alice"),
            (kinds.FORUM_TOPIC, f"forum_topic:{host}:2001", "carol"),
        ]
    )


def test_the_backfill_records_what_the_webhooks_record_once_each_and_says_what_it_cannot(
    forum_app: tuple[Any, Forum_], discourse: FakeChat
) -> None:
    app, forum = forum_app
    host = discourse.url.split("://", 1)[1]
    for file in ("topic_created.json", "post_created.reply_to_topic.json", "accepted_solution.json"):
        settled(app, forum.send(file))  # what the webhooks saw before the backfill
    seen_live = len(recorded(app))
    result = backfill(app)
    assert result.exit_code == 0, result.output
    assert recorded(app) == expected(host)
    assert f"recorded {len(expected(host)) - seen_live} new forum contributions ({seen_live} already" in result.output
    assert "likes are not backfilled" in result.output
    assert "Telegram cannot be backfilled" in result.output
    # newest first, each page below the last one's lowest id
    pages = ["/posts.json?", "/posts.json?before=9104", "/posts.json?before=9101", "/posts.json?before=8811"]
    assert discourse.discourse_reads == pages
    again = backfill(app)
    assert "recorded 0 new forum contributions" in again.output
    assert recorded(app) == expected(host)


def test_an_interrupted_backfill_continues_where_it_stopped_and_a_429_is_waited_out(
    forum_app: tuple[Any, Forum_], discourse: FakeChat
) -> None:
    app, _ = forum_app
    host = discourse.url.split("://", 1)[1]
    discourse.fail_next("discourse", 429, retry_after=1)
    discourse.fail_listing_before = 9104  # the second page fails, however often it is asked for
    stopped = backfill(app)
    assert stopped.exit_code == 1
    assert "Discourse rate limit reached: waiting 1s" in stopped.output
    assert "stopped before posts 9104" in stopped.output and "run the same command again" in stopped.output
    discourse.fail_listing_before = None
    resumed = backfill(app)
    assert resumed.exit_code == 0, resumed.output
    assert f"resuming the interrupted forum backfill of {host} before post 9104" in resumed.output
    assert "(counted over the whole import, which this run resumed)" in resumed.output
    assert recorded(app) == expected(host)


def test_a_post_the_forum_deleted_is_not_brought_back_and_since_limits_the_import(
    forum_app: tuple[Any, Forum_], discourse: FakeChat
) -> None:
    app, forum = forum_app
    host = discourse.url.split("://", 1)[1]
    deleted = {"deleted_at": "2026-11-30T11:00:00.000Z"}
    assert settled(app, send_as(forum, "post_destroyed", "post_created.reply.json", deleted)) == "done"
    result = backfill(app, "--since", "2026-12-01")
    assert result.exit_code == 0, result.output
    assert recorded(app) == [
        (kinds.FORUM_REPLY, f"forum_reply:{host}:9202", "bob"),
        (kinds.FORUM_TOPIC, f"forum_topic:{host}:2001", "carol"),
    ]
    backfill(app)
    assert f"forum_reply:{host}:8817" not in [key for _, key, _ in recorded(app)]
    assert len(recorded(app)) == len(expected(host)) - 1


def test_the_forum_backfill_names_what_it_needs(make_app: Any) -> None:
    app = make_app(discourse_url="https://forum.example.org", community_org=ORG)
    result = backfill(app)
    assert result.exit_code == 1
    assert "needs DISCOURSE_API_KEY, DISCOURSE_API_USERNAME" in result.output
    assert "give OWNER/REPO, or --forum" in app.test_cli_runner().invoke(args=["backfill"]).output
