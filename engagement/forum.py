"""Record the community forum's activity (Discourse webhooks) in the ledger, exactly once.

The forum is a place of its own in the ledger (`domain.contributions.Forum.place`): a "repository" with
a negative id that counts in its community's (COMMUNITY_ORG's) owner-wide board and insights, and that no
page lists. Its people are keyed by their forum ids (negative ids, apart from GitHub's). Keys name what
happened (`forum_reply:<host>:<post id>`), never the delivery: Discourse's retries carry a new event id.
Chat platforms (Telegram, Rocket.Chat) follow the same shape: an intake naming events `<platform>:<event>`,
a place and person ids of their own, and a handler like this one.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from domain import contributions as build
from domain.contributions import Contribution
from webhooks.context import Context
from webhooks.discourse import event_name, forum_of
from webhooks.router import Router

NAME = "forum"
HELP = """Records the community forum's activity (Discourse webhooks at `/api/discourse/webhooks`) in the
ledger: topics opened, replies, replies accepted as the solution and likes received, once each, at the
forum's time. Private messages, whispers, hidden or deleted posts and categories not marked public are
never recorded, nor Discourse's own accounts (system, discobot). Edits add nothing. Forum points count on
the COMMUNITY_ORG board only when its `leaderboard.points` gives them (0 by default)."""

router = Router()

TOPIC_CREATED, POST_CREATED = event_name("topic_created"), event_name("post_created")
ACCEPTED_SOLUTION, POST_LIKED = event_name("accepted_solution"), event_name("post_liked")


def contributions_of(name: str, payload: Mapping[str, Any], received_at: datetime) -> list[Contribution | None]:
    """What a forum delivery says someone did (pure: the table tests cover each event)."""
    forum = forum_of(payload)
    if name == TOPIC_CREATED:
        return [build.forum_topic(forum, payload["topic"])]
    if name == POST_CREATED:
        return [build.forum_post(forum, payload["post"])]
    if name == ACCEPTED_SOLUTION:
        return [build.forum_solution(forum, payload["solved"])]
    if name == POST_LIKED:
        return [build.forum_like(forum, payload["like"], received_at)]
    return []


@router.on(TOPIC_CREATED, POST_CREATED, ACCEPTED_SOLUTION, POST_LIKED, name="forum.record", needs_installation=False)
def record(ctx: Context) -> None:
    now = datetime.now(UTC).replace(tzinfo=None)
    items = contributions_of(ctx.event.name, ctx.payload, now)
    if not any(items):
        ctx.log.debug("skipped: private, not a regular post, or by a system account")
    new = ctx.stores.ledger.record(items)
    ctx.log.info("recorded %d forum contribution(s)", new, extra={"contributions": new})
