"""A Telegram bot's webhook update: its secret token and its `Event` (pure, no I/O).

Telegram sends the `secret_token` given to `setWebhook` in `X-Telegram-Bot-Api-Secret-Token` on every
update (no signature of the body: https://core.telegram.org/bots/api#setwebhook). Updates share the
GitHub pipeline: stored under `telegram:<update_id>` (Telegram repeats an update with the same id until
it gets a 2XX), named `telegram:<kind>` (below). Exactly-once rests on the ledger's natural keys (the
chat's id and the message's).

Only who, when, where and to whom are stored (`STORED_FIELDS`): never a message's text, except the
text of a private-chat command in `KEPT_COMMANDS`, which a command handler needs.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Mapping
from typing import Any

from domain.contributions import (
    COMMUNITY_CHAT_TYPES,
    TELEGRAM,
    TELEGRAM_HOST,
    TELEGRAM_SERVICE_FIELDS,
    Chat,
    answers_someone,
)
from webhooks.event import Event, MalformedEvent, parse

PLATFORM = TELEGRAM
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
# Where the stored payload keeps the community it came from (the update names none), for the handlers.
CHAT_KEY = "engage_chat"

# The event kinds: `telegram:<kind>`. A message in a group, supergroup or forum topic is a `message`, a
# `reply` (to someone's message) or `member_joined`; `private_message` is one in a private chat with the
# bot (not community activity: where people send the bot `/link` and its other commands); anything else is named
# after its update field (`edited_message`, `channel_post`, `my_chat_member`) or `service`, and ignored.
MESSAGE, REPLY, MEMBER_JOINED = "message", "reply", "member_joined"
PRIVATE_MESSAGE, SERVICE = "private_message", "service"
# Private-chat commands whose text is kept in the stored payload (`engagement.identity` answers them).
KEPT_COMMANDS = frozenset({"/start", "/help", "/link", "/unlink", "/leaderboard"})

# What is kept of an update's message, field by field (`True`: the value as sent; a mapping: its fields).
_USER = {"id": True, "is_bot": True, "first_name": True, "username": True, "language_code": True}
_CHAT = {"id": True, "type": True, "username": True, "is_forum": True}
_REPLIED = {"message_id": True, "date": True, "chat": _CHAT, "from": _USER, "message_thread_id": True}
STORED_FIELDS: dict[str, Any] = {
    "message_id": True,
    "message_thread_id": True,
    "is_topic_message": True,
    "date": True,
    "chat": _CHAT,
    "from": _USER,
    "sender_chat": _CHAT,
    "reply_to_message": _REPLIED,
    "new_chat_members": _USER,  # each member
    "left_chat_member": _USER,
}


class SecretError(ValueError):
    """The update did not come from Telegram with our secret token."""


def verify(secret: str, header: str | None) -> None:
    """Raise SecretError unless `header` is the webhook's secret token (constant time)."""
    if not header:
        raise SecretError(f"missing {SECRET_HEADER} header: set the webhook again with secret_token")
    if not hmac.compare_digest(secret.encode(), header.strip().encode()):
        raise SecretError("secret token does not match: check TELEGRAM_WEBHOOK_SECRET")


def event_name(kind: str) -> str:
    return f"{PLATFORM}:{kind}"


def chat_of(community_org: str) -> Chat:
    return Chat(TELEGRAM, TELEGRAM_HOST, community_org, url=f"https://{TELEGRAM_HOST}")


def parse_delivery(body: bytes, chat: Chat) -> tuple[Event, str]:
    """The Event and the payload text to store (the fields kept, and the community), or MalformedEvent."""
    update = parse("telegram", "telegram", body).payload  # the same checks of the body as GitHub's
    update_id = update.get("update_id")
    if not isinstance(update_id, int) or isinstance(update_id, bool) or update_id < 0:
        raise MalformedEvent("update_id must be the update's number: is this a Telegram Bot API update?")
    field = next((name for name in update if name != "update_id"), None)
    if field is None:
        raise MalformedEvent("the update carries nothing besides its update_id")
    kind, message = kind_of(field, update[field])
    payload: dict[str, Any] = {"update_id": update_id, CHAT_KEY: {"community_org": chat.community_org}}
    if isinstance(message, Mapping):
        payload[field] = _kept(message, kind)
    return Event(f"{PLATFORM}:{update_id}", event_name(kind), payload), json.dumps(payload, ensure_ascii=False)


def kind_of(field: str, message: Any) -> tuple[str, Any]:
    """The update's kind (see the kinds above) and its message, if it is one."""
    if field != "message" or not isinstance(message, Mapping):
        return field, None
    where = message.get("chat")
    chat_type = where.get("type") if isinstance(where, Mapping) else None
    if chat_type == "private":
        return PRIVATE_MESSAGE, message
    if chat_type not in COMMUNITY_CHAT_TYPES:
        return str(chat_type or field), message
    if "new_chat_members" in message:
        return MEMBER_JOINED, message
    if any(name in message for name in TELEGRAM_SERVICE_FIELDS):
        return SERVICE, message
    return (REPLY if answers_someone(message) else MESSAGE), message


def _kept(message: Mapping[str, Any], kind: str) -> dict[str, Any]:
    """The message's fields in `STORED_FIELDS` (still a valid Telegram `Message`), and the text only of
    a private-chat command in `KEPT_COMMANDS` (`/link CODE`, `/link@our_bot CODE`)."""
    kept: dict[str, Any] = _pick(message, STORED_FIELDS)
    text = message.get("text")
    words = text.split(maxsplit=1) if isinstance(text, str) else []
    if kind == PRIVATE_MESSAGE and words and words[0].split("@", 1)[0] in KEPT_COMMANDS:
        kept["text"] = text
    return kept


def _pick(value: Any, fields: Mapping[str, Any]) -> Any:
    if isinstance(value, list):
        return [_pick(item, fields) for item in value]
    if not isinstance(value, Mapping):
        return value
    return {
        name: value[name] if shape is True else _pick(value[name], shape)
        for name, shape in fields.items()
        if name in value
    }


def chat_from(payload: Mapping[str, Any]) -> Chat:
    """The community a stored update came from, as the intake noted it."""
    return chat_of(str(payload[CHAT_KEY]["community_org"]))
