"""Record the community chats' activity (Telegram, Rocket.Chat) in the ledger, exactly once.

Like the forum (`engagement.forum`): each chat is a place of its own (`domain.contributions.Chat.place`,
a negative id in COMMUNITY_ORG's owner-wide scope that no page lists), its people keyed by their chat
ids, and keys name what happened (`chat_reply:telegram:<chat id>:<message id>`), never the delivery.
Chat messages and replies fall under the daily comment cap of COMMUNITY_ORG's `leaderboard` settings,
per person and chat, as comments do per person and repository.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from domain import contributions as build
from domain.contributions import Contribution
from engagement import leaderboard
from storage.rollups import org_scope
from webhooks import rocketchat, telegram
from webhooks.context import Context
from webhooks.router import Router

NAME = "chat"
HELP = """Records the community chats' activity in the ledger: the Telegram group's messages, replies
(and to whom) and members joining (the bot's webhook at `/api/telegram/webhook`), and the messages and
thread replies of Rocket.Chat's configured channels (an outgoing webhook at `/api/rocketchat/webhook`),
once each, at the chat's time. Only who, when, where and to whom are kept, never what was said. Bots,
integrations, private chats with the bot and direct messages are never recorded. Chat points count on
the COMMUNITY_ORG board only when its `leaderboard.points` gives them (0 by default), and only the first
`daily_comment_cap` messages a day per person."""

router = Router()

TELEGRAM_RECORDED = tuple(telegram.event_name(k) for k in (telegram.MESSAGE, telegram.REPLY, telegram.MEMBER_JOINED))
ROCKETCHAT_RECORDED = (rocketchat.event_name(rocketchat.MESSAGE), rocketchat.event_name(rocketchat.REPLY))


def telegram_contributions(payload: Mapping[str, Any]) -> list[Contribution | None]:
    """What a stored Telegram update says someone did (pure)."""
    message = payload.get("message")
    return build.telegram_contributions(telegram.chat_from(payload), message) if isinstance(message, Mapping) else []


def rocketchat_contributions(payload: Mapping[str, Any], root_author: int | None) -> list[Contribution | None]:
    """What a stored Rocket.Chat delivery says someone did (pure); `root_author`: whom a reply answers."""
    return [build.rocketchat_message(rocketchat.chat_from(payload), payload, root_author)]


def thread_author(ctx: Context) -> int | None:
    """Who opened the thread a Rocket.Chat reply is in, when its first message is in the ledger (the
    delivery names only the thread's id)."""
    tmid = ctx.payload.get("tmid")
    if not isinstance(tmid, str):
        return None
    return ctx.stores.ledger.actor_of(build.rocketchat_thread_key(rocketchat.chat_from(ctx.payload), tmid))


def _record(ctx: Context, items: Sequence[Contribution | None], community_org: str) -> None:
    if not any(items):
        ctx.log.debug("skipped: a bot, a private chat, a service message or a channel not recorded")
    settings = leaderboard.settings_of(ctx.stores.ledger.scoring_for(org_scope(community_org)))
    new = ctx.stores.ledger.record(items, cap=settings.daily_comment_cap)
    ctx.log.debug("recorded %d chat contribution(s)", new, extra={"contributions": new})


@router.on(*TELEGRAM_RECORDED, name="chat.telegram", needs_installation=False)
def record_telegram(ctx: Context) -> None:
    _record(ctx, telegram_contributions(ctx.payload), telegram.chat_from(ctx.payload).community_org)


@router.on(*ROCKETCHAT_RECORDED, name="chat.rocketchat", needs_installation=False)
def record_rocketchat(ctx: Context) -> None:
    items = rocketchat_contributions(ctx.payload, thread_author(ctx))
    _record(ctx, items, rocketchat.chat_from(ctx.payload).community_org)
