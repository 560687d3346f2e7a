"""A Rocket.Chat outgoing webhook's `sendMessage` delivery: its token and its `Event` (pure, no I/O).

Rocket.Chat signs nothing: the integration's token comes in the body (`token`), compared here in
constant time. A delivery carries no delivery id, so it is stored under `rocketchat:<message_id>`: an
edit (with "run on edits") or a retry of the same message is acknowledged, not processed again. It is
named `rocketchat:<kind>`: a `message`, a thread `reply` (`tmid`), or `private_message` (a direct
message: no `channel_name`), which nothing records.

Only who, when, where and to whom are stored (`STORED_FIELDS`): never the message's text.
"""

from __future__ import annotations

import hmac
import json
import re
from collections.abc import Mapping
from typing import Any

from domain.contributions import ROCKETCHAT, Chat
from webhooks.event import Event, MalformedEvent, parse

PLATFORM = ROCKETCHAT
CHAT_KEY = "engage_chat"  # where the stored payload keeps the chat it came from, for the handlers
MESSAGE, REPLY, PRIVATE_MESSAGE = "message", "reply", "private_message"
STORED_FIELDS = ("bot", "channel_id", "channel_name", "message_id", "timestamp", "user_id", "user_name", "tmid")
# Rocket.Chat's ids (Meteor's: 17 characters from this alphabet; longer ones for imported messages),
# short enough for the delivery id column with the prefix.
_ID = re.compile(r"[A-Za-z0-9_-]{1,53}")


class TokenError(ValueError):
    """The delivery did not come from the outgoing webhook with our token."""


def verify(expected: str, payload: Mapping[str, Any]) -> None:
    """Raise TokenError unless the body's `token` is the integration's token (constant time)."""
    token = payload.get("token")
    if not isinstance(token, str) or not token:
        raise TokenError("missing token in the body: is this Rocket.Chat's outgoing webhook (event Message Sent)?")
    if not hmac.compare_digest(expected.encode(), token.encode()):
        raise TokenError("token does not match: check ROCKETCHAT_WEBHOOK_TOKEN")


def event_name(kind: str) -> str:
    return f"{PLATFORM}:{kind}"


def chat_of(url: str, community_org: str, channels: tuple[str, ...] = ()) -> Chat:
    host = url.split("://", 1)[-1].split("/", 1)[0].lower()
    return Chat(ROCKETCHAT, host, community_org, url=url, channels=channels)


def read(body: bytes) -> dict[str, Any]:
    """The body as JSON (the same checks as GitHub's), for the token check; or MalformedEvent."""
    return dict(parse("rocketchat", "rocketchat", body).payload)


def parse_delivery(payload: Mapping[str, Any], chat: Chat) -> tuple[Event, str]:
    """The Event and the payload text to store (the fields kept, and the chat), or MalformedEvent."""
    message_id = payload.get("message_id")
    if not isinstance(message_id, str) or not _ID.fullmatch(message_id):
        raise MalformedEvent("no message_id: point only an outgoing webhook for the event Message Sent here")
    channel = payload.get("channel_name")
    kind = PRIVATE_MESSAGE if not channel else REPLY if isinstance(payload.get("tmid"), str) else MESSAGE
    kept: dict[str, Any] = {name: payload[name] for name in STORED_FIELDS if name in payload}
    kept[CHAT_KEY] = {"url": chat.url, "community_org": chat.community_org, "channels": list(chat.channels)}
    event = Event(f"{PLATFORM}:{message_id}", event_name(kind), kept)
    return event, json.dumps(kept, ensure_ascii=False)


def chat_from(payload: Mapping[str, Any]) -> Chat:
    """The chat a stored delivery came from, as the intake noted it."""
    fields = payload[CHAT_KEY]
    return chat_of(str(fields["url"]), str(fields["community_org"]), tuple(fields.get("channels") or ()))
