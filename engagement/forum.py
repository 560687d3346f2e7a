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
from storage.ledger_removal import LedgerRemovals
from webhooks.context import Context
from webhooks.discourse import event_name, forum_of
from webhooks.router import Router

NAME = "forum"
HELP = """Records the community forum's activity (Discourse webhooks at `/api/discourse/webhooks`) in the
ledger: topics opened, replies, replies accepted as the solution and likes received, once each, at the
forum's time. Private messages, whispers, hidden or deleted posts and categories not marked public are
never recorded, nor Discourse's own accounts (system, discobot). Edits add nothing. A post or topic deleted
on the forum stops counting everywhere (a topic with its replies) and counts again when it is recovered; an
accepted solution withdrawn takes its credit back; a deletion that arrives before the post is not undone by
the post arriving later. Forum points count on the COMMUNITY_ORG board only when its `leaderboard.points`
gives them (0 by default)."""

router = Router()

TOPIC_CREATED, POST_CREATED = event_name("topic_created"), event_name("post_created")
ACCEPTED_SOLUTION, POST_LIKED = event_name("accepted_solution"), event_name("post_liked")
POST_DESTROYED, POST_RECOVERED = event_name("post_destroyed"), event_name("post_recovered")
TOPIC_DESTROYED, TOPIC_RECOVERED = event_name("topic_destroyed"), event_name("topic_recovered")
UNACCEPTED_SOLUTION = event_name("unaccepted_solution")
# Deletions, recoveries and acceptances change what the ledger may count of a topic (`ledger_removal`).
CHANGES = (POST_DESTROYED, POST_RECOVERED, TOPIC_DESTROYED, TOPIC_RECOVERED, UNACCEPTED_SOLUTION, ACCEPTED_SOLUTION)


def contributions_of(name: str, payload: Mapping[str, Any], received_at: datetime) -> list[Contribution | None]:
    """What a forum delivery says someone did (pure: the table tests cover each event). A recovery
    says it again: it counts even if the creation never arrived."""
    forum = forum_of(payload)
    if name in (TOPIC_CREATED, TOPIC_RECOVERED):
        return [build.forum_topic(forum, payload["topic"])]
    if name in (POST_CREATED, POST_RECOVERED):
        return [build.forum_post(forum, payload["post"])]
    if name == ACCEPTED_SOLUTION:
        return [build.forum_solution(forum, payload["solved"])]
    if name == POST_LIKED:
        return [build.forum_like(forum, payload["like"], received_at)]
    return []


def ledger_of(ctx: Context) -> LedgerRemovals:
    """The forum's place in the ledger, which keeps out what the forum deleted."""
    forum = forum_of(ctx.payload)

    def items_of(kind: str, key: str, topic: int | None) -> tuple[str, ...]:
        return build.forum_items_of(forum, kind, key, topic)

    return LedgerRemovals(ctx.stores.ledger, forum.place, items_of)


@router.on(
    TOPIC_CREATED,
    POST_CREATED,
    POST_LIKED,
    *CHANGES,
    name="forum.record",
    needs_installation=False,
)
def record(ctx: Context) -> None:
    ledger = ledger_of(ctx)
    name = ctx.event.name
    if name in CHANGES:
        change = build.forum_change(forum_of(ctx.payload), name.split(":", 1)[1], ctx.payload)
        if change is None:
            ctx.log.debug("skipped: a private message, or no topic or post id")
            return
        moved = ledger.change(change.topic, change.item, change.removes)
        ctx.log.info(
            "forum %s: %d contribution(s) out of the ledger, %d back",
            "removal" if change.removes else "recovery",
            moved.out,
            moved.back,
            extra={"removed": moved.out, "restored": moved.back},
        )
    now = datetime.now(UTC).replace(tzinfo=None)
    items = contributions_of(name, ctx.payload, now)
    if not any(items):
        if name not in CHANGES:
            ctx.log.debug("skipped: private, not a regular post, or by a system account")
        return
    new = ledger.record(items)
    ctx.log.debug("recorded %d forum contribution(s)", new, extra={"contributions": new})
