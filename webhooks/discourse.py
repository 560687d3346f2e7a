"""A Discourse forum's webhook delivery: its signature and its `Event` (pure, no I/O).

Deliveries share the GitHub pipeline: stored under `discourse:<X-Discourse-Event-Id>`, named
`discourse:<X-Discourse-Event>` (the router's keys, e.g. `discourse:post_created`; GitHub's event names
have no colon). Discourse's automatic retries carry a new event id, so exactly-once rests on the ledger's
natural keys; a manual redelivery keeps its id and is acknowledged like GitHub's.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any

from domain.contributions import Forum
from webhooks.event import MAX_LENGTH, Event, MalformedEvent, parse

PLATFORM = "discourse"
SIGNATURE_HEADER = "X-Discourse-Event-Signature"
PREFIX = "sha256="
# Where the stored payload keeps the forum it came from (Discourse's body names none), for the handlers.
FORUM_KEY = "engage_forum"
PRIVATE_MESSAGE = "private_message"
# What is kept of a private message's post, and the commands whose text is kept (`engagement.identity`).
PRIVATE_POST_FIELDS = ("id", "topic_id", "post_number", "user_id", "username", "created_at", "topic_archetype")
KEPT_COMMANDS = frozenset({"/link", "/unlink", "/leaderboard", "/help", "/start"})


class SignatureError(ValueError):
    """The delivery did not come from the forum with our secret."""


def sign(secret: str, body: bytes) -> str:
    return PREFIX + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, header: str | None) -> None:
    """Raise SignatureError unless `header` is the HMAC-SHA256 of `body` under `secret` (constant time)."""
    if not header:
        raise SignatureError(f"missing {SIGNATURE_HEADER} header: set the webhook's secret in Discourse")
    if not hmac.compare_digest(sign(secret, body).encode(), header.strip().encode()):
        raise SignatureError("signature does not match: check DISCOURSE_WEBHOOK_SECRET")


def event_name(name: str) -> str:
    return f"{PLATFORM}:{name}"


def parse_delivery(event_id: str | None, name: str | None, body: bytes, forum: Forum) -> tuple[Event, str]:
    """The Event and the payload text to store (the body, plus the forum it came from), or MalformedEvent."""
    if not event_id or not event_id.isascii() or not event_id.isdigit():
        raise MalformedEvent("X-Discourse-Event-Id header must be the event's number")
    if not name:
        raise MalformedEvent("missing X-Discourse-Event header")
    if len(event_name(name)) > MAX_LENGTH["event"]:
        raise MalformedEvent("X-Discourse-Event header is too long")
    event = parse(f"{PLATFORM}:{event_id}", event_name(name), body)
    payload: dict[str, Any] = {**_without_private_text(event.payload), FORUM_KEY: _forum_fields(forum)}
    return Event(event.delivery_id, event.name, payload), json.dumps(payload, ensure_ascii=False)


def _without_private_text(payload: Mapping[str, Any]) -> dict[str, Any]:
    """A private message's post is kept as who, when and where only, and its text only when it is one of
    the commands people send the app privately (`/link LOGIN`): never what people write to each other."""
    post = payload.get("post")
    if not isinstance(post, Mapping) or post.get("topic_archetype") != PRIVATE_MESSAGE:
        return dict(payload)
    kept = {name: post[name] for name in PRIVATE_POST_FIELDS if name in post}
    raw = post.get("raw")
    words = raw.split(maxsplit=1) if isinstance(raw, str) else []
    if words and words[0].lower() in KEPT_COMMANDS:
        kept["raw"] = raw
    return {**payload, "post": kept}


def _forum_fields(forum: Forum) -> dict[str, Any]:
    return {"url": forum.url, "community_org": forum.community_org, "public_categories": list(forum.public_categories)}


def forum_of(payload: Mapping[str, Any]) -> Forum:
    """The forum a stored delivery came from, as the intake noted it."""
    fields = payload[FORUM_KEY]
    return Forum(
        url=str(fields["url"]),
        community_org=str(fields["community_org"]),
        public_categories=tuple(int(i) for i in fields.get("public_categories") or ()),
    )
